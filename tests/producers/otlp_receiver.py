"""A local OTLP/HTTP trace receiver on 127.0.0.1: what a collector would get from us.

Accepts ``POST /v1/traces`` with an ``application/x-protobuf`` body (plain, gzip or deflate),
decodes it as an ``ExportTraceServiceRequest`` with the real opentelemetry-proto classes and
keeps every span as a flat dict (name, kind, ids, decoded attributes). Answers with an empty
``ExportTraceServiceResponse``, as a collector does.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from .fake_llm import BackgroundServer

MAX_BODY = 16 << 20


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value it carries."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def decode(body: bytes) -> list[dict[str, Any]]:
    """Every span of an ExportTraceServiceRequest, flattened."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "kind": PbSpan.SpanKind.Name(span.kind),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "attributes": {kv.key: any_value(kv.value) for kv in span.attributes},
                        "resource": resource,
                        "scope": scope_spans.scope.name,
                    }
                )
    return spans


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/v1/traces" or length > MAX_BODY:
            self._reply(404 if self.path != "/v1/traces" else 413, b"")
            return
        body = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            spans = decode(body)
        except Exception as e:  # a bad request is a test failure: keep it for the test to see
            self.server.add_error(f"{type(e).__name__}: {e}")
            self._reply(400, b"")
            return
        self.server.add(self.headers.get("Content-Type", ""), spans)
        self._reply(200, ExportTraceServiceResponse().SerializeToString())

    def _reply(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.errors: list[str] = []

    def add(self, content_type: str, spans: list[dict[str, Any]]) -> None:
        with self.lock:
            self.content_types.append(content_type)
            self.spans.extend(spans)

    def add_error(self, error: str) -> None:
        with self.lock:
            self.errors.append(error)


class OTLPReceiver(BackgroundServer):
    """The receiver, served from a background thread; use as a context manager."""

    _server: _Server

    def __init__(self) -> None:
        super().__init__(_Server())

    @property
    def traces_endpoint(self) -> str:
        """What OTEL_EXPORTER_OTLP_TRACES_ENDPOINT should be."""
        return self.url + "/v1/traces"

    @property
    def spans(self) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.spans)

    @property
    def content_types(self) -> list[str]:
        with self._server.lock:
            return list(self._server.content_types)

    @property
    def errors(self) -> list[str]:
        with self._server.lock:
            return list(self._server.errors)
