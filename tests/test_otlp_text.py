"""`spans.otlp_text`: a protobuf body whose strings are not UTF-8, read with U+FFFD, within
bounds (what the receiver does with it: test_server_otlp.py)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_costattr.server import otlp_wire as wire
from otel_costattr.spans import otlp_text

DESCRIPTOR = ExportTraceServiceRequest.DESCRIPTOR
CUT = b"\xed\xa0\xbd"  # protobufjs's lone high surrogate U+D83D


def request_with(name: str, nesting: int = 0, spans: int = 3) -> ExportTraceServiceRequest:
    """``spans`` spans; the first named ``name`` and, with ``nesting``, carrying an attribute
    whose value is ``name`` inside that many arrays."""
    request = ExportTraceServiceRequest()
    out = request.resource_spans.add().scope_spans.add().spans
    for i in range(spans):
        out.add(trace_id=bytes([9] * 16), span_id=(i + 1).to_bytes(8, "big"), name=f"span {i}")
    out[0].name = name
    if nesting:
        kv = out[0].attributes.add()
        kv.key = "deep"
        value = kv.value
        for _ in range(nesting):
            value = value.array_value.values.add()
        value.string_value = name
    return request


def test_text_is_read_as_the_json_path_reads_it():
    # One U+FFFD for a lone surrogate (JSON's "\ud83d" is stored so), the character itself
    # for a pair written in UTF-8's form, one for any other byte that is not UTF-8.
    for raw, expected in ((CUT, "\ufffd"), (b"\xed\xa0\xbd\xed\xb8\x80", "\U0001f600"), (b"\xff", "\ufffd")):
        placeholder = "@" * len(raw)
        body = request_with(f"a{placeholder}b").SerializeToString().replace(placeholder.encode(), raw)
        records, rejected, _ = wire.decode(body, wire.PROTOBUF)
        assert (rejected, records[0].name) == (0, f"a{expected}b")
    # each sequence on its own, also beside another (a fallback replaced every byte then)
    assert otlp_text.text_of(CUT + b"\xff").decode() == "\ufffd\ufffd"
    assert otlp_text.text_of(b"\xed\xa0\xbd\xed\xb8\x80\xc3").decode() == "\U0001f600\ufffd"


@pytest.mark.parametrize("nesting", [1, 47, 48, 49, 60, 97])
def test_bad_text_deep_in_an_attribute_costs_at_most_its_span(nesting):
    # The walk counted depth from the request, protobuf from each attribute: text 48-49 arrays
    # deep was never repaired and the whole export was refused.
    body = request_with("x@@@", nesting=nesting).SerializeToString().replace(b"@@@", CUT)
    records, rejected, _ = wire.decode(body, wire.PROTOBUF)
    assert len(records) + rejected == 3 and len(records) >= 2
    if records[0].span_id == "0000000000000001":
        assert records[0].name == "x\ufffd"


def test_a_body_refused_for_another_reason_is_not_walked(monkeypatch):
    # Every refused body was walked in Python first: 10M tiny fields and a cut byte took 3.3 s
    # to answer 400 (7.4 s over HTTP with gzip), against 0.01 s for the C parser alone.
    walked = []
    monkeypatch.setattr(wire, "text_repaired", lambda body, descriptor: walked.append(body))
    for body in (b"\x08\x01" * 1000 + b"\x0a\x05ab", b"\x0a\xff\xff\xff"):  # cut short; not protobuf
        with pytest.raises(wire.BadRequest):
            wire.decode(body, wire.PROTOBUF)
    assert walked == []
    bad_text = request_with("x@@@").SerializeToString().replace(b"@@@", CUT)
    with pytest.raises(wire.BadRequest, match="UTF-8"):  # the recorder repairs nothing
        wire.decode(bad_text, wire.PROTOBUF)
    assert walked == [bad_text]


def test_the_walk_is_bounded(monkeypatch):
    # Bad text among a huge number of fields: given up past MAX_WORK, refused as before. A
    # message weighs more than a field (a call, two buffers, a copy of its bytes): a million
    # empty resource spans took 1.9 s within a budget of fields alone.
    monkeypatch.setattr(otlp_text, "WORK_A_BYTE", 0)  # MAX_WORK alone (a small body's)
    body = request_with("x@@@", spans=50).SerializeToString().replace(b"@@@", CUT)
    assert otlp_text.text_repaired(body, DESCRIPTOR) is not None
    monkeypatch.setattr(otlp_text, "MAX_WORK", 40)
    assert otlp_text.text_repaired(body, DESCRIPTOR) is None
    with pytest.raises(wire.BadRequest, match="UTF-8"):
        wire.decode(body, wire.PROTOBUF)
    monkeypatch.setattr(otlp_text, "MAX_WORK", 100_000)
    empties = body + b"\x0a\x00" * 30_000  # 30,000 empty resource spans: 150,000 of work
    assert otlp_text.text_repaired(empties, DESCRIPTOR) is None
    assert otlp_text.text_repaired(body + b"\x0a\x00" * 10_000, DESCRIPTOR) is not None


def test_a_string_to_repair_weighs_its_length(monkeypatch):
    # Weighed 1 however long: 20 MiB of 0xFF in one name took 4.5 s (a Python call of the
    # error handler a byte) before its 400. Now 10 and its length / 8, before it is read.
    monkeypatch.setattr(otlp_text, "WORK_A_BYTE", 0)  # MAX_WORK alone (a small body's)
    size = 10_000
    body = request_with("@" * size).SerializeToString().replace(b"@" * size, b"\xff" * size)
    monkeypatch.setattr(otlp_text, "MAX_WORK", 1_250)
    assert otlp_text.text_repaired(body, DESCRIPTOR) is None  # the name alone: 10 + 1,250
    monkeypatch.setattr(otlp_text, "MAX_WORK", 1_600)  # and the messages around it, ~150
    assert otlp_text.text_repaired(body, DESCRIPTOR) is not None


def test_the_budget_grows_with_the_body():
    """One bad string in a Collector's batch of 8,192 spans (its batch processor's default):
    past MAX_WORK, the whole batch was refused with a 400 no client retries (a review). The
    budget is half the body's bytes when larger, which such a body stays within; a body
    of nothing but empty messages (2.5 a byte) is still given up."""
    request = request_with("x@@@", spans=8192)
    for span in request.resource_spans[0].scope_spans[0].spans:
        for i in range(24):  # an OpenLLMetry span with content off: ~1 KB (a first cap refused it)
            kv = span.attributes.add()
            kv.key, kv.value.string_value = f"gen_ai.attribute.number_{i}", "a value of some thirty bytes"
    body = request.SerializeToString().replace(b"@@@", CUT)
    assert len(body) > 8 << 20 and len(body) * otlp_text.WORK_A_BYTE > otlp_text.MAX_WORK
    records, rejected, _ = wire.decode(body, wire.PROTOBUF)
    assert (len(records), rejected, records[0].name) == (8192, 0, "x\ufffd")
    empties = body + b"\x0a\x00" * 1_000_000
    assert otlp_text.text_repaired(empties, DESCRIPTOR) is None


def test_nested_groups_are_walked_without_recursion():
    # 2,000 nested unknown groups after bad text: the walk's recursion ran out, and the
    # RecursionError was a 503 that exporters retry for ever. Walked in a loop now: nested
    # past protobuf's own limit, the body is refused (a 400) as protobuf refuses it.
    body = request_with("x@@@").SerializeToString().replace(b"@@@", CUT)
    assert otlp_text.text_repaired(body + b"\x7b" * 2000 + b"\x7c" * 2000, DESCRIPTOR) is not None
    with pytest.raises(wire.BadRequest, match="UTF-8"):
        wire.decode(body + b"\x7b" * 2000 + b"\x7c" * 2000, wire.PROTOBUF)
    assert otlp_text.text_repaired(body + b"\x7b" * 2000 + b"\x7c" * 1999, DESCRIPTOR) is None  # unbalanced
    records, rejected, _ = wire.decode(body + b"\x7b" * 3 + b"\x7c" * 3, wire.PROTOBUF)
    assert (len(records), rejected, records[0].name) == (3, 0, "x\ufffd")


def test_a_repair_that_would_grow_the_body_too_much_is_refused():
    # Each invalid byte is a 3-byte U+FFFD: 20 MiB of 0xFF in a name was accepted as 63 MB
    # of text, past the receiver's body cap. Growth past MAX_GROWTH is refused as before;
    # one span's 40 KB of text in a legacy 8-bit encoding is not.
    size = 2_200_000
    body = request_with("@" * size).SerializeToString().replace(b"@" * size, b"\xff" * size)
    assert otlp_text.text_repaired(body, DESCRIPTOR) is None
    with pytest.raises(wire.BadRequest, match="UTF-8"):
        wire.decode(body, wire.PROTOBUF)
    legacy = "Καλημέρα κόσμε ".encode("cp1253") * 2700
    body = request_with("@" * len(legacy), spans=100).SerializeToString().replace(b"@" * len(legacy), legacy)
    records, rejected, _ = wire.decode(body, wire.PROTOBUF)
    assert (len(records), rejected) == (100, 0) and records[0].name.count("\ufffd") > 30_000


def test_an_unknown_group_field_is_skipped_as_protobuf_skips_it():
    body = request_with("x@@@").SerializeToString().replace(b"@@@", CUT)
    grouped = body + b"\x7b\x08\x01\x7c"  # field 15: start group, a varint inside, end group
    records, rejected, _ = wire.decode(grouped, wire.PROTOBUF)
    assert (len(records), rejected, records[0].name) == (3, 0, "x\ufffd")
    assert otlp_text.text_repaired(body + b"\x7b\x08\x01", DESCRIPTOR) is None  # no end: not protobuf


PURE_PYTHON = r"""
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_costattr.server import otlp_wire as wire
request = ExportTraceServiceRequest()
span = request.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\1" * 16, span_id=b"\2" * 8)
kv = span.attributes.add()
kv.key, kv.value.string_value = "note", "x@@@"
body = request.SerializeToString().replace(b"@@@", b"\xed\xa0\xbd")
records, rejected, _ = wire.decode(body, wire.PROTOBUF)
print(rejected, records[0].attributes == {"note": "x\ufffd"})
"""


def test_protobufs_pure_python_parser_is_repaired_too():
    # It raises UnicodeDecodeError, not DecodeError, for an attribute's text: the span was
    # rejected ("unreadable") instead of read with U+FFFD.
    import os
    import subprocess
    import sys

    env = dict(os.environ, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    done = subprocess.run(
        [sys.executable, "-c", PURE_PYTHON], capture_output=True, text=True, env=env, timeout=99
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "True"]


def test_an_exporters_batch_of_cut_prompts_is_repaired():
    # 512 spans, each with a 4 KB prompt cut inside an emoji (as a JavaScript slice cuts
    # one): a walk of 0.03 s, refused when every string to repair was weighed as if each of
    # its bytes needed the Python error handler.
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(512):
        span = spans.add(trace_id=bytes([9] * 16), span_id=(i + 1).to_bytes(8, "big"), name="chat")
        for key in ("gen_ai.operation.name", "gen_ai.request.model", "gen_ai.provider.name"):
            span.attributes.add(key=key).value.string_value = "x"
        span.attributes.add(key="gen_ai.prompt").value.string_value = "p" * 4093 + "@@@"
    body = request.SerializeToString().replace(b"@@@", CUT)
    records, rejected, _ = wire.decode(body, wire.PROTOBUF)
    assert (len(records), rejected) == (512, 0)
    assert records[-1].attributes["gen_ai.prompt"] == "p" * 4093 + "\ufffd"


def test_bytes_decoded_in_python_keep_the_fixed_budget():
    """The budget grown with the body is the walk's: bytes that are not surrogates are
    decoded a Python call a sequence (~0.45 us a byte), within MAX_WORK whatever the body.
    Grown alike, one 20 MiB string of 0xFF (a 19 KiB gzip request) took 9 s of CPU before its
    400 (a review); such a body is given up before decoding it, as before."""
    size = 8 * otlp_text.MAX_WORK + 8_000  # past the slow decoding's budget, within the walk's
    assert 2 * size < otlp_text.MAX_GROWTH  # repaired, it would be within the growth bound
    body = request_with("@" * size).SerializeToString().replace(b"@" * size, b"\xff" * size)
    assert len(body) * otlp_text.WORK_A_BYTE > size // 8  # the walk's budget alone would take it
    assert otlp_text.text_repaired(body, DESCRIPTOR) is None  # refused on its weight, undecoded
    smaller = request_with("@" * 1000).SerializeToString().replace(b"@" * 1000, b"\xff" * 1000)
    assert otlp_text.text_repaired(smaller, DESCRIPTOR) is not None


def test_the_walk_grows_with_the_body_only_so_far(monkeypatch):
    """Grown without bound, 10M two-byte fields of padding (20 KiB gzipped) were walked for
    6-8 s of CPU before the 400 (a review). The walk stops at MAX_WALK whatever the body."""
    body = request_with("x@@@", spans=50).SerializeToString().replace(b"@@@", CUT)
    padded = body + b"\x78\x01" * 20_000  # unknown varint fields: one unit each
    assert otlp_text.text_repaired(padded, DESCRIPTOR) is not None
    monkeypatch.setattr(otlp_text, "MAX_WALK", 10_000)
    assert len(padded) * otlp_text.WORK_A_BYTE > otlp_text.MAX_WALK
    assert otlp_text.text_repaired(padded, DESCRIPTOR) is None
