"""`create_app`: the ASGI application of ``otel-costattr serve`` (FastAPI on uvicorn).

Routes: ``POST /v1/traces`` (the OTLP/HTTP receiver, `otlp_wire` + `sink.SpanSink`), the JSON
API under ``/api/v1`` and ``/healthz`` (`api`), OpenAPI at ``/docs``. Others mount theirs with
``extra_routes`` (Starlette routes at ``/``: the dashboard) and run background work with
``services`` (objects with ``start()`` and ``stop()``, run in the app's lifespan: the alert
watcher). A HEAD request is answered as its GET without the body (`head`). ``app.state``
holds ``sink``, ``db`` (the database path) and ``base_url`` (for links the server hands out).

Security: with a ``token``, every request (OTLP, API, docs, extra routes) needs
``Authorization: Bearer <token>``, compared in constant time, else 401; a browser gets in by
opening a page once with ``?token=`` and then reads (GET/HEAD only) with a session cookie
(`auth`). No CORS unless ``cors_origins`` names some. Without a token, only requests for
loopback or the ``base_url``'s host are answered (`hosts`: DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..version import __version__
from . import docs
from . import otlp_wire as wire
from .api import ERROR
from .api import router as api_router
from .auth import BearerAuth
from .bind import check_origins, clean_token
from .head import HeadAsGet, RootPath
from .hosts import HostCheck
from .sink import Backpressure, SpanSink

logger = logging.getLogger(__name__)

__all__ = ["Service", "create_app"]


class Service(Protocol):
    """Background work run for the app's lifetime (the alert watcher, say)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _Stalled(Exception):
    """The client stopped sending its body (408)."""


# A body's read: at most this long without a byte, and this long in all. A client that
# stops sending mid-body (a half-open connection, or on purpose) would otherwise hold its
# read slot for good; the OTLP exporters' own timeout is 10 s a request.
_IDLE_SECONDS = 15.0
_BODY_SECONDS = 60.0
# How long a request waits for a read slot before it is told to retry (503, Retry-After):
# clients sending slowly may hold every slot for up to _BODY_SECONDS, and a request waiting
# behind them without an answer ran into its exporter's 10 s timeout, its batch dropped (a
# review). A 503 is retried, and counted as pushed back.
_SLOT_WAIT_SECONDS = 4.0


async def _read_capped(request: Request, cap: int) -> bytes:
    """The raw body; `TooLarge` once it passes ``cap`` bytes. The rest is read and thrown
    away (up to 4 x ``cap``) so that the client gets its 413 rather than a broken pipe,
    which exporters would retry. `_Stalled` when no byte comes for `_IDLE_SECONDS` or the
    whole takes over `_BODY_SECONDS`; starlette's ClientDisconnect when the client goes away."""
    chunks, size = [], 0
    idle, total = _IDLE_SECONDS, _BODY_SECONDS
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total
    stream = request.stream().__aiter__()
    while True:
        wait = min(idle, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), max(wait, 0.001))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise _Stalled(f"no byte of the body for {idle:g} s or over {total:g} s in all") from None
        size += len(chunk)
        if size <= cap:
            chunks.append(chunk)
        elif size > 4 * cap:
            break
    if size > cap:
        raise wire.TooLarge(f"body is over the {cap}-byte limit")
    return b"".join(chunks)


def create_app(
    db: str,
    *,
    token: str | None = None,
    sink: SpanSink | None = None,
    base_url: str = "http://127.0.0.1:4318",
    max_body_bytes: int = wire.DEFAULT_MAX_BODY,
    extra_routes: Sequence[Any] = (),
    services: Iterable[Service] = (),
    cors_origins: Sequence[str] = (),
    max_inflight: int = 8,
) -> FastAPI:
    """The server's ASGI app for the database ``db`` (module docstring). ``sink`` receives the
    spans (default: a `SpanSink` on ``db``); its ingester runs in the app's lifespan. At most
    ``max_inflight`` export requests are decoded at once (memory: each may be
    ``max_body_bytes`` decompressed), and at most 4 x ``max_inflight`` read or waiting to be
    decoded (each at most ``max_body_bytes`` as sent)."""
    check_origins(cors_origins)  # never "*": ValueError before anything is opened
    token = clean_token(token)  # a secret file's newline (no header could match it); never blank
    for name, value in (("max_inflight", max_inflight), ("max_body_bytes", max_body_bytes)):
        if type(value) is not int or value < 1:
            raise ValueError(f"{name}: expected a whole number of at least 1, got {value!r}")
    if sink is None:
        sink = SpanSink(db)
    wire.decode(b"", wire.PROTOBUF)  # builds the decoder's message classes now, not in a request
    services = list(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sink.start()
        receivers = ThreadPoolExecutor(max_inflight, thread_name_prefix="otel-costattr-receive")
        app.state.receivers = receivers
        started: list[Service] = []
        try:
            for service in services:
                service.start()
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                try:
                    await run_in_threadpool(service.stop)  # a watcher's last deliveries may take a while
                except Exception:
                    logger.exception("otel-costattr: stopping %r failed", service)
            await run_in_threadpool(sink.stop)
            app.state.receivers = None
            receivers.shutdown(wait=False)

    app = FastAPI(
        title="otel-costattr",
        version=__version__,
        summary="OTLP receiver and cost API: runs, calls and money from OpenTelemetry GenAI spans.",
        lifespan=lifespan,
        docs_url=None,  # ours below: FastAPI's loads Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.sink = sink
    inflight = asyncio.Semaphore(max_inflight)
    reading = asyncio.Semaphore(4 * max_inflight)
    app.state.db = sink.path
    app.state.base_url = base_url.rstrip("/")

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A bad parameter is 400 with one message, as the rollups' own checks answer (FastAPI's
        default is 422 with a list)."""
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}"}, 400)

    generated = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, saying what the server answers: a bad parameter is 400 with
        one message (`invalid_parameter`), never the 422 FastAPI documents."""
        if app.openapi_schema is None:
            schema = generated()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault("400", {"description": "a bad parameter", "content": ERROR})
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def api_reference(request: Request) -> HTMLResponse:
        page = docs.render(app.openapi(), root=request.scope.get("root_path", ""))
        return HTMLResponse(page, headers={"Content-Security-Policy": docs.CSP})

    @app.post(
        "/v1/traces",
        summary="OTLP/HTTP trace export (protobuf or JSON, gzip or deflate)",
        response_class=Response,
        tags=["otlp"],
    )
    async def receive_traces(request: Request) -> Response:
        """Receive an ``ExportTraceServiceRequest``. 200 means the spans are on disk; 400 an
        undecodable body, 413 over the cap, 415 an unknown type or encoding, 503 with
        ``Retry-After`` when the store is behind (retry)."""
        kind = wire.response_type(request.headers.get("content-type"))
        # A body is read in a slot of its own (raw, at most the cap), held until decoding
        # has taken it: clients slow to send never hold the slots decoding takes, and the
        # bodies read and waiting stay bounded. The others wait in TCP.
        try:
            await asyncio.wait_for(reading.acquire(), _SLOT_WAIT_SECONDS)
        except asyncio.TimeoutError:
            busy = sink.push_back("every body read slot is taken by clients still sending; retry")
            return _status(503, wire.UNAVAILABLE, str(busy), kind, busy.retry_after)
        try:
            try:
                raw = await _read_capped(request, max_body_bytes)
            except wire.TooLarge as e:
                sink.count_refused()
                return _status(413, wire.RESOURCE_EXHAUSTED, str(e), kind)
            except _Stalled as e:
                sink.count_incomplete()
                return _status(408, wire.DEADLINE_EXCEEDED, str(e), kind)
            except ClientDisconnect:  # gone mid-body (an exporter's own timeout): nobody to answer
                sink.count_incomplete()
                return Response(status_code=400)
            async with inflight:  # bounds the memory decoding takes
                # Threads of their own: the API's and the pages' reads fill the shared pool
                # (40 threads) under a dashboard's load, and exports waited behind them past
                # their clients' 10 s timeout (a review: p90 5.95 s, one over 10).
                job = functools.partial(_receive, sink, raw, request.headers, max_body_bytes, kind)
                receivers = getattr(app.state, "receivers", None)  # None: no lifespan ran
                if receivers is None:
                    return await run_in_threadpool(job)
                return await asyncio.get_running_loop().run_in_executor(receivers, job)
        finally:
            reading.release()

    # An endpoint configured with a trailing slash (`.../v1/traces/`) is the receiver too: the
    # 307 to the path without it is not followed by Node's exporter, which dropped every batch.
    app.add_api_route(
        "/v1/traces/", receive_traces, methods=["POST"], response_class=Response, include_in_schema=False
    )

    # OTLP's other answers as OTLP: a Status in the request's type (an exporter logs its
    # message), not FastAPI's JSON {"detail"} (a review).
    @app.api_route(
        "/v1/traces", methods=["GET", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False
    )
    def traces_other_method(request: Request) -> Response:
        kind = wire.response_type(request.headers.get("content-type"))
        answer = _status(405, wire.UNIMPLEMENTED, "OTLP/HTTP takes POST on /v1/traces", kind)
        answer.headers["Allow"] = "POST"
        return answer

    app.add_api_route(
        "/v1/traces/",
        traces_other_method,
        methods=["GET", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )

    @app.api_route("/v1/{signal}", methods=["POST"], include_in_schema=False)
    def other_signal(signal: str, request: Request) -> Response:
        """Metrics and logs: an application's OTLP exporter sends them to the same endpoint."""
        kind = wire.response_type(request.headers.get("content-type"))
        message = f"this server receives traces only (POST /v1/traces), not /v1/{signal}"
        return _status(404, wire.NOT_FOUND, message, kind)

    app.include_router(api_router)
    if extra_routes:
        app.router.routes.extend(extra_routes)
    else:

        @app.get("/", include_in_schema=False)
        def index(request: Request) -> RedirectResponse:
            return RedirectResponse(request.scope.get("root_path", "") + "/docs")

    # Added first, so innermost: every other middleware sees the request's own method.
    app.add_middleware(HeadAsGet)
    if token:
        app.add_middleware(BearerAuth, token=token)
    # Added last, so outermost: a browser's preflight carries no token and is answered here.
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if not token:  # outermost: DNS rebinding (hosts.py); a token guards a server that has one
        app.add_middleware(HostCheck, allowed=[urlsplit(base_url).hostname or ""])
    root = urlsplit(base_url).path.rstrip("/")
    if root:  # behind a proxy at a path: outermost, so that every layer links under it
        app.add_middleware(RootPath, root=root)
    return app


def _status(http: int, code: int, message: str, kind: str, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(wire.status_body(code, message, kind), http, media_type=kind, headers=headers)


def _receive(sink: SpanSink, raw: bytes, headers: Any, cap: int, kind: str) -> Response:
    """Decompress, keep, answer: in a worker thread (decoding, or waiting for the mapping
    worker that decodes, and fsync block)."""
    try:
        body = wire.decompress(raw, headers.get("content-encoding"), cap)
        accepted = sink.receive(body, headers.get("content-type"))
    except wire.TooLarge as e:
        sink.count_refused()
        return _status(413, wire.RESOURCE_EXHAUSTED, str(e), kind)
    except wire.Unsupported as e:
        sink.count_refused()
        return _status(415, wire.INVALID_ARGUMENT, str(e), kind)
    except wire.BadRequest as e:
        sink.count_refused()
        return _status(400, wire.INVALID_ARGUMENT, str(e), kind)
    except Backpressure as e:
        return _status(503, wire.UNAVAILABLE, str(e), kind, e.retry_after)
    except Exception:  # never a 500 without a word, never a crash
        logger.exception("otel-costattr: receiving a trace export failed")
        pushed = sink.push_back("the receiver failed; retry")  # counted, as /healthz shows
        return _status(503, wire.UNAVAILABLE, str(pushed), kind, pushed.retry_after)
    return Response(wire.export_response(accepted.rejected, accepted.message, kind), 200, media_type=kind)
