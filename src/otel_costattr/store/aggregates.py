"""The rollup facts: what the call contract says of each call whose attribution is final, and
per-run totals, kept after each ingest so that the main rollups need not group runs at query time.

Counting runs per feature or agent means grouping every call of the window by trace, which at
10M spans cost ten to twenty times a bare scan of the table whatever the plan (issue 12). The
runs change only at ingest, so `maintain` (``queries/_facts.sql``), run after the identity
pass, adds each call to the facts once its feature and agent can no longer change (tables of
``queries/_facts_tables.sql``, migration ``0010_rollup_facts``): one row per call, and one
per run and feature, per run and agent version, per run, with sums merged in place. The
rollups read them through `rollups/facts.py` when they cover every span stored; the runs with
a call pending (its identity not settled yet: a parent never exported here keeps it so for
good) are left out of them and read from the contract over a copy of their spans kept here
(``queries/_facts_spans.sql``, migration ``0011_rollup_facts_spans``). Otherwise the rollups
take the contract's path. Like the identity pass this is a shortcut: skipped or failed, every
answer stays the same.
"""

from __future__ import annotations

import contextlib
import functools
import logging

import duckdb

from .database import bundled_statements, rollback

__all__ = [
    "MAINTAIN_FILE",
    "MAX_PENDING_TRACES",
    "SPANS_FILE",
    "SPANS_TABLES_FILE",
    "TABLES_FILE",
    "attempt",
    "copy_fits",
    "current",
    "maintain",
    "pending_traces",
]

logger = logging.getLogger(__name__)

TABLES_FILE = "_facts_tables.sql"
MAINTAIN_FILE = "_facts.sql"
# The copy of the pending runs' spans the fast rollups read them from (migration
# 0011_rollup_facts_spans), kept after the facts in the same transaction.
SPANS_TABLES_FILE = "_facts_spans_tables.sql"
SPANS_FILE = "_facts_spans.sql"
# Past this many runs with a pending call, the rollups read the contract (rollups/facts.py), so
# the copy of their spans is not kept: emptied, and made again by the first upkeep that finds
# fewer (one scan of the table's trace ids). Each scan of spans in the contract's part (the
# window's calls, the hops to parents) keeps more runs, and the walk grows. At 1M spans
# (benchmarks/bench_rollups_pending.py, medians, load 2.2-2.6 on 2 cores) the facts answered
# in 64-76 ms against 76-179 ms for the general path with 100 such runs, 74-95 against 83-208
# with 2,000, but lost three rollups of four with 5,000 (per_step 144 against 92 ms; per_run
# still won, 143 against 224). Read when used (tests lower it).
MAX_PENDING_TRACES = 2000
# costattr_fact_spans_state's watermark for a copy not kept (no facts' watermark is below -1):
# readers refuse it (`pending_traces`), and _facts_spans.sql makes it again.
_STALE = -2

# The facts cover the store when they cover each span stored (spans are only appended: the
# row count says whether someone else wrote since); then the traces with a call waiting for
# its identity are counted. The copy of their spans must have been kept with the facts
# (_facts_spans_tables.sql): a version that kept the facts without it leaves it behind.
_COVERAGE = (
    "SELECT (SELECT spans FROM costattr_facts_state) = (SELECT count(*) FROM spans)"
    " AND (SELECT watermark FROM costattr_facts_state)"
    " = (SELECT watermark FROM costattr_fact_spans_state),"
    " (SELECT count(DISTINCT trace_id) FROM costattr_fact_pending)"
)


def maintain(con: duckdb.DuckDBPyConnection) -> bool:
    """Add the calls stored (or settled) since the last run to the facts, in one transaction on
    ``con`` (read-write, no transaction open). Returns False, after logging, when it failed:
    the facts then lag the store and the rollups take the contract's path until a later run."""
    try:
        attempt(con)
        return True
    except duckdb.Error:
        logger.exception("otel-costattr: rollup facts not updated; rollups read the calls instead")
        return False


def attempt(con: duckdb.DuckDBPyConnection) -> None:
    """`maintain` for a caller that handles failures itself: raises ``duckdb.Error`` after
    rolling back (store/ingest.py runs it in the identity pass's small buffer pool first)."""
    try:
        con.execute("BEGIN TRANSACTION")
        row = con.execute("SELECT watermark FROM costattr_facts_state").fetchall()
        bound = {"watermark": row[0][0]}
        for statement in _statements(MAINTAIN_FILE):
            con.execute(statement, bound if _WATERMARK in statement else None)
        if not copy_fits(con):  # spans gained a column since the copy was made: made again
            for statement in _remake_copy():
                con.execute(statement)
        pending, copied = con.execute(_PENDING).fetchone() or (0, True)
        if pending > MAX_PENDING_TRACES:
            con.execute("DELETE FROM costattr_fact_spans")
            con.execute(f"UPDATE costattr_fact_spans_state SET watermark = {_STALE}")
        elif not pending and not copied:
            # Nothing pending and nothing copied, the usual case: every statement of the file
            # but its last would find nothing (each reads the pending traces or the copy),
            # yet their scans of spans cost 12-15 ms an upkeep (a quarter of it at 2k spans).
            con.execute(_copy_caught_up())
        else:
            for statement in _statements(SPANS_FILE):
                con.execute(statement, bound if _WATERMARK in statement else None)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    finally:
        # What the identity pass read for this upkeep (_facts_spans.sql) is of no use past it,
        # failed or not (the next pass reads afresh): not held on the connection.
        for table in _PASS_TABLES:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def copy_fits(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the copy of the pending runs' spans on ``con`` has the columns of ``spans``, as
    _facts_spans.sql fills it (by position): a version that added a column to ``spans`` left
    it with the old ones (the next upkeep makes it again; the rollups do not read it)."""
    spans, copy = con.execute(_SHAPES).fetchone() or (None, None)
    return copy == [("span_row", "BIGINT"), *(spans or ())]


def current(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the facts on ``con`` answer for every call stored, no call pending."""
    return pending_traces(con) == 0


def pending_traces(con: duckdb.DuckDBPyConnection) -> int | None:
    """How many traces have a call the facts on ``con`` leave pending (``costattr_fact_pending``),
    or None when the facts do not cover every span stored (see `maintain`)."""
    try:
        # fetchall: a result left unfinished refuses the caller's next con.sql (DuckDB 2).
        rows = con.execute(_COVERAGE).fetchall()
    except duckdb.CatalogException:  # a store without the facts' migrations (read as is)
        return None
    return rows[0][1] if rows and rows[0][0] else None


_WATERMARK = "$watermark"
# The identity pass's TEMP tables the copy's upkeep reads (queries/_identity.sql).
_PASS_TABLES = ("costattr_identity_spans", "costattr_identity_read")
# Each table's columns and types, in order (0.2 ms a table at 1M spans; duckdb_columns()
# lists every table's: 1.3 ms).
_SHAPES = (
    "SELECT (SELECT list((name, type) ORDER BY cid) FROM pragma_table_info('spans')),"
    " (SELECT list((name, type) ORDER BY cid) FROM pragma_table_info('costattr_fact_spans'))"
)


@functools.cache
def _statements(file: str) -> list[str]:
    return bundled_statements(file)


# The traces with a call pending, and whether the copy holds any span.
_PENDING = (
    "SELECT (SELECT count(DISTINCT trace_id) FROM costattr_fact_pending),"
    " EXISTS (SELECT 1 FROM costattr_fact_spans)"
)


@functools.cache
def _copy_caught_up() -> str:
    """_facts_spans.sql's own statement marking the copy kept up to the facts' watermark."""
    update = [s for s in _statements(SPANS_FILE) if s.lstrip().startswith("UPDATE costattr_fact_spans_state")]
    if len(update) != 1:
        raise ValueError(f"{SPANS_FILE}: not one UPDATE costattr_fact_spans_state")
    return update[0]


@functools.cache
def _remake_copy() -> list[str]:
    """The copy dropped, created again as _facts_spans_tables.sql creates it (empty), and
    marked not kept, so that _facts_spans.sql fills it as for a copy left behind."""
    create = [s for s in _statements(SPANS_TABLES_FILE) if "CREATE TABLE costattr_fact_spans AS" in s]
    if len(create) != 1:
        raise ValueError(f"{SPANS_TABLES_FILE}: not one CREATE TABLE costattr_fact_spans")
    return [
        "DROP TABLE costattr_fact_spans",
        create[0],
        f"UPDATE costattr_fact_spans_state SET watermark = {_STALE}",
    ]
