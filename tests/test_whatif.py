"""What-if against the shared hand-computed workload (tests/test_rollups_workload.py).

Target gpt-4o-mini, bundled prices per million tokens: 0.15 input, 0.075 cache read, 0.6
output. The researcher's calls (claude-haiku-4-5, 1 / 5; actual $0.0635):
    T2 inputs 1000 + 3000 + 40000, 100 out each: 44000 * 0.15 + 300 * 0.6 = $0.00678
    T3 9 x (1000 * 0.15 + 100 * 0.6) = $0.00189;  T4 3 x 210 = $0.00063;  total $0.0093
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from test_rollups_workload import TOTAL_USD, build, trace_id

from otel_costattr.cli import main
from otel_costattr.rollups.errors import RollupError
from otel_costattr.rollups.whatif import whatif

D = Decimal


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("whatif") / "spans.duckdb")


def levels(answer):
    return {(r["level"], r["feature"], r["trace_id"]): r for r in answer.rows}


def test_one_agent_on_a_cheaper_model(db):
    answer = whatif(db, "gpt-4o-mini", agent="researcher")
    assert answer.target == "openai/gpt-4o-mini" and "estimate" in answer.note
    rows = levels(answer)
    total = rows["total", None, None]
    assert (total["calls"], total["selected_calls"], total["actual_usd"], total["whatif_usd"]) == (
        15, 15, D("0.0635"), D("0.0093"),
    )  # fmt: skip
    assert total["change_usd"] == D("-0.0542") and total["change_share"] == pytest.approx(-0.0542 / 0.0635)
    assert rows["feature", "research", None]["whatif_usd"] == D("0.0093")
    assert rows["run", "research", trace_id(2)]["whatif_usd"] == D("0.00678")
    assert [r["level"] for r in answer.rows] == ["total", "feature", "run", "run", "run"]
    assert answer.rows[2]["trace_id"] == trace_id(2)  # the largest change first
    assert list(answer.unpriceable) == []


def test_one_model_swapped_everywhere_else_unchanged(db):
    # T1 c2 claude-sonnet-4-5 2000 / 200 ($0.009) -> 2000 * 0.15 + 200 * 0.6 = $0.00042
    rows = levels(whatif(db, "gpt-4o-mini", from_model="claude-sonnet-4-5", limit=0))
    total = rows["total", None, None]
    assert (total["selected_calls"], total["actual_usd"], total["whatif_usd"]) == (1, TOTAL_USD, D("0.07032"))
    assert rows["feature", "refund", None]["whatif_usd"] == D("0.00622")  # 0.0148 - 0.009 + 0.00042
    assert rows["feature", "research", None]["change_usd"] == 0
    assert len([k for k in rows if k[0] == "run"]) == 8


def test_a_dearer_target_keeps_the_largest_increases(db):
    # The run rows were ranked by change ascending: right for a cheaper target (the largest
    # saving first), but on a dearer one the limit kept unchanged runs and dropped the rises.
    everything = whatif(db, "claude-sonnet-4-5", from_model="claude-haiku-4-5", limit=0).rows
    rises = sorted((r for r in everything if r["level"] == "run"), key=lambda r: -abs(r["change_usd"]))
    assert rises[0]["change_usd"] > rises[1]["change_usd"] > 0 and rises[-1]["change_usd"] == 0
    top = [
        r
        for r in whatif(db, "claude-sonnet-4-5", from_model="claude-haiku-4-5", limit=2).rows
        if r["level"] == "run"
    ]
    assert [r["trace_id"] for r in top] == [rises[0]["trace_id"], rises[1]["trace_id"]]
    assert top[0]["trace_id"] == trace_id(2)
    features = [r["change_usd"] for r in everything if r["level"] == "feature"]
    assert features == sorted(features, key=lambda c: -abs(c))  # the largest change first


def test_one_step_with_cached_tokens(db):
    # triage step 0: T1 c1 gpt-4o 1000 in (400 cached) / 100 out: 600 * 0.15 + 400 * 0.075 +
    # 100 * 0.6 = $0.00018; T6 200 / 20: $0.000042
    rows = levels(whatif(db, "gpt-4o-mini", agent="triage", step=0))
    assert rows["total", None, None]["whatif_usd"] == D("0.000222")
    assert rows["run", "refund", trace_id(1)]["whatif_usd"] == D("0.00018")


def test_calls_the_target_cannot_price_are_listed(db):
    # summarizer: gpt-4o-mini 1000 / 0 $0.00015; acme-ner-7b 5000 / 50 unpriced, $0.00078 at
    # mini's prices; gpt-4o with invalid usage: no token counts to reprice
    answer = whatif(db, "gpt-4o-mini", agent="summarizer")
    total = levels(answer)["total", None, None]
    assert (total["unpriceable_calls"], total["unpriced_calls"]) == (1, 2)
    assert (total["actual_usd"], total["whatif_usd"]) == (D("0.00015"), D("0.00093"))
    assert [dict(r) for r in answer.unpriceable] == [
        {"model": "gpt-4o", "provider": "openai", "cost_status": "invalid_usage", "calls": 1}
    ]


def test_an_unknown_target_is_refused(db):
    with pytest.raises(
        RollupError, match="^whatif: the pricing table does not know the target model 'nope'$"
    ):
        whatif(db, "nope")


def test_whatif_command(capsys, db):
    argv = ["whatif", "--model", "gpt-4o-mini", "--agent", "summarizer", "--db", str(db), "--format", "json"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out)[0]["whatif_usd_exact"] == "0.00093"
    assert err == "Not repriced: 1 call(s) of gpt-4o (openai): invalid_usage, no usable token counts\n"
    code = main(["whatif", "--model", "gpt-4o-mini", "--agent", "researcher", "--db", str(db)])
    out, _ = capsys.readouterr()
    assert code == 0 and out.startswith("What-if at openai/gpt-4o-mini prices: an estimate")


def test_a_target_priced_as_another_id_is_said(capsys, db):
    """A mistyped target that a table rule still matches (Anthropic's "starts with
    claude-haiku-4-5") was priced as that entry, said only in the title (a review)."""
    argv = ["whatif", "--agent", "summarizer", "--db", str(db), "--format", "json", "--model"]
    for given, entry in (
        ("claude-haiku-4-5-foo", "anthropic/claude-haiku-4-5"),
        ("gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),  # a snapshot: its model's prices
    ):
        assert main([*argv, given]) == 0
        err = capsys.readouterr().err
        assert err.startswith(f"Note: {given} is priced as {entry}, the entry the table matches it to\n")
    assert main([*argv, "gpt-4o-mini"]) == 0
    assert not capsys.readouterr().err.startswith("Note:")


def test_a_run_serving_two_features_is_one_run(tmp_path):
    """A sub-agent working on a second feature: the run counts once in the total and is one
    run row (no feature of its own), and once in each feature."""
    from sdk_store import handoff, priced_store

    path = tmp_path / "handoff.duckdb"
    provider, tracer = priced_store(path)
    support = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "A", "app.feature": "support"}
    billing = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "B", "app.feature": "billing"}
    root = handoff(tracer, support, billing)
    provider.shutdown()
    run = f"{root.get_span_context().trace_id:032x}"
    rows = whatif(str(path), "gpt-4o-mini").rows
    got = [(r["level"], r["feature"], r["trace_id"], r["runs"], r["calls"]) for r in rows]
    # gpt-4o: 1000 * 2.5 + 100 * 10 = $0.0035, 2000 * 2.5 + 100 * 10 = $0.006
    assert sorted(got, key=str) == sorted(
        [
            ("total", None, None, 1, 2),
            ("feature", "billing", None, 1, 1),
            ("feature", "support", None, 1, 1),
            ("run", None, run, 1, 2),
        ],
        key=str,
    )
    assert rows[0]["actual_usd"] == D("0.0095")


def test_a_call_naming_no_model_is_never_selected(tmp_path):
    # One call with gen_ai.request.model "" (stored as no model) made whatif raise a NOT NULL
    # error from its model map: the CLI printed a traceback and the dashboard's /whatif a 500.
    from sdk_store import gpt4o_chat, priced_store

    path = tmp_path / "nomodel.duckdb"
    provider, tracer = priced_store(path)
    with tracer.start_as_current_span("run"):
        tracer.start_span("chat", attributes=gpt4o_chat(input_tokens=1000, output_tokens=100)).end()
        tracer.start_span(
            "chat", attributes={**gpt4o_chat(input_tokens=5, output_tokens=1), "gen_ai.request.model": ""}
        ).end()
    provider.shutdown()
    (total,) = [r for r in whatif(str(path), "gpt-4o-mini").rows if r["level"] == "total"]
    # gpt-4o-mini: 1000 * 0.15 + 100 * 0.6 = $0.00021 for the one call that names its model
    assert (total["calls"], total["selected_calls"], total["whatif_usd"]) == (2, 1, D("0.00021"))


def test_a_call_without_an_actual_price_adds_to_whatif_usd_only(tmp_path):
    """An unknown fine-tune's call has no actual cost: the target prices it (whatif_usd), but
    the change compares priced calls only. Repriced on the very model the priced call used,
    the total read "+$0.00021, +100%" (a review)."""
    from sdk_store import gpt4o_chat, priced_store

    path = tmp_path / "unknown.duckdb"
    provider, tracer = priced_store(path)
    with tracer.start_as_current_span("run"):
        known = {**gpt4o_chat(input_tokens=1000, output_tokens=100), "gen_ai.request.model": "gpt-4o-mini"}
        tracer.start_span("chat", attributes=known).end()
        tracer.start_span("chat", attributes={**known, "gen_ai.request.model": "acme-ft-1"}).end()
    with tracer.start_as_current_span("run"):  # a run of the unknown model alone
        tracer.start_span("chat", attributes={**known, "gen_ai.request.model": "acme-ft-1"}).end()
    provider.shutdown()
    rows = whatif(str(path), "gpt-4o-mini", limit=0).rows
    keys = ("level", "unpriced_calls", "actual_usd", "whatif_usd", "change_usd", "change_share")
    got = [tuple(r[k] for k in keys) for r in rows]
    # gpt-4o-mini: 1000 * 0.15 + 100 * 0.6 = $0.00021 a call
    assert got == [
        ("total", 2, D("0.00021"), D("0.00063"), D("0"), 0.0),
        ("feature", 2, D("0.00021"), D("0.00063"), D("0"), 0.0),
        ("run", 1, D("0.00021"), D("0.00042"), D("0"), 0.0),
        ("run", 1, None, D("0.00021"), None, None),
    ]


@pytest.mark.parametrize(
    "reported",
    [
        {"gen_ai.usage.cost.amount": 0.25, "gen_ai.usage.cost.currency": "USD"},  # OpenRouter's charge
        {"gen_ai.usage.cost": 0.25},  # a bare figure (OpenLIT)
    ],
)
def test_a_call_with_a_cost_and_no_tokens_keeps_its_cost(tmp_path, reported):
    """A call that carried its cost but no usage stores zero counts; repriced from them it
    cost $0 (whatif read -99.9% for a -1.3% change, --reprice a usd_repriced of 0: a review).
    It is not repriced: the target cannot price it, and its actual cost stands."""
    from sdk_store import gpt4o_chat, priced_store

    path = tmp_path / "reported.duckdb"
    provider, tracer = priced_store(path)
    with tracer.start_as_current_span("run"):
        tracer.start_span("chat", attributes=gpt4o_chat(input_tokens=1000, output_tokens=100)).end()
        bare = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
        }
        tracer.start_span("chat", attributes={**bare, **reported}).end()
    provider.shutdown()
    answer = whatif(str(path), "gpt-4o-mini")
    (total,) = [r for r in answer.rows if r["level"] == "total"]
    # gpt-4o: 1000 * 2.5 + 100 * 10 = $0.0035; on gpt-4o-mini 1000 * 0.15 + 100 * 0.6 = $0.00021
    assert (total["actual_usd"], total["whatif_usd"]) == (D("0.2535"), D("0.25021"))
    assert (total["change_usd"], total["unpriceable_calls"]) == (D("-0.00329"), 1)
    assert [r["calls"] for r in answer.unpriceable] == [1]


def test_from_model_selects_the_model_at_a_host_with_its_own_entry(tmp_path):
    """An o3 call to Azure OpenAI is stored under its host (pricing/endpoints.py), whose file
    has its own o3 entry: --from-model o3 left it out (a review). The model is selected
    wherever it was served."""
    from sdk_store import gpt4o_chat, priced_store

    path = tmp_path / "hosts.duckdb"
    provider, tracer = priced_store(path)
    with tracer.start_as_current_span("run"):
        for address in ("api.openai.com", "myres.openai.azure.com"):
            attrs = {**gpt4o_chat(input_tokens=1000, output_tokens=100), "server.address": address}
            attrs["gen_ai.response.model"] = "o3-2025-04-16"
            tracer.start_span("chat", attributes=attrs).end()
    provider.shutdown()
    (total,) = [r for r in whatif(str(path), "gpt-4o-mini", from_model="o3").rows if r["level"] == "total"]
    # each call on gpt-4o-mini: 1000 * 0.15 + 100 * 0.6 a million = $0.00021
    assert (total["selected_calls"], total["whatif_usd"]) == (2, D("0.00042"))


def test_selected_calls_without_an_actual_price_leave_the_change_unknown(tmp_path):
    # A new user's review: whatif --from an unknown fine-tune read "change $0.000000 0.0%"
    # (nothing it selected had an actual price, so nothing was compared), and the runs
    # holding the selected calls lost their place to unchanged runs, in an arbitrary order.
    from sdk_store import gpt4o_chat, priced_store

    path = tmp_path / "ft.duckdb"
    provider, tracer = priced_store(path)
    known = {**gpt4o_chat(input_tokens=1000, output_tokens=100), "gen_ai.request.model": "gpt-4o-mini"}
    for _ in range(6):
        with tracer.start_as_current_span("run", attributes={"app.feature": "plain"}):
            tracer.start_span("chat", attributes=known).end()
    with tracer.start_as_current_span("run", attributes={"app.feature": "tuned"}):
        tracer.start_span("chat", attributes={**known, "gen_ai.request.model": "acme-ft-1"}).end()
        tracer.start_span("chat", attributes=known).end()
    provider.shutdown()
    rows = whatif(str(path), "gpt-4o-mini", from_model="acme-ft-1", limit=1).rows
    keys = ("level", "feature", "selected_calls", "actual_usd", "whatif_usd", "change_usd", "change_share")
    assert [tuple(r[k] for k in keys) for r in rows] == [
        ("total", None, 1, D("0.00147"), D("0.00168"), None, None),
        ("feature", "tuned", 1, D("0.00021"), D("0.00042"), None, None),
        ("feature", "plain", 0, D("0.00126"), D("0.00126"), D("0"), 0.0),  # nothing selected: no change
        ("run", "tuned", 1, D("0.00021"), D("0.00042"), None, None),
    ]


def test_from_model_selects_a_newer_snapshot_priced_as_that_model(tmp_path):
    """openai-v2 reports the response model as a snapshot the table may not list yet
    (gpt-4o-mini-2025-01-01 answering gpt-4o-mini): the call is priced, and shown by per-model
    and --reprice, as gpt-4o-mini (costattr.model_source=request). whatif --from gpt-4o-mini
    left it out: its what-if cost stayed the actual one, the change half what it is."""
    from sdk_store import gpt4o_chat, priced_store

    path = tmp_path / "snapshot.duckdb"
    provider, tracer = priced_store(path)
    with tracer.start_as_current_span("run"):
        for response in ("gpt-4o-mini-2025-01-01", "gpt-4o-mini"):
            attrs = {**gpt4o_chat(input_tokens=1200, output_tokens=300), "gen_ai.response.model": response}
            tracer.start_span("chat", attributes={**attrs, "gen_ai.request.model": "gpt-4o-mini"}).end()
    provider.shutdown()
    answer = whatif(str(path), "gpt-4o", from_model="gpt-4o-mini")
    (total,) = [r for r in answer.rows if r["level"] == "total"]
    # actual, gpt-4o-mini: 1200 * 0.15 + 300 * 0.6 = $0.00036 a call;
    # on gpt-4o: 1200 * 2.5 + 300 * 10 = $0.006 a call
    assert (total["selected_calls"], total["actual_usd"]) == (2, D("0.00072"))
    assert (total["whatif_usd"], total["change_usd"]) == (D("0.012"), D("0.01128"))


def test_from_model_selects_the_model_on_bedrock_too(tmp_path):
    """Claude Sonnet 4.5 on Anthropic's API, on Bedrock (a us. and a global. profile, each
    with its own Bedrock entry) and on Vertex: --from claude-sonnet-4-5 left out both Bedrock
    calls, without a word (the model is selected wherever it ran)."""
    from sdk_store import priced_store

    path = tmp_path / "bedrock.duckdb"
    provider, tracer = priced_store(path)
    served = [
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("gcp.vertex_ai", "claude-sonnet-4-5@20250929"),
        ("openai", "gpt-4o-mini"),
    ]
    with tracer.start_as_current_span("run"):
        for host, model in served:
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": host,
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
            }
            tracer.start_span("chat", attributes=attrs).end()
    provider.shutdown()
    rows = whatif(str(path), "gpt-4o-mini", from_model="claude-sonnet-4-5").rows
    (total,) = [r for r in rows if r["level"] == "total"]
    # actual: 1000 * 3 + 100 * 15 = $0.0045 a Claude call, $0.00495 on a Bedrock us. profile
    # (+10%), gpt-4o-mini 1000 * 0.15 + 100 * 0.6 = $0.00021: $0.01866; each Claude call on
    # gpt-4o-mini $0.00021, the gpt-4o-mini call unchanged: $0.00105
    assert (total["selected_calls"], total["actual_usd"]) == (4, D("0.01866"))
    assert (total["whatif_usd"], total["change_usd"]) == (D("0.00105"), D("-0.01761"))
