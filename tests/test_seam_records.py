"""The SDK adapter's shortcuts (`sdk/seam_records.py`): a SpanContext read as the tuple it
is, the batch's last resource and scope reused by identity. Each must read what the public
API reads, span by span, with real SDK spans."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext

from otel_costattr.sdk import seam, seam_records


def _spans(provider_count: int = 1, per_provider: int = 3) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    for p in range(provider_count):
        provider = TracerProvider(
            resource=Resource.create({"service.name": f"svc-{p}"}), shutdown_on_exit=False
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for t in range(2):  # two scopes a provider
            tracer = provider.get_tracer(f"scope-{t}", f"{t}.0")
            with tracer.start_as_current_span("root"):
                for i in range(per_provider):
                    with tracer.start_as_current_span(f"child {i}", attributes={"i": i}):
                        pass
    return list(exporter.get_finished_spans())


def _public(span: ReadableSpan) -> tuple:
    ctx, parent = span.context, span.parent
    return (
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        None if parent is None else f"{parent.span_id:016x}",
        span.resource.attributes.get("service.name"),
        span.instrumentation_scope.name,
        span.instrumentation_scope.version,
        dict(span.attributes),
    )


def _read(record) -> tuple:
    return (
        record.trace_id,
        record.span_id,
        record.parent_span_id,
        record.service_name,
        record.scope_name,
        record.scope_version,
        dict(record.attributes),
    )


def test_the_installed_sdks_context_is_read_by_index():
    assert seam_records._INDEXED_CONTEXT  # else the shortcut is never taken here


def test_spans_of_several_resources_and_scopes_interleaved_each_keep_their_own():
    spans = _spans(provider_count=3)
    # Interleave them, so that the resource and scope change from one span to the next.
    mixed = [s for group in zip(spans[0::3], spans[1::3], spans[2::3], strict=False) for s in group]
    records = seam_records.records_from_sdk(mixed)
    assert [_read(r) for r in records] == [_public(s) for s in mixed]
    assert len({r.service_name for r in records}) == 3
    assert len({(r.scope_name, r.scope_version) for r in records}) == 2


class _OddContext(SpanContext):
    """A context whose trace id property does not read its first item: a reader that indexes
    any tuple-like context, not only the SDK's own type, would get the wrong id."""

    @property
    def trace_id(self) -> int:
        return self[0] + 1


def test_a_context_of_another_type_is_read_through_its_properties(monkeypatch):
    span = _spans()[0]
    odd = _OddContext(span.context.trace_id, span.context.span_id, False)
    odd_parent = _OddContext(span.context.trace_id, 0xABC, False)
    forged = ReadableSpan(
        name=span.name,
        context=odd,
        parent=odd_parent,
        resource=span.resource,
        attributes=span.attributes,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
    (record,) = seam_records.records_from_sdk([forged])
    assert record.trace_id == f"{odd.trace_id:032x}" != f"{span.context.trace_id:032x}"
    assert record.parent_span_id == f"{0xABC:016x}"
    monkeypatch.setattr(seam, "_fast", False)
    assert seam_records.records_from_sdk([forged]) == [record]
