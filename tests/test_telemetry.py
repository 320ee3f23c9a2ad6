"""Processor and exporter counts reach a real OpenTelemetry MeterProvider as metrics."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, telemetry


def _points(reader: InMemoryMetricReader) -> dict[str, dict[tuple, int]]:
    out: dict[str, dict[tuple, int]] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    out.setdefault(metric.name, {})[tuple(sorted(point.attributes.items()))] = point.value
    return out


def test_processor_and_exporter_counts_are_metrics(table, tmp_path):
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    telemetry.instrument(meters)
    processor = CostSpanProcessor(pricing=table)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    calls = [("acme-large", 100), ("acme-large", 5), ("nobody-knows", 7)]
    for model, tokens in calls:
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                 "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": 1}  # fmt: skip
        with tracer.start_as_current_span("chat", attributes=attrs):
            pass
    exporter = DuckDBSpanExporter(tmp_path / "db.duckdb", max_spool_bytes=0, max_buffered_spans=0)
    exporter.export([object()])  # not a span: dropped, and counted
    try:
        # Every live processor adds to the sums (others may be alive in this test session):
        # held here before the reading, so that none is collected between the two.
        live, exporters = list(telemetry._processors), list(telemetry._exporters)
        points = _points(reader)
        calls = points["otel_costattr.processor.calls"]
        assert processor in live
        for outcome in ("priced", "unknown_model", "no_usage"):
            assert calls[(("costattr.outcome", outcome),)] == sum(p.stats()[outcome] for p in live)
        assert processor.stats()["priced"] == 2 and processor.stats()["unknown_model"] == 1
        assert (("costattr.outcome", "spans"),) not in calls  # not an outcome: its own counter
        spans = sum(p.stats()["spans"] for p in live)
        assert points["otel_costattr.processor.spans"][()] == spans >= processor.stats()["spans"] == 3
        dropped = sum(e.dropped_spans for e in exporters)
        assert points["otel_costattr.exporter.dropped"][()] == dropped >= exporter.dropped_spans == 1
        assert () in points["otel_costattr.exporter.buffered"]
        content = sum(e.content_dropped for e in exporters)
        assert points["otel_costattr.exporter.content_dropped"][()] == content
    finally:
        exporter.shutdown()
        provider.shutdown()
        meters.shutdown()


def test_instruments_are_created_once_per_meter_provider():
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    telemetry.instrument(meters)
    telemetry.instrument(meters)  # a second processor or exporter: no duplicate instruments
    names = [m.name for rm in reader.get_metrics_data().resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics]  # fmt: skip
    assert sorted(names) == sorted(set(names))
    meters.shutdown()
