"""The optional typed table: model calls and their ancestors extracted once, as they arrive.

Reading attributes out of ``SpanAttributes`` (a Map) on every query is what makes ClickHouse
slow here. ``otel-costattr clickhouse init`` creates ``costattr_spans`` (the columns of
``queries/clickhouse/_spans.sql``, typed) and a materialized view that fills it from every
insert the Collector makes; the rollups read it whenever it exists (`runner.spans_relation`).
Its rows are the same SELECT the rollups otherwise run, so the answers cannot differ.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from ..rollups.errors import RollupError
from .client import has_table
from .prelude import spans_sql
from .runner import BACKFILL_PENDING, TYPED_TABLE, TYPED_VIEW, _check_shape, typed_unfit
from .target import Target

__all__ = [
    "MATERIALIZED_VIEW", "MAX_TTL_DAYS", "check_ttl_days", "init_statements", "initialise",
    "keep_view_current", "older_spans", "view_comment",
]  # fmt: skip

MATERIALIZED_VIEW = TYPED_VIEW
logger = logging.getLogger(__name__)
_REFUSED: set[str] = set()  # views `keep_view_current` could not change, logged once a process each


def view_comment(target: Target) -> str:
    """The comment the view carries: a digest of the SELECT it runs (this version's rules)."""
    return "otel-costattr " + hashlib.sha256(spans_sql(target.table).encode()).hexdigest()[:16]


def keep_view_current(client: Any, target: Target) -> bool:
    """Give the typed table's view this version's SELECT when its comment names another
    (a view `init` made with an older version, or before views carried one, still types new
    rows by that version's rules): ``ALTER TABLE ... MODIFY QUERY``, then the comment. Rows
    typed before keep what they were given. Returns whether it changed the view. Left as
    it was, logged once a process: a view that reads another table than ``target``'s (only
    ``init`` chooses it: a settle with another ``?table=`` must not move ingestion), a server
    that refuses the ALTER, or one that does not keep a view's comment (else every settle
    would ALTER again)."""
    want = view_comment(target)
    key = f"{target.display()} {want}"
    if key in _REFUSED:
        return False
    found = _view_comment(client)
    if found is None or found == want:
        return False
    reads = client.query(
        "SELECT has(dependencies_table, {n:String}) FROM system.tables"
        " WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"n": MATERIALIZED_VIEW, "t": target.table},
    ).result_rows
    if not (reads and reads[0][0]):
        return _left(
            key, target, f"it reads another table than {target.table}; only clickhouse init chooses it"
        )
    try:
        client.command(f"ALTER TABLE {MATERIALIZED_VIEW} MODIFY QUERY {spans_sql(target.table)}")
        client.command(f"ALTER TABLE {MATERIALIZED_VIEW} MODIFY COMMENT '{want}'")
    except Exception as e:
        return _left(key, target, " ".join(str(e).split())[:300])
    if _view_comment(client) != want:
        _REFUSED.add(key)
        logger.warning(
            "otel-costattr: %s: %s given this version's rules, but the server keeps no comment on"
            " a view: it is not changed again in this process",
            target.display(),
            MATERIALIZED_VIEW,
        )
    return True


def _view_comment(client: Any) -> str | None:
    """The view's comment (None: no view)."""
    found = client.query(
        "SELECT comment FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
        parameters={"n": MATERIALIZED_VIEW},
    ).result_rows
    return found[0][0] if found else None


def _left(key: str, target: Target, why: str) -> bool:
    """Log once a process that the view was left as it was, and why; False."""
    _REFUSED.add(key)
    logger.warning(
        "otel-costattr: %s: %s left with an older version's rules for new rows (%s)",
        target.display(),
        MATERIALIZED_VIEW,
        why,
    )
    return False


# The longest TTL `init` sets. ClickHouse's DateTime ends in 2106 and a TTL past it wraps
# around (2026-12-04 + 29,000 days reads 1970-03-22): every row would expire at once. 10,000
# days (27 years) is safe for rows that start before 2078-09-22.
MAX_TTL_DAYS = 10_000


def check_ttl_days(ttl_days: int | None) -> None:
    """Raise ValueError, naming it, for a ``ttl_days`` over `MAX_TTL_DAYS` or below 0 (0 or
    None: no TTL)."""
    if ttl_days and not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise ValueError(
            f"--ttl-days {ttl_days}: from 1 to at most {MAX_TTL_DAYS} (ClickHouse's DateTime ends in 2106,"
            " and a longer TTL wraps around and expires every row at once); leave it out to keep every row"
        )


def init_statements(target: Target, *, ttl_days: int | None = None, backfill: bool = True) -> list[str]:
    """The statements `initialise` runs on a new typed table, in order (each idempotent: IF NOT
    EXISTS, or a comment set). With ``backfill``, the table says `BACKFILL_PENDING` until
    the copy of the spans already stored is done: no rollup reads it before. Raises
    ValueError for a ``ttl_days`` below 0 or over `MAX_TTL_DAYS` (`check_ttl_days`; 0 or
    None: no TTL)."""
    check_ttl_days(ttl_days)
    select = spans_sql(target.table)
    ttl = f" TTL toDateTime(start_time) + toIntervalDay({int(ttl_days)})" if ttl_days else ""
    statements = [
        # Ordered for the rollups: model calls together, then by trace (every rollup groups
        # by trace); partitioned by day as the Collector's table is, for the same TTL. (The
        # first settle makes it keep block numbers, where the server can: ledger.py.)
        f"CREATE TABLE IF NOT EXISTS {TYPED_TABLE} ENGINE = MergeTree"
        f" PARTITION BY toDate(start_time) ORDER BY (span_role, trace_id, span_id){ttl}"
        f" EMPTY AS {select}",
    ]
    if backfill:
        statements.append(f"ALTER TABLE {TYPED_TABLE} MODIFY COMMENT '{BACKFILL_PENDING}'")
    statements.append(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {MATERIALIZED_VIEW} TO {TYPED_TABLE} AS {select}"
        f" COMMENT '{view_comment(target)}'"
    )
    if backfill:
        statements.append(f"INSERT INTO {TYPED_TABLE} {select}")
        statements.append(f"ALTER TABLE {TYPED_TABLE} MODIFY COMMENT ''")
    return statements


def initialise(client: Any, target: Target, *, ttl_days: int | None = None, backfill: bool = True) -> int:
    """Create the typed table and its view over ``target``'s table; with ``backfill``, copy the
    rows already there. Returns the typed table's row count (of the rows its TTL keeps).
    Idempotent: a typed table ready for ``target`` is kept (its view given this version's
    rules); one an init cut short left (`runner.typed_unfit`) is emptied and filled again.
    Refuses (ValueError, one line) a typed table filling from another table (one a
    database), a TTL for one that exists (it keeps its own), ``backfill`` False for a new
    table when spans are stored, and a table of another shape than the Collector's."""
    if not has_table(client, target.database, target.table):
        raise ValueError(target.no_table())
    try:
        _check_shape(client, target)  # a JSON SpanAttributes failed here with the server's error
    except RollupError as e:
        raise ValueError(str(e)) from None
    exists = has_table(client, target.database, TYPED_TABLE)
    unfit = typed_unfit(client, target) if exists else None
    if unfit is not None and "another table" in unfit:
        raise ValueError(
            f"{target.display()}: {TYPED_TABLE} exists for another table ({unfit}; one a database):"
            f" the rollups of {target.table} read its Map columns"
        )
    if ttl_days and exists and _ttl_days_of(client, target) != ttl_days:  # CREATE IF NOT EXISTS keeps it
        raise ValueError(
            f"{target.display()}: {TYPED_TABLE} exists already: --ttl-days does not change its TTL"
            f" (ALTER TABLE {TYPED_TABLE} MODIFY TTL toDateTime(start_time) + toIntervalDay({int(ttl_days)}))"
        )
    if unfit is not None:  # an init cut short: done again, from an empty table
        if not backfill:
            raise ValueError(f"{target.display()}: {TYPED_TABLE}: {unfit} (without --no-backfill)")
        client.command(f"ALTER TABLE {TYPED_TABLE} MODIFY COMMENT '{BACKFILL_PENDING}'")
        # The settled calls and their watermark name block numbers of the rows emptied here:
        # the new rows' numbers may start again below it (a new chDB process does), and they
        # would read as settled already. The next settle writes them anew.
        from .ledger import CALLS_TABLE, LEGACY_CALLS_TABLE, MARKS_TABLE

        for table in (CALLS_TABLE, LEGACY_CALLS_TABLE, MARKS_TABLE):
            client.command(f"DROP TABLE IF EXISTS {table}")
        client.command(f"TRUNCATE TABLE {TYPED_TABLE}")
    elif exists:  # ready: kept
        keep_view_current(client, target)
        return _kept_rows(client, ttl_days)
    elif not backfill:
        # The rollups read the typed table once it exists: without the spans already stored
        # every answer would leave them out.
        stored = int(client.query(f"SELECT count() FROM {target.table}").result_rows[0][0])
        if stored:
            raise ValueError(
                f"{target.display()}: --no-backfill on a new {TYPED_TABLE} would leave out the {stored}"
                f" spans already in {target.table} (the rollups read {TYPED_TABLE} once it exists):"
                " run init without it"
            )
    from .ledger import INSERT_SETTINGS

    for statement in init_statements(target, ttl_days=ttl_days, backfill=backfill):
        # The backfill writes every day stored: more than the 100 partitions an INSERT may.
        client.command(statement, settings=INSERT_SETTINGS if statement.startswith("INSERT") else None)
    keep_view_current(client, target)  # a view an older version made
    return _kept_rows(client, ttl_days)


def _ttl_days_of(client: Any, target: Target) -> int | None:
    """The days of the typed table's TTL as init set it (None: none, or another)."""
    rows = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {n:String}",
        parameters={"db": target.database, "n": TYPED_TABLE},
    ).result_rows
    found = re.search(r"TTL toDateTime\(start_time\) \+ toIntervalDay\((\d+)\)", rows[0][0] if rows else "")
    return int(found.group(1)) if found else None


def _kept_rows(client: Any, ttl_days: int | None) -> int:
    """The typed rows the TTL keeps (a row past it is dropped at a merge, soon or not)."""
    kept = f" WHERE toDateTime(start_time) + toIntervalDay({int(ttl_days)}) > now()" if ttl_days else ""
    return int(client.query(f"SELECT count() FROM {TYPED_TABLE}{kept}").result_rows[0][0])


def older_spans(client: Any, target: Target, ttl_days: int) -> int:
    """How many spans of ``target``'s table started more than ``ttl_days`` days ago: the typed
    rows of those expire, so the rollups leave them out while the Collector's table keeps them."""
    return int(
        client.query(
            f"SELECT count() FROM {target.table} WHERE Timestamp < now64(9) - toIntervalDay({int(ttl_days)})"
        ).result_rows[0][0]
    )
