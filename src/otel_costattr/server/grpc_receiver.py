"""OTLP/gRPC: ``TraceService/Export`` on the same `SpanSink`, with the HTTP receiver's rules.

Spans rejected by the decoder come back in ``partial_success``; backpressure is UNAVAILABLE
(which OTLP exporters retry) with the retry delay in the message; a message over the cap is
refused by gRPC itself with RESOURCE_EXHAUSTED (``grpc.max_receive_message_length``); with a
token, a call without ``authorization: Bearer <token>`` metadata is UNAUTHENTICATED. The
message reaches `SpanSink.receive` as bytes (no deserializer: the handler is registered here
rather than by ``trace_service_pb2_grpc``), which decodes it as HTTP's protobuf body (in a
mapping worker, with ``serve --workers``). A message that is not valid protobuf, or an
attribute inside it that is not, is INVALID_ARGUMENT (HTTP's 400), not gRPC's own INTERNAL
"Exception deserializing request!".
"""

from __future__ import annotations

import logging
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


class _TraceService:
    def __init__(self, sink: SpanSink, token: str | None) -> None:
        self._sink = sink
        token = clean_token(token)  # as the HTTP side takes it
        self._token = token.encode() if token else None

    def Export(self, request: bytes, context: grpc.ServicerContext) -> Any:  # noqa: N802 - the gRPC name
        if self._token is not None:
            given = dict(context.invocation_metadata()).get("authorization", "")
            if not bearer_matches(str(given).encode(), self._token):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
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
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otel-costattr-grpc"),
            # grpcio turns SO_REUSEPORT on by default: a second server on the same port would
            # start silently and split the exports between two stores. Off, it fails to bind.
            options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)],
        )
        export = grpc.unary_unary_rpc_method_handler(
            _TraceService(sink, token).Export,
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
