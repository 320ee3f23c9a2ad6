"""Run a bundled rollup against a span store: `rollup`, and repricing for it.

Repricing: ``rollup(..., reprice=table_or_files)`` loads that pricing table into TEMP tables
(`load_prices`) and recomputes each call's cost from its stored tokens in SQL
(``_reprice.sql``), exactly as `compute_cost` would; rollups then show ``usd_repriced``
next to the ``usd`` stamped at the time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import duckdb

from ..clickhouse.runner import clickhouse_target, rollup_clickhouse
from ..cost import billing
from ..cost.billing import render_sql
from ..pricing.entry import ModelEntry
from ..pricing.model import MAX_RATE_DECIMALS, decimal_places
from ..pricing.table import PriceTable, load_pricing
from ..semconv import CACHE_WRITE_1H_KEYS, SERVICE_TIER_KEYS
from ..store import database as store
from .catalog import Query, contract_prelude, prelude, query
from .dimensions import (
    check_key,
    dimension_call,
    dimension_column,
    dimension_macro,
    render_group,
    where_pairs,
)
from .errors import RollupError, RollupParamError, UnknownRollup, first_line
from .facts import FAST, fast_query, one_state
from .params import WINDOW_PARAMS, bind

__all__ = ["Rows", "load_prices", "rollup"]

Database = str | os.PathLike[str] | duckdb.DuckDBPyConnection
Reprice = PriceTable | Iterable[str | os.PathLike[str]]

_REPRICED_SUFFIX = "_repriced"
# Rates are loaded per million tokens as DECIMAL(38, 12) and a call's cost is
# (tokens x rates) x 0.000001 as DECIMAL(38, 18): exact for any rate with up to 12 decimal
# places (far finer than any price list; a price file with a finer one, as written or after
# its multipliers, fails at load: pricing.model.MAX_RATE_DECIMALS).
_RATE_PLACES = MAX_RATE_DECIMALS


# --- connections -----------------------------------------------------------------------


@contextmanager
def _connection(db: Database, *, ingest: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """``db`` itself when it is a connection; else a read-only connection, closed after, that
    first ingests what the spool holds unless ``ingest`` is False (`store.connect`)."""
    if isinstance(db, duckdb.DuckDBPyConnection):
        yield db
        return
    if not isinstance(db, (str, os.PathLike)):
        raise RollupError(f"db must be a path or a DuckDB connection, got {type(db).__name__}")
    path = os.fspath(db)
    if not os.path.isfile(path):
        raise RollupError(store.missing_database(path))
    con = _open(path, ingest)
    try:
        yield con
    finally:
        con.close()


def _open(path: str, ingest: bool = True) -> duckdb.DuckDBPyConnection:
    """Read-only, retrying while a writer holds the file. An otel-costattr database an older
    version wrote is upgraded first, before its spool is ingested (store.connect does both);
    any other DuckDB file is refused untouched rather than given a schema; an older file
    that cannot be upgraded here (no write access) is refused in one line rather than read
    with queries it cannot answer."""
    try:
        con = store.connect(path, read_only=True, migrate=False, ingest=False)  # a look first
        try:
            applied = store.applied_migrations(con)
        except BaseException:
            con.close()
            raise
        if applied is None:
            con.close()
            raise RollupError(f"{path}: not an otel-costattr database (no costattr_migrations table)")
        try:
            store.check_known(applied)
        except store.StoreError as e:
            con.close()
            raise RollupError(f"{path}: {e}") from None
        if _current(applied) and not (ingest and store.pending_spool(path)):
            return con
        con.close()
        con = store.connect(path, read_only=True, ingest=ingest)
        if _current(store.applied_migrations(con)):
            return con
        con.close()
        raise RollupError(
            f"{path}: written by an older otel-costattr and not upgraded: it needs to be opened "
            f"once by a process that may write it (otel-costattr store repair --db {path})"
        )
    except store.StoreError as e:
        raise RollupError(str(e)) from e


def _current(applied: set[str] | None) -> bool:
    """Whether a store has every migration this version knows."""
    return applied is not None and applied >= {m.name for m in store.MIGRATIONS}


def connection(db: Database, *, ingest: bool = True) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """A DuckDB store opened as `rollup` opens it (``db``: a path, or a connection given back
    as it is): read-only, an older version's file upgraded first, any other DuckDB file
    refused; with ``ingest`` False the spool is left to the process that writes (`serve`'s
    pages), else ingested first. Raises `RollupError`."""
    return _connection(db, ingest=ingest)


def _prepare(
    con: duckdb.DuckDBPyConnection,
    *,
    repricing: bool = False,
    where: list[tuple[str, list[str]]] | None = None,
    group_by: str | None = None,
    calls: str | None = None,
) -> None:
    """Create the TEMP relations the rollups read (idempotent, cheap); ``calls``: SQL that then
    redefines where the calls come from (`clickhouse.local.CALLS_MACRO`); with ``repricing``,
    ``where`` (from `dimensions.where_pairs`) or ``group_by`` (a checked key), the variant of
    ``costattr_calls`` that reads ``costattr_repriced``, keeps the calls matching
    ``costattr_where`` and carries each call's ``group_value`` of the key in ``costattr_group``."""
    try:
        con.execute(contract_prelude())
        if calls is not None:
            con.execute(calls)
        con.execute(dimension_macro())
        con.execute(prelude("_runs_unpriced.sql"))
        con.execute(prelude("_per.sql"))
        if repricing or where or group_by is not None:
            con.execute(
                selected_calls_prelude(
                    repricing=repricing,
                    keys=len(where or ()),
                    grouped=group_by is not None,
                    known=[key for key, _ in where or ()],
                    group_by=group_by,
                )
            )
            con.execute("DELETE FROM costattr_where")
            con.execute("DELETE FROM costattr_group")
        if where:
            keys, values = (list(c) for c in zip(*where, strict=True))
            con.execute(
                "INSERT INTO costattr_where SELECT unnest(range(1, $n + 1)), unnest($keys), unnest($values)",
                {"n": len(keys), "keys": keys, "values": values},
            )
        if group_by is not None:
            con.execute("INSERT INTO costattr_group VALUES ($key)", {"key": group_by})
    except duckdb.Error as e:
        raise _error(e) from e


def selected_calls_prelude(
    *,
    repricing: bool,
    keys: int,
    grouped: bool = False,
    known: Sequence[str] = (),
    group_by: str | None = None,
) -> str:
    """``_calls_repriced.sql`` rendered: the join to the repriced costs when ``repricing``,
    one test per ``--where`` key (by position in ``costattr_where``: the SQL holds no value
    nor key, and each test's key and values are uncorrelated lookups, read once), and the
    column ``group_value`` when ``grouped`` (the key, ``costattr_group``'s one row, likewise).
    A key given in ``known`` (the ``--where`` keys in order) or as ``group_by`` that is a
    column (`dimensions.dimension_column`) reads that column instead: a name from a fixed
    list, never the key's text. (The macro on a key looked up in a table is not folded: it
    read the JSON column of every call, per-feature --group-by app.tenant 2.4 s of CPU against
    0.9 s at 10M spans; on a bound parameter, per_group's $group_by, DuckDB folds it.)"""

    def value(i: int | None) -> str:
        key = group_by if i is None else (known[i - 1] if i <= len(known) else None)
        column = dimension_column(key) if key is not None else None
        if column is not None:
            return f"c.{column}"
        lookup = (
            "(SELECT key FROM costattr_group)"
            if i is None
            else f"(SELECT key FROM costattr_where WHERE pos = {i})"
        )
        return dimension_call(lookup, "c")

    tests = [
        f"coalesce(list_contains((SELECT match_values FROM costattr_where WHERE pos = {i}),"
        f" {value(i)}), false)"
        for i in range(1, keys + 1)
    ]
    join = "LEFT JOIN costattr_repriced AS r ON r.trace_id = c.trace_id AND r.span_id = c.span_id"
    group = f", {value(None)} AS group_value"
    sql = prelude("_calls_repriced.sql")
    sql = sql.replace("{{usd_repriced}}", "r.usd" if repricing else "NULL::DECIMAL(38, 18)")
    sql = sql.replace("{{repriced_join}}", join if repricing else "")
    sql = sql.replace("{{group_value}}", group if grouped else "")
    return sql.replace("{{where}}", " AND ".join(tests) or "true")


class Rows(list):  # type: ignore[type-arg]
    """A rollup's rows (a list of dicts) with its column names, known even when it has no rows
    (a CSV header for an empty answer), and on DuckDB their SQL types (``types``: column name
    to DuckDB's name of the type, such as ``DECIMAL(38,12)``), known too."""

    columns: tuple[str, ...] = ()
    types: Mapping[str, str] = MappingProxyType({})  # replaced per instance


def _rows(
    columns: Iterable[str], rows: Iterable[dict[str, Any]], types: Mapping[str, str] | None = None
) -> Rows:
    out = Rows(rows)
    out.columns = tuple(columns)
    if types:
        out.types = {c: types[c] for c in out.columns if c in types}
    return out


def _run(con: duckdb.DuckDBPyConnection, sql: str, values: Mapping[str, Any], *, arrow: bool = False) -> Any:
    """The rows of ``sql``; with ``arrow``, a ``pyarrow.Table``."""
    try:
        if arrow:
            return con.sql(sql, params=dict(values)).to_arrow_table()
        cur = con.execute(sql, dict(values))
        names = [d[0] for d in cur.description]
        types = {d[0]: str(d[1]) for d in cur.description}
        return _rows(names, (dict(zip(names, row, strict=True)) for row in cur.fetchall()), types)
    except duckdb.Error as e:
        raise _error(e) from e


def _error(e: duckdb.Error) -> RollupError:
    if isinstance(e, duckdb.CatalogException) and "name spans does not exist" in str(e):
        return RollupError("no spans table: is this an otel-costattr database?")
    line = first_line(e)
    if isinstance(e, duckdb.InvalidInputException) and _OWN_CHECK.match(line):
        # A rollup's own error('name: param: ...') refusing a value: its words, not DuckDB's.
        return RollupParamError(line.removeprefix(_INVALID_INPUT))
    return RollupError(line)


_INVALID_INPUT = "Invalid Input Error: "
_OWN_CHECK = re.compile(rf"{_INVALID_INPUT}[a-z0-9_]+: [a-z0-9_]+: ")


# --- repricing -------------------------------------------------------------------------


def _pricing(reprice: Reprice) -> PriceTable:
    """``reprice`` as a table: a `PriceTable`, or user price files over the bundled table
    (`PricingError` when one does not load); `RollupParamError` for anything else."""
    if isinstance(reprice, PriceTable):
        return reprice
    if isinstance(reprice, (str, os.PathLike)):
        reprice = [reprice]
    if not isinstance(reprice, (list, tuple)) or not all(isinstance(f, (str, os.PathLike)) for f in reprice):
        raise RollupParamError(f"reprice: expects a PriceTable or price file paths, got {reprice!r}")
    return load_pricing(list(reprice))


def _check_places(value: Decimal, where: str) -> None:
    if decimal_places(value) > _RATE_PLACES:  # a trailing zero a product left is no place
        raise RollupError(f"{where}: rate {value} has more than {_RATE_PLACES} decimal places")


_PRICE_COLUMNS = (
    ("pricing_version", "VARCHAR"), ("provider", "VARCHAR"), ("model", "VARCHAR"),
    ("since", "DATE"), ("valid_from", "TIMESTAMP"), ("valid_until", "TIMESTAMP"),
    ("service_tier", "VARCHAR"), ("above", "BIGINT"), ("window_start", "INTEGER"),
    ("window_end", "INTEGER"), *((key, "DECIMAL(38, 12)") for key in billing.STORED_RATES),
)  # fmt: skip


def load_prices(con: duckdb.DuckDBPyConnection, table: PriceTable) -> int:
    """Load ``table`` into the TEMP table ``costattr_prices`` and return its row count: one
    row per model, price period, service tier ('standard', 'batch', ...), long-context tier
    (``above`` input tokens; NULL for the base rates) and time-of-day window (seconds after
    UTC midnight, ``window_start`` to ``window_end``; NULL outside windows), in USD per
    million tokens with the documented fallbacks applied (no cache_read rate: the input
    rate, and so on). ``valid_from`` / ``valid_until`` bound the call start times a row
    prices (NULL: unbounded; the first period also prices calls before its ``since``).
    """
    rows = []
    for entry in table.models():
        where = f"{entry.provider}/{entry.id}"
        periods = entry.periods
        for i, period in enumerate(periods):
            valid_from = None if i == 0 else dt.datetime.combine(period.since, dt.time())
            nxt = periods[i + 1].since if i + 1 < len(periods) else None
            valid_until = None if nxt is None else dt.datetime.combine(nxt, dt.time())
            levels = [
                (name, above, None, rates)
                for name, schedule in [("standard", period.standard), *period.service_tiers.items()]
                for above, rates in [(None, schedule.rates), *((t.above, t.rates) for t in schedule.tiers)]
            ]
            levels += [("standard", None, (w.start, w.end), w.rates) for w in period.windows]
            for tier_name, above, window, rates in levels:
                stored = rates.ints[: len(billing.STORED_RATES)]  # no per-modality columns
                per_million = [Decimal(v).scaleb(-rates.scale) for v in stored]
                for value in per_million:
                    _check_places(value, where)
                rows.append(
                    (table.version, entry.provider, entry.id, period.since, valid_from, valid_until,
                     tier_name, above, *(window or (None, None)), *(str(v) for v in per_million))
                )  # fmt: skip
    con.execute(prelude("_prices.sql"))
    if rows:
        select = ", ".join(f"unnest(${name})::{typ}" for name, typ in _PRICE_COLUMNS)
        columns = {
            name: list(values)
            for (name, _), values in zip(_PRICE_COLUMNS, zip(*rows, strict=True), strict=True)
        }
        con.execute(f"INSERT INTO costattr_prices SELECT {select}", columns)
    return len(rows)


Resolve = Callable[[str | None, str | None], ModelEntry | None]


def _map_models(
    con: duckdb.DuckDBPyConnection, table: PriceTable, window: Mapping[str, Any], resolve: Resolve | None
) -> None:
    """Resolve each (reported model, reported provider) of the window with ``table``'s own
    rules (normalisation, match rules, provider fallbacks), or with ``resolve`` (what-if: the
    target for the calls it selects), into ``costattr_model_map``. An unknown snapshot of a
    known request model is that request model, as the processor prices it
    (`cost.approximate`), when every request model reported beside it says the same: priced
    at its price with the table's rules, and given to ``resolve`` as that model."""
    rows = con.execute(
        "SELECT DISTINCT coalesce(response_model, request_model), provider, request_model "
        "FROM costattr_calls($since, $until, $service, $feature, $agent, p_trace := $trace_id)",
        dict(window),
    ).fetchall()
    requests: dict[tuple[Any, Any], set[Any]] = {}
    for model, provider, request in rows:
        requests.setdefault((model, provider), set()).add(request)
    mapped = []
    for (model, provider), asked in requests.items():
        if model is None:  # a call naming no model: nothing to map it by, never repriced
            continue
        entry = (resolve or table.resolve)(model, provider)
        if entry is None:
            # An unknown snapshot of a known request model is that model, as the processor
            # priced it: for what-if too (--from gpt-4o-mini selects openai-v2's
            # gpt-4o-mini-2025-01-01 calls, which per-model shows as gpt-4o-mini).
            snapshots = {table.approximate(model, request, provider) for request in asked}
            if len(snapshots) == 1 and None not in snapshots:
                entry = (resolve or table.resolve)(snapshots.pop(), provider)
        if entry is not None:
            mapped.append((model, provider, entry.provider, entry.id))
    if mapped:
        model, provider, price_provider, price_model = (list(c) for c in zip(*mapped, strict=True))
        con.execute(
            "INSERT INTO costattr_model_map SELECT unnest($model), unnest($provider),"
            " unnest($price_provider), unnest($price_model)",
            {
                "model": model,
                "provider": provider,
                "price_provider": price_provider,
                "price_model": price_model,
            },
        )


def _reprice(
    con: duckdb.DuckDBPyConnection,
    table: PriceTable,
    values: Mapping[str, Any],
    resolve: Resolve | None = None,
) -> None:
    """Fill ``costattr_repriced`` (on a connection `_prepare` made ready for repricing) with
    the cost of each call of the window ``values`` recomputed from its stored tokens at the
    prices of the entry ``resolve`` (default: ``table.resolve``) gives its reported model."""
    window = {k: values.get(k) for k in (*WINDOW_PARAMS, "trace_id")}
    load_prices(con, table)
    _map_models(con, table, window, resolve)
    sql = render_sql(prelude("_reprice.sql"))  # the billing rule's buckets, rendered in
    try:
        con.execute(
            sql,
            {
                **window,
                "tier_paths": [f'$."{k}"' for k in SERVICE_TIER_KEYS],
                "write_1h_paths": [f'$."{k}"' for k in CACHE_WRITE_1H_KEYS],
            },
        )
    except duckdb.Error as e:
        raise RollupError(f"repricing failed: {first_line(e)}") from e


def _clear_reprice(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM costattr_repriced")
    con.execute("DELETE FROM costattr_where")
    con.execute("DELETE FROM costattr_group")
    con.execute("DROP TABLE IF EXISTS costattr_model_map")


# --- the API ---------------------------------------------------------------------------


def rollup(
    name: str,
    db: Database,
    *,
    reprice: Reprice | None = None,
    where: Any = None,
    arrow: bool = False,
    now: dt.datetime | None = None,
    **params: Any,
) -> Any:
    """Run the bundled rollup ``name`` against ``db`` (a path, opened read-only with retry
    while an exporter holds the lock, an open DuckDB connection, or a ClickHouse URL:
    ``clickhouse://...``, ``chdb:///path``, see `otel_costattr.clickhouse`) and return its rows
    as dicts. Money is `Decimal` USD; None means unpriced.

    ``params``: ``days`` or ``since``/``until`` (a window on each model call's start time,
    UTC; ``until`` exclusive), ``service``, ``feature``, ``agent``, and what the query
    declares (see ``otel_costattr.rollups.catalog.query(name).params``). ``now``: the time
    relative windows (``days``, ``7d``) and ``forecast``'s month count from (a datetime, UTC
    when naive; default: the time of the call). ``reprice``: a `PriceTable` or user price files
    layered over the bundled table; adds ``usd_repriced`` columns computed from the stored
    tokens. ``group_by``: a dimension (as ``where``'s keys); the answer per value of it, with
    columns ``key`` and ``value`` in front (`dimensions.render_group` says what that means;
    run lists and ``trace`` refuse it). ``where``: only the calls whose dimensions
    (`dimensions`: ``model``, ``provider``, ``service``, ``feature``, ``agent`` or any
    identity key, such as ``user.id``) have these
    values: ``{"app.tenant": "acme"}`` or ``["app.tenant=acme", "user.id=u1", "user.id=u2"]``
    (a key given twice matches either value). Raises `UnknownRollup`, `RollupParamError` or
    `RollupError` (and `PricingError` for a ``reprice`` file that does not load). The list
    returned also carries ``.columns``, the column names, even when there are no rows; with
    ``arrow=True`` the answer is a ``pyarrow.Table`` instead (money as decimals;
    ``.to_pandas()`` / ``polars.from_arrow`` when those are installed).
    """
    if not isinstance(name, str):
        raise UnknownRollup(f"a rollup is named by text (see otel_costattr.rollups()), got {name!r}")
    q = query(name)
    group_by = params.pop("group_by", None) if q.groups else None
    values = bind(q, params, now=now, also=("where",))
    if q.name == "trace" and isinstance(values.get("trace_id"), str):
        values["trace_id"] = _whole_trace_id(db, values["trace_id"])
    if group_by is not None:
        group_by = values["group_by"] = check_key(q.name, "group_by", group_by)
    filters = where_pairs(q.name, where)
    target = clickhouse_target(db)  # clickhouse:// or chdb:// (the ClickHouse backend)
    if target is not None:
        if group_by is not None:
            raise RollupParamError(
                f"{q.name}: --group-by is not available on ClickHouse yet for this rollup "
                "(per-group, compare and forecast take it there; --where works everywhere)"
            )
        plain = dataclasses.replace(q, sql=render_group(q.sql, False))
        if reprice is not None and _REPRICED_SUFFIX in plain.sql:
            return _repriced_clickhouse(plain, target, values, _pricing(reprice), filters, arrow)
        rows = rollup_clickhouse(plain, target, values, where=filters)
        types, schema = duckdb_shape(plain, values)
        rows.types = {c: types[c] for c in rows.columns if c in types}
        return _arrow(rows, schema) if arrow else rows
    table = _pricing(reprice) if reprice is not None else None
    with _connection(db) as con:
        return _answer(con, q, values, table, filters=filters, group_by=group_by, arrow=arrow)


def _whole_trace_id(db: Database, given: str) -> str:
    """The ``trace`` rollup's id: 32 hex digits as given, else the one stored id the prefix
    starts (as the ``trace`` command and the API take it); `RollupParamError` for what is not
    hex, `RollupError` when no stored id or several start so."""
    from .explain import find_trace, trace_prefix  # explain imports this module

    try:
        text = trace_prefix(given)
    except RollupError as e:
        raise RollupParamError(f"trace: trace_id: {e}") from e
    return text if len(text) == 32 else find_trace(db, text)


def _answer(
    con: duckdb.DuckDBPyConnection,
    q: Query,
    values: dict[str, Any],
    table: PriceTable | None,
    *,
    filters: list[tuple[str, list[str]]] | None = None,
    group_by: str | None = None,
    arrow: bool = False,
    calls: str | None = None,
) -> Any:
    """``q``'s answer on ``con``, repriced with ``table`` when given (``calls``: as `_prepare`)."""
    _prepare(con, repricing=table is not None, where=filters, group_by=group_by, calls=calls)
    try:
        if table is not None:
            _reprice(con, table, values)
        general = (render_group(q.sql, group_by is not None), values)
        if q.name in FAST and table is None and not filters and group_by is None and calls is None:
            with one_state(con):  # the facts and the pending runs read as of one state
                fast = fast_query(con, q.name, values)  # the rollup facts, when they answer it
                rows = _run(con, *(fast or general), arrow=arrow)
        else:
            rows = _run(con, *general, arrow=arrow)
    finally:
        if table is not None or filters or group_by is not None:
            _clear_reprice(con)
            _prepare(con, calls=calls)  # back to the plain costattr_calls on a caller's connection
    keep = [c for c in _names(rows) if table is not None or not c.endswith(_REPRICED_SUFFIX)]
    if arrow:
        return rows.select(keep)
    return _rows(keep, ({k: row[k] for k in keep} for row in rows), rows.types)


def _repriced_clickhouse(
    q: Query,
    target: Any,
    values: dict[str, Any],
    table: PriceTable,
    filters: list[tuple[str, list[str]]],
    arrow: bool,
) -> Any:
    """A repriced rollup of a ClickHouse store: the window's calls selected there (``--where``
    applied there), then the DuckDB path over them in memory (`clickhouse.local`)."""
    from ..clickhouse.local import CALLS_MACRO, local_calls, reads_attributes, reads_spans
    from ..clickhouse.runner import pricing_window

    if any(p.name == "trace_id" for p in q.params):
        # One run's tree needs all its spans, keyed as onetrace keys them: not done here yet.
        raise RollupError(f"{q.cli_name} --reprice is not available on ClickHouse yet (DuckDB stores only)")
    with local_calls(
        target,
        pricing_window(q, values),
        where=filters,
        all_attributes=reads_attributes(q.sql),
        spans=reads_spans(q.sql),
    ) as con:
        return _answer(con, q, values, table, arrow=arrow, calls=CALLS_MACRO)


def _arrow(rows: Rows, schema: Any) -> Any:
    """A `Rows` answer (the ClickHouse backend's) as a ``pyarrow.Table`` in its column order,
    typed as the DuckDB store answers the same query (``schema``, `duckdb_shape`) whatever the
    rows hold: tables of one rollup concatenate, empty or not (a review: the types had
    followed the values, money as decimal128(12, 12) under $1, an empty answer all nulls)."""
    import pyarrow as pa

    fields = [schema.field(c) if c in schema.names else pa.field(c, pa.null()) for c in rows.columns]
    if not (any(pa.types.is_null(f.type) for f in fields) and rows):
        try:
            return pa.Table.from_pylist(list(rows), schema=pa.schema(fields))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a value the type cannot hold: typed by value, as the answer always was
    return pa.Table.from_pylist(list(rows)).select(rows.columns)


# An empty store of this version's schema, in memory, where a query's column types are read
# (`duckdb_shape`): made once a process, migrated in ~0.15 s; a lock for serve's threads.
_shape_store: duckdb.DuckDBPyConnection | None = None
_shape_lock = threading.Lock()
_SHAPES: dict[tuple[str, str, tuple[str, ...]], tuple[dict[str, str], Any]] = {}


def duckdb_shape(q: Query, values: Mapping[str, Any]) -> tuple[dict[str, str], Any]:
    """(DuckDB's type name of each column of ``q``, its Arrow schema), as the DuckDB store
    answers ``q``: the ClickHouse backend's answers carry them, so that ``--format parquet``
    and ``arrow=True`` give one schema on both stores, whatever the rows hold. Read from an
    empty in-memory store, once a query. ({}, an empty schema) when it cannot run there."""
    import pyarrow as pa

    global _shape_store
    key = (q.name, q.sql, tuple(sorted(values)))
    with _shape_lock:
        found = _SHAPES.get(key)
        if found is not None:
            return found
        try:
            if _shape_store is None:
                con = duckdb.connect(":memory:")
                store.migrate(con)
                _shape_store = con
            cur = _shape_store.cursor()
            try:
                types = dict(_answer(cur, q, dict(values), None).types)
                schema = _answer(cur, q, dict(values), None, arrow=True).schema
            finally:
                cur.close()
        except (duckdb.Error, RollupError):
            return {}, pa.schema([])
        found = types, schema
        if len(_SHAPES) >= 256:
            _SHAPES.clear()
        _SHAPES[key] = found
        return found


def _names(rows: Any) -> list[str]:
    return list(rows.column_names if hasattr(rows, "column_names") else rows.columns)
