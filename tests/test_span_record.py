"""SpanRecord from either adapter: SDK spans through the seam, and the same spans through the real
OTLP exporter's encoder and `records_from_otlp`, give the same records and the same rows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_costattr.sdk.seam_records import records_from_sdk
from otel_costattr.spans import otlp
from otel_costattr.spans.otlp import parse_request, records_from_otlp
from otel_costattr.spans.record import SpanRecord
from otel_costattr.spans.rows import COLUMN_NAMES, SpanMapper

T0 = 1_782_900_000_000_000_000  # 2026-07-01, inside the test table's second price period
CHAT = {  # a model call without a cost: the mapper prices it
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.input.messages": '[{"role": "user", "content": "secret"}]',  # content: dropped
}
EVERY_TYPE = {
    "s": "text",
    "b": True,
    "i": -(2**62),
    "f": 0.25,
    "raw": b"\x00\xffbytes",
    "ss": ("a", "b"),
    "bs": (True, False),
    "is": (1, 2, 3),
    "fs": (1.5, -2.0),
    "app.feature": "search",
    "gen_ai.agent.step": 2,
}
JSON_COLUMNS = ("attributes", "resource", "events", "links")


def make_spans():
    """Finished spans from two real providers (two resources), three scopes, every kind and
    status, events (one an exception), links, and attributes of every type."""
    memory = InMemorySpanExporter()
    spans_from = []
    for resource in (
        Resource.create({"service.name": "svc-a", "deployment.environment": "test"}),
        Resource.create({"service.name": "svc-b", "team": ("x", "y")}),
    ):
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        spans_from.append(provider)
    a, b = spans_from
    tracers = [
        a.get_tracer("scope.one", "1.2"),
        a.get_tracer("scope.two"),  # no version
        b.get_tracer("scope.three", "0.1"),
    ]
    with tracers[0].start_as_current_span("invoke_agent planner", start_time=T0) as root:
        root.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "p"})
        chat = tracers[0].start_span("chat acme-large", kind=SpanKind.CLIENT, attributes=CHAT, start_time=T0)
        chat.add_event("gen_ai.choice", {"gen_ai.choice.index": 0, "message": "hi"}, timestamp=T0 + 5)
        chat.set_status(Status(StatusCode.OK))
        chat.end(T0 + 2_500_000)
        for i, kind in enumerate(SpanKind):
            tracer = tracers[i % len(tracers)]
            link = Link(chat.get_span_context(), {"why": "follows", "n": i})
            span = tracer.start_span(f"work {kind.name}", kind=kind, attributes=EVERY_TYPE, links=[link])
            span.add_event("plain", {"k": (1, 2)})
            if kind is SpanKind.SERVER:
                try:
                    raise RuntimeError("model said: secret")
                except RuntimeError as e:
                    span.record_exception(e)
                    span.set_status(Status(StatusCode.ERROR, "RuntimeError: model said: secret"))
            elif kind is SpanKind.CONSUMER:
                span.set_status(Status(StatusCode.ERROR, "queue gone"))
            span.end()
    for provider in spans_from:
        provider.shutdown()
    return memory.get_finished_spans()


@pytest.fixture(scope="module")
def spans():
    return make_spans()


def through_otlp(spans):
    """What a receiver gets: the real OTLP exporters' encoding, serialised and parsed again."""
    body = encode_spans(spans).SerializeToString()
    return records_from_otlp(parse_request(body))


def by_id(rows):
    return {row["span_id"]: row for row in rows}


def comparable(row):
    return {k: json.loads(v) if k in JSON_COLUMNS else v for k, v in row.items()}


def test_otlp_records_equal_sdk_records(spans):
    sdk = records_from_sdk(spans)
    got, rejected, message = through_otlp(spans)
    assert (rejected, message) == (0, "")
    assert len(sdk) == len(got) == len(spans) == 7
    assert all(type(r) is SpanRecord for r in sdk + got)
    # OTLP groups spans by resource and scope: the order differs, the records do not.
    assert {r.span_id: r for r in got} == {r.span_id: r for r in sdk}


def test_records_cover_every_field(spans):
    records = {r.name: r for r in records_from_sdk(spans)}
    root, chat = records["invoke_agent planner"], records["chat acme-large"]
    assert chat.parent_span_id == root.span_id and root.parent_span_id is None
    assert (len(chat.trace_id), len(chat.span_id)) == (32, 16)
    assert (chat.start_ns, chat.end_ns) == (T0, T0 + 2_500_000)
    assert (chat.kind, chat.status_code, chat.status_message) == ("CLIENT", "OK", None)
    assert (chat.service_name, chat.scope_name, chat.scope_version) == ("svc-a", "scope.one", "1.2")
    assert chat.resource["deployment.environment"] == "test"
    assert chat.events == (("gen_ai.choice", T0 + 5, {"gen_ai.choice.index": 0, "message": "hi"}),)
    assert {r.kind for r in records.values()} == {k.name for k in SpanKind}
    consumer = records["work CONSUMER"]
    assert (consumer.status_code, consumer.status_message) == ("ERROR", "queue gone")
    assert consumer.links == ((chat.trace_id, chat.span_id, {"why": "follows", "n": 4}),)
    assert dict(consumer.attributes) == EVERY_TYPE
    assert records["work SERVER"].scope_version is None  # scope.two has none
    assert records["work CLIENT"].service_name == "svc-b"  # scope.three, on the second provider


@pytest.mark.parametrize("capture", [False, True])
def test_rows_equal_column_for_column(spans, table, capture):
    mapper = SpanMapper(table, capture_content=capture)
    from_sdk = by_id(mapper.row(r) for r in records_from_sdk(spans))
    got, _, _ = through_otlp(spans)
    from_otlp = by_id(SpanMapper(table, capture_content=capture).row(r) for r in got)
    assert from_sdk.keys() == from_otlp.keys()
    for span_id, row in from_sdk.items():
        assert list(row) == list(COLUMN_NAMES)
        assert comparable(from_otlp[span_id]) == comparable(row), span_id


def test_otlp_chat_span_is_priced_and_its_content_dropped(spans, table):
    got, _, _ = through_otlp(spans)
    (chat,) = [r for r in got if r.name == "chat acme-large"]
    assert "gen_ai.input.messages" in chat.attributes  # decoded as sent
    mapper = SpanMapper(table)
    row = mapper.row(chat)
    assert (row["cost_status"], row["cost_source"]) == ("priced", "exporter")
    assert row["cost_usd"] is not None and row["cost_usd"] > 0
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (1200, 1000, 300)
    attrs = json.loads(row["attributes"])
    assert "gen_ai.input.messages" not in attrs
    # The message, and both attributes of the GenAI event (only allowlisted keys stay there).
    assert attrs["costattr.content_dropped"] == 3
    (event,) = json.loads(row["events"])
    assert event["attributes"] == {}
    server = mapper.row(next(r for r in got if r.name == "work SERVER"))
    assert server["status_message"] == "RuntimeError"  # the exception's text is content


def test_any_value_decoding():
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s")
    )
    kv = span.attributes.add(key="kv")
    inner = kv.value.kvlist_value.values.add(key="a")
    inner.value.array_value.values.add().int_value = 1
    inner.value.array_value.values.add().string_value = "x"
    span.attributes.add(key="empty")
    span.attributes.add(key="d").value.double_value = 0.5
    span.attributes.add(key="raw").value.bytes_value = b"\x00"
    span.kind = 0  # SPAN_KIND_UNSPECIFIED
    span.status.code = 7  # unknown to this code
    ((record,), rejected, _) = records_from_otlp(request)
    assert rejected == 0
    assert dict(record.attributes) == {"kv": {"a": (1, "x")}, "empty": None, "d": 0.5, "raw": b"\x00"}
    assert (record.kind, record.status_code) == ("INTERNAL", "UNSET")
    assert (record.start_ns, record.end_ns, record.parent_span_id) == (None, None, None)
    assert (record.service_name, record.scope_name, record.scope_version) == (None, None, None)
    row = SpanMapper().row(record)
    assert json.loads(row["attributes"])["kv"] == {"a": [1, "x"]}


def test_bad_spans_are_counted_not_raised():
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="good")
    spans.add(trace_id=b"\x01" * 15, span_id=b"\x02" * 8, name="short trace id")
    spans.add(trace_id=bytes(16), span_id=b"\x02" * 8, name="zero trace id")
    spans.add(trace_id=b"\x01" * 16, name="no span id")
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, parent_span_id=b"\x03" * 3, name="bad parent")
    spans.add(trace_id=b"\x01" * 16, span_id=b"\x04" * 8, parent_span_id=bytes(8), name="zero parent")
    records, rejected, message = records_from_otlp(request)
    assert [r.name for r in records] == ["good", "zero parent"]
    assert records[1].parent_span_id is None
    assert rejected == 4
    assert message == (
        "4 spans rejected: trace_id is not 16 bytes, or all zero (2); span_id is not 8 bytes, or all "
        "zero (1); parent_span_id is neither empty nor 8 bytes (1)"
    )


def test_parse_request_refuses_what_is_not_a_request():
    with pytest.raises(ValueError, match="not an OTLP ExportTraceServiceRequest"):
        parse_request(b"\xff\xff\xff")


def test_without_the_extra_it_imports_and_says_which_extra(monkeypatch):
    code = (
        "import sys; sys.modules['opentelemetry.proto'] = None\n"
        "from otel_costattr.spans import otlp\n"
        "try:\n    otlp.records_from_otlp(None)\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "otel-costattr[otlp]" in out.stdout, out.stderr
    monkeypatch.setattr(otlp, "_request_class", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.trace.v1.trace_service_pb2", None)
    with pytest.raises(ImportError, match=r"pip install 'otel-costattr\[otlp\]'"):
        parse_request(b"")


def test_mapper_takes_sdk_spans_as_records(spans, table):
    """The convenience path (SDK spans straight to the mapper) goes through the same adapter."""
    mapper = SpanMapper(table)
    assert mapper.rows(spans) == SpanMapper(table).rows(records_from_sdk(spans))
