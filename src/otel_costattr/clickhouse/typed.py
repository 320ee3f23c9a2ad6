"""The optional typed table: model calls and their ancestors extracted once, as they arrive.

Reading attributes out of ``SpanAttributes`` (a Map) on every query is what makes ClickHouse
slow here. ``otel-costattr clickhouse init`` creates ``costattr_spans`` (the columns of
``queries/clickhouse/_spans.sql``, typed) and a materialized view that fills it from every
insert the Collector makes; the rollups read it whenever it exists (`runner.spans_relation`).
Its rows are the same SELECT the rollups otherwise run, so the answers cannot differ.
"""

from __future__ import annotations

from typing import Any

from .client import has_table
from .prelude import spans_sql
from .runner import TYPED_TABLE
from .target import Target

__all__ = ["MATERIALIZED_VIEW", "init_statements", "initialise"]

MATERIALIZED_VIEW = f"{TYPED_TABLE}_mv"


def init_statements(target: Target, *, ttl_days: int | None = None, backfill: bool = True) -> list[str]:
    """The statements `initialise` runs, in order (idempotent: IF NOT EXISTS)."""
    select = spans_sql(target.table)
    ttl = f" TTL toDateTime(start_time) + toIntervalDay({int(ttl_days)})" if ttl_days else ""
    statements = [
        # Ordered for the rollups: model calls together, then by trace (every rollup groups
        # by trace); partitioned by day as the Collector's table is, for the same TTL. (The
        # first settle makes it keep block numbers, where the server can: ledger.py.)
        f"CREATE TABLE IF NOT EXISTS {TYPED_TABLE} ENGINE = MergeTree"
        f" PARTITION BY toDate(start_time) ORDER BY (span_role, trace_id, span_id){ttl}"
        f" EMPTY AS {select}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {MATERIALIZED_VIEW} TO {TYPED_TABLE} AS {select}",
    ]
    if backfill:
        statements.append(f"INSERT INTO {TYPED_TABLE} {select}")
    return statements


def initialise(client: Any, target: Target, *, ttl_days: int | None = None, backfill: bool = True) -> int:
    """Create the typed table and its view over ``target``'s table; with ``backfill``, copy the
    rows already there. Returns the typed table's row count. Refuses (ValueError) when the
    table exists already and a backfill is asked for: copying twice would count twice."""
    if not has_table(client, target.database, target.table):
        raise ValueError(f"{target.display()}: no table {target.table} (the Collector's traces table)")
    if backfill and has_table(client, target.database, TYPED_TABLE):
        raise ValueError(f"{target.display()}: {TYPED_TABLE} exists already (use --no-backfill to keep it)")
    from .ledger import INSERT_SETTINGS

    for statement in init_statements(target, ttl_days=ttl_days, backfill=backfill):
        # The backfill writes every day stored: more than the 100 partitions an INSERT may.
        client.command(statement, settings=INSERT_SETTINGS if statement.startswith("INSERT") else None)
    return int(client.query(f"SELECT count() FROM {TYPED_TABLE}").result_rows[0][0])
