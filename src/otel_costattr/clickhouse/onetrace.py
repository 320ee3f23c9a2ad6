"""The ``trace`` rollup on ClickHouse: one run's rows read from there, its tree walked by
``queries/trace.sql`` itself.

ClickHouse inlines every CTE (it refuses ``MATERIALIZED`` in a recursive WITH), so trace.sql's
six walks, which read each other, re-plan the contract and the spans at every round of every
walk: two minutes for a one-span run on chDB. A run is small, though, so its rows are read
from ClickHouse once, then walked where the walk is cheap:

1. the trace's spans rows (the same relation every rollup reads there), each with the row key
   that names it (`prelude.row_key`);
2. its calls, from the ClickHouse call contract (``costattr_calls(..., p_trace := ...)``,
   priced there and attributed there: the same rules and code every other rollup uses);
3. both as tables of an in-memory DuckDB, where ``costattr_calls`` is those calls with
   ``call_row`` the spans row's ``rowid`` (what trace.sql joins on), then trace.sql as it is.

Nothing of the tree is written twice; the differential test checks every run row for row. A
span the Collector wrote twice (an exporter retry) is read once, as every rollup counts it
on ClickHouse and as the DuckDB store keeps it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

from .client import SETTINGS
from .prelude import row_key

__all__ = ["trace_rows"]

_ROW_KEY = "costattr_row_key"
_CALLS = """-- @about the calls of one trace, by the ClickHouse call contract
-- @param trace_id VARCHAR  the trace
SELECT * FROM costattr_calls(NULL, NULL, NULL, NULL, NULL, p_trace := $trace_id)
"""
# The calls as trace.sql's costattr_calls gives them: call_row is the spans row's rowid.
_MACRO = f"""
CREATE MACRO costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
SELECT c.* EXCLUDE (call_row), s.rowid AS call_row
FROM run_calls AS c JOIN spans AS s ON s.{_ROW_KEY} = c.call_row
"""
_SIMPLE = {
    "String": pa.string(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "UInt8": pa.uint8(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Float64": pa.float64(),
    "Bool": pa.bool_(),
}


def _arrow_type(kind: str) -> pa.DataType | None:
    """The Arrow type of a ClickHouse column type; None for a Map (trace.sql reads none)."""
    while (m := re.fullmatch(r"(?:Nullable|LowCardinality)\((.*)\)", kind)) is not None:
        kind = m.group(1)
    if kind.startswith("Map("):
        return None
    if kind.startswith("DateTime64"):
        return pa.timestamp("us")
    if m := re.fullmatch(r"Decimal\((\d+),\s*(\d+)\)", kind):
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    return _SIMPLE[kind]


def _naive(v: Any) -> Any:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def _table(client: Any, sql: str, params: Mapping[str, Any]) -> pa.Table:
    """The rows of ``sql`` as an Arrow table of its typed columns (Maps left out)."""
    result = client.query(sql, parameters=dict(params), settings=SETTINGS)
    names, kinds = list(result.column_names), [t.name for t in result.column_types]
    if not names:  # chDB names no columns when no rows come back
        described = client.query(f"DESCRIBE ({sql})", parameters=dict(params), settings=SETTINGS)
        names, kinds = [r[0] for r in described.result_rows], [r[1] for r in described.result_rows]
    columns = list(zip(*result.result_rows, strict=True)) if result.result_rows else [()] * len(names)
    arrays, kept = [], []
    for name, kind, column in zip(names, kinds, columns, strict=True):
        arrow = _arrow_type(kind)
        if arrow is not None:
            arrays.append(pa.array([_naive(v) for v in column], type=arrow))
            kept.append(name)
    return pa.Table.from_arrays(arrays, names=kept)


def trace_rows(
    client: Any,
    q: Any,
    spans: str,
    values: Mapping[str, Any],
    bound: Mapping[str, Any],
    prelude: str,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of the trace rollup ``q`` for ``values["trace_id"]`` over the
    ClickHouse spans relation ``spans``; ``bound``: the calls query's other parameters (the
    priced calls, the ``--where`` values); ``prelude``: the call contract as `prelude.calls_sql`
    rendered it for this store and query."""
    from ..rollups.custom import custom_query
    from ..store.database import quiet
    from .dialect import translate

    relation = spans if spans.isidentifier() else f"({spans})"
    trace_id = values["trace_id"]
    spans_table = _table(  # noqa: F841 (DuckDB reads it by name)
        client,
        # a span the Collector wrote twice is one span, as in the DuckDB store
        f"SELECT *, {row_key()} AS {_ROW_KEY} FROM {relation} AS spans WHERE trace_id = lower({{t:String}})"
        " LIMIT 1 BY trace_id, span_id",
        {"t": trace_id},
    )
    calls = translate(custom_query("trace_calls", _CALLS), prelude, spans, {**bound, "trace_id": trace_id})
    calls_table = _table(client, calls, {**bound, "trace_id": trace_id})  # noqa: F841
    con = quiet(duckdb.connect())
    try:
        con.execute("CREATE TABLE spans AS SELECT * FROM spans_table ORDER BY start_time, span_id")
        con.execute("CREATE TABLE run_calls AS SELECT * FROM calls_table")
        con.execute(_MACRO)
        cur = con.execute(q.sql, {k: v for k, v in values.items() if f"${k}" in q.sql})
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()
