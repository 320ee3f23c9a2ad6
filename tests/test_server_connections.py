"""What keeps one client's misbehaviour or one kind of load from denying the others: a
deadline for a request's head, and exports that never wait behind the pages' threads."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.request

from serverutil import serving
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from test_server_api import T0, run_spans
from test_server_otlp import JS, json_request

from otel_costattr.server.connections import HeadDeadline


class QuickDeadline(HeadDeadline):
    head_seconds = 1.0


def _closed_within(sock: socket.socket, seconds: float, drip: bytes) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` while a byte of ``drip`` is sent
    every 0.3 s."""
    sock.settimeout(0.3)
    deadline = time.monotonic() + seconds
    for byte in drip:
        if time.monotonic() > deadline:
            return False
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset: closed
            return True
    return False


def test_a_head_sent_a_byte_at_a_time_is_cut_off(tmp_path, table):
    # uvicorn waited for a request head as long as bytes came: 1,100 such clients took every
    # descriptor of a 1,024 limit, and the server answered no one (a review).
    with serving(tmp_path / "s.duckdb", table=table, http=QuickDeadline) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert _closed_within(slow, 8.0, b"X-Slow: " + b"a" * 100)
        # answered without its body being read (a 404), the body then dripping: cut off too
        with socket.create_connection(("127.0.0.1", port)) as drip:
            drip.sendall(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n")
            assert _closed_within(drip, 8.0, b"b" * 100)
        # a whole request on a connection is answered, and the next one on it too
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):
            kept.request("GET", "/healthz")
            answer = kept.getresponse()
            assert (answer.status, answer.read()[:11]) == (200, b'{"status":"')
        kept.close()


def test_exports_and_healthz_never_wait_behind_busy_page_threads(tmp_path, table):
    # The receiver decoded in the thread pool the API and the pages share: with a dashboard's
    # load holding its 40 threads, exports waited past their clients' 10 s timeout.
    release = threading.Event()

    def busy(request):
        release.wait(60)
        return PlainTextResponse("done")

    with serving(tmp_path / "s.duckdb", table=table, extra_routes=[Route("/busy", busy)]) as srv:
        pages = [
            threading.Thread(target=lambda: urllib.request.urlopen(srv.url + "/busy", timeout=90).read())
            for _ in range(48)  # more than the shared pool's 40 threads
        ]
        for page in pages:
            page.start()
        try:
            time.sleep(1.0)  # the pool is full, the rest queued
            body = json_request(run_spans("abcd" + "f" * 28, 2, T0))
            status, _, _ = srv.request("POST", "/v1/traces", body, JS)  # urllib: 30 s timeout
            assert status == 200
            assert srv.request("GET", "/healthz")[0] == 200
            assert not release.is_set()
        finally:
            release.set()
            for page in pages:
                page.join(90)
