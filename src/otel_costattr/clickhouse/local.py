"""A window of a ClickHouse store's calls, in an in-memory DuckDB: where repricing runs.

Repricing (``--reprice``, ``whatif``) is ``_reprice.sql`` and ``_whatif.sql``, DuckDB SQL
that joins the calls to a price table loaded from Python (periods, service tiers,
time-of-day windows, long-context tiers chosen per call). Rather than write those rules a
second time in ClickHouse's dialect, each engine does what it does well, as for ``trace``
(`onetrace`):

1. ClickHouse selects the calls of the window through its call contract (attributed and
   priced there, ``--where`` applied there), as one Arrow table: the contract's columns, the
   attributes as JSON, only the keys repricing reads unless the query reads others;
2. for a rollup over runs or tool spans, the root and tool spans of the traces with calls in
   the window (what ``costattr_runs`` and ``step_jumps`` read of ``spans``);
3. an in-memory DuckDB with the store's own schema (`store.database.migrate`) holds both;
   `CALLS_MACRO` makes ``costattr_attributed`` read the pulled calls, so the rollups'
   contract prelude, ``_calls_repriced.sql``, ``_reprice.sql`` and the rollup's own SQL run
   there unchanged.

The rows cross once, columnar; nothing is aggregated before repricing (a long-context tier
prices per call, a period per start time), so the time grows with the window's calls: at 1M
spans most of it is ClickHouse's own call contract (README, "When one machine is not
enough"). The differential tests check every repriced rollup and whatif against DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from ..rollups.contract import ATTRIBUTE_CALL_COLUMNS, CALL_COLUMNS
from ..rollups.errors import RollupError, first_line
from ..semconv import CACHE_WRITE_1H_KEYS, SERVICE_TIER_KEYS
from .client import SETTINGS, ClickHouseError, connect
from .prelude import calls_sql
from .target import Target

__all__ = ["CALLS_MACRO", "fetch", "load", "local_calls", "reads_attributes", "reads_spans"]

# ClickHouse's Arrow output as DuckDB reads it best: text as text, not bytes or dictionaries.
_ARROW = {"output_format_arrow_string_as_string": 1, "output_format_arrow_low_cardinality_as_dictionary": 0}
_HEADER = """-- @about the calls of a window, by the ClickHouse call contract
-- @param since TIMESTAMP = NULL
-- @param until TIMESTAMP = NULL
-- @param service VARCHAR = NULL
-- @param feature VARCHAR = NULL
-- @param agent VARCHAR = NULL
"""
_CALLS = _HEADER + "SELECT * FROM costattr_calls($since, $until, $service, $feature, $agent)"
# costattr_runs reads the root spans, step_jumps the tool spans, of the runs it keeps: each
# is a run with a call in the window, so the traces of the window's calls bound them (the
# feature, agent and --where tests, applied after attribution, only narrow that set).
_SPANS = (
    _HEADER
    + """SELECT trace_id, span_id, parent_span_id, name, start_time, end_time, service_name,
       span_role, feature, agent_name, agent_version, tool_name
FROM spans
WHERE (parent_span_id IS NULL OR span_role = 'tool')
  AND trace_id IN (
    SELECT trace_id FROM spans AS s
    WHERE s.span_role = 'model_call'
      AND ($since IS NULL OR s.start_time >= $since)
      AND ($until IS NULL OR s.start_time < $until)
      AND ($service IS NULL OR s.service_name = $service))"""
)
# Run after the rollups' prelude (which defines costattr_attributed over spans): the pulled
# calls, already attributed, filtered by the window a query asks for (a rollup may read
# narrower windows than the one pulled: compare's two periods).
CALLS_MACRO = f"""
CREATE OR REPLACE TEMP MACRO costattr_attributed(
    p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
SELECT {", ".join((*CALL_COLUMNS, *ATTRIBUTE_CALL_COLUMNS))}, call_row
FROM costattr_window_calls
WHERE (p_since IS NULL OR start_time >= p_since)
  AND (p_until IS NULL OR start_time < p_until)
  AND (p_service IS NULL OR service_name = p_service)
  AND (p_trace IS NULL OR trace_id = lower(p_trace))
  AND (p_feature IS NULL OR feature = p_feature)
  AND (p_agent IS NULL OR agent_name = p_agent)
"""
# The attributes repricing reads (_reprice.sql: the service tier, 1-hour cache writes).
_REPRICING_KEYS = (*SERVICE_TIER_KEYS, *CACHE_WRITE_1H_KEYS)


def reads_spans(sql: str) -> bool:
    """Whether ``sql`` (a rollup) reads runs or spans: then the root and tool spans cross too."""
    return "costattr_runs" in sql or re.search(r"\b(?:FROM|JOIN)\s+spans\b", sql, re.I) is not None


def reads_attributes(sql: str) -> bool:
    """Whether ``sql`` (a rollup, rendered) reads a call's attributes beyond repricing's
    keys: then they cross whole (content was left out in ClickHouse already)."""
    return "attributes" in sql or "costattr_dimension" in sql or "{{dimension" in sql


def _naive(table: pa.Table) -> pa.Table:
    """ClickHouse's UTC timestamps as the store's naive UTC ones."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp(field.type.unit)))
    return table


def _arrow(client: Any, sql: str, params: Mapping[str, Any]) -> pa.Table:
    return _naive(client.query_arrow(sql, parameters=dict(params), settings={**SETTINGS, **_ARROW}))


def fetch(
    target: Target,
    window: Mapping[str, Any],
    *,
    where: Sequence[tuple[str, list[str]]] = (),
    all_attributes: bool = False,
    spans: bool = False,
) -> tuple[pa.Table, pa.Table | None]:
    """``target``'s calls of ``window`` (``since``, ``until``, ``service``, ``feature``,
    ``agent``; None or absent: unbounded) that match ``where`` (`dimensions.where_pairs`), and
    with ``spans`` the root and tool spans of their traces, as Arrow tables. Raises
    `RollupError` (one line) when ClickHouse cannot answer."""
    from ..rollups.custom import custom_query
    from .dialect import translate
    from .runner import contract, spans_relation, where_values

    bounds = {k: window.get(k) for k in ("since", "until", "service", "feature", "agent")}
    try:
        client = connect(target)
        relation = spans_relation(client, target)
        prelude, priced = contract(client, target, relation, {**bounds, "trace": None})
        bound = {**bounds, **priced, **where_values(where)}
        calls = translate(custom_query("window_calls", _CALLS), prelude(len(where)), relation, bound)
        if all_attributes:
            attributes = "toJSONString(attributes)"
        else:
            keys = ", ".join("'" + k.replace("'", "\\'") + "'" for k in _REPRICING_KEYS)
            attributes = f"toJSONString(mapFilter((k, v) -> k IN ({keys}), attributes))"
        calls_table = _arrow(
            client,
            f"SELECT * EXCEPT (attributes, usd_repriced), {attributes} AS attributes FROM ({calls})",
            bound,
        )
        spans_table = None
        if spans:
            sql = translate(custom_query("window_spans", _SPANS), calls_sql(), relation)
            spans_table = _arrow(client, sql, bounds)
    except RollupError:
        raise
    except ClickHouseError as e:
        raise RollupError(str(e)) from e
    except Exception as e:  # the server's error, in one line
        raise RollupError(f"{target.display()}: {first_line(e)}") from e
    return calls_table, spans_table


def load(con: duckdb.DuckDBPyConnection, calls: pa.Table) -> None:
    """``calls`` (from `fetch`) as the TEMP table `CALLS_MACRO` reads, on ``con``."""
    con.register("costattr_fetched_calls", calls)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE costattr_window_calls AS"
            " SELECT * REPLACE (attributes::JSON AS attributes) FROM costattr_fetched_calls"
        )
    finally:
        con.unregister("costattr_fetched_calls")


@contextmanager
def local_calls(
    target: Target,
    window: Mapping[str, Any],
    *,
    where: Sequence[tuple[str, list[str]]] = (),
    all_attributes: bool = False,
    spans: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the store's schema holding what `fetch` gives (the calls in
    the TEMP table ``costattr_window_calls``, the spans in ``spans``). Run `CALLS_MACRO` after
    the rollups' prelude. Raises `RollupError` (one line) when ClickHouse cannot answer."""
    from ..store.database import migrate, quiet

    calls, spans_table = fetch(target, window, where=where, all_attributes=all_attributes, spans=spans)
    con = quiet(duckdb.connect())
    try:
        migrate(con)  # the store's schema: the rollups' prelude binds to its spans table
        load(con, calls)
        if spans_table is not None:
            con.register("costattr_fetched_spans", spans_table)
            con.execute("INSERT INTO spans BY NAME SELECT * FROM costattr_fetched_spans")
            con.unregister("costattr_fetched_spans")
        yield con
    finally:
        con.close()
