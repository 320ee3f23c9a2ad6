"""Repricing: any rollup recomputes cost from the stored tokens with another table, next to
the cost stamped at the time, exactly as `compute_cost` would."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rollups_workload import Writer, build, trace_id

from otel_costattr import PricingError, Usage, compute_cost, load_pricing, semconv
from otel_costattr.rollups.catalog import rollups
from otel_costattr.rollups.queries import load_prices, rollup
from otel_costattr.store import database as store

D = Decimal
TEST_PRICES = Path(__file__).parent / "data" / "test_prices.toml"

NEW_CONTRACT = """
provider = "openai"
otel_names = ["openai"]

[[model]]
id = "gpt-4o"
match = [{ equals = "gpt-4o" }]

[[model.price]]
input = 5
output = 20
cache_read = 2.5
"""

SELF_HOSTED = """
provider = "vllm"
otel_names = ["vllm"]

[[model]]
id = "acme-ner-7b"
match = [{ equals = "acme-ner-7b" }]

[[model.price]]
input = 0.2
output = 0.2
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("reprice") / "spans.duckdb")


@pytest.fixture
def files(tmp_path):
    contract = tmp_path / "contract.toml"
    contract.write_text(NEW_CONTRACT)
    hosted = tmp_path / "hosted.toml"
    hosted.write_text(SELF_HOSTED)
    return contract, hosted


def test_a_new_contract_side_by_side(db, files):
    contract, _ = files
    models = {row["model"]: row for row in rollup("per_model", db=db, reprice=[contract])}
    gpt = models["gpt-4o"]
    # c1: 600 * 5 + 400 * 2.5 + 100 * 20 = $0.006; T6: 200 * 5 + 20 * 20 = $0.0014;
    # the call with invalid usage has no tokens to price.
    assert (gpt["usd"], gpt["usd_repriced"]) == (D("0.0037"), D("0.0074"))
    # Everything else is priced with the bundled table, as it was stamped.
    for name in ("claude-haiku-4-5", "claude-sonnet-4-5", "gpt-4o-mini"):
        assert models[name]["usd_repriced"] == models[name]["usd"], name
    assert models["acme-ner-7b"]["usd_repriced"] is None


def test_a_missing_price_added_after_the_fact(db, files):
    _, hosted = files
    rows = {row["model"]: row for row in rollup("unpriced", db=db, reprice=[hosted])}
    # 5000 * 0.2 + 50 * 0.2 per million tokens
    assert rows["acme-ner-7b"]["usd_repriced"] == D("0.00101")
    assert rows["gpt-4o"]["usd_repriced"] is None  # invalid usage stays unpriced


def test_every_rollup_reprices(db, files):
    contract, _ = files
    table = load_pricing([contract], use_env=False)
    for name in rollups():
        params = {"trace_id": trace_id(1)} if name == "trace" else {}
        rows = rollup(name, db=db, reprice=table, **params)
        if rows:
            assert any(k.endswith("usd_repriced") for k in rows[0]), name
    (tree_root, *_) = rollup("trace", db=db, reprice=table, trace_id=trace_id(1))
    # T1 with gpt-4o at twice the price: 0.006 + 0.009 + 0.0021
    assert tree_root["subtree_usd_repriced"] == D("0.0171")


def test_repricing_leaves_a_callers_connection_as_it_was(db, files):
    contract, _ = files
    con = store.connect(db, read_only=True)
    try:
        assert "usd_repriced" in rollup("per_feature", db=con, reprice=[contract])[0]
        assert "usd_repriced" not in rollup("per_feature", db=con)[0]
        assert con.execute("SELECT count(*) FROM costattr_repriced").fetchone() == (0,)
    finally:
        con.close()


def test_load_prices(table):
    con = duckdb.connect()
    count = load_prices(con, table)
    rows = con.execute(
        "SELECT service_tier, above, input, output, cache_read, cache_write_1h, valid_from, valid_until"
        " FROM costattr_prices WHERE model = 'acme-large'"
        " ORDER BY valid_from NULLS FIRST, service_tier, above NULLS FIRST"
    ).fetchall()
    june = dt.datetime(2026, 6, 1)
    assert rows[0] == ("batch", None, D("1.5"), D("7.5"), D("0.15"), D("3"), None, june)
    assert ("standard", 200000, D("4"), D("15"), D("0.4"), D("8"), june, None) in rows
    # acme-large: 2 periods x (standard, batch) x (base, one tier); acme-think 1; acme-mini 1;
    # acme-peak: base + 2 windows
    assert count == 13
    peak = con.execute(
        "SELECT window_start, window_end, input FROM costattr_prices WHERE model = 'acme-peak'"
        " ORDER BY window_start NULLS FIRST"
    ).fetchall()
    assert peak == [(None, None, D("1")), (3600, 14400, D("2")), (79200, 1800, D("3"))]
    think = con.execute(
        "SELECT reasoning, cache_write FROM costattr_prices WHERE model = 'acme-think'"
    ).fetchone()
    assert think == (D("8.8"), D("1.1"))  # cache writes fall back to the input rate


def test_a_rate_finer_than_the_table_holds_is_refused_at_load(tmp_path):
    # Refused when the file loads, naming it (pricing.model.MAX_RATE_DECIMALS), not by every
    # repricing later: load_prices keeps its own check for a table built some other way.
    fine = tmp_path / "fine.toml"
    fine.write_text(SELF_HOSTED.replace("input = 0.2", "input = 0.0000000000001"))
    with pytest.raises(PricingError, match=r"^.*fine.toml: model 'acme-ner-7b': price\[0\].input: must have"):
        load_pricing([fine], bundled=False, use_env=False)


# --- the property: SQL repricing == compute_cost, call by call ---------------------------

# A second provider with time-of-day windows (one wraps past midnight) and a batch tier,
# which wins over a window.
DUSK = """
provider = "dusk"
otel_names = ["dusk"]

[[model]]
id = "dusk-1"
match = [{ equals = "dusk-1" }]

[[model.price]]
input = 0.5
output = 2
cache_read = 0.05
batch = { input = 0.25, output = 1, cache_read = 0.025 }
windows = [
  { start = 22:00:00, end = 02:00:00, input = 0.3, output = 1.5, cache_read = 0.03 },
  { start = 09:00:00, end = 17:00:00, input = 1, output = 4, cache_read = 0.1 },
]
"""
TIER_KEY = "gen_ai.openai.response.service_tier"
LOWER_TIER_KEY = "gen_ai.request.service_tier"
# Either spelling (the anthropic SDK's own spans write theirs), call by call.
WRITE_1H_KEYS = ("gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
                 "anthropic.usage.cache_creation.ephemeral_1h_input_tokens")  # fmt: skip


@st.composite
def a_call(draw):
    model = draw(
        st.sampled_from(
            ["acme-large", "acme-large-20260101", "acme-think", "acme-mini", "acme-peak", "dusk-1", "nope"]
        )
    )
    provider = draw(st.sampled_from(["acme", "acme.ai", "dusk", None, "other"]))
    read = draw(st.integers(0, 150_000))
    write = draw(st.integers(0, 100_000))
    write_1h = draw(st.integers(0, write))
    uncached = draw(st.integers(0, 150_000))
    reasoning = draw(st.integers(0, 5000))
    output = reasoning + draw(st.integers(0, 5000))
    tier = draw(st.sampled_from([None, "batch", "BATCH", "flex", "priority", ""]))
    # A spelling ranked lower: read when the first is absent or empty (a review: --reprice
    # took the empty one and billed standard).
    lower_tier = draw(st.sampled_from([None, "batch", "flex", ""]))
    minutes = draw(st.integers(-3 * 1440, 3 * 1440))  # around the 2026-06-01 price change
    tiers = (tier, lower_tier)
    return model, provider, uncached + read + write, read, write, write_1h, output, reasoning, tiers, minutes


@pytest.fixture(scope="module")
def windowed_table(tmp_path_factory):
    dusk = tmp_path_factory.mktemp("dusk") / "dusk.toml"
    dusk.write_text(DUSK)
    return load_pricing([TEST_PRICES, dusk], bundled=False, use_env=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(a_call(), min_size=1, max_size=15))
def test_sql_repricing_is_compute_cost(windowed_table, calls):
    table = windowed_table
    con = duckdb.connect()
    store.migrate(con)
    w = Writer(con)
    expected = {}
    for n, (model, provider, inp, read, write, write_1h, output, reasoning, tiers, minutes) in enumerate(
        calls, 1
    ):
        at = dt.datetime(2026, 6, 1) + dt.timedelta(minutes=minutes)
        attrs = {}
        for key, value in zip((TIER_KEY, LOWER_TIER_KEY), tiers, strict=True):
            if value is not None:
                attrs[key] = value
        tier = semconv.read_call_fields(attrs)[2]  # the spelling the processor reads
        if write_1h:
            attrs[WRITE_1H_KEYS[n % 2]] = write_1h
        w.call(n, model, inp, output, None, provider=provider or None, parent=None, at=at,
               cache_read=read, attributes=json.dumps(attrs))  # fmt: skip
        con.execute(
            "UPDATE spans SET cache_write_tokens = $w, reasoning_tokens = $z, provider = $p"
            " WHERE trace_id = $t",
            {"w": write, "z": reasoning, "p": provider, "t": trace_id(n)},
        )
        usage = Usage(
            input_tokens=inp, output_tokens=output, cache_read_tokens=read, cache_write_tokens=write,
            cache_write_1h_tokens=write_1h or None, reasoning_tokens=reasoning,
            input_includes_cache=True, output_includes_reasoning=True,
        )  # fmt: skip
        cost = compute_cost(model, usage, provider=provider, start_time=at,
                            service_tier=(tier or None) and tier.lower(), table=table)  # fmt: skip
        expected[trace_id(n)] = cost.total
    rows = rollup("per_run", db=con, limit=0, reprice=table)
    got = {row["trace_id"]: row["usd_repriced"] for row in rows}
    assert got == expected


def test_a_call_that_reported_no_usage_is_not_repriced_at_zero(tmp_path):
    # A stream without usage stores zero counts beside `no_usage`: repricing and what-if must
    # leave it unpriceable, not call it a call that cost $0.
    from sdk_store import gpt4o_chat, priced_store

    from otel_costattr.rollups.whatif import whatif

    db = tmp_path / "spans.duckdb"
    provider, tracer = priced_store(db)
    chat = gpt4o_chat()
    runs = {}
    for name, usage in (
        ("silent", {}),
        ("told", {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}),
    ):
        with tracer.start_as_current_span(name, attributes={"app.feature": "f"}) as root:
            tracer.start_span("chat gpt-4o", attributes={**chat, **usage}).end()
        runs[name] = f"{root.get_span_context().trace_id:032x}"
    provider.shutdown()

    rows = {r["trace_id"]: r for r in rollup("per_run", db=db, reprice=load_pricing(use_env=False))}
    # gpt-4o: 1000 x 2.5 + 100 x 10 per million tokens
    assert (rows[runs["told"]]["usd"], rows[runs["told"]]["usd_repriced"]) == (D("0.0035"), D("0.0035"))
    assert (rows[runs["silent"]]["usd"], rows[runs["silent"]]["usd_repriced"]) == (None, None)
    answer = whatif(db, "gpt-4o-mini")
    total = next(r for r in answer.rows if r["level"] == "total")
    # gpt-4o-mini: 1000 x 0.15 + 100 x 0.6
    assert (total["whatif_usd"], total["unpriceable_calls"]) == (D("0.00021"), 1)
    assert [(r["model"], r["cost_status"], r["calls"]) for r in answer.unpriceable] == [
        ("gpt-4o", "no_usage", 1)
    ]


def test_a_call_priced_at_its_request_model_is_repriced_the_same_way(tmp_path):
    # An unknown newer snapshot of a known request model is priced at the request model's
    # price by the processor (costattr.model_source=request); --reprice with the very same
    # table left those calls without a repriced cost, dropping them from usd_repriced.
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "spans.duckdb"
    provider, tracer = priced_store(db)
    chat = gpt4o_chat(input_tokens=1000, output_tokens=100)
    for response in ("gpt-4o-2099-01-01", "gpt-4o-2099-01-01", "gpt-4o-2024-08-06"):
        with tracer.start_as_current_span("run", attributes={"app.feature": "f"}):
            tracer.start_span("chat", attributes={**chat, "gen_ai.response.model": response}).end()
    provider.shutdown()
    (row,) = rollup("per_feature", db=db, reprice=load_pricing(use_env=False))
    # gpt-4o: 1000 x 2.5 + 100 x 10 per million tokens, three times
    assert (row["usd"], row["usd_repriced"]) == (D("0.0105"), D("0.0105"))


def test_headline_totals_count_the_calls_repricing_left_out(tmp_path):
    # overview --reprice read usd 1.25, usd_repriced 0.0035, unpriced_calls 1: two calls the
    # prices given could not price (an unknown model whose provider stamped a cost) counted
    # $0 in usd_repriced, and nothing said so.
    from sdk_store import gpt4o_chat, priced_store

    from otel_costattr.pricing.table import default_pricing

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    tracer.start_span("chat", attributes=gpt4o_chat(input_tokens=1000, output_tokens=100)).end()
    unknown = {**gpt4o_chat(input_tokens=10, output_tokens=1), "gen_ai.request.model": "zzz-model"}
    tracer.start_span("chat", attributes={**unknown, "gen_ai.usage.cost": 0.5}).end()
    tracer.start_span("chat", attributes=unknown).end()
    provider.shutdown()
    (plain,) = rollup("overview", db=str(db))
    assert "unpriced_calls_repriced" not in plain
    (row,) = rollup("overview", db=str(db), reprice=default_pricing())
    assert (row["calls"], row["unpriced_calls"], row["unpriced_calls_repriced"]) == (3, 1, 2)
    assert row["usd"] == Decimal("0.5035") and row["usd_repriced"] == Decimal("0.0035")
    only = ["model=zzz-model"]
    (group,) = rollup("per_group", db=str(db), group_by="model", reprice=default_pricing(), where=only)
    assert (group["unpriced_calls"], group["unpriced_calls_repriced"]) == (1, 2)
    (total, *_) = rollup("forecast", db=str(db), reprice=default_pricing())
    assert total["unpriced_calls_repriced"] == 2


# Rollups whose rows are single calls: a NULL usd_repriced is itself the mark.
PER_CALL = {"step_jumps"}


def test_every_repriced_total_counts_the_calls_it_left_out(tmp_path):
    # per-feature --reprice read usd 0.5035 against usd_repriced 0.0035 and nothing said that
    # two of its three calls were left out of the second figure (an unknown model whose
    # provider reported a cost, and one without): only overview, per-group and forecast had
    # unpriced_calls_repriced. Every rollup with a repriced sum now counts them beside it.
    from sdk_store import gpt4o_chat, priced_store

    from otel_costattr.pricing.table import default_pricing

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    unknown = {**gpt4o_chat(input_tokens=10, output_tokens=1), "gen_ai.request.model": "zzz-model"}
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage", "app.feature": "f"}
    with tracer.start_as_current_span("run", attributes=agent) as root:
        tracer.start_span("chat", attributes=gpt4o_chat(input_tokens=1000, output_tokens=100)).end()
        tracer.start_span("chat", attributes={**unknown, "gen_ai.usage.cost": 0.5}).end()
        tracer.start_span("chat", attributes=unknown).end()
    provider.shutdown()
    trace = f"{root.get_span_context().trace_id:032x}"
    table = default_pricing()
    checked = set()
    for name in rollups():
        params = {"trace_id": trace} if name == "trace" else {}
        if name == "loops":
            params = {"factor": 1, "min_calls": 1}  # the one run is its own median
        rows = rollup(name, db=str(db), reprice=table, **params)
        sums = [c for c in rows.columns if c.endswith("usd_repriced")]
        if not sums or name in PER_CALL:
            continue
        plain = rollup(name, db=str(db), **params)
        assert not [c for c in plain.columns if c.endswith("_repriced")], name
        for column in sums:
            if name == "trace" and column == "usd_repriced":
                continue  # a span's own: NULL is the mark, as in PER_CALL
            prefix = next((p for p in ("previous_", "subtree_") if column.startswith(p)), "")
            count = f"{prefix}unpriced_calls_repriced"
            assert count in rows.columns, (name, column)
        if "level" in rows.columns:  # a total row first (compare, forecast, overview...)
            rows = [r for r in rows if r["level"] == "total"]
        elif name == "stats":
            rows = [r for r in rows if r["model"] is None]
        elif name == "trace":
            rows = rows[:1]  # the root: its subtree is the run
        count = "subtree_unpriced_calls_repriced" if name == "trace" else "unpriced_calls_repriced"
        # unpriced lists the calls without a cost: the one whose provider reported none
        assert sum(r[count] for r in rows) == (1 if name == "unpriced" else 2), name
        if name == "compare":
            assert rows[0]["previous_unpriced_calls_repriced"] == 0
        checked.add(name)
    assert checked >= {"per_feature", "per_agent", "per_model", "per_step", "per_run", "top_runs",
                       "runs_list", "daily", "daily_model", "agent_steps", "stats", "loops", "compare",
                       "unpriced", "trace", "overview", "per_group", "forecast"}  # fmt: skip
