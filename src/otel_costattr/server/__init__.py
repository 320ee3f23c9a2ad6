"""``otel-costattr serve``: the OTLP receiver (HTTP and gRPC) and the JSON API, on one store.

Needs the ``[server]`` extra (FastAPI, uvicorn, opentelemetry-proto, grpcio); nothing in the
core imports this package.
"""

from .app import Service, create_app
from .bind import check_bind, clean_token
from .sink import Backpressure, SpanSink

__all__ = ["Backpressure", "Service", "SpanSink", "check_bind", "clean_token", "create_app"]
