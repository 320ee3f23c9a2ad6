"""Run a bundled rollup against a ClickHouse span store (the Collector's ``otel_traces``).

`rollup_clickhouse` is what ``rollup(name, db="clickhouse://...")`` calls: the rollup's own
SQL file, translated (`dialect.translate`) over the ClickHouse prelude, parameters bound by
the server. Answers come back as the DuckDB path gives them: the same column names, `Decimal`
money, naive UTC datetimes, NULL as None.

When the typed table that ``otel-costattr clickhouse init`` creates (``costattr_spans``,
filled by a materialized view as the Collector inserts) exists, the rollups read it instead
of extracting attributes from the Map columns on every query; once a settle has run there,
they read its settled calls as stored and only the rest of the typed rows (`ledger`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..rollups.catalog import Query
from ..rollups.errors import RollupError
from .client import SETTINGS, ClickHouseError, connect, server_line
from .ledger import UNSETTLED, ledger_exists, read_chain, unsettled
from .onetrace import trace_rows
from .prelude import calls_sql, spans_sql, where_param
from .settle import SETTLED_TABLE, needs_walk, settled_exists, walk_bounds
from .target import Target, is_clickhouse_url, parse_target
from .unstamped import priced_chunks, priced_params, priced_params_none
from .walk import walked_chunks, walked_params

__all__ = [
    "BACKFILL_PENDING", "TYPED_TABLE", "TYPED_VIEW", "UNSUPPORTED", "clickhouse_target", "contract",
    "rollup_clickhouse", "spans_relation", "translated", "typed_unfit", "where_values",
]  # fmt: skip

TYPED_TABLE = "costattr_spans"
logger = logging.getLogger(__name__)
# Rollups that read what ClickHouse does not keep (none today; --reprice is refused apart).
UNSUPPORTED: frozenset[str] = frozenset()


def clickhouse_target(db: object) -> Target | None:
    """``db`` as a ClickHouse `Target` (a `Target`, or a ``clickhouse://``/``chdb://`` URL),
    else None (a DuckDB path or connection). A malformed URL is a `RollupError`."""
    if isinstance(db, Target):
        return db
    if not is_clickhouse_url(db):
        return None
    try:
        return parse_target(str(db))
    except ValueError as e:
        raise RollupError(str(e)) from None


def spans_relation(client: Any, target: Target) -> str:
    """The typed table when ``clickhouse init`` made it, else the SELECT over the Collector's;
    `RollupError` (one line) when the Collector's table is not there (a reader prices
    unstamped calls from it, beside the typed table too)."""
    found = {
        row[0]
        for row in client.query(
            "SELECT name FROM system.tables"
            " WHERE database = {db:String} AND name IN ({typed:String}, {name:String})",
            parameters={"db": target.database, "typed": TYPED_TABLE, "name": target.table},
        ).result_rows
    }
    # Checked even beside the typed table: a reader prices unstamped calls from it.
    if target.table not in found:
        raise RollupError(target.no_table("; its clickhouse exporter creates it with create_schema"))
    _check_shape(client, target)
    if TYPED_TABLE in found:
        why = typed_unfit(client, target)
        if why is None:
            return TYPED_TABLE
        if (target.display(), why) not in _unfit_said:
            _unfit_said.add((target.display(), why))
            logger.warning(
                "otel-costattr: %s: %s not read (%s): reading %s's Map columns, slower",
                target.display(), TYPED_TABLE, why, target.table,
            )  # fmt: skip
    return spans_sql(target.table)


TYPED_VIEW = f"{TYPED_TABLE}_mv"
# The typed table's comment while `typed.initialise` copies the spans already stored: a
# table that still has it holds part of them (an init cut short), so no rollup reads it.
BACKFILL_PENDING = "otel-costattr: backfill not finished"
_unfit_said: set[tuple[str, str]] = set()


def typed_unfit(client: Any, target: Target) -> str | None:
    """Why the typed table, which exists, cannot answer for ``target``'s table (None: it
    can): its backfill did not finish (its rows would leave out spans stored before), its
    view is missing (it would miss every insert since), or its view fills it from another
    table (one typed table a database: a ``?table=`` of a second Collector pipeline read
    the first one's money)."""
    rows = client.query(
        "SELECT name, comment, dependencies_table FROM system.tables"
        " WHERE database = {db:String} AND name IN ({typed:String}, {view:String}, {t:String})",
        parameters={"db": target.database, "typed": TYPED_TABLE, "view": TYPED_VIEW, "t": target.table},
    ).result_rows
    found = {name: (comment, dependents) for name, comment, dependents in rows}
    if found.get(TYPED_TABLE, ("", []))[0] == BACKFILL_PENDING:
        return "the backfill of clickhouse init did not finish: run clickhouse init again"
    if TYPED_VIEW not in found:
        return f"{TYPED_VIEW}, which fills it, is missing: run clickhouse init again"
    if TYPED_VIEW not in found.get(target.table, ("", []))[1]:
        return f"{TYPED_VIEW} fills it from another table than {target.table}"
    return None


# The Collector's columns the rollups read, and the kind of type each must have (a JSON
# SpanAttributes, as another exporter mode writes, is read as no Map can be).
_NEEDED = {"Timestamp": "DateTime64", "TraceId": "String", "SpanId": "String",
           "ParentSpanId": "String", "SpanName": "String", "ServiceName": "String",
           "SpanAttributes": "Map(", "Duration": "Int"}  # fmt: skip
_shape_checked: set[tuple[str, str, str]] = set()  # (server, database, table) found fit, this process


def _check_shape(client: Any, target: Target) -> None:
    """`RollupError` (one line) when the Collector's table lacks a column the rollups read or
    holds it in another type: a table of another shape failed every rollup with the whole
    generated SQL in a 12 KB line. Once a table a process."""
    key = (target.display(), target.database, target.table)
    if key in _shape_checked:
        return
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        parameters={"db": target.database, "t": target.table},
    ).result_rows
    types = {name: kind for name, kind in rows}
    for name, kind in _NEEDED.items():
        found = types.get(name)
        if found is None:
            raise RollupError(
                f"{target.display()}: {target.table} has no column {name} (not the Collector's table)"
            )
        if kind not in found.replace("LowCardinality(", ""):
            raise RollupError(
                f"{target.display()}: {target.table}.{name} is {found}, not {kind.rstrip('(')}: the"
                " rollups read the layout the Collector's clickhouse exporter writes by default (its"
                " Map columns; its JSON mode is not supported)"
            )
    _shape_checked.add(key)


def translated(
    q: Query,
    spans: str,
    where_keys: int = 0,
    settled: bool = False,
    walk: bool = True,
    unsettled: str = "true",
    ledger: bool = False,
) -> str:
    """``q`` in ClickHouse dialect over the relation ``spans`` (for tests and EXPLAIN), its
    calls filtered by ``where_keys`` ``--where`` keys (bound: `where_values`), reading the
    settled table when ``settled`` (`settle.settled_exists`), walking ancestors at read time
    unless no call needs it (``walk``: `settle.needs_walk`); with ``ledger``, the settled calls
    and of the spans rows only those passing ``unsettled`` (`ledger.unsettled`)."""
    from .dialect import translate

    return translate(q, calls_sql(where_keys, settled, walk, False, unsettled, ledger), spans)


def contract(
    client: Any,
    target: Target,
    spans: str,
    window: Mapping[str, Any],
    pricing: Any = None,
    call_row: bool = True,
) -> tuple[Callable[..., str], dict[str, Any]]:
    """The call contract for ``target``'s calls of ``window`` (`pricing_window`) over the
    spans relation ``spans`` (`spans_relation`), and its bound parameters (``--where``'s
    apart: `where_values`): the contract given the number of ``--where`` keys. With settled
    calls (`ledger`), those and only the typed rows no settle covered; else the settled facts
    joined when there are some (`settle`); walking (`settle.needs_walk`) and pricing
    (`unstamped.priced_params`, by ``pricing``) at read time only what is left. The
    contract's ``names_only`` (for naming a result's columns): with settled calls, the
    settled calls alone (the same columns, planned in a tenth of the time)."""
    ledger = spans == TYPED_TABLE and ledger_exists(client, target)
    if ledger:  # the settled calls, and of the typed rows only what no settle covered
        test, params = unsettled(client, spans, read_chain(client))
        settled, facts = False, None
    else:
        test, params = "true", {}
        settled = settled_exists(client, target)
        facts = SETTLED_TABLE if settled else None
    left = test != "false"  # some typed rows are read as calls
    bounds: dict[str, Any] = {}
    walked: dict[str, Any] | None = {}
    if ledger and left and test != UNSETTLED.replace("{typed}", spans):
        # The bound test reads few rows: those that need a walk are walked here (walk.py),
        # or when too many, in SQL within bound ancestors (settle.walk_bounds).
        walked = walked_params(client, spans, dict(window), (test, params))
        if walked is None:
            walked = {}
            bounds = walk_bounds(client, spans, dict(window), (test, params))
        walk = bool(bounds)
    else:
        walk = left and needs_walk(client, spans, dict(window), settled, (test, params))
    priced = (
        priced_params(client, target.table, spans, window, pricing, facts, (test, params))
        if left
        else priced_params_none()
    )
    params = {**params, **bounds, **walked}

    def prelude(where_keys: int, names_only: bool = False) -> str:
        if names_only and ledger:
            # The same columns, from the settled calls alone: ClickHouse plans the typed
            # rows' part (its walk, joins and LIMIT BY) even to name a result's columns,
            # 100-200 ms of a rollup at 10M spans between two settles.
            return calls_sql(where_keys, False, False, call_row, "false", True)
        return calls_sql(
            where_keys,
            settled,
            walk,
            call_row,
            test,
            ledger,
            bool(bounds),
            priced_chunks(priced),
            walk_traces="costattr_walk_traces" in bounds,
            walked_chunks=walked_chunks(walked),
        )

    return prelude, {**priced, **params}


def where_values(where: Sequence[tuple[str, list[str]]]) -> dict[str, Any]:
    """The bound parameters of ``--where`` (from `dimensions.where_pairs`): each key and its
    values by position, never SQL text."""
    out: dict[str, Any] = {}
    for pos, (key, matches) in enumerate(where, start=1):
        key_param, values_param = where_param(pos)
        out[key_param], out[values_param] = key, list(matches)
    return out


_WINDOWED = re.compile(r"\b(?:costattr_calls|costattr_runs|costattr_runs_unpriced)\(")


def pricing_window(q: Query, values: Mapping[str, Any]) -> dict[str, Any]:
    """The bounds (since, until, service, trace) of the calls ``q`` reads, for pricing the unstamped
    ones: a bound the rollup passes as given to every call of the contract, else none (compare
    and forecast read before ``since``: all unstamped calls before ``until`` are priced)."""
    from .dialect import _closing, _split_args

    sql = re.sub(r"--[^\n]*", "", q.sql)
    calls = [_split_args(sql[m.end() : _closing(sql, m.end() - 1)]) for m in _WINDOWED.finditer(sql)]
    out = {
        name: values.get(name) if calls and all(c[i:i + 1] == [f"${name}"] for c in calls) else None
        for i, name in ((0, "since"), (1, "until"), (2, "service"))
    }  # fmt: skip
    # A rollup of one run (trace): only that trace's calls are priced.
    out["trace"] = values.get("trace_id") if any(p.name == "trace_id" for p in q.params) else None
    return out


def _value(v: Any) -> Any:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def rollup_clickhouse(
    q: Query,
    target: Target,
    values: Mapping[str, Any],
    *,
    reprice: Any = None,
    pricing: Any = None,
    where: Sequence[tuple[str, list[str]]] = (),
) -> Any:
    """Rows of rollup ``q`` with bound ``values`` from ``target`` (a `Rows` list of dicts).
    ``pricing``: the table that prices calls stored without a cost (default: the bundled one,
    as the DuckDB exporter's default). ``where``: `dimensions.where_pairs`, as for DuckDB."""
    from ..rollups.queries import Rows

    if reprice is not None:
        raise RollupError("--reprice reads the stored attributes: DuckDB stores only, not ClickHouse")
    if q.name in UNSUPPORTED:
        raise RollupError(f"{q.cli_name} is not available on ClickHouse yet (DuckDB stores only)")
    try:
        client = connect(target)
        spans = spans_relation(client, target)
        call_row = q.name == "trace"  # only trace.sql reads it
        prelude, priced = contract(client, target, spans, pricing_window(q, values), pricing, call_row)
        priced.update(where_values(where))
        if q.name == "trace":  # one run's tree, walked in DuckDB over its rows (onetrace)
            names, rows = trace_rows(client, q, spans, values, priced, prelude(len(where)))
        else:
            from .dialect import translate

            bound = {**values, **priced}
            sql = translate(q, prelude(len(where)), spans, bound)
            result = client.query(sql, parameters=bound, settings=SETTINGS)
            names, rows = list(result.column_names), result.result_rows
            if not names:  # chDB names no column of an empty result: asked of the rollup
                sql = translate(q, prelude(len(where), names_only=True), spans, bound)
                described = client.query(f"DESCRIBE TABLE ({sql})", parameters=bound, settings=SETTINGS)
                names = [row[0] for row in described.result_rows]
    except RollupError:
        raise
    except ClickHouseError as e:
        raise RollupError(str(e)) from e
    except Exception as e:  # the server's error, in one line
        raise RollupError(f"{target.display()}: {server_line(e)}") from e
    # Columns that only carry the repricing (not done here) are left out, as DuckDB does.
    keep = [n for n in names if not n.endswith("_repriced")]
    out = Rows({n: _value(v) for n, v in zip(names, row, strict=True) if n in keep} for row in rows)
    out.columns = tuple(keep)
    return out
