"""OTLP/gRPC: ``TraceService/Export`` on the same `SpanSink`, with the HTTP receiver's rules.

Spans rejected by the decoder come back in ``partial_success``; backpressure is UNAVAILABLE
(which OTLP exporters retry) with the retry delay in the message; a message over the cap is
refused by gRPC itself with RESOURCE_EXHAUSTED (``grpc.max_receive_message_length``); with a
token, a call without ``authorization: Bearer <token>`` metadata is UNAUTHENTICATED, before
its message is read (`_Token`); ``workers`` messages are read and taken at once, a call that
waits 4 s for a slot is UNAVAILABLE unread (`_TraceService`). The
message reaches `SpanSink.receive` as bytes (no deserializer: the handler is registered here
rather than by ``trace_service_pb2_grpc``), which decodes it as HTTP's protobuf body (in a
mapping worker, with ``serve --workers``). A message that is not valid protobuf, or an
attribute inside it that is not, is INVALID_ARGUMENT (HTTP's 400), not gRPC's own INTERNAL
"Exception deserializing request!".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from .auth import bearer_matches
from .bind import clean_token
from .otlp_wire import DEFAULT_MAX_BODY, PROTOBUF, BadRequest
from .sink import Backpressure, SpanSink

logger = logging.getLogger(__name__)


_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def _bytes(body: bytes) -> bytes:
    # The message as it came: `SpanSink.receive` decodes it (in a mapping worker when the
    # sink has them), and a deserializer that raises would make gRPC answer INTERNAL.
    return body


def _refuse(requests: Any, context: grpc.ServicerContext) -> None:
    # Registered as a streaming handler, it never asks for the message: gRPC reads no more
    # of it than the connection's window before the call ends.
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


_REFUSED = grpc.stream_unary_rpc_method_handler(_refuse)


class _Token(grpc.ServerInterceptor):
    """Refuses a call without the bearer token from its metadata, before its message is read:
    checked in the handler, each call's message (up to the cap, decompressed) was in memory
    first, and callers with no token grew the server by ~8 MB a concurrent call, to 2.7 GB
    with 300 (a review)."""

    def __init__(self, token: bytes) -> None:
        self._token = token

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        # The first value, as the HTTP side reads a repeated header.
        given = next((v for k, v in details.invocation_metadata if k == "authorization"), "")
        if not bearer_matches(str(given).encode(), self._token):
            return _REFUSED
        return continuation(details)


# How long a call waits for a receive slot before it is told to retry (UNAVAILABLE), as
# HTTP's requests wait for a read slot (server/app.py: _SLOT_WAIT_SECONDS).
_SLOT_WAIT_SECONDS = 4.0


class _TraceService:
    """``Export`` registered as a streaming call (the wire is the same for a unary client),
    so that it reads the message only once it holds one of ``slots``: at most that many
    messages are in memory at once, and a call that waits too long is UNAVAILABLE unread
    (gRPC's own bound, maximum_concurrent_rpcs, answers RESOURCE_EXHAUSTED, which the Go
    exporters drop without a RetryInfo, and counts calls refused for their token: a flood
    without it shut out the callers with it, a review)."""

    def __init__(self, sink: SpanSink, slots: int) -> None:
        self._sink = sink
        self._slots = threading.BoundedSemaphore(slots)

    def Export(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:  # noqa: N802 - the gRPC name
        if not self._slots.acquire(timeout=_SLOT_WAIT_SECONDS):
            busy = self._sink.push_back("every gRPC receive slot is taken by calls still being received")
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{busy}; retry in {busy.retry_after} s")
        try:
            request = next(requests, None)  # the message, read now
            if request is None:  # the call ended without one (cancelled, or over the cap)
                context.abort(grpc.StatusCode.CANCELLED, "no message")
            return self._export(request, context)
        finally:
            self._slots.release()

    def _export(self, request: bytes, context: grpc.ServicerContext) -> Any:
        try:
            accepted = self._sink.receive(request, PROTOBUF, grpc=True)
        except BadRequest as e:  # not valid protobuf, or an attribute inside it is not
            self._sink.count_refused()
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Backpressure as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{e}; retry in {e.retry_after} s")
        except Exception:
            logger.exception("otel-costattr: receiving a gRPC trace export failed")
            context.abort(grpc.StatusCode.UNAVAILABLE, "the receiver failed; retry")
        response = trace_service_pb2.ExportTraceServiceResponse()
        if accepted.rejected or accepted.message:
            response.partial_success.rejected_spans = accepted.rejected
            response.partial_success.error_message = accepted.message
        return response


class GrpcReceiver:
    """The gRPC server as a service (``start()``/``stop()``) for `create_app`'s lifespan."""

    def __init__(
        self,
        sink: SpanSink,
        host: str,
        port: int,
        *,
        token: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_BODY,
        workers: int = 8,
    ) -> None:
        token = clean_token(token)  # as the HTTP side takes it
        self._server = grpc.server(
            # Threads past the receive slots: a call waiting for one, or refused, holds a
            # thread, not a message.
            futures.ThreadPoolExecutor(max_workers=4 * workers, thread_name_prefix="otel-costattr-grpc"),
            interceptors=[_Token(token.encode())] if token else None,
            # grpcio turns SO_REUSEPORT on by default: a second server on the same port would
            # start silently and split the exports between two stores. Off, it fails to bind.
            options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)],
        )
        export = grpc.stream_unary_rpc_method_handler(
            _TraceService(sink, workers).Export,
            request_deserializer=_bytes,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE, {"Export": export}),)
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise ValueError(f"cannot bind gRPC to {address}")

    def start(self) -> None:
        """Serve in the background."""
        self._server.start()

    def stop(self) -> None:
        """Stop taking calls; let running ones finish for up to 5 s."""
        self._server.stop(5).wait()
