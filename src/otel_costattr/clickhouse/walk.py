"""The read-time walk in Python, for the few calls a reader finds between two settles.

The call contract (``queries/clickhouse/_calls.sql``) gives a call without feature or agent
those of its nearest ancestors, by a recursive walk over the spans of its trace. In
ClickHouse each step of that walk is a query of its own, planned and run again, reading the
ancestors again: at 10M spans, with 2,000 traces waiting for a settle, 100-150 ms of every
rollup, and the plan of the walk was paid at every read of the calls (two in compare and
reconcile). A reader on the typed table with settled calls (`runner.contract`) has already
found the few typed rows no settle covered (`ledger.unsettled`); it reads the calls among them
that need the walk and the other spans of their traces that arrived since the last settle
(from the parts that hold them), walks them here, reads every day's spans only for the
traces whose walk needed a parent not found there (a set of trace ids prunes the typed
table's granules only when it is small: a scan of every day's trace ids cost as much as the
SQL walk), and binds the answers (`walked_params`): the contract joins them as it joins its
own walk's (`prelude.calls_sql`'s ``walked_chunks``).

One difference with the SQL walk, left as it is: a span id stored twice with other parents
or attributes, one copy before the last settle and one after, is walked through the later
copy only when that copy's parent was found (the SQL walk takes both, and the next settle
does). Copies an exporter retries are the same span; different ones already make the
contract pick either (``LIMIT 1 BY``), where DuckDB keeps the first stored.

The rule is the contract's, step for step (`walk_calls`); a property test compares the two on
random trees (duplicates, cycles, missing parents, calls as parents, chains past 64). Past
`WALK_CALLS` calls, or a value too long to bind, the reader walks in SQL as before
(`settle.walk_bounds`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .ledger import ABOVE_WATERMARK, WATERMARK
from .unstamped import WINDOW_TEST, chunk_count, chunk_name, in_chunks, size_chunks, window_params

__all__ = ["MAX_DEPTH", "WALKED_PARAMS", "WALK_CALLS", "walk_calls", "walked_chunks", "walked_params"]

# The contract's limit: a call's walk stops 64 ancestors up (``w.depth < 64`` in _calls.sql).
MAX_DEPTH = 64
# At most this many calls are walked here (five values each are bound, in chunks).
WALK_CALLS = 10_000
# The bound arrays of the answers, in `walk_calls`' order (prelude.calls_sql joins them).
WALKED_PARAMS = {
    "costattr_walked_trace_id": "Array(String)",
    "costattr_walked_span_id": "Array(String)",
    "costattr_walked_feature": "Array(Nullable(String))",
    "costattr_walked_agent_name": "Array(Nullable(String))",
    "costattr_walked_agent_version": "Array(Nullable(String))",
}
_IDS = "trace_id, span_id, parent_span_id, feature, agent_name, agent_version"


def walk_calls(
    calls: Iterable[tuple[Any, ...]], ancestors: Iterable[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """(trace id, span id, feature, agent name, agent version) for each of ``calls`` (rows of
    `_IDS`), walked up ``ancestors`` (rows of `_IDS` of their traces' spans, calls too), as the
    contract's walk answers: from the call, while feature or agent is missing and fewer than
    `MAX_DEPTH` steps were taken, each row goes to every ancestor stored with its parent's id
    in its trace, taking the first feature found, and while no agent name is found, the
    ancestor's name and version (a version without a name is carried up until a name is
    found); the answer is a row of the furthest step (the contract takes any of them: they
    differ only when one span id is stored twice with other attributes)."""
    parents = _parents(ancestors)
    return [_walk(call, parents)[0] for call in calls]


def _parents(ancestors: Iterable[tuple[Any, ...]]) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    out: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for trace_id, span_id, parent, feature, agent, version in ancestors:
        out.setdefault((trace_id, span_id), []).append((parent, feature, agent, version))
    return out


def _walk(
    call: tuple[Any, ...], parents: Mapping[tuple[str, str], list[tuple[Any, ...]]]
) -> tuple[Any, bool]:
    """`walk_calls`' answer for one call, and whether more ancestors could change it: some
    step needed a parent that ``parents`` lacks."""
    trace_id, span_id, parent, feature, agent, version = call
    rows = {(parent, feature, agent, version)}
    open_ = False
    for _ in range(MAX_DEPTH):
        step = set()
        for up, f, a, v in rows:
            if (f is not None and a is not None) or up is None:
                continue
            found = parents.get((trace_id, up))
            if found is None:
                open_ = True
            for up2, f2, a2, v2 in found or ():
                step.add((up2, f if f is not None else f2, *((a2, v2) if a is None else (a, v))))
        if not step:
            break
        rows = step
    # Any row of the furthest step: the smallest, so that a rerun answers the same.
    _, f, a, v = min(rows, key=repr)
    return (trace_id, span_id, f, a, v), open_


def walked_params(
    client: Any, spans: str, window: Mapping[str, Any], unsettled: tuple[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The walk's answers for the calls of ``window`` (`runner.pricing_window`) in the typed
    table ``spans`` that pass ``unsettled`` (`ledger.unsettled`'s bound test and its
    parameters) and need a walk (no feature or no agent, a parent): `WALKED_PARAMS` in chunks
    (`walked_chunks`), empty when no call needs one, None when too many do (the reader walks in
    SQL then). An ancestor arriving after this look is walked by the next query."""
    test, params = unsettled
    bound = {**window_params(window), **params}
    calls = client.query(
        f"SELECT {_IDS} FROM {spans} AS spans WHERE span_role = 'model_call'"
        " AND (feature IS NULL OR agent_name IS NULL) AND parent_span_id IS NOT NULL"
        f" AND {WINDOW_TEST} AND {test} LIMIT 1 BY trace_id, span_id LIMIT {WALK_CALLS + 1}",
        parameters=bound,
    ).result_rows
    if not calls:
        return {}
    if len(calls) > WALK_CALLS:
        return None
    # The traces as bound sets, in chunks (a server takes 128 KiB a parameter).
    of_traces = in_chunks("trace_id", "t", sorted({row[0] for row in calls}))
    if of_traces is None:
        return None
    # The traces' spans that arrived since the last settle first (a trace's ancestors mostly
    # arrive with or after its calls: a parent ends after its children), from the parts that
    # hold them: a block-number test alone prunes no part (37 against 75-80 ms at 10M, the
    # last day's parts merged across the watermark). A part merged away meanwhile only sends
    # its traces to the second read.
    parts = [
        row[0]
        for row in client.query(
            "SELECT name FROM system.parts WHERE active AND database = currentDatabase()"
            f" AND table = {{table:String}} AND max_block_number > {WATERMARK}",
            parameters={"table": spans, **params},
        ).result_rows
    ]
    recent = client.query(
        f"SELECT {_IDS} FROM {spans} WHERE _part IN {{parts:Array(String)}}"
        f" AND {ABOVE_WATERMARK} AND {of_traces[0]}",
        parameters={**of_traces[1], "parts": parts, **params},
    ).result_rows
    parents = _parents(recent)
    walked = [_walk(call, parents) for call in calls]
    # Then every day's, for the traces of the calls whose walk needed a parent not found: a
    # few traces' keys prune the typed table's granules; every trace's would read them all.
    older = sorted({answer[0] for answer, open_ in walked if open_})
    if older:
        test_older, bound_older = in_chunks("trace_id", "t", older) or of_traces  # fits: a subset
        parents = _parents(
            client.query(
                f"SELECT {_IDS} FROM {spans} WHERE {test_older}",
                parameters=bound_older,
            ).result_rows
        )
        again = set(older)
        walked = [
            _walk(call, parents) if call[0] in again else done
            for call, done in zip(calls, walked, strict=True)
        ]
    return _chunked([answer for answer, _ in walked])


def _chunked(answers: list[tuple[Any, ...]]) -> dict[str, Any] | None:
    """`WALKED_PARAMS` for ``answers``, cut where any array's chunk would pass
    `unstamped.CHUNK_BYTES` (`unstamped.size_chunks`); None when one value alone would."""
    chunks = size_chunks(answers)
    if chunks is None:
        return None
    out: dict[str, Any] = {}
    for i, chunk in enumerate(chunks):
        columns = list(zip(*chunk, strict=True)) or [() for _ in WALKED_PARAMS]
        for name, column in zip(WALKED_PARAMS, columns, strict=True):
            out[chunk_name(name, i)] = list(column)
    return out


def walked_chunks(params: Mapping[str, Any]) -> int:
    """How many chunks each array of `walked_params`' ``params`` has (0: none bound)."""
    return chunk_count(params, next(iter(WALKED_PARAMS)))
