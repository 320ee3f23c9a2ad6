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
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

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


class ZeroCodeDuckDBSpanExporter(SpanExporter):
    """``OTEL_TRACES_EXPORTER=duckdb``: the `DuckDBSpanExporter` the SDK's configurator builds
    from the environment (``OTEL_COSTATTR_DUCKDB_PATH``, ``OTEL_COSTATTR_PRICING_FILES``...).

    The configurator builds every exporter it is given in one go, and one that raises makes
    it give up on tracing altogether: a bad pricing file or an unwritable path left the
    application with no tracing at all, its other exporters (console, OTLP) included, behind
    two tracebacks (a review). Here such configuration is one error line naming the file,
    entry and field; this exporter then stores nothing, answers FAILURE to every export and
    says at shutdown how many spans it could not keep. The other exporters run as set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._inner: SpanExporter | None = None
        self._refused = 0
        self._why = ""
        try:
            from ..store.exporter import DuckDBSpanExporter

            self._inner = DuckDBSpanExporter(*args, **kwargs)
        except ValueError as e:  # configuration: the path, a pricing file, a variable
            if isinstance(e, UnicodeError):
                raise
            self._why = str(e)
            logger.error("otel-costattr: the duckdb exporter is off, it stores nothing: %s", e)

    def __getattr__(self, name: str) -> Any:  # the exporter's own (capture_content, path...)
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._inner is not None:
            return self._inner.export(spans)
        self._refused += len(spans)
        return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis) if self._inner is not None else True

    def shutdown(self) -> None:
        if self._inner is not None:
            self._inner.shutdown()
        elif self._refused:
            logger.error(
                "otel-costattr: the duckdb exporter stored none of %d spans: %s", self._refused, self._why
            )
