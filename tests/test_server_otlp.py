"""The OTLP/HTTP receiver of `otel-costattr serve`, to the letter of the spec, with real clients.

A real uvicorn server on loopback (tests/serverutil.py), the OpenTelemetry Python OTLP/HTTP
exporter as the client, a real DuckDB file behind it.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from decimal import Decimal

import duckdb
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from serverutil import serving

from otel_costattr.server import SpanSink
from otel_costattr.server import otlp_wire as wire

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"
CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 500,
}
# acme-large since 2026-06-01: $2 in, $10 out a million: 1000 x 2 + 500 x 10 = 7000 micro-dollars
CALL_USD = Decimal("0.007")


def send_agent_run(endpoint: str, headers: dict | None = None, service: str = "py-agent") -> OTLPSpanExporter:
    exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces", headers=headers)
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.agent.name": "planner"}):
        for i in range(2):
            with tracer.start_as_current_span(f"chat acme-large {i}", attributes=CALL):
                pass
    provider.shutdown()
    return exporter


def json_request(spans: list[dict]) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]},
                    "scopeSpans": [{"scope": {"name": "hand"}, "spans": spans}],
                    "someFutureField": {"x": 1},
                }
            ]
        }
    ).encode()


def span_json(span_id: str, **extra) -> dict:
    attrs = [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
             for k, v in CALL.items()]  # fmt: skip
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "name": "chat acme-large",
        "kind": 3,
        "startTimeUnixNano": "1767225600000000000",  # 2026-01-01, a string as OTLP JSON allows
        "endTimeUnixNano": 1767225601000000000,
        "attributes": attrs,
        "status": {"code": 1},
        "unknownThing": [1, 2],
        **extra,
    }


def test_python_exporter_spans_are_priced_and_stored(tmp_path, table):
    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        send_agent_run(srv.url)
        srv.wait_ingested()
        stats = srv.get_json("/api/v1/stats?days=1")
    assert (stats["runs"], stats["calls"]) == (1, 2)
    assert Decimal(stats["usd_exact"]) == 2 * CALL_USD
    assert stats["usd"] == pytest.approx(0.014)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT name, service_name, cost_usd, agent_name FROM calls ORDER BY name"
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("chat acme-large 0", "py-agent", CALL_USD, "planner"),
        ("chat acme-large 1", "py-agent", CALL_USD, "planner"),
    ]


def test_json_with_hex_ids_string_ints_and_unknown_fields(tmp_path, table):
    db = tmp_path / "s.duckdb"
    parent = "1111111111111111"
    body = json_request([span_json("2222222222222222", parentSpanId=parent), span_json(parent, kind=1)])
    with serving(db, table=table) as srv:
        status, headers, answer = srv.request("POST", "/v1/traces", body, JS)
        assert (status, headers["content-type"], json.loads(answer)) == (200, "application/json", {})
        srv.wait_ingested()
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT span_id, parent_span_id, kind, status_code, start_time, cost_usd, service_name"
            " FROM spans WHERE trace_id = ? ORDER BY span_id",
            [TRACE],
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3], str(r[4]), r[6]) for r in rows] == [
        (parent, None, "INTERNAL", "OK", "2026-01-01 00:00:00", "js"),
        ("2222222222222222", parent, "CLIENT", "OK", "2026-01-01 00:00:00", "js"),
    ]
    # before 2026-06-01 acme-large was $3 / $15: 1000 x 3 + 500 x 15 = 10500 micro-dollars
    assert rows[1][5] == Decimal("0.0105")


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "deflate-raw"])
def test_compressed_bodies(tmp_path, table, encoding):
    body = json_request([span_json("3333333333333333")])
    if encoding in ("gzip", "x-gzip"):  # RFC 9110: x-gzip is gzip (it was a 415)
        packed = gzip.compress(body)
    elif encoding == "deflate":
        packed = zlib.compress(body)
    else:
        c = zlib.compressobj(wbits=-15)
        packed, encoding = c.compress(body) + c.flush(), "deflate"
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", packed, {**JS, "Content-Encoding": encoding})
        assert (status, answer) == (200, b"{}")
        assert srv.sink.stored_spans == 1


def test_errors_carry_a_status_in_the_request_content_type(tmp_path, table):
    good = ExportTraceServiceRequest().SerializeToString()
    with serving(tmp_path / "s.duckdb", table=table, max_body_bytes=10_000) as srv:
        # an empty request is a success
        status, headers, answer = srv.request("POST", "/v1/traces", good, PB)
        assert (status, headers["content-type"], answer) == (200, "application/x-protobuf", b"")
        # undecodable protobuf: 400 with a google.rpc.Status in protobuf
        status, headers, answer = srv.request("POST", "/v1/traces", b"\x0a\xff\xff\xff", PB)
        assert (status, headers["content-type"]) == (400, "application/x-protobuf")
        assert (
            Status.FromString(answer).code == 3
            and "ExportTraceServiceRequest" in Status.FromString(answer).message
        )
        # broken JSON: the Status in JSON
        status, headers, answer = srv.request("POST", "/v1/traces", b"{not json", JS)
        assert (status, headers["content-type"], json.loads(answer)["code"]) == (400, "application/json", 3)
        # truncated gzip: 400, not a hang or a 500
        status, _, answer = srv.request(
            "POST", "/v1/traces", gzip.compress(b"x" * 5000)[:-9], {**PB, "Content-Encoding": "gzip"}
        )
        assert status == 400 and "truncated" in Status.FromString(answer).message
        # a small gzip that inflates past the cap: 413
        bomb = gzip.compress(b"\0" * 50_000)
        assert len(bomb) < 10_000
        status, _, answer = srv.request("POST", "/v1/traces", bomb, {**PB, "Content-Encoding": "gzip"})
        assert status == 413 and "limit" in Status.FromString(answer).message
        # a plain body over the cap: 413
        assert srv.request("POST", "/v1/traces", b"{" * 10_001, JS)[0] == 413
        # unknown type or encoding: 415
        assert srv.request("POST", "/v1/traces", good, {"Content-Type": "text/plain"})[0] == 415
        assert srv.request("POST", "/v1/traces", good, {**PB, "Content-Encoding": "br"})[0] == 415
        assert srv.sink.stored_spans == 0


def test_bad_spans_are_reported_through_partial_success(tmp_path, table):
    spans = [span_json("4444444444444444"), span_json("nothex!!"), span_json("0000000000000000"),
             span_json("5555555555555555", traceId="abc")]  # fmt: skip
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", json_request(spans), JS)
        partial = json.loads(answer)["partialSuccess"]
        assert status == 200 and partial["rejectedSpans"] == 3
        assert "span_id is not 8 bytes" in partial["errorMessage"]
        assert "trace_id" in partial["errorMessage"]
        # the same in protobuf
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = bytes(16), b"\1" * 8, "zero trace"
        status, _, answer = srv.request("POST", "/v1/traces", request.SerializeToString(), PB)
        assert status == 200
        assert ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans == 1
        assert (srv.sink.stored_spans, srv.sink.rejected_spans) == (1, 4)


def test_backpressure_is_503_with_retry_after_and_keeps_nothing(tmp_path, table):
    with serving(
        tmp_path / "s.duckdb", table=table, sink_options={"max_spool_bytes": 0, "retry_after": 7}
    ) as srv:
        status, headers, answer = srv.request(
            "POST", "/v1/traces", json_request([span_json("6666666666666666")]), JS
        )
        assert (status, headers["retry-after"], json.loads(answer)["code"]) == (503, "7", 14)
        assert (srv.sink.stored_spans, srv.sink.pushed_back) == (0, 1)
        # A request with no span keeps nothing: a success, full or not (it was a 503 too).
        for empty in (b"{}", json_request([]), b"", b" \n"):  # an empty body as protobuf's (a review: 400)
            assert srv.request("POST", "/v1/traces", empty, JS)[:3:2] == (200, b"{}")
        assert srv.sink.pushed_back == 1
        exporter = OTLPSpanExporter(endpoint=srv.url + "/v1/traces", timeout=2)
        # the real exporter sees a retryable answer (it retries, then gives up within its timeout)
        provider = TracerProvider(shutdown_on_exit=False)
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        with provider.get_tracer("t").start_as_current_span("x"):
            pass
        assert exporter.export(memory.get_finished_spans()) == SpanExportResult.FAILURE
        assert srv.sink.pushed_back >= 2  # it tried again


def test_token_is_required_everywhere_when_set(tmp_path, table):
    auth = {"Authorization": "Bearer s3cret"}
    with serving(tmp_path / "s.duckdb", table=table, token="s3cret") as srv:
        body = json_request([span_json("7777777777777777")])
        status, headers, answer = srv.request("POST", "/v1/traces", body, JS)
        assert (status, headers["www-authenticate"], json.loads(answer)["code"]) == (401, "Bearer", 16)
        for path in ("/api/v1/stats", "/api/v1/runs", "/healthz", "/docs", "/openapi.json"):
            assert srv.request("GET", path)[0] == 401, path
            assert srv.request("GET", path, headers={"Authorization": "Bearer s3cre"})[0] == 401, path
            assert srv.request("GET", path, headers=auth)[0] == 200, path
        assert srv.request("POST", "/v1/traces", body, {**JS, "Authorization": "s3cret"})[0] == 401
        assert srv.request("POST", "/v1/traces", body, {**JS, **auth})[0] == 200
        exporter = send_agent_run(srv.url, headers=auth)
        del exporter
        assert srv.sink.stored_spans == 4


@pytest.mark.parametrize(("workers", "generic"), [(0, False), (1, False), (0, True)])
def test_a_lone_surrogate_in_json_is_stored_as_a_replacement(tmp_path, workers, generic):
    """OTLP/JSON may spell a lone surrogate ("\\ud800": valid JSON, not UTF-8): it was a 503
    at every retry, the good spans of the request never stored. Now U+FFFD, every span kept."""
    db = tmp_path / "s.duckdb"
    spans = [span_json(f"{i + 1:016x}") for i in range(3)]
    spans[0]["name"] = "bad \ud800"
    spans[1]["attributes"].append({"key": "user.id\udcff", "value": {"stringValue": "u\udc80"}})
    if generic:  # a field spelled in snake_case: protobuf's own JSON parser reads the body
        spans[2]["dropped_attributes_count"] = 1
    body = json_request(spans)
    assert b"\\ud800" in body
    with serving(db, sink=SpanSink(db, ingest_interval=0.1, workers=workers)) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", body, JS)
        assert (status, json.loads(answer)) == (200, {})
        srv.wait_ingested()
        assert srv.get_json("/healthz")["stored_spans"] == 3
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT name FROM spans ORDER BY span_id").fetchall()]
        (attributes,) = con.execute(
            "SELECT attributes FROM spans WHERE span_id = '0000000000000002'"
        ).fetchone()
    assert names == ["bad \ufffd", "chat acme-large", "chat acme-large"]
    assert json.loads(attributes)["user.id\ufffd"] == "u\ufffd"


def test_a_span_that_ends_before_it_starts_has_no_duration(tmp_path, table):
    """A skewed clock or a hostile client sent end < start: the span is kept (its cost counts)
    with no duration, so averages and latency alerts never go below zero."""
    db = tmp_path / "s.duckdb"
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i, (start, end) in enumerate([(2_000_000_000, 1_000_000_000), (1_000_000_000, 3_000_000_000)]):
        spans.add(
            trace_id=b"\1" * 16, span_id=bytes(7) + bytes([i + 1]), name=f"s{i}",
            start_time_unix_nano=start, end_time_unix_nano=end,
        )  # fmt: skip
    with serving(db, table=table) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", request.SerializeToString(), PB)
        assert status == 200 and not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
        srv.wait_ingested()
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT name, duration_ms FROM spans ORDER BY name").fetchall()
    assert rows == [("s0", None), ("s1", 2000.0)]


def _pb_request(*span_ids: str) -> bytes:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for sid in span_ids:
        span = spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(sid), name="x")
        span.start_time_unix_nano, span.end_time_unix_nano = 1767225600000000000, 1767225601000000000
    return req.SerializeToString()


def test_every_member_of_a_gzip_body_is_read(tmp_path, table):
    # gzip(a) + gzip(b) is one gzip body (RFC 1952; Go's and Python's readers read both): it
    # was answered 200 with b's spans silently lost. Trailing bytes that are no member: 400.
    first = json_request([span_json("4444444444444441")])
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        body = gzip.compress(_pb_request("4444444444444441")) + gzip.compress(
            _pb_request("4444444444444442", "4444444444444443")
        )
        status, _, answer = srv.request("POST", "/v1/traces", body, {**PB, "Content-Encoding": "gzip"})
        assert (status, answer) == (200, b"")
        assert srv.sink.stored_spans == 3
        junk = gzip.compress(first) + b"\x1f\x8b not gzip"
        status, _, answer = srv.request("POST", "/v1/traces", junk, {**JS, "Content-Encoding": "gzip"})
        assert status == 400 and json.loads(answer)["code"] == 3
        padded = gzip.compress(first) + b"\0" * 16  # a gzip file's zero padding is allowed
        assert srv.request("POST", "/v1/traces", padded, {**JS, "Content-Encoding": "gzip"})[0] == 200
        tail = zlib.compress(first) + b"more"
        assert srv.request("POST", "/v1/traces", tail, {**JS, "Content-Encoding": "deflate"})[0] == 400
        assert srv.sink.stored_spans == 4
        # many members: time in proportion to the body (a megabyte of empty members took
        # seconds, copying the rest at each), and more than MAX_MEMBERS refused
        status, _, answer = srv.request(
            "POST", "/v1/traces", gzip.compress(b"") * 1001, {**PB, "Content-Encoding": "gzip"}
        )
        assert status == 400 and b"members" in answer
        srv.wait_ingested()
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (3,)  # the padded one again


@pytest.mark.parametrize("where", ["attribute", "time"])
def test_an_integer_with_two_signs_is_a_bad_request_not_a_retry(tmp_path, table, where):
    # "--5" passed the integer check and raised in int(): answered 503, retried for ever,
    # counted nowhere.
    extra = (
        {"attributes": [{"key": "n", "value": {"intValue": "--5"}}]}
        if where == "attribute"
        else {"startTimeUnixNano": "--1767225600000000000"}
    )
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, _, answer = srv.request(
            "POST", "/v1/traces", json_request([span_json("5555555555555555", **extra)]), JS
        )
        assert status == 400 and json.loads(answer)["code"] == 3, answer
        assert srv.get_json("/healthz")["pushed_back_requests"] == 0


def _bodies_begun(url: str, n: int) -> list:
    """``n`` connections to the server at ``url``, each having sent an export's head and the
    first byte of its 100,000-byte body, and nothing more."""
    import socket

    head = (
        b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    connections = [socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) for _ in range(n)]
    for connection in connections:
        connection.sendall(head)
    return connections


def test_clients_that_stop_sending_hold_no_slot_and_get_408(tmp_path, table, monkeypatch, caplog):
    # Eight connections that sent one byte of a 100,000-byte body held the eight read slots
    # for good: every other export waited for ever. Bodies are now read in slots of their
    # own, a client silent too long gets 408, and one gone mid-body is counted, not a traceback.
    import time

    from otel_costattr.server import app as app_module

    monkeypatch.setattr(app_module, "_IDLE_SECONDS", 1.0)
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        stalled = _bodies_begun(srv.url, 9)
        time.sleep(0.2)
        status, _, _ = srv.request("POST", "/v1/traces", json_request([span_json("6666666666666666")]), JS)
        assert status == 200  # while the nine wait
        for s in stalled[:8]:
            s.settimeout(30)
            assert s.recv(4096).split(b"\r\n", 1)[0] == b"HTTP/1.1 408 Request Timeout"
            s.close()
        stalled[8].close()  # gone mid-body
        deadline = time.monotonic() + 20
        while srv.get_json("/healthz")["incomplete_requests"] < 9:
            assert time.monotonic() < deadline, srv.get_json("/healthz")
            time.sleep(0.05)
        assert srv.sink.stored_spans == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_request_waiting_for_a_read_slot_is_told_to_retry(tmp_path, table, monkeypatch):
    """Clients sending their bodies slowly held every read slot (up to 60 s each), and a
    request waiting behind them had no answer until its exporter's timeout dropped the
    batch (a review: 32 slow connections, a real OTLPSpanExporter's export lost). It is now
    answered 503 with Retry-After after a short wait (retried), counted as pushed back."""
    import time

    from otel_costattr.server import app as app_module

    monkeypatch.setattr(app_module, "_SLOT_WAIT_SECONDS", 0.5)
    with serving(tmp_path / "s.duckdb", table=table, max_inflight=1) as srv:  # 4 read slots
        slow = _bodies_begun(srv.url, 4)
        time.sleep(0.3)
        began = time.monotonic()
        status, headers, answer = srv.request(
            "POST", "/v1/traces", json_request([span_json("7777777777777777")]), JS
        )
        assert (status, json.loads(answer)["code"]) == (503, 14), answer
        retry_after = {k.lower(): v for k, v in headers.items()}["retry-after"]
        assert int(retry_after) >= 1 and time.monotonic() - began < 10
        assert srv.get_json("/healthz")["pushed_back_requests"] == 1
        for s in slow:
            s.close()
        deadline = time.monotonic() + 20
        again = json_request([span_json("7777777777777777")])
        while srv.request("POST", "/v1/traces", again, JS)[0] != 200:
            assert time.monotonic() < deadline  # the slots are free again once they are gone
            time.sleep(0.1)
        assert srv.sink.stored_spans == 1


def test_bodies_read_and_waiting_for_decoding_stay_bounded(tmp_path, table, monkeypatch):
    # With the read slots released before decoding, every body was read and held while
    # decoding waited: 40 of 40 (memory without bound). Now at most 4 x max_inflight.
    import http.client
    import threading
    import time

    from otel_costattr.server import app as app_module

    held = []
    read = app_module._read_capped

    async def counted(request, cap):
        raw = await read(request, cap)
        held.append(len(raw))
        return raw

    monkeypatch.setattr(app_module, "_read_capped", counted)
    monkeypatch.setattr(app_module, "_SLOT_WAIT_SECONDS", 60.0)  # they wait, however slow the machine
    gate = threading.Event()
    sink = SpanSink(tmp_path / "s.duckdb", pricing=table, ingest_interval=0.1)
    receive = sink.receive
    monkeypatch.setattr(sink, "receive", lambda *a, **k: gate.wait(60) and receive(*a, **k))
    with serving(tmp_path / "s.duckdb", sink=sink, max_inflight=1) as srv:
        hostport = srv.url.split("//")[1]

        def post() -> None:
            c = http.client.HTTPConnection(hostport, timeout=120)
            c.request("POST", "/v1/traces", body=ExportTraceServiceRequest().SerializeToString(), headers=PB)
            c.getresponse().read()
            c.close()

        threads = [threading.Thread(target=post) for _ in range(12)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(held) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # room for more, had there been slots
        assert len(held) == 4
        gate.set()
        for t in threads:
            t.join(60)
        assert len(held) == 12


def test_a_span_with_an_attribute_too_deep_to_read_is_rejected_alone(tmp_path, table):
    # protobuf's parser stops 34 kvlists in (the Go Collector reads such messages): the
    # whole 100-span request was a 400, its 99 good spans lost and never retried.
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i in range(100):
        span = spans.add(trace_id=bytes.fromhex(TRACE), span_id=(i + 1).to_bytes(8, "big"), name="x")
        span.start_time_unix_nano, span.end_time_unix_nano = 1767225600000000000, 1767225601000000000
        if i == 50:
            value = span.attributes.add(key="deep").value
            for _ in range(40):
                value = value.kvlist_value.values.add(key="k").value
            value.string_value = "bottom"
    assert isinstance(value, AnyValue)
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", req.SerializeToString(), PB)
        assert status == 200
        response = ExportTraceServiceResponse.FromString(answer)
        assert response.partial_success.rejected_spans == 1
        assert "nested too deep" in response.partial_success.error_message
        assert srv.sink.stored_spans == 99
        # in a resource: that resource's spans alone (3), not the whole request
        req2 = ExportTraceServiceRequest()
        for r in range(2):
            resource_spans = req2.resource_spans.add()
            if r == 0:
                value = resource_spans.resource.attributes.add(key="deep").value
                for _ in range(40):
                    value = value.kvlist_value.values.add(key="k").value
            spans = resource_spans.scope_spans.add().spans
            for i in range(3):
                span = spans.add(
                    trace_id=bytes.fromhex(TRACE), span_id=(1000 + 10 * r + i).to_bytes(8, "big")
                )
                span.name, span.start_time_unix_nano = "x", 1767225600000000000
                span.end_time_unix_nano = 1767225601000000000
        status, _, answer = srv.request("POST", "/v1/traces", req2.SerializeToString(), PB)
        assert status == 200
        assert ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans == 3
        assert srv.sink.stored_spans == 102


T0 = 1767225600_000_000_000  # 2026-01-01T00:00:00Z


def test_text_that_is_not_utf8_costs_only_itself(tmp_path, table):
    # protobufjs (the JavaScript exporters' encoder) writes a lone surrogate, as a prompt cut
    # inside an emoji has, as ED A0 BD. protobuf's parser refuses the whole message for one
    # such string: 100 spans answered 400, none counted. Now the text is stored with U+FFFD,
    # as the JSON path stores it, and every span with it.
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(100):
        span = spans.add(trace_id=bytes([7] * 16), span_id=(i + 1).to_bytes(8, "big"), name=f"span {i:03d}")
        span.start_time_unix_nano, span.end_time_unix_nano = T0, T0 + 1000
    spans[3].name = "cut @@@ here"
    kv = spans[5].attributes.add()
    kv.key, kv.value.string_value = "note", "@@@"
    kv = spans[5].attributes.add()
    kv.key = "list"
    kv.value.array_value.values.add(string_value="x@@@")
    kv = spans[6].attributes.add()
    kv.key, kv.value.int_value = "k@@@", 1
    body = request.SerializeToString().replace(b"@@@", b"\xed\xa0\xbd")
    with pytest.raises(Exception, match="UTF-8"):
        ExportTraceServiceRequest.FromString(body)  # what protobuf thinks of it
    records, rejected, _ = wire.decode(body, wire.PROTOBUF)
    assert (len(records), rejected) == (100, 0)
    assert records[3].name == "cut \ufffd here"  # one for the lone surrogate, as over JSON
    assert records[5].attributes == {"note": "\ufffd", "list": ("x\ufffd",)}
    assert records[6].attributes == {"k\ufffd": 1}
    assert [r.name for r in records[:3]] == ["span 000", "span 001", "span 002"]
    # Not protobuf at all is refused as before, for its own reason.
    with pytest.raises(wire.BadRequest, match="ExportTraceServiceRequest"):
        wire.decode(body[:-7] + b"\xff\xff", wire.PROTOBUF)
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", body, PB)
        assert (status, answer) == (200, b"")
        srv.wait_ingested()
        assert srv.sink.stored_spans == 100


def test_a_whole_number_beyond_int64_costs_only_its_value_not_the_batch(tmp_path, table):
    """JavaScript's OTLP/JSON exporters send any whole number as an intValue (2**64, -1.5e300):
    protobuf's parser refused the whole request, a 400 the exporter does not retry, and every
    span of the batch was lost for one attribute. The value is kept as the double it is; a
    token count that large is an invalid usage, recorded, never a cost."""
    request = json.loads(json_request([span_json("6666666666666666"), span_json("6666666666666667")]))
    attributes = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    attributes += [
        {"key": "js.big", "value": {"intValue": 2**64}},
        {"key": "js.huge", "value": {"intValue": -1.5e300}},
    ]
    for kv in attributes:
        if kv["key"] == "gen_ai.usage.input_tokens":
            kv["value"] = {"intValue": 2**64}

    def stored(db):
        with serving(db, table=table) as srv:
            status, _, answer = srv.request("POST", "/v1/traces", json.dumps(request).encode(), JS)
            assert (status, json.loads(answer)) == (200, {}), answer
            srv.wait_ingested()
        return duckdb.connect(str(db), read_only=True)

    with stored(tmp_path / "s.duckdb") as con:
        rows = con.execute(
            "SELECT span_id, cost_status, cost_usd, json_extract(attributes, '$.\"js.big\"')::DOUBLE"
            " FROM spans ORDER BY span_id"
        ).fetchall()
    assert rows == [
        ("6666666666666666", "invalid_usage", None, float(2**64)),
        ("6666666666666667", "priced", Decimal("0.0105"), None),
    ]
    # A request that protobuf's parser reads (a bytesValue sends it there) keeps them too.
    attributes.append({"key": "js.blob", "value": {"bytesValue": "/wA="}})
    with stored(tmp_path / "g.duckdb") as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (2,)


def test_bytes_attributes_are_stored_as_base64(tmp_path, table):
    """A bytes value (OTLP bytesValue; the Python SDK takes bytes attributes) was stored as
    Python's repr, "b'\\\\xff\\\\x00'": now as its base64 text, as OTLP/JSON writes bytes, both
    through the receiver and through the in-process exporter."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_costattr import DuckDBSpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("x", attributes={"blob": b"\xff\x00", "n": 1}):
        pass
    spans = memory.get_finished_spans()
    received, exported = tmp_path / "r.duckdb", tmp_path / "e.duckdb"
    with serving(received, table=table) as srv:
        assert srv.request("POST", "/v1/traces", encode_spans(spans).SerializeToString(), PB)[0] == 200
        srv.wait_ingested()
    exporter = DuckDBSpanExporter(exported, pricing=table)
    exporter.export(spans)
    exporter.shutdown()
    for db in (received, exported):
        with duckdb.connect(str(db), read_only=True) as con:
            (blob,) = con.execute("SELECT json_extract_string(attributes, '$.blob') FROM spans").fetchone()
        assert blob == "/wA=", db


def test_other_methods_and_signals_are_answered_in_otlp(tmp_path, table):
    """A Status in the request's type, as every other OTLP answer (a review found FastAPI's
    JSON {"detail"} there): GET on /v1/traces is 405 with Allow: POST; the metrics and logs
    an application's exporter sends to the same endpoint are 404 saying traces only."""
    from google.rpc.status_pb2 import Status

    with serving(tmp_path / "s.duckdb", table=table) as srv:
        for method in ("GET", "PUT", "DELETE"):
            status, headers, answer = srv.request(method, "/v1/traces", b"", PB)
            assert (status, headers["allow"], headers["content-type"]) == (405, "POST", PB["Content-Type"])
            assert "POST" in Status.FromString(answer).message
        status, headers, answer = srv.request("POST", "/v1/metrics", b"", PB)
        assert (status, Status.FromString(answer).code) == (404, 5)
        assert "traces only" in Status.FromString(answer).message
        status, headers, answer = srv.request("POST", "/v1/logs", b"{}", JS)
        assert (status, headers["content-type"]) == (404, JS["Content-Type"])
        assert json.loads(answer)["code"] == 5
        assert srv.request("POST", "/v1/traces", json_request([]), JS)[0] == 200  # still there
