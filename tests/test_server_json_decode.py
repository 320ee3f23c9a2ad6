"""OTLP JSON read directly (`spans.otlp_json`) gives the records `spans.otlp.records_from_otlp`
gives for the protobuf form of the same request: a property test calling both."""

from __future__ import annotations

import base64
import json

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_costattr.server import otlp_wire as wire
from otel_costattr.spans.otlp import records_from_otlp
from otel_costattr.spans.otlp_json import records_from_otlp_json

scalars = st.one_of(
    st.text(max_size=8).map(lambda v: ("string_value", v)),
    st.booleans().map(lambda v: ("bool_value", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: ("int_value", v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: ("double_value", v)),
    st.just(("none", None)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: ("array_value", v)),
        st.lists(st.tuples(st.text(max_size=5), inner), max_size=3).map(lambda v: ("kvlist_value", v)),
    ),
    max_leaves=8,
)
attrs = st.lists(
    st.tuples(st.sampled_from(["service.name", "gen_ai.usage.input_tokens", "k", ""]), values), max_size=4
)
ids = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=17), st.just(bytes(16)))
span_ids = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=9), st.just(bytes(8)))


def set_value(target, value) -> None:
    kind, v = value
    if kind == "none":
        return
    if kind == "array_value":
        target.array_value.SetInParent()
        for item in v:
            set_value(target.array_value.values.add(), item)
    elif kind == "kvlist_value":
        target.kvlist_value.SetInParent()
        for key, item in v:
            kv = target.kvlist_value.values.add()
            kv.key = key
            set_value(kv.value, item)
    else:
        setattr(target, kind, v)


def set_attrs(target, items) -> None:
    for key, value in items:
        kv = target.add()
        kv.key = key
        set_value(kv.value, value)


span_data = st.fixed_dictionaries(
    {
        "trace_id": ids, "span_id": span_ids, "parent": st.one_of(st.just(b""), span_ids),
        "name": st.text(max_size=6), "kind": st.integers(0, 7), "code": st.integers(0, 4),
        "message": st.text(max_size=4), "start": st.integers(0, 2**64 - 1), "end": st.integers(0, 2**64 - 1),
        "attrs": attrs,
        "events": st.lists(st.tuples(st.text(max_size=4), st.integers(0, 2**64 - 1), attrs), max_size=2),
        "links": st.lists(st.tuples(ids, span_ids, attrs), max_size=2),
    }
)  # fmt: skip


@st.composite
def requests(draw) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rs = request.resource_spans.add()
        set_attrs(rs.resource.attributes, draw(attrs))
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = draw(st.text(max_size=3)), draw(st.text(max_size=3))
            for d in draw(st.lists(span_data, max_size=3)):
                span = ss.spans.add()
                span.trace_id, span.span_id, span.parent_span_id = d["trace_id"], d["span_id"], d["parent"]
                span.name, span.kind, span.status.code, span.status.message = (
                    d["name"],
                    d["kind"],
                    d["code"],
                    d["message"],
                )
                span.start_time_unix_nano, span.end_time_unix_nano = d["start"], d["end"]
                set_attrs(span.attributes, d["attrs"])
                for name, t, a in d["events"]:
                    event = span.events.add()
                    event.name, event.time_unix_nano = name, t
                    set_attrs(event.attributes, a)
                for tid, sid, a in d["links"]:
                    link = span.links.add()
                    link.trace_id, link.span_id = tid, sid
                    set_attrs(link.attributes, a)
    return request


def otlp_json(request: ExportTraceServiceRequest, *, integers: bool = True) -> dict:
    """The OTLP JSON form: protobuf's JSON mapping with the ids in hex."""
    data = json_format.MessageToDict(request, use_integers_for_enums=integers)
    for rs in data.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for holder in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return json.loads(json.dumps(data))


@settings(max_examples=150, deadline=None)
@given(requests(), st.booleans())
def test_direct_json_records_equal_the_protobuf_records(request, integers):
    expected = records_from_otlp(request)
    assert records_from_otlp_json(otlp_json(request, integers=integers)) == expected
    # and through the receiver's decoder, as a body
    assert wire.decode(json.dumps(otlp_json(request)).encode(), wire.JSON) == expected


def test_forms_the_direct_reader_leaves_to_protobufs_parser():
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\1" * 16, b"\2" * 8, "s"
    kv = span.attributes.add()
    kv.key, kv.value.bytes_value = "b", b"\0\1"
    data = otlp_json(request)
    expected = records_from_otlp(request)
    assert wire.decode(json.dumps(data).encode(), wire.JSON) == expected  # bytesValue
    snake = (
        json.dumps(data)
        .replace('"stringValue"', '"string_value"')
        .replace('"scopeSpans"', '"scope_spans"')
        .replace('"traceId"', '"trace_id"')
    )
    assert wire.decode(snake.encode(), wire.JSON) == expected


def test_an_id_that_is_not_hex_rejects_its_span_and_is_counted():
    def span(**ids):
        return {"traceId": "01" * 16, "spanId": "02" * 8, "name": "s", **ids}

    spans = [span(), span(parentSpanId="zz" * 8), span(spanId="not hex"), span(traceId="0g" * 16)]
    request = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    expected = (
        "3 spans rejected: parent_span_id is neither empty nor 8 bytes (1); span_id is not 8 bytes, "
        "or all zero (1); trace_id is not 16 bytes, or all zero (1)"
    )
    records, rejected, message = records_from_otlp_json(request)
    assert [r.parent_span_id for r in records] == [None]  # never the garbled child as a root
    assert (rejected, message) == (3, expected)
    # The same through the receiver's decoder, also when a form the direct reader leaves to
    # protobuf's parser (a bytesValue) sends the whole body there: its conversion of the ids
    # made a garbled parent id empty, and the child a root, silently.
    assert wire.decode(json.dumps(request).encode(), wire.JSON) == (records, 3, expected)
    spans.append(span(spanId="03" * 8, attributes=[{"key": "b", "value": {"bytesValue": "AAE="}}]))
    spans.append(span(spanId="04" * 8, parentSpanId=12345))
    records, rejected, message = wire.decode(json.dumps(request).encode(), wire.JSON)
    assert [(r.span_id, r.parent_span_id) for r in records] == [("02" * 8, None), ("03" * 8, None)]
    assert rejected == 4
    assert message.startswith("4 spans rejected: parent_span_id is neither empty nor 8 bytes (2)")


def test_bodies_no_parser_can_read_are_400_never_503():
    # A fuzzing review: the plain reader let a TypeError (an intValue that is a list) or a
    # ValueError (5,000 digits: past Python's int limit) escape, and protobuf's parser an
    # OverflowError (1e400) or upb's SystemError (a lone surrogate where an enum's name goes):
    # the receiver answered 503, which an exporter retries until it drops the whole batch.
    def body(extra: str = "", value: str | None = None) -> bytes:
        attrs = f',"attributes":[{{"key":"x","value":{value}}}]' if value else ""
        span = '{"traceId":"' + "ab" * 16 + '","spanId":"' + "cd" * 8 + '"' + extra + attrs + "}"
        return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}").encode()

    refused = [
        body(value='{"intValue":[1]}'),
        body(value='{"intValue":{}}'),
        body(value='{"intValue":"' + "1" * 5000 + '"}'),
        body(',"startTimeUnixNano":"' + "1" * 5000 + '"'),
        body(value='{"doubleValue":1' + "0" * 400 + "}"),
        body(',"kind":1e400'),
    ]
    for raw in refused:
        try:
            wire.decode(raw, wire.JSON)
        except wire.BadRequest:
            continue
        raise AssertionError(f"accepted: {raw[:120]!r}")
    # a lone surrogate as an enum's name is read as U+FFFD, as everywhere else: not a kind
    records, rejected, _ = wire.decode(body(',"kind":"\\ud800"'), wire.JSON)
    assert (len(records), rejected) == (1, 0)


def test_the_plain_reader_keeps_a_number_past_int64_itself():
    # A review of the fix above: a JSON integer past int64 (JavaScript's exporters send any
    # whole number as intValue) was sent to protobuf's parser with the whole batch, 3x slower.
    attrs = [
        {"key": "big", "value": {"intValue": 2**64}},
        {"key": "yes", "value": {"intValue": True}},
        {"key": "text", "value": {"intValue": "-12"}},
    ]
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "s", "attributes": attrs}
    records, rejected, _ = records_from_otlp_json({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    assert rejected == 0 and dict(records[0].attributes) == {"big": float(2**64), "yes": 1.0, "text": -12}


def test_an_id_with_whitespace_is_not_hex():
    """bytes.fromhex skips whitespace: " 0a f7 ...\\n" (47 characters) was taken for the 32
    hex digits OTLP/JSON asks for. Both readers reject such a span, as any id not hex."""

    def span(**ids):
        return {"traceId": "01" * 16, "spanId": "02" * 8, "name": "s", **ids}

    spaced = " ".join(["0af7"] * 8) + "\n"
    spans = [span(), span(spanId="03" * 8, traceId=spaced), span(spanId="\t0405060708090a0b ")]
    request = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    records, rejected, _ = records_from_otlp_json(request)
    assert ([r.span_id for r in records], rejected) == (["02" * 8], 2)
    assert wire.decode(json.dumps(request).encode(), wire.JSON)[:2] == (records, 2)
    spans.append(span(spanId="05" * 8, attributes=[{"key": "b", "value": {"bytesValue": "AAE="}}]))
    records, rejected, _ = wire.decode(json.dumps(request).encode(), wire.JSON)  # protobuf's parser
    assert ([r.span_id for r in records], rejected) == (["02" * 8, "05" * 8], 2)


def test_a_byte_that_is_not_utf8_costs_its_text_not_the_export():
    """A JSON body with one invalid byte in one span's name was refused whole (400, which no
    client retries): it is read with U+FFFD in that place, as the protobuf path reads it."""
    spans = [{"traceId": "01" * 16, "spanId": f"{i + 1:016x}", "name": "n@"} for i in range(3)]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    body = body.replace(b"n@", b"n\xff", 1)
    records, rejected, _ = wire.decode(body, wire.JSON)
    assert ([r.name for r in records], rejected) == (["n\ufffd", "n@", "n@"], 0)


def test_an_empty_parent_id_is_a_root_on_both_readers():
    """OTLP/JSON writes a root span's parentSpanId as "": the whitespace check refused it on
    the protobuf parser's path (a bytesValue sends the body there), every root span of such
    a request lost (a review)."""
    span = {"traceId": "01" * 16, "spanId": "02" * 8, "parentSpanId": "", "name": "root"}
    bytes_value = {"key": "b", "value": {"bytesValue": "AAE="}}
    for attributes in ([], [bytes_value]):
        request = {"resourceSpans": [{"scopeSpans": [{"spans": [{**span, "attributes": attributes}]}]}]}
        records, rejected, _ = wire.decode(json.dumps(request).encode(), wire.JSON)
        assert ([r.parent_span_id for r in records], rejected) == ([None], 0), attributes
