"""The call contract: the relations every rollup reads, and the one text they come from.

``queries/_calls.sql`` defines the views ``calls`` (one row per model call, all time,
attributed) and ``runs`` (one row per trace with model calls); the store persists them in
the database file by running that file as a migration, so any DuckDB client gets the
attribution rules. The rollups need the same relations over a window, with parameters bound
and filters pushed into the scan of ``spans``: `rollup_prelude` derives their TEMP macros
(``costattr_attributed``, ``costattr_runs``) from the same text, so the rules live once.

The derivation is one rule: a line ``<indent>-- @rollups: <text>`` reads ``<indent><text>``
in the macros, and a line ``<code>  -- @rollups: <text>`` reads ``<text>`` (indented as the
code was). In the view those are comments.
"""

from __future__ import annotations

import functools
import re

from .._resources import bundled_dir
from ..store.schema import ATTRIBUTE_COLUMNS

__all__ = [
    "ATTRIBUTE_CALL_COLUMNS",
    "CALL_COLUMNS",
    "CONTRACT_FILE",
    "PENDING_SPANS",
    "RUN_COLUMNS",
    "contract_sql",
    "pending_macro",
    "rollup_prelude",
]

CONTRACT_FILE = "_calls.sql"

# The columns of the views, in order, named as in the spans table (the header of
# queries/_calls.sql describes each; tests check the persisted views against these).
CALL_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "start_time", "end_time", "duration_ms",
    "service_name", "provider", "request_model", "response_model", "model",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "cost_usd", "cost_status", "cost_source", "pricing_version", "priced_model",
    "feature", "agent_name", "agent_version", "step", "conversation_id", "attributes",
)  # fmt: skip
# Then the attributes kept as columns (store/schema.py ATTRIBUTE_COLUMNS), which the rollups
# read instead of the JSON; the ClickHouse contract carries them too, after the same columns.
ATTRIBUTE_CALL_COLUMNS = tuple(ATTRIBUTE_COLUMNS.values())
RUN_COLUMNS = (
    "trace_id", "name", "service_name", "feature", "agent_name", "start_time", "end_time",
    "duration_ms", "calls", "unpriced_calls", "cost_usd",
)  # fmt: skip

_MARK = "-- @rollups:"
_TRAILING = re.compile(r"^(\s*)\S.*?\s+-- @rollups: (.*)$")
_ALONE = re.compile(r"^(\s*)-- @rollups: (.*)$")


def contract_sql() -> str:
    """The text of ``queries/_calls.sql``: the statements that create the views."""
    return (bundled_dir("queries") / CONTRACT_FILE).read_text(encoding="utf-8")


def rollup_prelude(sql: str | None = None) -> str:
    """The rollups' TEMP macros, derived from the contract text ``sql`` (default: the bundled
    one) by reading each ``-- @rollups:`` line as its replacement."""
    lines = []
    for line in (contract_sql() if sql is None else sql).splitlines():
        if _MARK in line:
            m = _ALONE.match(line) or _TRAILING.match(line)
            if m is None:
                raise ValueError(f"{CONTRACT_FILE}: cannot read the marked line {line.strip()!r}")
            line = m.group(1) + m.group(2)
        lines.append(line)
    return "\n".join(lines) + "\n"


# The copy of the spans of runs with a call pending, kept at ingest (store/aggregates.py,
# queries/_facts_spans_tables.sql): every span of those traces, with its rowid as span_row.
PENDING_SPANS = "costattr_fact_spans"
_ATTRIBUTED = "CREATE OR REPLACE TEMP MACRO costattr_attributed("
_FROM_SPANS = re.compile(r"\bFROM spans\b")


@functools.cache
def pending_macro() -> str:
    """``costattr_attributed_pending``: the rollups' ``costattr_attributed`` reading `PENDING_SPANS`
    instead of ``spans`` (rollups/facts.py calls it with ``p_traces := true``). Over the traces
    of that copy it answers as the contract does: each of its reads of ``spans`` is of spans
    of the same traces (a call's ancestors are in its trace) or asks whether any span holds a
    feature or an agent, which only decides whether calls walk: when no span of their traces
    holds one, walking finds none either. Derived from the one text, so the rules stay written
    once; raises `ValueError` when that text no longer has the shape this relies on."""
    prelude = rollup_prelude()
    start = prelude.find(_ATTRIBUTED)
    end = prelude.find("\n;\n", start)
    if start < 0 or end < 0:
        raise ValueError(f"{CONTRACT_FILE}: no costattr_attributed macro ending in a line ';'")
    text = prelude[start : end + 3]
    if text.count("rowid AS call_row") != 1 or "rowid" in text.replace("rowid AS call_row", ""):
        raise ValueError(f"{CONTRACT_FILE}: costattr_attributed reads rowid other than as call_row")
    text = _FROM_SPANS.sub(f"FROM {PENDING_SPANS}", text).replace("rowid AS call_row", "span_row AS call_row")
    if re.search(r"\bspans\b", _code(text)):
        raise ValueError(f"{CONTRACT_FILE}: costattr_attributed reads spans otherwise than FROM spans")
    return text.replace("costattr_attributed(", "costattr_attributed_pending(", 1)


def _code(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
