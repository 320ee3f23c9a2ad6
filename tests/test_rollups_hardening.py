"""Rollups that never overflow, never choke on a parameter, never lose a span of a tree.

- A cost no single model call can have (stamped by another producer, or left in a file by an
  older version) is stored and read as ``implausible``: never summed, listed by ``unpriced``.
- Extreme parameters are refused with a `RollupParamError` (one ``Error:`` line in the CLI).
- ``trace`` shows every stored span of a run exactly once whatever its parent links say
  (self-parents, cycles, a 10,000-deep chain, span ids stored twice), and the roots' subtree
  costs add up to the run's total.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from test_rollups_workload import DAY0, Writer, build, trace_id

from otel_costattr import DuckDBSpanExporter, load_pricing, store
from otel_costattr.cli import main
from otel_costattr.rollup_queries import RollupParamError, rollup, rollups

D = Decimal
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


def every_rollup(db, trace: str) -> dict[str, list[dict]]:
    """Every bundled rollup on ``db`` (``trace`` for the one that needs a trace id)."""
    return {
        name: rollup(name, db=db, **({"trace_id": trace} if name == "trace" else {})) for name in rollups()
    }


# --- implausible costs ------------------------------------------------------------------


def export(path: Path, costs: list, *, pricing=None) -> str:
    """One run through a real TracerProvider and DuckDBSpanExporter (no cost processor: the
    spans carry their cost themselves, as another producer's would); returns its trace id."""
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path, pricing=pricing)))
    tracer = provider.get_tracer("another-producer")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", "app.feature": "f"}
    with tracer.start_as_current_span("invoke_agent a", attributes=agent) as root:
        for cost in costs:
            attrs = dict(CHAT) if cost is None else {**CHAT, "gen_ai.usage.cost": cost}
            with tracer.start_as_current_span("chat gpt-4o", attributes=attrs):
                pass
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def stored_calls(path: Path) -> list[tuple]:
    con = store.connect(path, read_only=True)
    try:
        return con.execute(
            "SELECT cost_usd, cost_status, cost_source, json_extract(attributes, '$.\"gen_ai.usage.cost\"')"
            " FROM spans WHERE span_role = 'model_call' ORDER BY start_time"
        ).fetchall()
    finally:
        con.close()


def test_implausible_stamps_are_stored_as_such_and_never_summed(tmp_path):
    path = tmp_path / "spans.duckdb"
    bad = [9e25, 9e25, float("nan"), float("inf"), -3.0, 1_000_000.5, 10**30]
    trace = export(path, [0.25, *bad, 1_000_000.0])
    rows = stored_calls(path)
    assert rows[0][:3] == (D("0.25"), "priced", "span")
    assert rows[-1][:3] == (D(1_000_000), "priced", "span")  # the bound itself is believed
    assert [row[:3] for row in rows[1:-1]] == [(None, "implausible", "span")] * len(bad)
    # The producer's figure stays visible in the span's attributes.
    assert [json.loads(row[3]) for row in rows[1:-1]] == [
        9e25, 9e25, "nan", "inf", -3.0, 1_000_000.5, 10**30,
    ]  # fmt: skip

    results = every_rollup(path, trace)  # none overflows
    total = D("1000000.25")
    stats = results["stats"][0]
    assert (stats["calls"], stats["usd"], stats["unpriced_calls"]) == (9, total, len(bad))
    for name in ("per_feature", "per_model", "per_step", "daily", "per_agent"):
        assert sum(row["usd"] or 0 for row in results[name]) == total, name
    assert [(row["cost_status"], row["calls"]) for row in results["unpriced"]] == [("implausible", len(bad))]
    assert results["trace"][0]["subtree_usd"] == total
    assert [row["cost_status"] for row in results["trace"][1:]].count("implausible") == len(bad)


def test_an_older_file_holding_huge_costs(tmp_path):
    """Rows written before the exporter refused them: the rollups treat them the same way."""
    con = store.connect(tmp_path / "old.duckdb")
    w = Writer(con)
    root = w.span(1, "invoke_agent a", role="agent", at=DAY0, agent_name="a", feature="f")
    for minute, usd in enumerate(("9e25", "9e25", "-5", "1000000.000000000001", "0.5")):
        w.call(1, "gpt-4o", 1000, 100, usd, parent=root, at=DAY0 + dt.timedelta(minutes=minute))
    con.close()

    results = every_rollup(tmp_path / "old.duckdb", trace_id(1))
    stats = results["stats"][0]
    assert (stats["calls"], stats["usd"], stats["unpriced_calls"]) == (5, D("0.5"), 4)
    assert [(row["cost_status"], row["calls"]) for row in results["unpriced"]] == [("implausible", 4)]
    assert [row["usd"] for row in results["top_runs"]] == [D("0.5")]
    tree = results["trace"]
    assert tree[0]["subtree_usd"] == D("0.5")
    assert [row["cost_status"] for row in tree[1:]] == ["implausible"] * 4 + ["priced"]


def test_the_rollups_bound_is_the_exporters(tmp_path):
    """queries/_calls.sql repeats mapping.MAX_CALL_USD: both must draw the line at one place."""
    from otel_costattr.mapping import MAX_CALL_USD, plausible_usd

    edge = [MAX_CALL_USD - D("1e-12"), MAX_CALL_USD, MAX_CALL_USD + D("1e-12"), D(0), D("-1e-12")]
    con = duckdb.connect(str(tmp_path / "edge.duckdb"))
    store.migrate(con)
    w = Writer(con)
    ids = [w.call(1, "gpt-4o", 10, 1, str(usd), parent=None, at=DAY0) for usd in edge]
    got = {row["span_id"]: row["usd"] for row in rollup("trace", db=con, trace_id=trace_id(1))}
    assert [got[i] for i in ids] == [plausible_usd(usd) for usd in edge]
    assert [got[i] is None for i in ids] == [False, False, True, False, True]


def test_our_own_engine_obeys_the_bound(tmp_path):
    """A user table's rate near the pricing cap, on 100M tokens, is no believable cost either."""
    prices = tmp_path / "dear.toml"
    prices.write_text(
        'provider = "dear"\n[[model]]\nid = "dear-1"\nmatch = [{ equals = "dear-1" }]\n'
        "[[model.price]]\ninput = 50000\noutput = 0\n"
    )
    table = load_pricing([prices], bundled=False, use_env=False)
    path = tmp_path / "spans.duckdb"
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path, pricing=table)))
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "dear-1"}
    tracer = provider.get_tracer("t")
    for tokens in (100_000_000, 1000):  # $5,000,000, then $50
        with tracer.start_as_current_span("chat", attributes={**call, "gen_ai.usage.input_tokens": tokens}):
            pass
    provider.shutdown()
    assert [row[:3] for row in stored_calls(path)] == [
        (None, "implausible", "exporter"),
        (D(50), "priced", "exporter"),
    ]


def test_an_implausible_call_can_still_be_repriced(tmp_path):
    """Its tokens are stored: --reprice prices it with our table, next to the stamp."""
    path = tmp_path / "spans.duckdb"
    export(path, [float("nan")])
    (row,) = rollup("per_model", db=path, reprice=load_pricing())
    assert (row["usd"], row["unpriced_calls"]) == (None, 1)
    assert row["usd_repriced"] == D("0.0035")  # 1000 x $2.50 + 100 x $10 per million


# --- parameters -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("params") / "spans.duckdb")


AWARE = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # 10000 in UTC


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("per_feature", {"days": 800000}, "per_feature: days: must be at most 36500, got 800000"),
        ("per_feature", {"days": 3e9}, "per_feature: days: must be at most 36500, got 3e+09"),
        ("per_feature", {"days": "1e400"}, "per_feature: days: too large for a number (DOUBLE), got '1e400'"),
        (
            "stats",
            {"since": "9999-12-31T23:00:00-05:00"},
            "stats: since: out of range once converted to UTC, got '9999-12-31T23:00:00-05:00'",
        ),
        (
            "stats",
            {"since": "0001-01-01T01:00:00+05:00"},
            "stats: since: out of range once converted to UTC, got '0001-01-01T01:00:00+05:00'",
        ),
        ("daily", {"until": AWARE}, f"daily: until: out of range once converted to UTC, got {AWARE!r}"),
        (
            "per_model",
            {"since": "2026-06-05", "until": "2026-06-01"},
            "per_model: since (2026-06-05 00:00:00) must be before until (2026-06-01 00:00:00)",
        ),
        (
            "per_model",
            {"since": "2026-06-05T10:00", "until": dt.datetime(2026, 6, 5, 10)},
            "per_model: since (2026-06-05 10:00:00) must be before until (2026-06-05 10:00:00)",
        ),
        ("top_runs", {"limit": 2**70}, f"top_runs: limit: must be at most 2147483647, got {2**70}"),
        ("per_run", {"limit": "1e30"}, "per_run: limit: must be at most 2147483647, got '1e30'"),
        ("loops", {"min_calls": -(2**40)}, f"loops: min_calls: must be at least -2147483648, got {-(2**40)}"),
        ("loops", {"factor": "1e400"}, "loops: factor: too large for a number (DOUBLE), got '1e400'"),
        (
            "step_jumps",
            {"min_tokens": 2**63},
            f"step_jumps: min_tokens: must be at most 2147483647, got {2**63}",
        ),
    ],
)
def test_extreme_parameters_are_refused_by_name(db, name, params, message):
    with pytest.raises(RollupParamError) as e:
        rollup(name, db=db, **params)
    assert str(e.value) == message


def test_days_reaching_before_year_one(tmp_path):
    with pytest.raises(RollupParamError, match=r"^stats: days: reaches before year 1, got 2$"):
        rollup("stats", db=tmp_path / "unused.duckdb", days=2, now=dt.datetime(1, 1, 1, 12))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rollup", "per-run", "--days", "800000"], "per_run: days: must be at most 36500, got 800000"),
        (["rollup", "stats", "--days", "3e9"], "stats: days: must be at most 36500, got 3e+09"),
        (
            ["runs", "--since", "9999-12-31T23:00:00-05:00"],
            "per_run: since: out of range once converted to UTC, got '9999-12-31T23:00:00-05:00'",
        ),
        (
            ["rollup", "daily", "--since", "2026-06-05", "--until", "2026-06-01"],
            "daily: since (2026-06-05 00:00:00) must be before until (2026-06-01 00:00:00)",
        ),
        (
            ["rollup", "top-runs", "--limit", "1e30"],
            "top_runs: limit: must be at most 2147483647, got '1e30'",
        ),
        (
            ["rollup", "loops", "--param", "min_calls=99999999999"],
            "loops: min_calls: must be at most 2147483647, got '99999999999'",
        ),
    ],
)
def test_the_cli_prints_one_error_line(capsys, db, argv, message):
    code = main([*argv, "--db", str(db)])
    out, err = capsys.readouterr()
    assert (code, out, err) == (1, "", f"Error: {message}\n")


# --- runs written by hand: a span id stored twice ---------------------------------------


@pytest.fixture
def con():
    con = duckdb.connect()
    store.migrate(con)
    yield con
    con.close()


def sid(n: int) -> str:
    return f"{n:016x}"


def at(seconds: float) -> dt.datetime:
    return DAY0 + dt.timedelta(seconds=seconds)


def store_twice(con) -> None:
    """An agent span, and a call, each stored twice: the store keeps both copies of a span id
    when they started at different times (bad data). The calls carry no identity: they find
    it through the agent, once per call."""
    w = Writer(con)
    w.span(1, "agent", role="agent", span_id=sid(1), at=at(0), feature="f", agent_name="a")
    w.span(1, "agent again", role="agent", span_id=sid(1), at=at(9), feature="f", agent_name="a")
    w.call(1, "gpt-4o", 1000, 100, "0.0035", parent=sid(1), span_id=sid(2), at=at(1))
    w.call(1, "gpt-4o", 1000, 100, "0.0035", parent=sid(1), span_id=sid(2), at=at(2))
    w.call(1, "gpt-4o-mini", 1000, 0, None, parent=sid(1), span_id=sid(3), at=at(3))


def test_span_ids_stored_twice_are_counted_once_per_row(con):
    store_twice(con)
    stats = rollup("stats", db=con)[0]
    assert (stats["calls"], stats["usd"], stats["unpriced_calls"]) == (3, D("0.007"), 1)
    assert [row["calls"] for row in rollup("unpriced", db=con)] == [1]
    features = rollup("per_feature", db=con)
    assert [(r["feature"], r["calls"], r["usd"]) for r in features] == [("f", 3, D("0.007"))]
