"""The read-time walk in Python (`clickhouse.walk`) against the contract's own walk in SQL.

Random trees in a chDB typed table, with what real and hostile traces hold: spans written
twice, parents never stored, parents that are calls, cycles, chains longer than the walk's
64 steps, identity on some spans only. The contract walks them in SQL (a store never settled:
`settle.needs_walk`); `walk.walk_calls` walks the same rows; each call's answer must agree.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from test_clickhouse_ledger import _span as ledger_span
from test_clickhouse_settle import _store

from otel_costattr.clickhouse import parse_target, unstamped, walk
from otel_costattr.clickhouse.runner import rollup_clickhouse
from otel_costattr.clickhouse.unstamped import chunk_name
from otel_costattr.rollups.custom import custom_query
from otel_costattr.spans.record import SpanRecord

pytest.importorskip("chdb")

_START = 1_780_300_800 * 10**9
_CALL = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.cost": "0.01",
         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}  # fmt: skip


def _span(trace: str, span: str, parent: str | None, at: int, attributes: dict[str, Any]) -> SpanRecord:
    return ledger_span(trace, span, parent, _START + at, attributes)


def _identity(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.25:
        out["app.feature"] = rng.choice(["search", "checkout", ""])
    if rng.random() < 0.25:
        out["gen_ai.agent.name"] = rng.choice(["planner", "coder"])
        if rng.random() < 0.5:
            out["gen_ai.agent.version"] = rng.choice(["v1", "v2"])
    return out


def _forest(seed: int) -> list[SpanRecord]:
    """Random traces: each span's parent an earlier span (most), a later one (cycles), a
    span never stored, or none; a third of the spans calls; some written twice; one chain of
    70 spans with the identity at its top, and calls under it."""
    rng = random.Random(seed)
    spans = []
    for t in range(120):
        trace = f"{seed:04x}{t:028x}"
        ids = [f"{t:08x}{i:08x}" for i in range(rng.randint(2, 14))]
        cyclic = rng.random() < 0.3
        for i, span_id in enumerate(ids):
            pick = rng.random()
            if pick < 0.1 or i == 0 and pick < 0.8:
                parent = None
            elif pick < 0.15:
                parent = f"{t:08x}ffffffff"  # never stored
            elif cyclic and pick < 0.4:
                parent = rng.choice(ids)  # any span: a later one, itself (cycles)
            else:
                parent = ids[rng.randrange(i)] if i else None
            attributes = _identity(rng)
            if rng.random() < 0.35:
                attributes |= _CALL
            record = _span(trace, span_id, parent, i * 10**6, attributes)
            spans.append(record)
            if rng.random() < 0.08:
                spans.append(record)  # written twice (in a cycle too: each turn doubled the SQL walk's rows)
    chain = [f"c{seed:03x}{i:012x}" for i in range(70)]
    trace = f"{seed:04x}" + "e" * 28
    spans.append(_span(trace, chain[0], None, 0, {"app.feature": "deep", "gen_ai.agent.name": "top"}))
    spans += [_span(trace, chain[i], chain[i - 1], i, {}) for i in range(1, 70)]
    # calls 70, 6, 64 and 65 steps below the identity
    for call, parent in (("d", 69), ("b", 5), ("a", 63), ("9", 64)):
        spans.append(_span(trace, call * 16, chain[parent], 70, dict(_CALL)))
    return spans


_IDS = walk._IDS  # the columns walk_calls takes
_ANSWERS = custom_query(
    "walked",
    "-- @about each call's identity\n"
    "SELECT trace_id, span_id, feature, agent_name, agent_version"
    " FROM costattr_calls(NULL, NULL, NULL, NULL, NULL)",
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_walk_in_python_answers_as_the_contracts_walk(chdb_dir: Path, seed: int) -> None:
    url, client = _store(chdb_dir, f"walk_{seed}", _forest(seed), typed=True)
    calls = client.query(
        f"SELECT {_IDS} FROM costattr_spans WHERE span_role = 'model_call' AND parent_span_id IS NOT NULL"
        " AND (feature IS NULL OR agent_name IS NULL) LIMIT 1 BY trace_id, span_id"
    ).result_rows
    ancestors = client.query(f"SELECT {_IDS} FROM costattr_spans").result_rows  # model calls too
    assert len(calls) > 100 and len(ancestors) > 500
    got = {(t, s): rest for t, s, *rest in walk.walk_calls(calls, ancestors)}
    sql = {(r["trace_id"], r["span_id"]): [r["feature"], r["agent_name"], r["agent_version"]]
           for r in rollup_clickhouse(_ANSWERS, parse_target(url), {})}  # fmt: skip
    assert got == {key: sql[key] for key in got}
    # The cases are there: the walk finds the identity 6 and 64 steps up, not 65 or 70;
    # some calls found both, some neither.
    deep = f"{seed:04x}" + "e" * 28
    assert [got[(deep, c * 16)][0] for c in "dba9"] == [None, "deep", "deep", None]
    assert got[(deep, "b" * 16)] == ["deep", "top", None]
    answers = list(got.values())
    assert any(a[0] and a[1] for a in answers) and any(a[0] is None and a[1] is None for a in answers)
    assert any(a[1] and a[2] for a in answers)


def test_the_answers_are_bound_in_chunks_that_fit_an_http_field() -> None:
    """Each chunk of each array, rendered by clickhouse-connect itself, stays under the 128 KiB
    a ClickHouse server takes in one HTTP field (quotes and backslashes escaped); a value that
    cannot fit leaves the walk to SQL (None)."""
    from clickhouse_connect.driver.binding import bind_query

    feature = "f'\\" * 300  # 900 characters, each escaped
    answers = [(f"{i:032x}", f"{i:016x}", feature if i % 7 else None, "agent", None) for i in range(3000)]
    params = walk._chunked(answers)
    assert params is not None
    chunks = walk.walked_chunks(params)
    assert chunks > 3
    joined = [[v for i in range(chunks) for v in params[chunk_name(name, i)]] for name in walk.WALKED_PARAMS]
    assert list(zip(*joined, strict=True)) == answers
    types = ", ".join(
        f"{{{chunk_name(n, i)}:{t}}}" for n, t in walk.WALKED_PARAMS.items() for i in range(chunks)
    )
    _, fields = bind_query(f"SELECT {types}", params)
    assert max(len(v) for v in fields.values()) < 128 * 1024
    assert walk._chunked([("t" * 32, "s" * 16, "x" * 60_000, None, None)]) is None


def test_a_set_bound_in_chunks_fits_http_fields_and_keeps_every_value() -> None:
    """`unstamped.in_chunks` (the walk's sets of traces): each chunk, rendered by
    clickhouse-connect itself, stays under the 128 KiB a server takes in one field (quotes
    and backslashes escaped), the chunks hold the values in order, and the test names each;
    a value that cannot fit gives None."""
    from clickhouse_connect.driver.binding import bind_query

    traces = [f"{i:032x}" for i in range(20_000)] + ["t'\\" * 2_000]
    test, params = unstamped.in_chunks("trace_id", "ts", traces) or ("", {})
    assert len(params) > 5 and [v for chunk in params.values() for v in chunk] == traces
    assert test.count(" IN ") == len(params) and all("{" + name + ":" in test for name in params)
    _, fields = bind_query("SELECT " + ", ".join(f"{{{n}:Array(String)}}" for n in params), params)
    assert max(len(v) for v in fields.values()) < 128 * 1024
    assert unstamped.in_chunks("trace_id", "ts", ["x" * 60_000]) is None
