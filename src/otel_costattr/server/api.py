"""The JSON API under ``/api/v1`` and ``/healthz``: the rollups, over HTTP.

Every answer comes from the bundled queries through `rollups.queries.rollup` (the same
catalogue, parameters and errors as the CLI: a bad parameter is a 400 with the message, an
unknown rollup a 404), on a short read-only connection per request (a ClickHouse store,
``serve --db clickhouse://...``, through the rollups' ClickHouse runner). JSON rules, in `encode`:
money is a number plus the exact decimal string beside it (``usd`` and ``usd_exact``);
timestamps are ISO 8601 with ``+00:00`` (the store holds UTC). Run lists page with an opaque
cursor (``next_cursor``), newest first.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ..clickhouse import serving
from ..clickhouse.client import ClickHouseError
from ..clickhouse.target import is_clickhouse_url
from ..rollups import catalog
from ..rollups.custom import custom_query, run_custom
from ..rollups.errors import RollupError, RollupParamError, UnknownRollup
from ..rollups.explain import find_trace, trace_prefix
from ..rollups.queries import rollup
from ..store import database as store
from ..store.turns import turns
from ..version import __version__
from .auth import TOKEN_PARAM

router = APIRouter()

_RUNS_PAGE = custom_query("runs", resources.files(__package__).joinpath("runs_page.sql").read_text())
_MAX_PAGE = 1000

Days = Annotated[
    float | None, Query(description="the last N days, or the N days before until (not with since)", gt=0)
]
Since = Annotated[str | None, Query(description="start of the window, ISO 8601 (UTC when no zone)")]
Until = Annotated[str | None, Query(description="end of the window (exclusive), ISO 8601")]
Service = Annotated[str | None, Query(description="only spans of this service.name")]
Feature = Annotated[str | None, Query(description="only calls attributed to this feature")]
Agent = Annotated[str | None, Query(description="only calls attributed to this agent")]


@dataclass
class Window:
    """The window every rollup takes, as query parameters (checked by the rollups layer)."""

    days: Days = None
    since: Since = None
    until: Until = None
    service: Service = None
    feature: Feature = None
    agent: Agent = None


def encode(row: dict[str, Any]) -> dict[str, Any]:
    """One row as JSON values, by the CLI's json rules: each money column
    (`catalog.is_money_column`: ``usd``, ``cost_usd``, ``usd_per_run``, ...) is a number with
    ``<column>_exact``, its exact decimal string, beside it (both null when unpriced, so every
    row has the same keys); datetimes are ISO 8601 with a zone (naive ones are UTC, as the store
    holds them); NaN and infinities are null (JSON has neither)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if not _finite(value):
            value = None  # JSON has neither NaN nor Infinity
        if catalog.is_money_column(key):
            amount = None if value is None else value if isinstance(value, Decimal) else Decimal(str(value))
            out[key] = None if amount is None else float(amount)
            out[f"{key}_exact"] = None if amount is None else _exact(amount)
            continue
        if isinstance(value, Decimal):
            value = float(value)
        elif isinstance(value, dt.datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()
        out[key] = value
    return out


def _finite(value: Any) -> bool:
    """False for NaN and the infinities, a float's or a Decimal's; True for anything else."""
    if isinstance(value, Decimal):
        return value.is_finite()
    return not isinstance(value, float) or math.isfinite(value)


def _exact(value: Decimal) -> str:
    """A finite decimal as its plain exact string (``0.000285``, ``0``)."""
    return format(value.normalize(), "f") if value else "0"


@contextmanager
def _reading(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; the receiver's ingester keeps the spool moving, so this one
    does not ingest (a busy receiver could keep a reader ingesting for ever)."""
    db = request.app.state.db

    def unavailable(why: str) -> HTTPException:
        return HTTPException(503, f"the store is not available: {why}", headers={"Retry-After": "1"})

    # A turn among this process's readers, which the ingester's turns interleave (store/turns.py).
    with turns(db).reading(10.0, lambda why: unavailable(f"{db}: {why}")):
        try:
            con = store.connect(db, read_only=True, retry=10.0, migrate=False, ingest=False)
        except store.StoreError as e:
            raise unavailable(str(e)) from e
        try:
            yield con
        finally:
            con.close()


def _clickhouse(request: Request) -> bool:
    """Whether the store is ClickHouse (``serve --db clickhouse://...``: `clickhouse.serving`),
    read through the rollups alone, never opened here."""
    return is_clickhouse_url(request.app.state.db)


def _unreachable(e: RollupError) -> HTTPException | None:
    """A ClickHouse store that cannot be reached: 503, as a DuckDB store that cannot be opened."""
    if isinstance(e.__cause__, ClickHouseError):
        return HTTPException(503, f"the store is not available: {e}", headers={"Retry-After": "1"})
    return None


def _rollup(request: Request, name: str, **params: Any) -> list[dict[str, Any]]:
    try:
        if _clickhouse(request):
            return rollup(name, request.app.state.db, **params)
        with _reading(request) as con:
            return rollup(name, con, **params)
    except UnknownRollup as e:
        raise HTTPException(404, str(e)) from e
    except RollupParamError as e:
        raise HTTPException(400, catalog.as_typed(str(e))) from e
    except RollupError as e:
        raise _unreachable(e) or HTTPException(400, catalog.as_typed(str(e))) from e


def _parameters(request: Request) -> tuple[str, list[str], set[str]] | None:
    """What the matched route takes as query parameters: (its name in messages, the names it
    accepts, names it lets through unlisted). A route's are the ones its signature declares
    (``Query`` parameters, also those of its dependencies: the `Window`); a rollup's are the
    rollup's (the catalogue's, and ``where``), and ``group_by`` is left to the rollup, which
    says why one cannot take it. None for a rollup not in the catalogue (404 there)."""
    route = request.scope["route"]
    if route.path == "/api/v1/rollups/{name}":
        try:
            q = catalog.query(request.path_params["name"])
        except UnknownRollup:
            return None
        return q.cli_name, [*q.accepts(), "where"], {"group_by"}
    return route.name, _declared(route.dependant), set()


def _declared(dependant: Any) -> list[str]:
    """The query parameters of a FastAPI dependant and its dependencies, in order."""
    names = [n for sub in dependant.dependencies for n in _declared(sub)]
    return [*names, *(field.alias for field in dependant.query_params)]


def _known_parameters(request: Request) -> None:
    """Every ``/api/v1`` answer refuses a query parameter it does not take (400 naming it and
    the ones it takes), rather than answer as if it were not there: ``/stats?where=...`` gave
    figures for every call. ``token`` is the server's (`auth`: a browser's way in), never an
    answer's parameter, and is let through everywhere."""
    taken = _parameters(request)
    if taken is None:
        return
    name, valid, unlisted = taken
    unknown = sorted(set(request.query_params) - {*valid, *unlisted, TOKEN_PARAM})
    if unknown:
        raise HTTPException(
            400, f"{name}: unknown parameter {unknown[0]!r} (valid: {', '.join(valid) or 'none'})"
        )


# The JSON API proper, every route under the same check of its query parameters.
api = APIRouter(dependencies=[Depends(_known_parameters)])


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> dict[str, Any]:  # never behind the pages' busy threads
    """Liveness and the receiver's counters: spans stored and rejected, requests pushed back,
    requests whose body never came whole (client gone, or stalled: 408), spool files waiting and
    set aside as unreadable, the last ingest error (status ``degraded`` while there is one, a
    file is set aside, or an ingest round has moved nothing for two minutes:
    ``ingest_stalled_seconds``, a frozen or hung disk), the mapping worker
    processes (``serve --workers``) and how many died mid-request; with ``serve --alerts``, the
    watcher's evaluations, failed evaluations and deliveries."""
    sink = request.app.state.sink
    listing_error = None
    try:  # folder listings (100k spool files: 0.27 s), off the loop and off the pages' pool
        quarantined, pending = await asyncio.to_thread(lambda: (sink.quarantined_files, sink.pending_files))
    except OSError as e:  # no descriptors left, EIO: said, not a 500
        quarantined = pending = None
        listing_error = f"the spool folder cannot be listed: {e}"
    stalled = getattr(sink, "stalled_for", None)  # a frozen disk: no error, no progress
    out: dict[str, Any] = {
        "status": "degraded" if sink.last_ingest_error or quarantined or listing_error or stalled else "ok",
        "version": __version__,
        "stored_spans": sink.stored_spans,
        "rejected_spans": sink.rejected_spans,
        "pushed_back_requests": sink.pushed_back,
        "incomplete_requests": sink.incomplete,
        "refused_requests": sink.refused,
        "pending_spool_files": pending,
        "quarantined_spool_files": quarantined,
        "last_ingest_error": sink.last_ingest_error or listing_error,
        "ingest_stalled_seconds": None if stalled is None else round(stalled, 1),
        "mapping_workers": sink.workers,
        "lost_workers": sink.lost_workers,
    }
    watcher = getattr(request.app.state, "alerts", None)  # an alerts.AlertWatcher, set by serve
    if watcher is not None:
        out["alerts"] = {
            "evaluations": watcher.evaluations,
            "failed_evaluations": watcher.errors,
            "last_error": watcher.last_error,
            "notifications": watcher.notifier.stats(),
        }
    return out


@api.get("/api/v1/stats", tags=["api"])
def stats(request: Request, window: Annotated[Window, Depends()]) -> dict[str, Any]:
    """Runs, calls, cost and average call latency in the window, in total and by model."""
    rows = _rollup(request, "stats", **asdict(window))
    total = (
        rows[0] if rows else {"runs": 0, "calls": 0, "usd": None, "avg_call_ms": None, "unpriced_calls": 0}
    )
    out = encode({k: total[k] for k in ("runs", "calls", "usd", "avg_call_ms", "unpriced_calls")})
    out["by_model"] = [encode(r) for r in rows[1:]]
    return out


def _cursor(row: dict[str, Any]) -> str:
    first_call = row["first_call"]  # None: the run's calls came without a start time (OTLP's 0)
    raw = json.dumps([None if first_call is None else first_call.isoformat(), row["trace_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[str | None, str]:
    try:
        first_call, trace_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(first_call, (str, type(None))) or not isinstance(trace_id, str):
            raise ValueError
        return first_call, trace_id
    except (ValueError, TypeError, RecursionError) as e:  # json recurses per nesting level: [[[[...
        raise HTTPException(400, f"runs: cursor: not a cursor this API gave out: {cursor!r}") from e


@api.get("/api/v1/runs", tags=["api"])
def runs(
    request: Request,
    window: Annotated[Window, Depends()],
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE, description="runs on a page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    """Runs (traces with model calls), newest first, a page at a time: name, service, feature,
    agent, times, calls, unpriced calls and cost."""
    after_call, after_trace = _after(cursor) if cursor else (None, None)
    params = asdict(window)
    page_params = {**params, "limit": limit, "after_call": after_call, "after_trace": after_trace}
    try:
        if _clickhouse(request):
            rows = serving.run_query(request.app.state.db, _RUNS_PAGE, **page_params)
        else:
            with _reading(request) as con:
                rows = run_custom(con, _RUNS_PAGE, **page_params)
    except RollupError as e:
        raise _unreachable(e) or HTTPException(400, str(e)) from e
    page = list(rows[:limit])
    more = len(rows) > limit
    return {
        "runs": [encode({k: v for k, v in r.items() if k != "first_call"}) for r in page],
        "next_cursor": _cursor(page[-1]) if more and page else None,
    }


def _find_trace(request: Request, prefix: str) -> str:
    """The one stored trace id starting with ``prefix`` (a unique prefix, as the CLI's `trace`
    takes), read as every other answer is: a read-only connection that does not ingest, so a
    store another process holds is 503 with ``Retry-After``, not a 400."""
    try:
        prefix = trace_prefix(prefix)  # a bad one is 400 before the store is opened
        if _clickhouse(request):
            return find_trace(request.app.state.db, prefix)
        with _reading(request) as con:
            return find_trace(con, prefix)
    except RollupError as e:
        status = 404 if str(e).startswith("no trace id") else 400
        raise _unreachable(e) or HTTPException(status, str(e)) from e


_MAX_NESTING = 64


@api.get("/api/v1/runs/{trace_id}", tags=["api"])
def run(request: Request, trace_id: str) -> dict[str, Any]:
    """One run as a tree: each span with its own cost (``usd``) and its subtree's."""
    trace_id = trace_id.strip().lower()
    if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
        trace_id = _find_trace(request, trace_id)
    rows = _rollup(request, "trace", trace_id=trace_id)
    if not rows:
        raise HTTPException(404, f"no spans for trace {trace_id}")
    roots: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for row in rows:  # depth first, each row's depth given: a stack rebuilds the tree
        node = encode({k: v for k, v in row.items() if not k.endswith("_repriced")})
        node["children"] = []
        # Nested _MAX_NESTING levels at most: a deeper span is a child of its ancestor at the
        # last of them (its "depth" still says where it is). A run nested 128 spans deep was a 500: past
        # the serializer's depth limit, a dict and a list a level.
        depth = min(row["depth"], _MAX_NESTING)
        del stack[depth:]
        (stack[-1]["children"] if stack else roots).append(node)
        stack.append(node)
    # Null when no call is priced (all unknown models, or no model call at all), as the run
    # lists' cost_usd and the CLI's `trace` say: never a $0 that no price gave.
    priced = [r["subtree_usd"] for r in rows if r["depth"] == 0 and r["subtree_usd"] is not None]
    total = sum(priced, Decimal(0)) if priced else None
    return {"trace_id": trace_id, **encode({"usd": total}), "spans": roots}


@api.get("/api/v1/rollups", tags=["api"])
def list_rollups() -> list[dict[str, Any]]:
    """The bundled rollups: name, what each answers, its parameters."""
    out = []
    for name in catalog.rollups():
        q = catalog.query(name)
        params = [
            {"name": p.name, "type": p.type, "required": p.required, "default": p.default, "help": p.help}
            for p in q.params
        ]
        out.append(
            {"name": q.cli_name, "about": q.about, "accepts": [*q.accepts(), "where"], "params": params}
        )
    return out


_OPENAPI_TYPES = {
    "TIMESTAMP": ("string", "date-time"),
    "DOUBLE": ("number", None),
    "INTEGER": ("integer", None),
}


def _rollup_parameters() -> list[dict[str, Any]]:
    """The query parameters of ``/api/v1/rollups/{name}`` for the OpenAPI document: every
    bundled rollup's (`/api/v1/rollups` lists which takes which), each named with the
    rollups that take it when not all do, and ``where``."""
    taking: dict[str, list[str]] = {}
    described: dict[str, tuple[str, str]] = {
        "days": ("DOUBLE", "a window of the last N days, ending at until")
    }
    names = catalog.rollups()
    for name in names:
        q = catalog.query(name)
        for p in q.params:
            described.setdefault(p.name, (p.type, p.help))
        for accepted in q.accepts():
            taking.setdefault(accepted, []).append(q.cli_name)
    described["group_by"] = (
        "VARCHAR",
        "group by this key: feature, agent, model, provider, service or any attribute",
    )
    out = []
    for param, rollups in taking.items():
        kind, about = described[param]
        schema_type, schema_format = _OPENAPI_TYPES.get(kind, ("string", None))
        schema: dict[str, Any] = {"type": schema_type}
        if schema_format:
            schema["format"] = schema_format
        if len(rollups) < len(names):
            about = f"{about} (only {', '.join(rollups)})"
        out.append({"name": param, "in": "query", "required": False, "schema": schema, "description": about})
    where = "KEY=VALUE: only calls whose attribute KEY is VALUE; repeat for more (a key twice: either value)"
    out.append({"name": "where", "in": "query", "required": False, "description": where,
                "schema": {"type": "array", "items": {"type": "string"}}, "explode": True})  # fmt: skip
    return out


# What every refusal answers (the app's handlers: a bad parameter is 400, never FastAPI's 422).
ERROR = {"application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}}}}}


@api.get(
    "/api/v1/rollups/{name}",
    tags=["api"],
    openapi_extra={"parameters": _rollup_parameters()},
    responses={
        400: {"description": "a parameter the rollup does not take, or a bad value", "content": ERROR},
        404: {"description": "no such rollup", "content": ERROR},
    },
)
def run_rollup(request: Request, name: str) -> dict[str, Any]:
    """Run one bundled rollup; its parameters as query parameters (``?days=7&feature=x``),
    checked as the CLI checks them (400 with the message). ``where=KEY=VALUE`` may be given
    more than once, as ``--where``."""
    try:
        catalog.query(name)
    except UnknownRollup as e:
        raise HTTPException(404, str(e)) from e
    # Only the rollup's own parameters got here (`_known_parameters`): rollup()'s other
    # keywords (reprice: a file on this server; arrow; now) are not the API's.
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != TOKEN_PARAM}
    if "where" in params:
        params["where"] = request.query_params.getlist("where")
    rows = _rollup(request, name, **params)
    return {
        "rollup": catalog.query(name).cli_name,
        "columns": list(getattr(rows, "columns", ())),
        "rows": [encode(r) for r in rows],
    }


router.include_router(api)
