"""The fast path of the main rollups: their answers from the rollup facts when those answer.

per_feature, per_step, per_run and per_agent group every call of the window by run (or by
agent, step and model); over millions of spans that costs ten times a bare scan whatever the
plan. store/aggregates.py keeps, at ingest, what the call contract says of each final call
and per-run totals; ``queries/_facts_<name>.sql`` answers the rollup from them, exactly as
``queries/<name>.sql`` would (tests/test_rollup_facts.py compares the two on random
workloads). They answer a window (``since``/``until``) and nothing else: with a service,
feature or agent filter, ``--where``, ``--group-by`` or ``--reprice``, or when the facts do
not cover every call stored (`aggregates.current`), the rollup reads the contract as before.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import duckdb

from .._resources import bundled_dir
from ..store import aggregates

__all__ = ["FAST", "fast_query"]

# The rollups with a form over the facts, and the parameters that form reads.
FAST = {
    "per_feature": ("since", "until"),
    "per_step": ("since", "until"),
    "per_agent": ("since", "until"),
    "per_run": ("since", "until", "limit"),
}
# The parameters a fast form answers only when unset (the facts keep no per-call filter).
_UNSET = ("service", "feature", "agent")


def fast_query(
    con: duckdb.DuckDBPyConnection, name: str, values: Mapping[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """The SQL and bound values answering rollup ``name`` from the facts on ``con``, or None
    when the facts cannot answer it (the caller then runs the rollup's own file)."""
    params = FAST.get(name)
    if params is None or any(values.get(key) is not None for key in _UNSET):
        return None
    if not aggregates.current(con):
        return None
    return _sql(name), {key: values.get(key) for key in params}


@functools.cache
def _sql(name: str) -> str:
    return (bundled_dir("queries") / f"_facts_{name}.sql").read_text(encoding="utf-8")
