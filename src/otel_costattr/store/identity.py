"""The identity pass: settle, once at ingest, the feature and agent of model calls that lack one.

The call contract (``queries/_calls.sql``) gives a call without its own feature or agent
those of its nearest ancestor, found by walking ``parent_span_id``. Walking at every query
cost most of a rollup's time when a service without the processor made part of the calls.
`settle` (``queries/_identity.sql``) does the same walk after each ingest, for the calls not
settled yet, and stores the answer in the ``settled_*`` columns (store/schema.py
``IDENTITY``) once it can no longer change; the contract reads them and walks only for the
rest. A call whose chain reaches a span not stored yet stays unsettled and is tried again by
every later pass, so children that arrive before their parents are settled when the parent
comes. The pass is only a shortcut: skipped or failed, the views give the same answers.
"""

from __future__ import annotations

import functools
import logging

import duckdb

from .._resources import bundled_dir
from .database import rollback

__all__ = ["settle"]

logger = logging.getLogger(__name__)

_SQL = "_identity.sql"
_ANY_LEFT = (
    "SELECT 1 FROM spans WHERE span_role = 'model_call' AND identity_settled IS NULL"
    " AND (feature IS NULL OR agent_name IS NULL) LIMIT 1"
)


def settle(con: duckdb.DuckDBPyConnection) -> int:
    """Settle what can be settled in one transaction on ``con`` (read-write, no transaction
    open); returns the number of calls settled. Never raises: a failure is logged and leaves
    the calls for the next pass (the views walk for them meanwhile)."""
    try:
        # Usually nothing is left (the processor copied identity down): a look that stops at
        # the first such call is ~30x cheaper than the pass finding none.
        if not con.execute(_ANY_LEFT).fetchone():
            return 0
        con.execute("BEGIN TRANSACTION")
        row = con.execute(_pass_sql()).fetchone()
        con.execute("COMMIT")
    except duckdb.Error:
        rollback(con)
        logger.exception("otel-costattr: identity pass failed; calls left to the views' walk")
        return 0
    return int(row[0]) if row else 0


@functools.cache
def _pass_sql() -> str:
    return (bundled_dir("queries") / _SQL).read_text(encoding="utf-8")
