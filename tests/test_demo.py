"""The demo: a deterministic workload through the real SDK, processor and exporter, that
tells its story in the rollups; and examples/hand_instrumented_agent.py is the same workload."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from test_rollups_workload import build

from otel_costattr.cli import main
from otel_costattr.demo import run_demo
from otel_costattr.display import money
from otel_costattr.rollups.queries import rollup

ROOT = Path(__file__).resolve().parents[1]
M = Decimal(1_000_000)


TODAY = dt.date(2026, 11, 23)  # the figures below hold for any day; a fixed one keeps runs equal


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo") / "demo.duckdb", today=TODAY)["path"]


def calls(db, where, *params):
    con = duckdb.connect(db, read_only=True)
    try:
        cur = con.execute(f"SELECT * FROM spans WHERE span_role = 'model_call' AND {where}", list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def test_the_same_file_every_time(demo_db, tmp_path):
    again = run_demo(tmp_path / "again.duckdb", today=TODAY)["path"]
    runs = rollup("per_run", db=again, limit=0)
    assert len(runs) == 21
    assert runs == rollup("per_run", db=demo_db, limit=0)  # same ids, times, costs
    for name in ("per_model", "stats", "per_step"):
        assert rollup(name, db=again) == rollup(name, db=demo_db), name


def test_costs_match_a_computation_by_hand(demo_db):
    # triage: Anthropic's raw usage (input excludes the 2400 cached tokens), stored inclusive;
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $15 output per million tokens.
    triage = calls(demo_db, "name = 'chat claude-sonnet-4-5' AND agent_name = 'triage'")
    assert len(triage) == 7
    for c in triage:
        assert c["cache_read_tokens"] == 2400 and c["input_tokens"] > 2400
        expected = ((c["input_tokens"] - 2400) * 3 + 2400 * Decimal("0.3") + 3 * 15) / M
        assert c["cost_usd"] == expected
    # billing: OpenAI's usage (cached tokens inside input); gpt-4o $2.5, $1.25 cached, $10 out.
    for c in calls(demo_db, "agent_name = 'billing'"):
        read = c["cache_read_tokens"]
        expected = (
            (c["input_tokens"] - read) * Decimal("2.5") + read * Decimal("1.25") + c["output_tokens"] * 10
        ) / M
        assert c["cost_usd"] == expected
    # research: the first step writes the system prompt to the cache ($3.75), later steps read it.
    for c in calls(demo_db, "agent_name = 'researcher'"):
        read, write = c["cache_read_tokens"], c["cache_write_tokens"]
        uncached = c["input_tokens"] - read - write
        expected = (
            uncached * 3 + read * Decimal("0.3") + write * Decimal("3.75") + c["output_tokens"] * 15
        ) / M
        assert c["cost_usd"] == expected


def test_the_story_is_in_the_rollups(demo_db):
    features = {row["feature"]: row for row in rollup("per_feature", db=demo_db)}
    assert set(features) == {"refund", "research", "summarize"}
    assert features["summarize"]["unpriced_calls"] > 0
    (loop,) = rollup("loops", db=demo_db)
    assert (loop["agent"], loop["calls"]) == ("researcher", 12)
    jumps = rollup("step_jumps", db=demo_db)
    assert jumps and {(j["agent"], j["after_tool"]) for j in jumps} == {("summarizer", "fetch_document")}
    (unpriced,) = rollup("unpriced", db=demo_db)
    assert (unpriced["cost_status"], unpriced["provider"], unpriced["model"]) == (
        "unknown_model",
        "vllm",
        "acme-ner-7b",
    )
    assert unpriced["input_tokens"] > 0
    agents = {(row["agent"], row["agent_version"]): row for row in rollup("per_agent", db=demo_db)}
    assert agents["researcher", "v2"]["usd_per_run"] > agents["researcher", "v1"]["usd_per_run"]
    assert set(agents) == {
        ("triage", "v1"),
        ("billing", "v2"),
        ("researcher", "v1"),
        ("researcher", "v2"),
        ("summarizer", "v1"),
    }
    # the unknown model is the summarizer's: which agent spent it says so too
    assert {a: row["unpriced_calls"] for a, row in agents.items() if row["unpriced_calls"]} == {
        ("summarizer", "v1"): unpriced["calls"]
    }
    top = rollup("top_runs", db=demo_db, limit=1)[0]
    assert top["trace_id"] == loop["trace_id"]


def test_the_worker_calls_are_attributed_through_the_parent_chain(demo_db):
    worker = calls(demo_db, "service_name = 'extraction-worker'")
    assert worker and all(c["feature"] is None and c["agent_name"] is None for c in worker)
    assert all(c["cost_source"] == "exporter" for c in worker if c["cost_status"] == "priced")
    summarize = rollup("per_model", db=demo_db, feature="summarize", agent="summarizer")
    by_model = {row["model"]: row["calls"] for row in summarize}
    assert by_model["acme-ner-7b"] + by_model["gpt-4o-mini"] == len(worker)


def test_the_handoff_and_the_summed_usage(demo_db):
    refund_trace = rollup("per_run", db=demo_db, feature="refund", limit=1)[0]["trace_id"]
    tree = rollup("trace", db=demo_db, trace_id=refund_trace)
    depth = {row["name"]: row["depth"] for row in tree}
    assert depth["invoke_agent billing"] == depth["invoke_agent triage"] + 1
    # The researcher agent span carries the summed usage of its calls: never counted again.
    research = rollup("per_feature", db=demo_db, feature="research")[0]
    direct = calls(demo_db, "agent_name = 'researcher'")
    assert research["input_tokens"] == sum(c["input_tokens"] for c in direct)
    assert research["usd"] == sum(c["cost_usd"] for c in direct)


def test_the_demo_command(capsys, tmp_path):
    path = tmp_path / "cli-demo.duckdb"
    assert main(["demo", "--db", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for text in ("What each feature costs", "step by step", "The most expensive runs", "without a price",
                 "acme-ner-7b", "otel-costattr trace "):  # fmt: skip
        assert text in out
    # the per-agent table keeps the unpriced calls (the summarizer's): the header and its count
    agents = out.split("== Per agent and version")[1].split("==")[0].splitlines()
    assert agents[1].split()[-1] == "unpriced_calls"
    (summarizer,) = [line for line in agents if line.startswith("summarizer")]
    unknown = rollup("unpriced", db=path)[0]["calls"]
    assert summarizer.split()[-1] == str(unknown)
    assert main(["demo", "--db", str(path)]) == 0  # a previous demo file is replaced
    capsys.readouterr()


def test_the_demo_never_overwrites_other_data(capsys, tmp_path):
    path = build(tmp_path / "mine.duckdb")
    assert main(["demo", "--db", str(path)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"Error: {path} exists and is not a demo database; choose another --db\n")


def test_the_example_is_the_same_workload(demo_db, tmp_path):
    db = tmp_path / "example.duckdb"
    example = ROOT / "examples" / "hand_instrumented_agent.py"
    done = subprocess.run(
        [sys.executable, str(example), str(db)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "research" in done.stdout
    lines = done.stdout.splitlines()
    for row in rollup("per_feature", db=db):  # money as the CLI shows it ($1.01, not $1.0141)
        assert any(line.endswith(f"calls  {money(row['usd'])}") for line in lines), (row, lines)
    for name in ("per_model", "per_agent", "per_step", "unpriced"):
        strip = ("first_seen", "last_seen", "example_trace_id")
        mine = [{k: v for k, v in row.items() if k not in strip} for row in rollup(name, db=db)]
        demo = [{k: v for k, v in row.items() if k not in strip} for row in rollup(name, db=demo_db)]
        assert mine == demo, name


@pytest.mark.parametrize("clock", ["00:00", "07:59", "08:30", "15:45", "23:59"])
def test_the_demo_week_lies_inside_days_7_whatever_the_time_of_day(tmp_path, clock):
    """The README and the demo's "Next:" lines say `--days 7` finds the demo: every run, at
    any time of day the demo ran, and nothing in the future."""
    now = dt.datetime.fromisoformat(f"2026-11-23T{clock}:00+00:00")
    info = run_demo(tmp_path / "now.duckdb", now=now)
    con = duckdb.connect(info["path"], read_only=True)
    try:
        latest = con.execute("SELECT max(end_time) FROM spans").fetchone()[0]
    finally:
        con.close()
    assert latest < now.replace(tzinfo=None)
    assert info["last_day"] == latest.date()
    naive = now.replace(tzinfo=None)
    runs = rollup("per-run", db=info["path"], days=7, limit=0, now=naive)
    assert len(runs) == info["runs"] == 21


def test_the_demo_run_now_is_found_by_days_7(tmp_path):
    info = run_demo(tmp_path / "now.duckdb")
    assert len(rollup("per-run", db=info["path"], days=7, limit=0)) == info["runs"]


def test_suggested_commands_run_as_shown_when_not_on_path(monkeypatch, tmp_path):
    """After the README's install the command lives in .venv/bin, not on PATH: the demo's
    "Next:" lines then use the path it was started by, so they can be pasted as printed."""
    from otel_costattr.cli.demo import _command

    monkeypatch.setenv("PATH", str(tmp_path))  # no otel-costattr on it
    monkeypatch.setattr("sys.argv", [".venv/bin/otel-costattr", "demo"])
    assert _command() == ".venv/bin/otel-costattr"
    (tmp_path / "otel-costattr").write_text("#!/bin/sh\n")
    (tmp_path / "otel-costattr").chmod(0o755)
    assert _command() == "otel-costattr"


def test_cost_per_user_and_tenant(demo_db):
    # Each run's user and tenant are set on its first span; the processor copies them to the
    # calls. The worker service runs without it: its calls have neither (NULL), as in real life.
    by_user = {r["value"]: r for r in rollup("per_group", db=demo_db, group_by="user.id")}
    by_tenant = {r["value"]: r for r in rollup("per_group", db=demo_db, group_by="app.tenant")}
    assert set(by_user) == {"u-ana", "u-ben", "u-chloe", "u-dev", "u-eli", None}
    assert set(by_tenant) == {"acme", "globex", None}
    total = rollup("stats", db=demo_db)[0]
    for groups in (by_user, by_tenant):
        assert sum(r["calls"] for r in groups.values()) == total["calls"]
        assert sum(r["usd"] or 0 for r in groups.values()) == total["usd"]
    assert by_user[None]["calls"] == len(calls(demo_db, "service_name = 'extraction-worker'"))
    assert sum(by_user[u]["runs"] for u in ("u-ana", "u-ben", "u-chloe")) == by_tenant["acme"]["runs"]
