"""``serve --workers N``: bodies decoded, mapped and spooled in worker processes.

The same answers, counters and rows as the in-process path (``--workers 0``) for every kind
of body, good or bad, over HTTP and gRPC; a worker killed mid-request is a 503 / UNAVAILABLE,
counted, and replaced; a kill -9 of the server leaves no worker behind; a price table that is
not the server's keeps a worker from starting.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import signal
import threading
import time
from pathlib import Path

import duckdb
import grpc
import pytest
from conftest import TEST_PRICES
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serverutil import free_port, serving
from test_server_decode_fast import _bad_key_value_body
from test_server_otlp import CALL, JS, PB, json_request, span_json
from test_server_process import post, start

from otel_costattr.cli import main
from otel_costattr.cli.serve import default_workers
from otel_costattr.server import SpanSink
from otel_costattr.server.grpc_receiver import GrpcReceiver
from otel_costattr.server.mapping import PricingFiles
from otel_costattr.store.spool import spool_dir

FILES = PricingFiles((str(TEST_PRICES),), bundled=False, use_env=False)


def sink_for(db: Path, workers: int, **options) -> SpanSink:
    return SpanSink(db, pricing=FILES, workers=workers, ingest_interval=0.1, **options)


@functools.cache
def sdk_body() -> bytes:
    """Two model calls and their agent span, as the Python SDK's exporter encodes them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "py"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("invoke_agent a", attributes={"gen_ai.agent.name": "a"}):
        for i in range(2):
            with tracer.start_as_current_span(f"chat {i}", attributes={**CALL, "gen_ai.prompt": "secret"}):
                pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def http_cases() -> list[tuple[bytes, dict[str, str]]]:
    partial = [span_json("4444444444444444"), span_json("nothex!!"), span_json("0000000000000000")]
    return [
        (sdk_body(), PB),
        (json_request([span_json("1111111111111111"), span_json("2222222222222222", kind=1)]), JS),
        (json_request(partial), JS),  # partial_success
        (b"", PB),
        (b"\x0a\xff\xff\xff", PB),  # not protobuf
        (b"\x0a\x05ab", PB),  # truncated
        (_bad_key_value_body(), PB),  # a KeyValue that is not protobuf
        (b"{not json", JS),
        (b"[1, 2]", JS),
        (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 7}]}]}]}).encode(), JS),
        (gzip.compress(b"x" * 5000)[:-9], {**PB, "Content-Encoding": "gzip"}),  # truncated
        (gzip.compress(b"\0" * 50_000), {**PB, "Content-Encoding": "gzip"}),  # over the cap
        (b"{}", {"Content-Type": "text/plain"}),
        (gzip.compress(sdk_body()), {**PB, "Content-Encoding": "gzip"}),
    ]


def grpc_cases() -> list[bytes]:
    return [sdk_body(), b"", b"\x0a\xff\xff\xff", b"\x0a\x05ab", _bad_key_value_body()]


def answers(db: Path, workers: int) -> tuple[list, list, tuple, list]:
    """Every case's answer over HTTP and gRPC, the counters, and the rows stored."""
    port = free_port()
    sink = sink_for(db, workers)
    receiver = GrpcReceiver(sink, "127.0.0.1", port)
    with serving(db, sink=sink, services=[receiver], max_body_bytes=40_000) as srv:
        assert len(sink._pool.pids if workers else []) == workers
        http = []
        for body, headers in http_cases():
            status, got, answer = srv.request("POST", "/v1/traces", body, headers)
            http.append((status, got["content-type"], answer))
        rpc = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=lambda b: b,
                response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
            )
            for body in grpc_cases():
                try:
                    rpc.append(("OK", export(body, timeout=30).SerializeToString()))
                except grpc.RpcError as e:
                    rpc.append((e.code(), e.details()))
        srv.wait_ingested()
        health = srv.get_json("/healthz")
        counters = (health["stored_spans"], health["rejected_spans"], health["pushed_back_requests"])
        assert (health["mapping_workers"], health["lost_workers"]) == (workers, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT * FROM spans ORDER BY ALL").fetchall()
    return http, rpc, counters, rows


def test_workers_answer_and_store_exactly_as_the_request_threads(tmp_path):
    inline = answers(tmp_path / "inline.duckdb", 0)
    pooled = answers(tmp_path / "pooled.duckdb", 1)
    for case, (a, b) in enumerate(zip(inline[0], pooled[0], strict=True)):
        assert a == b, (case, a, b)
    assert inline[1] == pooled[1]
    assert inline[2] == pooled[2]
    assert inline[3] == pooled[3]
    # what the cases hold, so that agreeing cannot mean agreeing on nothing
    assert [a[0] for a in inline[0]] == [200, 200, 200, 200, 400, 400, 400, 400, 400, 200, 400, 413, 415, 200]
    assert [a[0] for a in inline[1]] == ["OK", "OK"] + [grpc.StatusCode.INVALID_ARGUMENT] * 3
    assert inline[2][0] == len(inline[3]) + 3 * 2  # the SDK's spans, stored once per body
    assert not any("secret" in str(row) for row in inline[3])  # capture off, in the workers too


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_killed_mid_request_is_503_counted_and_replaced(tmp_path):
    db = tmp_path / "s.duckdb"
    port = free_port()
    sink = sink_for(db, 1, retry_after=3)
    receiver = GrpcReceiver(sink, "127.0.0.1", port)
    with serving(db, sink=sink, services=[receiver]) as srv:

        def kill_during(send):
            (pid,) = sink._pool.pids
            os.kill(pid, signal.SIGSTOP)  # the body reaches a worker that cannot answer
            result = []
            sender = threading.Thread(target=lambda: result.append(send()))
            sender.start()
            wait_for(sink._pool._idle.empty)  # the request has the worker: its body is on the way
            os.kill(pid, signal.SIGKILL)
            sender.join(30)
            wait_for(lambda: sink._pool.live == 1 and pid not in sink._pool.pids)
            return result[0]

        body = json_request([span_json("1111111111111111")])
        status, headers, answer = kill_during(lambda: srv.request("POST", "/v1/traces", body, JS))
        assert (status, headers["retry-after"], json.loads(answer)["code"]) == (503, "3", 14)
        assert "died" in json.loads(answer)["message"]

        def export():
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = trace_service_pb2_grpc.TraceServiceStub(channel)
                try:
                    return stub.Export(ExportTraceServiceRequest.FromString(sdk_body()), timeout=30)
                except grpc.RpcError as e:
                    return e

        error = kill_during(export)
        assert error.code() == grpc.StatusCode.UNAVAILABLE and "retry in 3 s" in error.details()
        health = srv.get_json("/healthz")
        assert (health["lost_workers"], health["pushed_back_requests"], health["stored_spans"]) == (2, 2, 0)
        # the replacement takes the retries
        assert srv.request("POST", "/v1/traces", body, JS)[0] == 200
        assert isinstance(export(), trace_service_pb2.ExportTraceServiceResponse)
        srv.wait_ingested()
        assert srv.get_json("/healthz")["stored_spans"] == 4
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 4
    assert not list(spool_dir(db).glob(".*.tmp"))


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not reaped yet: its parent is dead, init reaps it) counts as gone
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("workers", [None, 0, 2])
def test_kill_9_of_serve_leaves_no_worker_behind(tmp_path, workers):
    db = tmp_path / "s.duckdb"
    port = free_port()
    proc = start(db, port, *(() if workers is None else ("--workers", str(workers))))
    try:
        assert post(port, json_request([span_json("1111111111111111")])) == 200
        workers_pids = children(proc.pid)
        assert len(workers_pids) == (default_workers() if workers is None else workers)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers_pids):
        assert time.monotonic() < deadline, "a worker outlived its server"
        time.sleep(0.1)


def test_a_price_table_changed_before_the_workers_start_stops_the_start(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text(TEST_PRICES.read_text())
    sink = SpanSink(
        tmp_path / "s.duckdb", pricing=PricingFiles((str(prices),), bundled=False, use_env=False), workers=1
    )
    prices.write_text(TEST_PRICES.read_text() + "\n# edited\n")
    with pytest.raises(ValueError, match="a mapping worker could not start: the price table changed since"):
        sink.start()
    sink.stop()


def test_a_table_object_cannot_be_handed_to_workers(tmp_path, table):
    with pytest.raises(ValueError, match="PricingFiles"):
        SpanSink(tmp_path / "s.duckdb", pricing=table, workers=1)


def test_a_bad_price_file_stops_serve_in_one_line_before_any_worker(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('provider = "acme"\n[[models]]\nid = 3\n')
    db = tmp_path / "s.duckdb"
    assert main(["serve", "--db", str(db), "--port", "0", "--grpc-port", "0", "--pricing", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {bad}") and err.count("\n") == 1, err


def test_the_default_workers_off_linux(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: `serve` without --workers counts the
    machine's cores instead of failing with an AttributeError at start."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert default_workers() == 4  # MAX_DEFAULT_WORKERS
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one core, no worker
    assert default_workers() == 0


def test_a_worker_that_never_answers_is_ended_and_the_request_503(tmp_path):
    """A request waited on its worker's answer with no bound: a hung worker (stopped here)
    held its request thread, and its client, for ever. Past the pool's bound it is ended,
    the request is a 503 the client retries, and a new worker takes its place."""
    db = tmp_path / "s.duckdb"
    sink = sink_for(db, 1, retry_after=3)
    sink._pool._answer = 2.0  # the bound, short for the test (120 s by default)
    with serving(db, sink=sink) as srv:
        (pid,) = sink._pool.pids
        os.kill(pid, signal.SIGSTOP)
        status, headers, answer = srv.request("POST", "/v1/traces", json_request([span_json("12" * 8)]), JS)
        assert (status, headers["retry-after"]) == (503, "3")
        assert "did not answer in 2 s" in json.loads(answer)["message"]
        wait_for(lambda: sink._pool.live == 1 and pid not in sink._pool.pids)
        # A body larger than the pipe's buffers blocked in the send itself, unbounded.
        (pid,) = sink._pool.pids
        os.kill(pid, signal.SIGSTOP)
        big = json_request([span_json(f"{i + 1:016x}") for i in range(3000)])
        assert len(big) > 1_000_000
        status, _, answer = srv.request("POST", "/v1/traces", big, JS)
        assert status == 503 and "did not answer in 2 s" in json.loads(answer)["message"]
        wait_for(lambda: sink._pool.live == 1 and pid not in sink._pool.pids)
        status, _, _ = srv.request("POST", "/v1/traces", json_request([span_json("12" * 8)]), JS)
        assert status == 200


def test_an_empty_request_is_a_success_when_the_spool_is_full(tmp_path):
    """A request with no span keeps nothing: the OTLP answer is success, full spool or not
    (the worker answered "full", a 503 the client retried)."""
    db = tmp_path / "s.duckdb"
    with serving(db, sink=sink_for(db, 1, max_spool_bytes=0)) as srv:
        for empty in (b"{}", json_request([])):
            status, _, answer = srv.request("POST", "/v1/traces", empty, JS)
            assert (status, answer) == (200, b"{}")
        status, _, _ = srv.request("POST", "/v1/traces", json_request([span_json("13" * 8)]), JS)
        assert status == 503
