"""The rollups the report added (overview, daily_model, agent_steps, runs_list),
against figures worked out by hand on the shared workload (see test_rollups_workload)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from test_rollups_workload import DAY0, TOTAL_CALLS, TOTAL_USD, build, trace_id

from otel_costattr.rollups.errors import RollupParamError
from otel_costattr.rollups.queries import rollup


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("report_rollups") / "spans.duckdb")


def test_overview(db):
    (row,) = rollup("overview", db=db)
    # 8 runs; T5's acme-ner-7b (unknown) and gpt-4o (invalid usage) are the unpriced calls.
    assert row == {
        "runs": 8,
        "calls": TOTAL_CALLS,
        "usd": TOTAL_USD,
        "usd_per_run": D("0.0098625"),
        "unpriced_calls": 2,
    }
    assert D("0.0098625") == TOTAL_USD / 8
    (empty,) = rollup("overview", db=db, since="2030-01-01")
    assert empty == {"runs": 0, "calls": 0, "usd": None, "usd_per_run": None, "unpriced_calls": 0}
    (refund,) = rollup("overview", db=db, feature="refund")  # T1 and T6
    assert (refund["runs"], refund["usd"]) == (2, D("0.0148"))


def test_daily_model(db):
    rows = rollup("daily_model", db=db)
    first = [(r["model"], r["calls"], r["usd"]) for r in rows if r["day"] == DAY0.date()]
    # T1: c2 claude-sonnet-4-5 $0.009, c1 gpt-4o $0.003, c3 gpt-4o-mini $0.0021, by cost
    assert first == [
        ("claude-sonnet-4-5", 1, D("0.009")),
        ("gpt-4o", 1, D("0.003")),
        ("gpt-4o-mini", 1, D("0.0021")),
    ]
    t5 = {r["model"]: r for r in rows if r["day"] == (DAY0.date().replace(day=5))}
    assert t5["acme-ner-7b"]["usd"] is None and t5["acme-ner-7b"]["unpriced_calls"] == 1
    assert sum(r["usd"] or 0 for r in rows) == TOTAL_USD
    assert sum(r["calls"] for r in rows) == TOTAL_CALLS


def test_agent_steps(db):
    rows = {(r["agent"], r["step"]): r for r in rollup("agent_steps", db=db)}
    # researcher step 2: T2's 40,000-token call ($0.0405) and T3's, T4's ($0.0015 each)
    assert rows["researcher", 2] == {
        "agent": "researcher",
        "step": 2,
        "calls": 3,
        "avg_input_tokens": 14000,
        "usd": D("0.0435"),
        "usd_per_call": D("0.0145"),
        "unpriced_calls": 0,
    }
    # step 1: T2 3,000 in ($0.0035), T3 and T4 $0.0015: 0.0065 / 3 to 12 places
    assert rows["researcher", 1]["usd_per_call"] == D("0.002166666667")
    assert rows["researcher", 8]["calls"] == 1  # only the looping run gets there
    # summarizer step 1 is the unknown model: no cost, and no cost per priced call; step 2 its
    # gpt-4o call without usage: both counted unpriced, never summed as $0; step 0 is priced
    assert rows["summarizer", 1]["usd"] is None and rows["summarizer", 1]["usd_per_call"] is None
    assert rows["summarizer", 1]["unpriced_calls"] == 1
    assert rows["summarizer", 2] == {
        "agent": "summarizer",
        "step": 2,
        "calls": 1,
        "avg_input_tokens": None,
        "usd": None,
        "usd_per_call": None,
        "unpriced_calls": 1,
    }
    assert (rows["summarizer", 0]["usd"], rows["summarizer", 0]["unpriced_calls"]) == (D("0.00015"), 0)
    assert sum(r["unpriced_calls"] for r in rows.values()) == 2
    assert [k[0] for k in rows][0] == "researcher"  # agents by their cost, the most first


def test_runs_list(db):
    newest = rollup("runs_list", db=db, limit=0)
    # the same runs and order as per_run (newest) and top_runs (cost), with unpriced calls
    assert [r["trace_id"] for r in newest] == [r["trace_id"] for r in rollup("per_run", db=db, limit=0)]
    by_cost = rollup("runs_list", db=db, order="cost", limit=3)
    assert [r["trace_id"] for r in by_cost] == [r["trace_id"] for r in rollup("top_runs", db=db, limit=3)]
    runs = {r["trace_id"]: r for r in newest}
    # T5: acme-ner-7b (unknown) and gpt-4o with invalid usage; its priced call $0.00015
    assert (runs[trace_id(5)]["unpriced_calls"], runs[trace_id(5)]["usd"]) == (2, D("0.00015"))
    assert sum(r["unpriced_calls"] for r in newest) == 2
    assert runs[trace_id(1)]["duration_ms"] == 600_000.0
    # the rollup's own words, a parameter error (a 400), not DuckDB's "Invalid Input Error: "
    with pytest.raises(RollupParamError) as info:
        rollup("runs_list", db=db, order="price")
    assert str(info.value) == "runs_list: order: expected newest or cost, got price"
