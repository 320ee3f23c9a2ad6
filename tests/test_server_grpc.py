"""OTLP/gRPC on the same store, with the real OpenTelemetry Python gRPC span exporter."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from serverutil import free_port, serving
from test_server_otlp import CALL, CALL_USD

from otel_costattr.server import SpanSink, grpc_receiver
from otel_costattr.server.grpc_receiver import _SERVICE, GrpcReceiver


def test_grpc_exporter_spans_are_priced_partial_success_and_token(tmp_path, table):
    db = tmp_path / "s.duckdb"
    port = free_port()
    sink = SpanSink(db, pricing=table, ingest_interval=0.1)
    receiver = GrpcReceiver(sink, "127.0.0.1", port, token="tok")
    with serving(db, sink=sink, services=[receiver], token="tok") as srv:
        exporter = OTLPSpanExporter(
            endpoint=f"127.0.0.1:{port}", insecure=True, headers={"authorization": "Bearer tok"}
        )
        provider = TracerProvider(
            resource=Resource.create({"service.name": "grpc-agent"}), shutdown_on_exit=False
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("chat acme-large", attributes=CALL):
            pass
        provider.shutdown()
        srv.wait_ingested()
        stats = srv.get_json("/api/v1/stats?days=1", headers={"Authorization": "Bearer tok"})
        assert (stats["calls"], Decimal(stats["usd_exact"])) == (1, CALL_USD)

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            request = trace_service_pb2.ExportTraceServiceRequest()
            span = request.resource_spans.add().scope_spans.add().spans.add()
            span.trace_id, span.span_id = b"\1" * 16, b"\1" * 4  # a short span id: rejected
            try:
                stub.Export(request, timeout=10)
                raise AssertionError("no token: must be refused")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED
            for wrong in ("Bearer TOK", "Basic tok", "Bearer"):
                try:
                    stub.Export(request, timeout=10, metadata=[("authorization", wrong)])
                    raise AssertionError(f"{wrong!r}: must be refused")
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
            # the scheme in any case (RFC 9110), as over HTTP
            response = stub.Export(request, timeout=10, metadata=[("authorization", "bearer tok")])
            assert response.partial_success.rejected_spans == 1
            response = stub.Export(request, timeout=10, metadata=[("authorization", "Bearer tok")])
            assert response.partial_success.rejected_spans == 1
            assert "span_id" in response.partial_success.error_message


def test_grpc_backpressure_is_unavailable(tmp_path, table):
    port = free_port()
    sink = SpanSink(tmp_path / "s.duckdb", pricing=table, max_spool_bytes=0)
    receiver = GrpcReceiver(sink, "127.0.0.1", port)
    receiver.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            request = trace_service_pb2.ExportTraceServiceRequest()
            span = request.resource_spans.add().scope_spans.add().spans.add()
            span.trace_id, span.span_id = b"\1" * 16, b"\2" * 8
            try:
                stub.Export(request, timeout=10)
                raise AssertionError("a full spool must push back")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE and "retry in 5 s" in e.details()
        assert (sink.stored_spans, sink.pushed_back) == (0, 1)
    finally:
        receiver.stop()


def test_a_second_server_cannot_take_a_port_in_use(tmp_path):
    """grpcio sets SO_REUSEPORT by default, so a second `serve` on the same gRPC port started
    silently and the kernel split exports between two stores; now it fails to bind."""
    port = free_port()
    first = GrpcReceiver(SpanSink(tmp_path / "a.duckdb"), "127.0.0.1", port)
    first.start()
    try:
        try:
            GrpcReceiver(SpanSink(tmp_path / "b.duckdb"), "127.0.0.1", port)
        except (ValueError, RuntimeError) as e:
            assert str(port) in str(e)
        else:
            raise AssertionError("a second gRPC server bound a port in use")
    finally:
        first.stop()


def test_a_message_that_is_no_request_is_invalid_argument_said_once(tmp_path, table):
    db = tmp_path / "s.duckdb"
    port = free_port()
    sink = SpanSink(db, pricing=table, ingest_interval=0.1)
    with (
        serving(db, sink=sink, services=[GrpcReceiver(sink, "127.0.0.1", port)]),
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            export(b"\x0a\xff\xff\xff", timeout=10)
            raise AssertionError("garbage must be refused")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert e.details().count("not an OTLP ExportTraceServiceRequest") == 1, e.details()


def test_a_call_without_the_token_is_refused_before_its_message_is_read(tmp_path):
    """The token was checked in the handler, once gRPC had read the whole message (up to the
    cap, decompressed): callers with no token grew the server ~8 MB a concurrent call (a
    review). Refused from its metadata, a message over the cap is never read: no
    RESOURCE_EXHAUSTED for its size, UNAUTHENTICATED."""
    port = free_port()
    receiver = GrpcReceiver(
        SpanSink(tmp_path / "s.duckdb"), "127.0.0.1", port, token="tok", max_message_bytes=1024
    )
    receiver.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            export = channel.unary_unary(f"/{_SERVICE}/Export", request_serializer=lambda b: b)
            for metadata in ((), (("authorization", "Bearer nope"),)):
                try:
                    export(b"\x0a" * 65536, timeout=10, metadata=metadata)
                    raise AssertionError("no token: must be refused")
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
            try:  # with the token, the cap holds
                export(b"\x0a" * 65536, timeout=10, metadata=[("authorization", "Bearer tok")])
                raise AssertionError("over the cap: must be refused")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    finally:
        receiver.stop()


class _HeldSink(SpanSink):
    """A real sink whose calls wait until the test lets them go (calls in flight)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.go = threading.Event()
        self.entered = threading.Semaphore(0)

    def receive(self, *args, **kwargs):
        self.entered.release()
        self.go.wait(30)
        return super().receive(*args, **kwargs)


def _export_request(name: str) -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\1" * 16, b"\2" * 8, name
    return request


def _codes(calls: list[Any]) -> list[grpc.StatusCode]:
    """Run ``calls`` at once; their status codes, in the order they were given."""
    codes: list[grpc.StatusCode | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            calls[i]()
            codes[i] = grpc.StatusCode.OK
        except grpc.RpcError as e:
            codes[i] = e.code()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes  # type: ignore[return-value]


def test_a_call_past_the_receive_slots_is_unavailable_unread(tmp_path, monkeypatch):
    """gRPC took every call at once, each holding what it had sent so far, where HTTP bounds
    its read slots (a review: 200 calls of 19 MB, 3.2 GB). A call waiting past the slot wait
    for one of the ``workers`` receive slots is UNAVAILABLE, which every exporter retries
    (gRPC's own bound answers RESOURCE_EXHAUSTED: the Go exporters drop it), its message
    not read: one over the cap is not RESOURCE_EXHAUSTED for its size."""
    monkeypatch.setattr(grpc_receiver, "_SLOT_WAIT_SECONDS", 0.5)
    port = free_port()
    sink = _HeldSink(tmp_path / "s.duckdb")
    receiver = GrpcReceiver(sink, "127.0.0.1", port, workers=1, max_message_bytes=4096)
    receiver.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            raw = channel.unary_unary(f"/{_SERVICE}/Export", request_serializer=lambda b: b)
            held = threading.Thread(
                target=stub.Export, args=(_export_request("held"),), kwargs={"timeout": 30}
            )
            held.start()
            assert sink.entered.acquire(timeout=10)  # the one slot taken
            codes = _codes(
                [
                    lambda: stub.Export(_export_request("waits"), timeout=30),
                    lambda: raw(b"\x0a" * 65536, timeout=30),
                ]
            )
            assert codes == [grpc.StatusCode.UNAVAILABLE] * 2
            sink.go.set()
            held.join(30)
            assert stub.Export(_export_request("after"), timeout=30).partial_success.rejected_spans == 0
            try:  # a slot free, the cap holds
                raw(b"\x0a" * 65536, timeout=30)
                raise AssertionError("over the cap: must be refused")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    finally:
        sink.go.set()
        receiver.stop()
    assert (sink.pushed_back, sink.stored_spans) == (2, 2)


def test_calls_without_the_token_take_no_slot_from_those_with_it(tmp_path):
    """A review: refused calls counted against gRPC's concurrency bound, so a flood without
    the token answered the callers with it RESOURCE_EXHAUSTED."""
    port = free_port()
    receiver = GrpcReceiver(SpanSink(tmp_path / "s.duckdb"), "127.0.0.1", port, token="tok", workers=1)
    receiver.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            bad = [("authorization", "Bearer nope")]
            good = [("authorization", "Bearer tok")]

            def refused() -> None:
                stub.Export(_export_request("x"), timeout=30, metadata=bad)

            def taken() -> None:
                stub.Export(_export_request("y"), timeout=30, metadata=good)

            codes = _codes([refused] * 20 + [taken] * 3 + [refused] * 20)
    finally:
        receiver.stop()
    assert (
        codes
        == [grpc.StatusCode.UNAUTHENTICATED] * 20
        + [grpc.StatusCode.OK] * 3
        + [grpc.StatusCode.UNAUTHENTICATED] * 20
    )
