"""Real parts for the alert tests: an HTTP receiver on 127.0.0.1 and a workload written through
a real TracerProvider, `CostSpanProcessor` and `DuckDBSpanExporter` at chosen times.

Prices come from tests/data/test_prices.toml: acme-large costs $2 per million input tokens
(from 2026-06-01) up to 200,000 tokens, so ``usd * 500_000`` input tokens cost exactly ``usd``
for a call of at most $0.40.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from otel_costattr.pricing.table import PriceTable
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.store.exporter import DuckDBSpanExporter

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


class Receiver:
    """A webhook receiver on 127.0.0.1: records each JSON body; ``fail_first`` requests get a
    503; while ``hold`` is cleared, requests wait for it (a receiver that hangs)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.fail_first = fail_first
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.arrived.set()
                outer.hold.wait(30)
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def free_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a receiver that is down)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def tokens(usd: str) -> int:
    """Input tokens of acme-large costing ``usd``."""
    return int(Decimal(usd) * 500_000)


def _ns(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


class Workload:
    """Writes runs into a DuckDB file through the real SDK pipeline."""

    def __init__(
        self, path: Path, table: PriceTable, *, extra_processors: tuple[Any, ...] = (), processor: bool = True
    ) -> None:
        """``processor=False``: a service without the CostSpanProcessor (calls priced by the
        store, identity found through their parents)."""
        self.path = path
        resource = Resource.create({"service.name": "svc"})
        self.provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        if processor:
            self.provider.add_span_processor(CostSpanProcessor(table))
        self.exporter = DuckDBSpanExporter(str(path), pricing=table, fsync=False)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        for p in extra_processors:
            self.provider.add_span_processor(p)
        self.tracer = self.provider.get_tracer("alerts-test")

    def run(
        self,
        at: dt.datetime,
        costs: list[str],
        *,
        feature: str = "research",
        user: str | None = None,
        errors: int = 0,
        latency_ms: float = 100.0,
    ) -> str:
        """One run at ``at``: a root span and a model call per cost in ``costs`` ("?": a call
        of a model the prices do not know, 1000 input tokens); the first ``errors`` calls end
        with an ERROR status. Returns the trace id."""
        attrs: dict[str, Any] = {"app.feature": feature}
        if user is not None:
            attrs["user.id"] = user
        root = self.tracer.start_span("run", start_time=_ns(at), attributes=attrs)
        ctx = trace.set_span_in_context(root)
        t = at
        for i, usd in enumerate(costs):
            call_attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "acme",
                "gen_ai.request.model": "acme-large" if usd != "?" else "zzz-unknown",
                "gen_ai.usage.input_tokens": tokens(usd) if usd != "?" else 1000,
                "gen_ai.usage.output_tokens": 0,
                **({"user.id": user} if user is not None else {}),
            }
            span = self.tracer.start_span(
                "chat acme-large", context=ctx, start_time=_ns(t), attributes=call_attrs
            )
            if i < errors:
                span.set_status(Status(StatusCode.ERROR, "boom"))
            t = t + dt.timedelta(milliseconds=latency_ms)
            span.end(end_time=_ns(t))
        root.end(end_time=_ns(t + dt.timedelta(milliseconds=1)))
        return f"{root.get_span_context().trace_id:032x}"

    def flush(self) -> None:
        self.provider.force_flush()

    def close(self) -> None:
        self.provider.shutdown()


def rules_file(path: Path, text: str, url: str, timeout: str = "5s") -> Path:
    """Write a rule file whose channel ``ops`` posts to ``url`` (fast retries for tests, each
    attempt given up after ``timeout``)."""
    path.write_text(
        f'[channels.ops]\ntype = "webhook"\nurl = "{url}"\nbackoff = "50ms"\nretries = 2\n'
        f'timeout = "{timeout}"\n\n' + text,
        encoding="utf-8",
    )
    return path
