"""The receiver's fast protobuf decoding (`spans.otlp`: attributes read as bytes, decoded once
and cached) gives exactly what reading the generated message classes field by field gives,
refuses what they refuse, and the sink's ingester merges row groups only now and then."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given, settings
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from serverutil import free_port, serving
from test_server_json_decode import requests

from otel_costattr.server import SpanSink
from otel_costattr.server import sink as sink_module
from otel_costattr.server.grpc_receiver import GrpcReceiver
from otel_costattr.spans import otlp
from otel_costattr.spans.record import SpanRecord, service_name_of
from otel_costattr.store import ingest

PB = {"Content-Type": "application/x-protobuf"}


def field_by_field(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    """The records read from the generated classes one field at a time (the decoder before
    the bytes form), with the production value rules (`otlp.attributes_of`)."""
    out = []
    for rs in request.resource_spans:
        resource = otlp.attributes_of(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                if otlp.id_problem(s.trace_id, s.span_id, s.parent_span_id):
                    continue
                kinds, codes = otlp._KIND_NAMES, otlp._STATUS_NAMES
                parent = s.parent_span_id
                out.append(
                    SpanRecord(
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        parent.hex() if parent and parent != bytes(8) else None,
                        s.start_time_unix_nano or None,
                        s.end_time_unix_nano or None,
                        s.name,
                        kinds[s.kind] if s.kind < len(kinds) else "INTERNAL",
                        codes[s.status.code] if s.status.code < len(codes) else "UNSET",
                        s.status.message or None,
                        resource,
                        service_name_of(resource),
                        ss.scope.name or None,
                        ss.scope.version or None,
                        otlp.attributes_of(s.attributes),
                        tuple((e.name, e.time_unix_nano, otlp.attributes_of(e.attributes)) for e in s.events),
                        tuple(
                            (k.trace_id.hex(), k.span_id.hex(), otlp.attributes_of(k.attributes))
                            for k in s.links
                        ),
                    )
                )
    return out


@settings(max_examples=200, deadline=None)
@given(requests())
def test_bytes_form_gives_the_records_of_the_generated_classes(request):
    expected = field_by_field(request)
    body = request.SerializeToString()
    for _ in range(2):  # a cold cache, then a warm one
        records, _, _ = otlp.records_from_otlp(otlp.parse_request(body))
        assert records == expected
    assert otlp.records_from_otlp(request)[0] == expected  # a generated-class request too


def _one_span_request(**attributes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in (1, 2):
        span = spans.add(trace_id=b"\1" * 16, span_id=bytes([i]) * 8, name="s")
        for key, value in attributes.items():
            kv = span.attributes.add(key=key)
            if isinstance(value, dict):
                for k, v in value.items():
                    kv.value.kvlist_value.values.add(key=k).value.string_value = v
            else:
                kv.value.string_value = value
    return request


def test_a_decoded_key_value_list_is_never_shared_between_records():
    """Records are read-only by contract, but a dict handed to two records would let one
    consumer's change show in the other: only scalar values are cached."""
    body = _one_span_request(kv={"a": "b"}).SerializeToString()
    first, second = otlp.records_from_otlp(otlp.parse_request(body))[0]
    again = otlp.records_from_otlp(otlp.parse_request(body))[0][0]
    assert first.attributes["kv"] == second.attributes["kv"] == again.attributes["kv"] == {"a": "b"}
    assert first.attributes["kv"] is not second.attributes["kv"]
    assert first.attributes["kv"] is not again.attributes["kv"]


def test_the_cache_is_bounded_and_keeps_no_large_values(monkeypatch):
    monkeypatch.setattr(otlp, "_CACHE_MAX", 8)
    otlp._pairs.clear()
    big = "x" * (otlp._CACHEABLE + 1)
    for i in range(50):
        body = _one_span_request(**{f"k{i}": "v", "big": big}).SerializeToString()
        records = otlp.records_from_otlp(otlp.parse_request(body))[0]
        assert records[0].attributes == {f"k{i}": "v", "big": big}
        assert len(otlp._pairs) <= 8
    assert all(value != big for _, value in otlp._pairs.values())


def _bad_key_value_body() -> bytes:
    """A request whose one attribute is not protobuf: a KeyValue cut short. (A key that is not
    UTF-8 is read with U+FFFD since 2026-12-05: test_server_otlp.py.)"""
    request = otlp.parse_request(b"")
    span = request.resource_spans.add().scope_spans.add().spans.add(trace_id=b"\1" * 16, span_id=b"\2" * 8)
    span.attributes.append(b"\x0a\x05ab")  # KeyValue{key: 5 bytes}, 2 of them there
    body = request.SerializeToString()
    with pytest.raises(Exception, match="(?i)pars|decod|utf"):  # the generated class refuses it
        ExportTraceServiceRequest.FromString(body)
    return body


def test_an_undecodable_attribute_is_a_bad_request_over_http_and_grpc(tmp_path, table):
    body = _bad_key_value_body()
    port = free_port()
    sink = SpanSink(tmp_path / "s.duckdb", pricing=table)
    with serving(tmp_path / "s.duckdb", sink=sink, services=[GrpcReceiver(sink, "127.0.0.1", port)]) as srv:
        status, _, answer = srv.request("POST", "/v1/traces", body, PB)
        assert status == 400, answer
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=lambda raw: raw,
                response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
            )
            with pytest.raises(grpc.RpcError) as e:
                export(body, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            for garbage in (b"\xff\xff\xff", b"\x0a\x05ab"):  # no message at all; a truncated one
                with pytest.raises(grpc.RpcError) as e:
                    export(garbage, timeout=10)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # and a good one still goes in
            good = _one_span_request(k="v")
            assert not stub.Export(good, timeout=10).HasField("partial_success")
        assert sink.stored_spans == 2


def test_the_ingester_merges_row_groups_now_and_then(tmp_path, table, monkeypatch):
    """Rounds ingest without DuckDB's vacuum (its peak grows with the table), and merge once
    `_COMPACT_ROWS` rows have come in since the last merge."""
    calls: list[bool] = []
    real = ingest.ingest

    def recording(*args, **kwargs):
        calls.append(kwargs.get("compact", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "ingest", recording)
    monkeypatch.setattr(sink_module, "_COMPACT_ROWS", 4)
    body = _one_span_request(k="v")  # 2 spans a request
    sink = SpanSink(tmp_path / "s.duckdb", pricing=table)  # not started: rounds run here
    for _ in range(3):  # 2, 4, then 2 rows since the last merge
        sink.accept(otlp.records_from_otlp(body)[0])
        sink._round()
    assert calls == [False, True, False]
    assert sink.pending_files == 0
    monkeypatch.setattr(sink_module, "_COMPACT_ROWS", 100)
    monkeypatch.setattr(sink_module, "_COMPACT_ROUNDS", 3)  # and after so many rounds (1 done)
    for _ in range(3):
        sink.accept(otlp.records_from_otlp(body)[0])
        sink._round()
    assert calls == [False, True, False, False, True, False]
