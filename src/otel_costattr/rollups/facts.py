"""The fast path of the main rollups: their answers from the rollup facts when those answer.

per_feature, per_step, per_run and per_agent group every call of the window by run (or by
agent, step and model); over millions of spans that costs ten times a bare scan whatever the
plan. store/aggregates.py keeps, at ingest, what the call contract says of each final call
and per-run totals; ``queries/_facts_<name>.sql`` answers the rollup from them, exactly as
``queries/<name>.sql`` would (tests/test_rollup_facts.py compares the two on random
workloads). They answer a window (``since``/``until``) and nothing else: with a service,
feature or agent filter, ``--where``, ``--group-by`` or ``--reprice``, or when the facts do
not cover every span stored (`aggregates.pending_traces`), the rollup reads the contract as
before.

A call whose identity is not settled yet is kept out of the facts (``costattr_fact_pending``);
one whose parent went to another backend stays so for good. The runs with such a call are
left out of the facts' per-run rows, listed in the TEMP table ``costattr_traces``, and read
from the contract before the rollup's final grouping: ``costattr_attributed_pending(...,
p_traces := true)``, the contract over the copy of those traces' spans kept at ingest
(`contract.pending_macro`: a scan of ``spans`` for a few traces reads its whole trace-id
column); per_step adds just the pending calls. Beyond `aggregates.MAX_PENDING_TRACES` such
runs the rollup reads the contract as before.

The pending runs listed, the facts and the copy must be read in one state of the store: an
upkeep committed in between by another connection (the exporter's ingester, in this process)
that settles a run moves it out of the list and the copy and into the facts; read in
between, it is in none. `one_state` holds one transaction around `fast_query` and the query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import duckdb

from .._resources import bundled_dir
from ..store import aggregates
from ..store.database import rollback
from .contract import pending_macro

__all__ = ["FAST", "fast_query", "one_state"]

# The rollups with a form over the facts, and the parameters that form reads.
FAST = {
    "per_feature": ("since", "until"),
    "per_step": ("since", "until"),
    "per_agent": ("since", "until"),
    "per_run": ("since", "until", "limit"),
}
# The parameters a fast form answers only when unset (the facts keep no per-call filter).
_UNSET = ("service", "feature", "agent")
# The parts of a fast form that read the pending runs (a block between "-- @pending begin"
# and "-- @pending end", or a line ending "-- @pending"), dropped when there are none: even
# over no trace, the contract's scans of spans cost 15-20 ms at 1M spans, as much as the
# facts' whole answer, and the exclusions a few ms more.
_PENDING_PART = re.compile(
    r"^[ \t]*-- @pending begin\b.*?^[ \t]*-- @pending end[^\n]*\n|^[^\n]*-- @pending\n", re.M | re.S
)
# The fast forms leave the pending runs out of the per-run facts by ``tkey`` (hash of the trace
# id): an integer scan, where the trace ids cost 30-40 ms of CPU a table at 10M spans. Exact
# when no other run has a pending run's key; costattr_fact_run holds a row for every run in
# the other per-run tables (each final call adds to all three), so it is the one to look in.
_SHARED_KEY = (
    "SELECT 1 FROM costattr_fact_run WHERE tkey IN (SELECT hash(trace_id) FROM costattr_traces)"
    " AND trace_id NOT IN (SELECT trace_id FROM costattr_traces) LIMIT 1"
)


def fast_query(
    con: duckdb.DuckDBPyConnection, name: str, values: Mapping[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """The SQL and bound values answering rollup ``name`` from the facts on ``con`` (which has
    the rollups' prelude: rollups/queries.py), or None when the facts cannot answer it (the
    caller then runs the rollup's own file). Call it and run the SQL inside `one_state`."""
    params = FAST.get(name)
    if params is None or any(values.get(key) is not None for key in _UNSET):
        return None
    pending = aggregates.pending_traces(con)
    if pending is None or pending > aggregates.MAX_PENDING_TRACES:
        return None
    if pending and not aggregates.copy_fits(con):
        return None  # spans has a column the copy lacks (a newer version, before its upkeep)
    if pending:  # the runs read from the contract, listed afresh (the connection may be reused)
        con.execute("DELETE FROM costattr_traces")
        con.execute("INSERT INTO costattr_traces SELECT DISTINCT trace_id FROM costattr_fact_pending")
        if con.execute(_SHARED_KEY).fetchone():
            return None  # a run shares its key with a pending one (1 in 2**64): not left out by it
        con.execute(pending_macro())  # binds the copy's table: made here, where it exists
    return _sql(name, pending > 0), {key: values.get(key) for key in params}


@contextmanager
def one_state(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction on ``con`` around what it wraps, committed after (rolled back on an
    error), so that its statements read one state of the store whatever other connections
    commit meanwhile; inside the caller's own transaction, that one, neither nested nor ended.
    (DuckDB takes the snapshot at the transaction's first read; the TEMP table and macro
    fast_query makes are the connection's own, so no other writer conflicts with them.) At 1M
    spans it cost nothing measurable with no run pending, and with 100, with `copy_fits`,
    1.5-1.9 ms of CPU on 37-46 (benchmarks/bench_rollups_pending.py, old and new
    alternated, load 2.8-3.5)."""
    if _in_transaction(con):
        yield
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        rollback(con)
        raise
    con.execute("COMMIT")


def _in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    # A BEGIN inside a transaction fails and aborts it: asked instead. In autocommit each
    # statement is a transaction of its own, with its own id.
    first = con.execute("SELECT txid_current()").fetchone()
    return first == con.execute("SELECT txid_current()").fetchone()


@functools.cache
def _sql(name: str, pending: bool) -> str:
    text = (bundled_dir("queries") / f"_facts_{name}.sql").read_text(encoding="utf-8")
    return text if pending else _PENDING_PART.sub("", text)
