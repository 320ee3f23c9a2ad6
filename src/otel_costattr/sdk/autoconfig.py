"""Zero-code switch-on of `CostSpanProcessor` for ``opentelemetry-instrument``.

    OTEL_COSTATTR_PROCESSOR=true OTEL_TRACES_EXPORTER=duckdb opentelemetry-instrument python app.py

The OpenTelemetry auto-instrumentation has no entry point for span processors. Of the two
hooks it offers, this module uses ``opentelemetry_post_instrument``: after the configurator
(opentelemetry-distro's, or a vendor distro's) has built the global TracerProvider and the
instrumentors are loaded, `post_instrument` adds the processor to that provider. Why not a
configurator (``OTEL_PYTHON_CONFIGURATOR``): only one configurator runs per process, so ours
would replace a vendor distro's and the exporters it sets up; and with ``OTEL_CONFIG_FILE``
the SDK configurator ignores extra span processors. Registering last is safe: the processor
stamps from inside ``span.end()``, so exporters registered before it still see the cost.

The hook runs for everyone who has otel-costattr installed and uses
``opentelemetry-instrument``, so it does nothing unless ``OTEL_COSTATTR_PROCESSOR`` says so.
"""

from __future__ import annotations

import logging

from opentelemetry import trace

from .. import settings

logger = logging.getLogger(__name__)

ENV_PROCESSOR = settings.PROCESSOR


def enabled() -> bool:
    """True when ``OTEL_COSTATTR_PROCESSOR`` switches the processor on (true/1/yes/on). A
    malformed value is logged and taken as false: this runs where nothing may raise."""
    try:
        return settings.flag(ENV_PROCESSOR)
    except ValueError as e:
        logger.warning("otel-costattr: %s; treated as false", e)
        return False


def install(provider: object | None = None) -> object | None:
    """Add a `CostSpanProcessor` (bundled prices plus ``OTEL_COSTATTR_PRICING_FILES``) to
    ``provider`` (default: the global TracerProvider) and return it.

    Returns None, with a warning, when the provider cannot take span processors: no SDK was
    configured (``OTEL_SDK_DISABLED``, no distro or configurator) and the global provider is
    still the API's proxy.
    """
    from .processor import CostSpanProcessor

    if provider is None:
        provider = trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        logger.warning(
            "otel-costattr: %s is set but the global TracerProvider (%s) is not the SDK's: "
            "no cost processor added. Install opentelemetry-distro (or another distro) so "
            "opentelemetry-instrument configures the SDK.",
            ENV_PROCESSOR,
            type(provider).__name__,
        )
        return None
    processor = CostSpanProcessor()
    add(processor)
    return processor


def post_instrument(**kwargs: object) -> None:
    """Entry point of group ``opentelemetry_post_instrument``. Never raises: auto-
    instrumentation would abandon the rest of its set-up."""
    try:
        if enabled():
            install()
    except ValueError as e:
        if isinstance(e, UnicodeError):  # not a configuration error: where it came from matters
            logger.exception("otel-costattr: could not add the cost processor")
        else:  # configuration (a pricing file, a variable): its one line says where
            logger.error("otel-costattr: could not add the cost processor: %s", e)
    except Exception:
        logger.exception("otel-costattr: could not add the cost processor")
