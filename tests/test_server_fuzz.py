"""Bad input never crashes the receiver or poisons a batch: malformed protobuf and JSON,
truncated gzip, huge values, 10k-span requests. Every answer is a 200, 400, 413 or 415, and
the server stays healthy."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from serverutil import serving
from test_server_otlp import CALL, JS, PB, json_request, span_json

ANSWERS = {200, 400, 413, 415}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def big_request(n: int, value_bytes: int = 0) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "fuzz"
    spans = rs.scope_spans.add().spans
    for i in range(n):
        span = spans.add()
        span.trace_id, span.span_id = (i // 100 + 1).to_bytes(16, "big"), (i + 1).to_bytes(8, "big")
        span.name, span.start_time_unix_nano, span.end_time_unix_nano = (
            "chat",
            1767225600 * 10**9,
            1767225601 * 10**9,
        )
        for key, value in CALL.items():
            a = span.attributes.add()
            a.key = key
            if isinstance(value, int):
                a.value.int_value = value
            else:
                a.value.string_value = value
        if value_bytes:
            a = span.attributes.add()
            a.key, a.value.string_value = "huge", "x" * value_bytes
    return request


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import TEST_PRICES

    from otel_costattr.pricing.table import load_pricing

    table = load_pricing([TEST_PRICES], bundled=False, use_env=False)
    with serving(tmp_path_factory.mktemp("fuzz") / "s.duckdb", table=table, max_body_bytes=4 * 2**20) as s:
        yield s


def healthy(srv) -> None:
    assert srv.get_json("/healthz")["status"] == "ok"


VALID = big_request(3).SerializeToString()


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_as_protobuf(srv, body):
    assert srv.request("POST", "/v1/traces", body, PB)[0] in ANSWERS


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255))
def test_corrupted_protobuf(srv, at, byte):
    body = VALID[:at] + bytes([byte]) + VALID[at + 1 :]
    assert srv.request("POST", "/v1/traces", body, PB)[0] in ANSWERS


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
                        ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "attributes", "key",
                         "value", "stringValue", "intValue", "kind", "status", "x"]), c, max_size=4),
                    max_leaves=30))  # fmt: skip
def test_json_shapes(srv, data):
    body = json.dumps(data).encode()
    assert srv.request("POST", "/v1/traces", body, JS)[0] in ANSWERS


@FUZZ
@given(st.integers(1, 200))
def test_truncated_gzip(srv, cut):
    packed = gzip.compress(VALID)
    status, _, _ = srv.request(
        "POST", "/v1/traces", packed[: max(len(packed) - cut, 0)], {**PB, "Content-Encoding": "gzip"}
    )
    assert status == 400


def test_deep_json_and_junk_are_400(srv):
    assert srv.request("POST", "/v1/traces", b"[" * 100_000 + b"]" * 100_000, JS)[0] == 400
    assert srv.request("POST", "/v1/traces", b'{"resourceSpans": 5}', JS)[0] == 400
    assert srv.request("POST", "/v1/traces", b"\xff\xfe", JS)[0] == 400
    healthy(srv)


def test_10k_spans_and_huge_values_are_stored(srv):
    before = srv.sink.stored_spans
    body = big_request(10_000).SerializeToString()
    assert srv.request("POST", "/v1/traces", body, PB)[0] == 200
    status, _, _ = srv.request(
        "POST", "/v1/traces", big_request(1, value_bytes=3_000_000).SerializeToString(), PB
    )
    assert status == 200
    assert (
        srv.request("POST", "/v1/traces", big_request(1, value_bytes=5 * 2**20).SerializeToString(), PB)[0]
        == 413
    )
    assert srv.sink.stored_spans - before == 10_001
    # a bad span among good ones costs only itself
    good_and_bad = json_request([span_json("1212121212121212"), span_json("12")])
    status, _, answer = srv.request("POST", "/v1/traces", good_and_bad, JS)
    assert status == 200 and json.loads(answer)["partialSuccess"]["rejectedSpans"] == 1
    srv.wait_ingested(60)
    healthy(srv)


def test_concurrent_clients_all_stored(srv):
    from concurrent.futures import ThreadPoolExecutor

    before = srv.sink.stored_spans

    def send(n: int) -> int:
        spans = [span_json(f"{n + 1:08x}{i + 1:08x}", traceId=f"{n + 1:08x}" + "e" * 24) for i in range(20)]
        return srv.request("POST", "/v1/traces", json_request(spans), JS)[0]

    with ThreadPoolExecutor(24) as pool:
        assert set(pool.map(send, range(60))) == {200}
    assert srv.sink.stored_spans - before == 1200
    srv.wait_ingested(60)
    healthy(srv)
