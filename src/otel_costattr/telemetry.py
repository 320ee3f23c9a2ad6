"""The processor's and the exporter's counts as OpenTelemetry metrics, besides ``stats()``.

Observable instruments only: nothing is recorded on the span path. When the application's
metric reader collects, the callbacks sum the counts of every live processor and exporter.
Instruments are created once, on the global MeterProvider (the API's proxy forwards them to
the provider the application sets, before or after us), or on one given to `instrument`.

    otel_costattr.processor.calls     {call}  by costattr.outcome (priced, unknown_model,
                                              no_usage, invalid_usage, duplicate) and the
                                              processor's own internal_errors and unhooked spans
    otel_costattr.processor.spans   {span}  every span ended where a cost processor runs, model
                                              call or not (spans but no calls: no GenAI
                                              instrumentation loaded?)
    otel_costattr.exporter.dropped    {span}  spans given to an exporter that were not stored
    otel_costattr.exporter.buffered   {span}  spans waiting in memory for room in the spool
    otel_costattr.exporter.content_dropped  {attribute}  attributes left out as possible content
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics

from .version import __version__

logger = logging.getLogger(__name__)

_processors: weakref.WeakSet[Any] = weakref.WeakSet()
_exporters: weakref.WeakSet[Any] = weakref.WeakSet()
_done: set[int] = set()  # id() of the meter providers instrumented (0: the global one)
_lock = threading.Lock()


def track_processor(processor: Any) -> None:
    """Count ``processor`` (a `CostSpanProcessor`) in the metrics; never raises."""
    _track(_processors, processor)


def track_exporter(exporter: Any) -> None:
    """Count ``exporter`` (a `DuckDBSpanExporter`) in the metrics; never raises."""
    _track(_exporters, exporter)


def _track(group: weakref.WeakSet[Any], item: Any) -> None:
    try:
        group.add(item)
        instrument()
    except Exception:  # metrics are a courtesy: never fail a constructor for them
        logger.exception("otel-costattr: could not register metrics")


def instrument(meter_provider: metrics.MeterProvider | None = None) -> None:
    """Create the instruments on ``meter_provider`` (default: the global one), once each."""
    key = 0 if meter_provider is None else id(meter_provider)
    with _lock:
        if key in _done:
            return
        _done.add(key)
    meter = metrics.get_meter("otel_costattr", __version__, meter_provider=meter_provider)
    meter.create_observable_counter(
        "otel_costattr.processor.calls",
        callbacks=[_processor_counts],
        unit="{call}",
        description="Model calls seen by cost processors, by outcome",
    )
    meter.create_observable_counter(
        "otel_costattr.processor.spans",
        callbacks=[_processor_spans],
        unit="{span}",
        description="Spans ended where cost processors run, model calls or not",
    )
    for name, attribute, counter, unit, description in _EXPORTER_INSTRUMENTS:
        create = meter.create_observable_counter if counter else meter.create_observable_up_down_counter
        create(name, callbacks=[_exporter_value(attribute)], unit=unit, description=description)


# (name, DuckDBSpanExporter attribute summed, monotonic?, unit, description)
_EXPORTER_INSTRUMENTS = (
    ("otel_costattr.exporter.dropped", "dropped_spans", True, "{span}",
     "Spans given to DuckDB exporters that were not stored"),
    ("otel_costattr.exporter.content_dropped", "content_dropped", True, "{attribute}",
     "Attributes DuckDB exporters left out because they may hold prompt or completion text"),
    ("otel_costattr.exporter.buffered", "buffered_spans", False, "{span}",
     "Spans waiting in exporter memory for room in the spool"),
)  # fmt: skip


def _processor_counts(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    totals: dict[str, int] = {}
    for processor in list(_processors):
        for outcome, n in processor.stats().items():
            if outcome != _SPANS:
                totals[outcome] = totals.get(outcome, 0) + n
    return [metrics.Observation(n, {"costattr.outcome": k}) for k, n in sorted(totals.items())]


_SPANS = "spans"  # the stats() entry that is not an outcome


def _processor_spans(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    return [metrics.Observation(sum(p.stats()[_SPANS] for p in list(_processors)))]


def _exporter_value(attribute: str) -> Any:
    def observe(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        return [metrics.Observation(sum(getattr(e, attribute) for e in list(_exporters)))]

    return observe
