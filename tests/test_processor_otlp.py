"""The cost reaches an OTLP/HTTP backend even through a BatchSpanProcessor registered first.

A stdlib HTTP server on 127.0.0.1 decodes what the real exporter sends, as a collector would.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import AGENT_STEP, COST, COST_STATUS, PRICED_MODEL


class _Receiver(BaseHTTPRequestHandler):
    requests: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def _value(any_value):
    return getattr(any_value, any_value.WhichOneof("value"))


def test_batch_otlp_exporter_registered_first_exports_the_cost(collector, table):
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10)))
    provider.add_span_processor(CostSpanProcessor(table))  # after the exporter
    tracer = provider.get_tracer("otlp-test")
    with tracer.start_as_current_span(
        "invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent", "app.feature": "search"}
    ):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "acme-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 1000,
        }
        tracer.start_span("chat acme-mini", attributes=attrs).end()
    assert provider.force_flush(10_000)
    provider.shutdown()

    spans = {
        span.name: {kv.key: _value(kv.value) for kv in span.attributes}
        for request in collector.requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    chat = spans["chat acme-mini"]
    assert chat[COST] == 0.00075  # 1000*0.15 + 1000*0.6 per Mtok, exactly as float(Decimal)
    assert isinstance(chat[COST], float)  # an OTLP double, not a string
    assert chat[COST_STATUS] == "priced"
    assert chat[PRICED_MODEL] == "acme-mini"
    assert chat[AGENT_STEP] == 0
    assert chat["app.feature"] == "search"
    assert COST not in spans["invoke_agent"]
