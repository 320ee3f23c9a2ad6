"""A real `otel-costattr serve` app on uvicorn in a thread, on a free loopback port, for tests."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from otel_costattr.server import SpanSink, create_app
from otel_costattr.server.connections import HeadDeadline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A started server: its ``url``, ``sink`` and ``app``."""

    def __init__(self, url: str, sink: SpanSink, app: Any) -> None:
        self.url, self.sink, self.app = url, sink, app

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        import json

        status, _, body = self.request("GET", path, headers=headers)
        assert status == 200, (status, body)
        return json.loads(body)

    def wait_ingested(self, timeout: float = 20.0) -> None:
        """Until the spool is empty (the ingester moved everything into the table)."""
        deadline = time.monotonic() + timeout
        while self.sink.pending_files:
            assert time.monotonic() < deadline, "spool not ingested in time"
            time.sleep(0.05)


@contextmanager
def serving(
    db: Path,
    *,
    table: Any = None,
    sink: SpanSink | None = None,
    sink_options: dict | None = None,
    http: Any = HeadDeadline,
    base_path: str = "",
    **app_options: Any,
):
    """Serve ``db`` until the block ends (lifespan run: ingester started and stopped), with
    the HTTP protocol `serve` runs (``http``: another, for a test of it); ``base_path``: the
    path of its --base-url (a reverse proxy's)."""
    if sink is None:
        sink = SpanSink(db, pricing=table, ingest_interval=0.1, **(sink_options or {}))
    port = free_port()
    app = create_app(str(db), sink=sink, base_url=f"http://127.0.0.1:{port}{base_path}", **app_options)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", sink, app)
    finally:
        server.should_exit = True
        thread.join(30)
