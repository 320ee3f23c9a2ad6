"""``serve --db clickhouse://...|chdb://...``: the API and the dashboard over a ClickHouse store,
read-only.

There the OpenTelemetry Collector receives and writes the spans (``examples/collector-
clickhouse/``), so this server receives nothing: `ReadOnlySink` stands where the DuckDB
receiver's `SpanSink` stands in `server.app.create_app` (nothing to start, nothing counted),
and `read_only` puts a route in front of ``POST /v1/traces`` that answers 501 with an OTLP
status naming the Collector, so a misdirected exporter logs why and does not retry (gRPC is
not started: ``serve`` refuses ``--grpc-port``). Every answer comes from the same rollups,
through `rollups.queries.rollup` and `rollup_clickhouse`.
"""

from __future__ import annotations

from typing import Any

from ..rollups.catalog import Query
from ..rollups.errors import RollupError
from ..rollups.explain import one_trace, trace_prefix
from .client import ClickHouseError, connect, has_table, server_line
from .runner import TYPED_TABLE, clickhouse_target, rollup_clickhouse
from .target import Target, masked

__all__ = [
    "NOT_RECEIVING", "ReadOnlySink", "check_store", "find_trace", "read_only", "read_only_app", "run_query",
]  # fmt: skip

NOT_RECEIVING = (
    "this otel-costattr server reads a ClickHouse store and receives no spans: send OTLP to the "
    "OpenTelemetry Collector that writes that store"
)
_UNIMPLEMENTED = 12  # google.rpc.Code UNIMPLEMENTED, in the OTLP status body


class ReadOnlySink:
    """What `create_app` reads of a sink, for a store this server does not write: its ``path``
    (the ``--db`` URL), no ingester, and no counters (None: the Collector counts there)."""

    stored_spans = rejected_spans = pushed_back = incomplete = refused = None
    pending_files = quarantined_files = None
    last_ingest_error = workers = lost_workers = None

    def __init__(self, db: str) -> None:
        self.path = db

    def start(self) -> None:
        """Nothing to start: nothing is received."""

    def stop(self) -> None:
        """Nothing to stop."""


def check_store(db: str) -> tuple[Target, bool]:
    """``db`` parsed and its spans table found, and whether `clickhouse init`'s typed table
    is there: `ValueError` (one line) when the URL is malformed, the server cannot be reached
    or the table is missing, before serving."""
    try:
        target = clickhouse_target(db)
    except RollupError as e:
        raise ValueError(str(e)) from None
    if target is None:
        raise ValueError(f"--db {masked(db)}: not a ClickHouse URL")
    try:
        client = connect(target)
        found = has_table(client, target.database, target.table)
        typed = found and has_table(client, target.database, TYPED_TABLE)
    except ClickHouseError as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # the server's own error, in one line
        raise ValueError(f"{target.display()}: {server_line(e)}") from None
    if not found:
        raise ValueError(target.no_table())
    return target, typed


def read_only(app: Any) -> Any:
    """``app`` (from `create_app`) with ``POST /v1/traces`` answering 501 and the OTLP status
    `NOT_RECEIVING` (in the request's encoding), ahead of the receiver's route."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ..server import otlp_wire as wire

    async def not_receiving(request: Request) -> Response:
        kind = wire.response_type(request.headers.get("content-type"))
        return Response(wire.status_body(_UNIMPLEMENTED, NOT_RECEIVING, kind), 501, media_type=kind)

    for path in ("/v1/traces", "/v1/traces/"):
        app.router.routes.insert(0, Route(path, not_receiving, methods=["POST"]))
    return app


def read_only_app(
    db: str,
    *,
    token: str | None = None,
    base_url: str = "http://127.0.0.1:4318",
    dashboard: bool = True,
    cors_origins: Any = (),
    services: Any = (),
    settle_every: float | None = 60.0,
) -> Any:
    """The ``serve`` app over the ClickHouse store ``db``: `server.app.create_app` with a
    `ReadOnlySink`, the dashboard's routes (``dashboard``), the OTLP route `read_only`;
    ``services`` run in its lifespan (an `alerts.watch.AlertWatcher`), beside a
    `settle.Settler` every ``settle_every`` seconds (None: none), which appends to the settled
    table only: the spans stay read-only."""
    from ..report.live import routes
    from ..server import create_app
    from .settle import Settler

    target = clickhouse_target(db)
    assert target is not None

    return read_only(
        create_app(
            db,
            token=token,
            sink=ReadOnlySink(db),  # type: ignore[arg-type]  # what create_app reads of a sink
            base_url=base_url,
            extra_routes=routes(db) if dashboard else (),
            cors_origins=cors_origins,
            services=[*services, *([Settler(target, settle_every)] if settle_every else ())],
        )
    )


def run_query(db: str, q: Query, **params: Any) -> Any:
    """A query from outside the bundle (`rollups.custom.custom_query`: the API's runs page)
    over the ClickHouse store ``db``, bound and checked as `rollups.custom.run_custom` does."""
    from ..rollups.params import bind

    target = clickhouse_target(db)
    if target is None:
        raise RollupError(f"--db {masked(db)}: not a ClickHouse URL")
    return rollup_clickhouse(q, target, bind(q, params))


def find_trace(db: str, prefix: str) -> str:
    """The one trace id of the ClickHouse store ``db`` starting with ``prefix`` (the rule and
    messages of `rollups.explain.find_trace`, which finds it in DuckDB)."""
    text = trace_prefix(prefix)
    target = clickhouse_target(db)
    assert target is not None
    try:
        found = (
            connect(target)
            .query(
                f"SELECT DISTINCT TraceId FROM {target.table} WHERE startsWith(TraceId, {{p:String}})"
                " ORDER BY TraceId LIMIT 3",
                parameters={"p": text},
            )
            .result_rows
        )
    except ClickHouseError as e:
        raise RollupError(str(e)) from e
    return one_trace(text, [r[0] for r in found])
