"""The identity pass: settle, once at ingest, the feature and agent of model calls that lack one.

The call contract (``queries/_calls.sql``) gives a call without its own feature or agent
those of its nearest ancestor, found by walking ``parent_span_id``. Walking at every query
cost most of a rollup's time when a service without the processor made part of the calls.
`settle` (``queries/_identity.sql``) does the same walk after each ingest, for the calls not
settled yet, and stores the answer in the ``settled_*`` columns (store/schema.py
``IDENTITY``) once it can no longer change; the contract reads them and walks only for the
rest. A call whose chain reaches a span not stored yet stays unsettled and is tried again by
the next pass after its trace receives a span (a watermark on rowid, ``costattr_identity_pass``,
says which spans are new), so children that arrive before their parents are settled when the
parent comes, and a call whose parent was exported elsewhere is not walked by every ingest.
The pass is only a shortcut: skipped or failed, the views give the same answers.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import duckdb

from .database import bundled_statements, rollback

__all__ = ["Pass", "attempt", "run_pass", "settle"]

logger = logging.getLogger(__name__)

_SQL = "_identity.sql"
_ANY_LEFT = (
    "SELECT 1 FROM spans WHERE span_role = 'model_call' AND identity_settled IS NULL"
    " AND (feature IS NULL OR agent_name IS NULL) LIMIT 1"
)


class Pass(NamedTuple):
    """What one pass did: calls walked (unsettled, lacking identity, in a trace that received
    spans since the last pass) and calls settled."""

    walked: int
    settled: int


def settle(con: duckdb.DuckDBPyConnection) -> int:
    """Settle what can be settled in one transaction on ``con`` (read-write, no transaction
    open); returns the number of calls settled. Never raises (see `run_pass`)."""
    return run_pass(con).settled


def run_pass(con: duckdb.DuckDBPyConnection) -> Pass:
    """`settle`, saying how many calls it walked too. Never raises: a failure is logged and
    leaves the calls for the next pass (the views walk for them meanwhile)."""
    try:
        return attempt(con)
    except (duckdb.Error, ValueError):  # ValueError: the file is not six statements
        logger.exception("otel-costattr: identity pass failed; calls left to the views' walk")
        return Pass(0, 0)


def attempt(con: duckdb.DuckDBPyConnection) -> Pass:
    """`run_pass` for a caller that handles failures itself: raises ``duckdb.Error`` after
    rolling back (store/ingest.py tries the pass in a small buffer pool first, and again
    without the bound if it runs out of memory)."""
    try:
        select, read, walk, update, advance, seen = _pass_sql()
        # Usually nothing is left (the processor copied identity down): a look that stops at
        # the first such call is ~30x cheaper than the pass finding none.
        if not con.execute(_ANY_LEFT).fetchone():
            return Pass(0, 0)
        con.execute("BEGIN TRANSACTION")
        con.execute(select)
        todo = con.execute("SELECT count(*) FROM costattr_identity_todo").fetchone()
        walked = int(todo[0]) if todo else 0
        row = None
        if walked:
            con.execute(read)
            con.execute(walk)
            row = con.execute(update).fetchone()
            con.execute("DROP TABLE costattr_identity_found")
        con.execute(advance)
        if walked:  # the spans read, kept for the rollup facts' upkeep (see _identity.sql)
            con.execute(seen)
        con.execute("DROP TABLE costattr_identity_todo")
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    return Pass(walked, int(row[0]) if row else 0)


@functools.cache
def _pass_sql() -> list[str]:
    # The file's six statements (the calls to walk, their traces' spans, the walk, the update,
    # the watermark, the last rowid read), split by DuckDB's own parser; kept as text so that
    # any connection can run them.
    return bundled_statements(_SQL)
