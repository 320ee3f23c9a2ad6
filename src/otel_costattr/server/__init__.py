"""``otel-costattr serve``: the OTLP receiver (HTTP and gRPC) and the JSON API, on one store.

Needs the ``[server]`` extra (FastAPI, uvicorn, opentelemetry-proto, grpcio); nothing in the
core imports this package.
"""

from .app import Service, create_app
from .bind import check_bind
from .sink import Backpressure, SpanSink

__all__ = ["Backpressure", "Service", "SpanSink", "check_bind", "create_app"]
