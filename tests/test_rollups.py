"""Every bundled rollup against a workload whose costs are worked out by hand
(tests/test_rollups_workload.py), the attribution rules, parameters and errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rollups_workload import DAY0, TOTAL_CALLS, TOTAL_USD, Writer, build, identity, trace_id

from otel_costattr.rollups.catalog import query, rollups
from otel_costattr.rollups.errors import RollupError, RollupParamError, UnknownRollup
from otel_costattr.rollups.queries import rollup
from otel_costattr.store import database as store

D = Decimal
EXPECTED_NAMES = [
    "agent_steps", "approximations", "compare", "daily", "daily_model", "forecast", "loops", "overview",
    "per_agent", "per_feature", "per_group", "per_model", "per_run", "per_step", "reconcile",
    "runs_list", "stats", "step_jumps", "top_runs", "trace", "unpriced",
]  # fmt: skip


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("rollups") / "spans.duckdb")


def by(rows, key):
    return {row[key]: row for row in rows}


def test_the_bundled_rollups():
    assert rollups() == EXPECTED_NAMES


def test_per_feature(db):
    rows = rollup("per_feature", db=db)
    assert [row["feature"] for row in rows] == ["research", "refund", None, "summarize"]
    f = by(rows, "feature")
    assert f["refund"] == {
        "feature": "refund", "runs": 2, "calls": 4, "input_tokens": 13200, "output_tokens": 1320,
        "usd": D("0.0148"), "usd_per_run": D("0.0074"), "unpriced_calls": 0,
    }  # fmt: skip
    assert f["research"]["runs"] == 3 and f["research"]["calls"] == 15
    assert f["research"]["usd"] == D("0.0635")
    assert f["research"]["usd_per_run"] == D("0.021166666667")  # 0.0635 / 3, 12 places
    assert f["summarize"]["usd"] == D("0.00015") and f["summarize"]["unpriced_calls"] == 2
    assert f[None]["calls"] == 2 and f[None]["usd"] == D("0.00045")


def test_per_step_is_the_stamped_step_per_agent_and_model(db):
    rows = rollup("per_step", db=db)
    steps = {(row["agent"], row["step"], row["model"]): row for row in rows}
    # triage step 0: T1 c1 $0.003 and T6 $0.0007, gpt-4o, inputs 1000 and 200
    assert steps["triage", 0, "gpt-4o"] == {
        "agent": "triage", "step": 0, "model": "gpt-4o", "calls": 2, "avg_input_tokens": 600,
        "usd": D("0.0037"), "unpriced_calls": 0,
    }  # fmt: skip
    # researcher step 0: T2-T4 3 x $0.0015; step 2: T2 40000 in ($0.0405), T3, T4 $0.0015 each
    assert steps["researcher", 0, "claude-haiku-4-5"]["usd"] == D("0.0045")
    assert steps["researcher", 2, "claude-haiku-4-5"] == {
        "agent": "researcher", "step": 2, "model": "claude-haiku-4-5", "calls": 3,
        "avg_input_tokens": 14000, "usd": D("0.0435"), "unpriced_calls": 0,
    }  # fmt: skip
    # the summarizer's step 2 is its gpt-4o call without usage: no longer mixed into "step 2",
    # and counted unpriced, as its step 1 (acme-ner-7b, an unknown model); its step 0 is priced
    assert steps["summarizer", 2, "gpt-4o"] == {
        "agent": "summarizer", "step": 2, "model": "gpt-4o", "calls": 1, "avg_input_tokens": None,
        "usd": None, "unpriced_calls": 1,
    }  # fmt: skip
    assert steps["summarizer", 1, "acme-ner-7b"] == {
        "agent": "summarizer", "step": 1, "model": "acme-ner-7b", "calls": 1, "avg_input_tokens": 5000,
        "usd": None, "unpriced_calls": 1,
    }  # fmt: skip
    assert steps["summarizer", 0, "gpt-4o-mini"]["unpriced_calls"] == 0
    assert steps["researcher", 8, "claude-haiku-4-5"]["calls"] == 1  # only the looping run gets there
    # no stamped step: T1 c2, c3 (billing, another process), T7, T8 (outside any agent)
    assert steps["billing", None, "claude-sonnet-4-5"]["usd"] == D("0.009")
    assert steps[None, None, "gpt-4o-mini"] == {
        "agent": None, "step": None, "model": "gpt-4o-mini", "calls": 2, "avg_input_tokens": 1500,
        "usd": D("0.00045"), "unpriced_calls": 0,
    }  # fmt: skip
    assert [r["agent"] for r in rows][0] == "billing" and rows[-1]["agent"] is None
    assert sum(r["calls"] for r in rows) == TOTAL_CALLS
    assert sum(r["unpriced_calls"] for r in rows) == 2


def test_per_run_newest_first_with_root_or_fallback(db):
    rows = rollup("per_run", db=db)
    assert [row["trace_id"] for row in rows] == [trace_id(n) for n in range(8, 0, -1)]
    runs = by(rows, "trace_id")
    t1 = runs[trace_id(1)]
    assert t1["run_name"] == "invoke_workflow refund"
    assert (t1["agent"], t1["feature"]) == ("triage", "refund")  # root has no agent: first call's
    assert t1["start_time"] == DAY0 and t1["duration_ms"] == 600_000.0
    assert (t1["calls"], t1["usd"]) == (3, D("0.0141"))
    t6 = runs[trace_id(6)]  # the root never arrived
    assert t6["run_name"] is None and (t6["agent"], t6["feature"]) == ("triage", "refund")
    assert t6["start_time"] == DAY0 + dt.timedelta(days=5, hours=1) and t6["duration_ms"] == 1000.0
    assert runs[trace_id(5)]["run_name"] == "invoke_agent summarizer"
    assert len(rollup("per_run", db=db, limit=3)) == 3
    assert len(rollup("per_run", db=db, limit=0)) == 8  # 0: all


def test_per_agent_with_versions(db):
    rows = rollup("per_agent", db=db)
    assert [(row["agent"], row["agent_version"]) for row in rows] == [
        ("researcher", "v1"), ("researcher", "v2"), ("billing", "v2"), ("triage", "v1"),
        (None, None), ("summarizer", "v1"),
    ]  # fmt: skip
    v1, v2, billing, triage = rows[:4]
    assert (v1["runs"], v1["calls"], v1["usd"], v1["usd_per_run"]) == (2, 6, D("0.05"), D("0.025"))
    assert (v2["runs"], v2["calls"], v2["usd"]) == (1, 9, D("0.0135"))
    assert v2["first_seen"] == DAY0 + dt.timedelta(days=2, hours=1, minutes=1)
    # A handoff: billing's calls belong to billing (nearest agent), not to triage around it.
    assert (billing["calls"], billing["usd"]) == (2, D("0.0111"))
    assert (triage["runs"], triage["calls"], triage["usd"]) == (2, 2, D("0.0037"))
    assert [row["unpriced_calls"] for row in rows] == [0, 0, 0, 0, 0, 2]
    # T5: the summarizer's three calls, one priced; the unknown model and the call without
    # usage are counted, not summed as $0.
    assert rows[-1] == {
        "agent": "summarizer", "agent_version": "v1",
        "first_seen": DAY0 + dt.timedelta(days=4, hours=1, minutes=1), "runs": 1, "calls": 3,
        "usd": D("0.00015"), "usd_per_run": D("0.00015"), "unpriced_calls": 2,
    }  # fmt: skip


def test_per_model_tokens_by_kind(db):
    models = by(rollup("per_model", db=db), "model")
    assert models["gpt-4o"] == {
        "provider": "openai", "model": "gpt-4o", "calls": 3, "input_tokens": 1200,
        "cache_read_tokens": 400, "cache_write_tokens": 0, "output_tokens": 120,
        "reasoning_tokens": 0, "usd": D("0.0037"), "unpriced_calls": 1,
    }  # fmt: skip
    assert models["gpt-4o-mini"]["usd"] == D("0.0027") and models["gpt-4o-mini"]["calls"] == 4
    assert models["acme-ner-7b"]["usd"] is None and models["acme-ner-7b"]["unpriced_calls"] == 1


def test_stats_total_then_models(db):
    rows = rollup("stats", db=db)
    total = rows[0]
    assert (total["provider"], total["model"]) == (None, None)
    assert (total["runs"], total["calls"], total["usd"]) == (8, TOTAL_CALLS, TOTAL_USD)
    assert total["usd_share"] == 1.0 and total["avg_call_ms"] == 1000.0
    assert total["unpriced_calls"] == 2
    assert [row["model"] for row in rows[1:3]] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert rows[1]["usd_share"] == pytest.approx(0.0635 / 0.0789)


def test_top_runs(db):
    rows = rollup("top_runs", db=db, limit=3)
    assert [(row["trace_id"], row["calls"], row["usd"]) for row in rows] == [
        (trace_id(2), 3, D("0.0455")), (trace_id(1), 3, D("0.0141")), (trace_id(3), 9, D("0.0135")),
    ]  # fmt: skip


def test_step_jumps_names_the_tool_before(db):
    (jump,) = rollup("step_jumps", db=db)
    assert jump["trace_id"] == trace_id(2)
    assert (jump["prev_step"], jump["after_tool"], jump["step"]) == (1, "fetch_document", 2)
    assert (jump["prev_input_tokens"], jump["input_tokens"], jump["jump_tokens"]) == (3000, 40000, 37000)
    assert jump["ratio"] == 13.3 and jump["usd"] == D("0.0405")
    # T1's 2000 -> 10000 is 5x but only 8000 tokens more: below min_tokens, unless lowered.
    lowered = rollup("step_jumps", db=db, min_tokens=5000)
    assert {row["trace_id"] for row in lowered} == {trace_id(1), trace_id(2)}
    assert rollup("step_jumps", db=db, min_ratio=20) == []


def test_loops_against_the_agents_median(db):
    (loop,) = rollup("loops", db=db)
    assert (loop["trace_id"], loop["agent"], loop["calls"], loop["median_calls"]) == (
        trace_id(3),
        "researcher",
        9,
        3.0,
    )
    assert (loop["ratio"], loop["agent_runs"], loop["usd"]) == (3.0, 3, D("0.0135"))
    assert rollup("loops", db=db, factor=4) == []


def test_unpriced_shows_tokens_instead_of_zero(db):
    rows = rollup("unpriced", db=db)
    assert [(row["cost_status"], row["model"], row["calls"]) for row in rows] == [
        ("invalid_usage", "gpt-4o", 1), ("unknown_model", "acme-ner-7b", 1),
    ]  # fmt: skip
    unknown = rows[1]
    assert (unknown["provider"], unknown["input_tokens"], unknown["output_tokens"]) == ("vllm", 5000, 50)
    assert unknown["features"] == "summarize" and unknown["example_trace_id"] == trace_id(5)


def test_daily(db):
    rows = rollup("daily", db=db)
    assert [(row["day"], row["feature"], row["usd"]) for row in rows[:3]] == [
        (dt.date(2026, 6, 1), "refund", D("0.0141")),
        (dt.date(2026, 6, 2), "research", D("0.0455")),
        (dt.date(2026, 6, 3), "research", D("0.0135")),
    ]
    assert sum(row["usd"] for row in rows) == TOTAL_USD
    # T4 on 06-04, every call priced; T5 on 06-05: one call priced, the unknown model and the
    # call without usage not
    t4_t5 = [
        (row["day"], row["feature"], row["calls"], row["usd"], row["unpriced_calls"]) for row in rows[3:5]
    ]
    assert t4_t5 == [
        (dt.date(2026, 6, 4), "research", 3, D("0.0045"), 0),
        (dt.date(2026, 6, 5), "summarize", 3, D("0.00015"), 2),
    ]
    assert sum(row["unpriced_calls"] for row in rows) == 2


def test_trace_is_a_tree_with_subtree_costs(db):
    rows = rollup("trace", db=db, trace_id=trace_id(1).upper())
    assert [(row["depth"], row["name"]) for row in rows] == [
        (0, "invoke_workflow refund"),
        (1, "invoke_agent triage"),
        (2, "chat gpt-4o"),
        (2, "invoke_agent billing"),
        (3, "chat claude-sonnet-4-5"),
        (3, "execute_tool lookup_order"),
        (4, "chat gpt-4o-mini"),
    ]
    own = [row["usd"] for row in rows]
    subtree = [row["subtree_usd"] for row in rows]
    assert own == [None, None, D("0.003"), None, D("0.009"), None, D("0.0021")]
    assert subtree == [
        D("0.0141"),
        D("0.0141"),
        D("0.003"),
        D("0.0111"),
        D("0.009"),
        D("0.0021"),
        D("0.0021"),
    ]
    assert [row["subtree_calls"] for row in rows] == [3, 3, 1, 2, 1, 1, 1]
    # The triage agent span's own (summed) usage is not a call's: shown as none.
    assert rows[1]["input_tokens"] is None
    # Calls show their attribution: c2 and c3 carried none themselves.
    assert [(row["agent"], row["feature"]) for row in rows if row["span_role"] == "model_call"] == [
        ("triage", "refund"), ("billing", "refund"), ("billing", "refund"),
    ]  # fmt: skip
    assert rollup("trace", db=db, trace_id="f" * 32) == []


# --- attribution rules -----------------------------------------------------------------


def test_every_call_counted_once_in_every_rollup(db):
    """Agent spans carrying summed usage (and even a cost) never add; all rollups agree."""
    for name in ("per_feature", "per_agent", "per_model", "per_step", "daily"):
        rows = rollup(name, db=db)
        assert sum(row["calls"] for row in rows) == TOTAL_CALLS, name
        assert sum(row["usd"] or 0 for row in rows) == TOTAL_USD, name
    runs = rollup("per_run", db=db, limit=0)
    assert sum(row["calls"] for row in runs) == TOTAL_CALLS
    assert sum(row["usd"] for row in runs) == TOTAL_USD
    # ... and every one that groups calls counts the two unpriced ones (T5) once
    for name in ("per_feature", "per_agent", "per_model", "per_step", "agent_steps", "daily", "daily_model"):
        assert sum(row["unpriced_calls"] for row in rollup(name, db=db)) == 2, name


def test_identity_through_the_parent_chain(db):
    """c2: agent from its parent (billing v2, the nearest), feature two levels up; c3: three
    levels up through a tool span without identity; a cycle in bad data stops."""
    rows = by(rollup("trace", db=db, trace_id=trace_id(1)), "name")
    assert (rows["chat claude-sonnet-4-5"]["agent"], rows["chat claude-sonnet-4-5"]["feature"]) == (
        "billing",
        "refund",
    )
    versions = by(rollup("per_agent", db=db, feature="refund"), "agent")
    assert versions["billing"]["agent_version"] == "v2"  # from the same span as the name
    cycle = rollup("trace", db=db, trace_id=trace_id(7))  # no root: broken at the first span
    assert [(row["depth"], row["name"], row["cycle_broken"]) for row in cycle] == [
        (0, "loop a", True), (1, "loop b", False), (1, "chat gpt-4o-mini", False),
    ]  # fmt: skip
    assert by(rollup("per_run", db=db, limit=0), "trace_id")[trace_id(7)]["feature"] is None


def test_filters_use_the_attributed_identity(db):
    refund = rollup("per_model", db=db, feature="refund")
    assert sum(row["calls"] for row in refund) == 4  # c2 and c3 found their feature upstream
    assert sum(row["usd"] for row in refund) == D("0.0148")
    billing = rollup("per_feature", db=db, agent="billing")
    assert [(row["feature"], row["calls"], row["usd"]) for row in billing] == [("refund", 2, D("0.0111"))]
    svc_b = rollup("per_feature", db=db, service="svc-b")
    assert [(row["feature"], row["calls"]) for row in svc_b] == [("summarize", 3)]


def test_time_window_on_each_call(db):
    rows = rollup("per_feature", db=db, since="2026-06-03", until=dt.date(2026, 6, 5))
    assert [(row["feature"], row["runs"], row["calls"], row["usd"]) for row in rows] == [
        ("research", 2, 12, D("0.018")),
    ]
    now = dt.datetime(2026, 6, 8, 12, 0)  # days counts back from now (UTC)
    recent = rollup("stats", db=db, days=2, now=now)[0]
    assert (recent["calls"], recent["usd"]) == (2, D("0.00045"))  # T7 and T8
    aware = dt.datetime(2026, 6, 8, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert rollup("stats", db=db, since=aware)[0]["calls"] == 1  # 09:00 UTC: T8 only


# --- a property: the SQL walk agrees with a walk done by hand ---------------------------

node = st.tuples(
    st.integers(min_value=0, max_value=30),  # parent: index of an earlier node (clipped)
    st.sampled_from(["agent", "tool", "workflow", "other"]),
    st.sampled_from([None, "fa", "fb"]),
    st.sampled_from([None, ("a1", "v1"), ("a2", "v2"), ("a3", None)]),
)
call = st.tuples(
    st.integers(min_value=0, max_value=30),
    st.sampled_from([None, "fc"]),
    st.sampled_from([None, ("a4", "v4")]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes=st.lists(node, min_size=1, max_size=12), calls=st.lists(call, min_size=1, max_size=8))
def test_attribution_matches_a_walk_by_hand(nodes, calls):
    con = duckdb.connect()
    store.migrate(con)
    w = Writer(con)
    ids, parents, idents = [], [], []
    for i, (parent, role, feature, agent) in enumerate(nodes):
        p = None if i == 0 else ids[parent % i]
        name, version = agent or (None, None)
        ids.append(w.span(1, f"n{i}", parent=p, role=role, at=DAY0, **identity(feature, name, version)))
        parents.append(None if i == 0 else parent % i)
        idents.append((feature, agent))
    expected = {}
    for j, (parent, feature, agent) in enumerate(calls):
        at = parent % len(ids)
        name, version = agent or (None, None)
        sid = w.call(1, "gpt-4o-mini", 10, 0, "0.0000015", parent=ids[at], at=DAY0 + dt.timedelta(seconds=j),
                     **identity(feature, name, version))  # fmt: skip
        chain, k = [], at
        while k is not None:
            chain.append(idents[k])
            k = parents[k]
        want_feature = feature or next((f for f, _ in chain if f), None)
        want_agent = agent or next((a for _, a in chain if a), None)
        expected[sid] = (want_feature, want_agent)
    rows = [row for row in rollup("trace", db=con, trace_id=trace_id(1)) if row["span_role"] == "model_call"]
    got = {}
    versions = {row["agent"]: row for row in rollup("per_agent", db=con)}
    for row in rows:
        got[row["span_id"]] = (
            row["feature"],
            None if row["agent"] is None else (row["agent"], versions[row["agent"]]["agent_version"]),
        )
    assert got == expected


# --- parameters and errors -------------------------------------------------------------


def test_unknown_rollup_lists_the_valid_names():
    with pytest.raises(UnknownRollup) as e:
        rollup("per_fature", db="x.duckdb")
    assert str(e.value) == (
        "unknown rollup 'per_fature' (valid: agent-steps, approximations, compare, daily, "
        "daily-model, forecast, loops, overview, per-agent, per-feature, per-group, per-model, "
        "per-run, per-step, reconcile, runs-list, stats, step-jumps, top-runs, trace, unpriced)"
    )
    assert query("per-feature") is query("per_feature")


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ({"name": None}, UnknownRollup, "a rollup is named by text"),
        ({"name": "overview", "where": 5}, RollupParamError, "overview: where: expects a mapping"),
        ({"name": "overview", "reprice": True}, RollupParamError, "reprice: expects a PriceTable"),
    ],
)
def test_arguments_of_the_wrong_type_raise_the_documented_errors(db, args, error, message):
    name = args.pop("name")
    with pytest.raises(error, match=message):
        rollup(name, db=db, **args)


def test_unknown_parameter_lists_the_valid_ones(db):
    with pytest.raises(RollupParamError) as e:
        rollup("top_runs", db=db, limt=5)
    assert str(e.value) == (
        "top_runs: unknown parameter 'limt'"
        " (valid: days, since, until, service, feature, agent, limit, where)"
    )
    with pytest.raises(RollupParamError, match="^trace: missing required parameter 'trace_id'$"):
        rollup("trace", db=db)
    with pytest.raises(RollupParamError, match="^per_feature: give days or since, not both$"):
        rollup("per_feature", db=db, days=1, since="2026-06-01")
    with pytest.raises(RollupParamError) as e:
        rollup("per_feature", db=db, since="last week")
    assert str(e.value) == (
        "per_feature: since: expected an ISO date or time (YYYY-MM-DD[THH:MM[:SS]])"
        " or a time ago (7d, 12h, 2w), got 'last week'"
    )
    with pytest.raises(RollupParamError, match="^per_feature: days: must be positive, got -1$"):
        rollup("per_feature", db=db, days=-1)
    with pytest.raises(RollupParamError, match="^loops: min_calls: expected a whole number, got 2.5$"):
        rollup("loops", db=db, min_calls=2.5)
    with pytest.raises(RollupParamError, match="^loops: factor: expected a number, got 'many'$"):
        rollup("loops", db=db, factor="many")
    with pytest.raises(RollupParamError, match="^top_runs: limit: must not be negative, got -1$"):
        rollup("top_runs", db=db, limit=-1)
    assert len(rollup("top_runs", db=db, limit="2")) == 2  # text, as the CLI passes it


def test_values_are_bound_never_formatted(db):
    hostile = "x'); DROP TABLE spans; --"
    assert rollup("per_feature", db=db, feature=hostile) == []
    assert rollup("stats", db=db)[0]["calls"] == TOTAL_CALLS


def test_database_errors_are_one_line(tmp_path):
    with pytest.raises(RollupError, match=r"^no database at .*missing\.duckdb$"):
        rollup("per_feature", db=tmp_path / "missing.duckdb")
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(RollupError) as e:
        rollup("per_feature", db=other)
    assert str(e.value) == f"{other}: not an otel-costattr database (no costattr_migrations table)"
    con = duckdb.connect(str(other), read_only=True)
    try:  # refused untouched: no schema added to someone else's file
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("t",)]
        with pytest.raises(RollupError, match=r"^no spans table: is this an otel-costattr database\?$"):
            rollup("per_feature", db=con)
    finally:
        con.close()


def test_a_connection_is_used_as_given(db):
    con = store.connect(db, read_only=True)
    try:
        assert rollup("stats", db=con)[0]["usd"] == TOTAL_USD
        assert rollup("stats", db=con)[0]["usd"] == TOTAL_USD  # preludes are idempotent
    finally:
        con.close()


def test_every_query_declares_what_it_binds():
    for name in rollups():
        q = query(name)
        assert q.about, name
        declared = {p.name for p in q.params}
        used = set(__import__("re").findall(r"\$(\w+)", q.sql))
        assert used == declared, name


def test_unpriced_shows_the_figure_a_call_our_prices_could_not_price_carried(tmp_path, table):
    """Usage our prices cannot read (a negative count), the span carrying a figure of its own
    (a bare gen_ai.usage.cost): the figure stands, so per_feature sums it and does not count
    the call unpriced, while `unpriced` lists it (our prices did not price it): now with that
    figure in usd, so the two read alike. An unknown model's call without one: NULL. (An
    unknown model's own figure is the provider's cost: priced, not listed.)"""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_costattr import CostSpanProcessor
    from otel_costattr.store.exporter import DuckDBSpanExporter

    path = tmp_path / "spans.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    usage = {
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
    }
    root = tracer.start_span("run", attributes={"app.feature": "search"})
    ctx = trace.set_span_in_context(root)
    for model, cost in (("mystery-7b", 0.25), ("mystery-7b", None), ("acme-large", 0.5)):
        attrs = {**usage, "gen_ai.request.model": model} | ({"gen_ai.usage.cost": cost} if cost else {})
        if model == "acme-large":
            attrs["gen_ai.usage.input_tokens"] = -5
        tracer.start_span("chat", ctx, attributes=attrs).end()
    root.end()
    provider.shutdown()
    rows = rollup("unpriced", db=path)
    assert [(r["cost_status"], r["model"], r["calls"], r["usd"]) for r in rows] == [
        ("invalid_usage", "acme-large", 1, D("0.5")), ("unknown_model", "mystery-7b", 1, None),
    ]  # fmt: skip
    (feature,) = rollup("per_feature", db=path)
    assert (feature["calls"], feature["usd"], feature["unpriced_calls"]) == (3, D("0.75"), 1)


def test_usd_per_run_is_over_the_runs_with_a_price(tmp_path):
    """Nine runs of an unknown fine-tune beside one $0.0035 run: $0.0035 a priced run, not
    $0.00035 (the unknown runs counted as $0: a review), on every rollup that gives it."""
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "spans.duckdb"
    provider, tracer = priced_store(db)
    for n in range(10):
        attrs = gpt4o_chat(input_tokens=1000, output_tokens=100)  # 1000 * 2.5 + 100 * 10 a million
        if n:
            attrs["gen_ai.request.model"] = "acme-ft-1"
        root = {"app.feature": "f", "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}
        with tracer.start_as_current_span("run", attributes=root):
            tracer.start_span("chat", attributes=attrs).end()
    provider.shutdown()
    for name, params in (
        ("overview", {}),
        ("per_feature", {}),
        ("per_agent", {}),
        ("per_group", {"group_by": "feature"}),
    ):
        (row,) = rollup(name, db=str(db), **params)
        assert (row["runs"], row["usd"], row["usd_per_run"], row["unpriced_calls"]) == (
            10,
            D("0.0035"),
            D("0.0035"),
            9,
        ), name


def test_a_call_that_reported_no_usage_has_unknown_tokens_not_zero(tmp_path, table):
    """A review: such a call is stored with 0 tokens, and trace and unpriced showed "0" where
    per-step and agent-steps leave it out as unknown."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_costattr import CostSpanProcessor
    from otel_costattr.store.exporter import DuckDBSpanExporter

    path = tmp_path / "spans.duckdb"
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path, pricing=table)))
    tracer = provider.get_tracer("t")
    root = tracer.start_span("run", attributes={"app.feature": "search"})
    ctx = trace.set_span_in_context(root)
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-large"}
    tracer.start_span("chat", ctx, attributes=call).end()  # no usage
    counted = {**call, "gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 7}
    tracer.start_span("chat", ctx, attributes=counted).end()
    root.end()
    provider.shutdown()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    calls = [r for r in rollup("trace", db=path, trace_id=trace_id) if r["span_role"] == "model_call"]
    assert sorted((r["cost_status"], r["input_tokens"], r["output_tokens"]) for r in calls) == [
        ("no_usage", None, None),
        ("priced", 0, 7),
    ]
    (row,) = rollup("unpriced", db=path)
    assert (row["cost_status"], row["calls"], row["input_tokens"], row["output_tokens"]) == (
        "no_usage",
        1,
        None,
        None,
    )
