"""The ClickHouse backend against the DuckDB store, on one workload of real SDK spans.

The DuckDB side is our exporter's file; the ClickHouse side is chDB (the embedded engine,
through clickhouse-connect's chdb backend) holding the Collector exporter's own otel_traces
DDL, rows laid out as that exporter writes them. Every rollup must agree row for row: money
exactly, floats to 12 significant digits (a sum's order differs between engines).

chDB runs one engine per process: the tests share one data directory and isolate themselves
by database (``?database=``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_workload
import pytest
from serverutil import Running, serving

from otel_costattr.cli import main
from otel_costattr.clickhouse import parse_target
from otel_costattr.clickhouse.client import connect
from otel_costattr.clickhouse.collector import create_table_sql
from otel_costattr.clickhouse.typed import init_statements, initialise
from otel_costattr.pricing.table import default_pricing
from otel_costattr.rollups.catalog import query, rollups
from otel_costattr.rollups.errors import RollupError, RollupParamError
from otel_costattr.rollups.queries import rollup

pytestmark = pytest.mark.chdb

ROLLUPS = [name for name in rollups() if name != "trace"]
# The rollups' NOW (compare's and forecast's defaults): one instant for both engines, within
# the workload's days (2026-06-01 to 06-04).
NOW = dt.datetime(2026, 6, 3, 12)


@pytest.fixture(scope="module")
def stores(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(the DuckDB file, the chDB URL) holding the same workload."""
    duck = str(tmp_path_factory.mktemp("duck") / "spans.duckdb")
    url = f"chdb://{chdb_dir}?database=workload"
    clickhouse_workload.load(clickhouse_workload.spans(default_pricing()), duck, url)
    return duck, url


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    return type(a) is type(b) and a == b if a is not None else b is None


def assert_agree(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
    assert list(getattr(got, "columns", ())) == list(getattr(expected, "columns", ()))
    assert len(got) == len(expected)
    for i, (want, have) in enumerate(zip(expected, got, strict=True)):
        bad = {k: (want[k], have[k]) for k in want if not _same(want[k], have[k])}
        assert not bad, f"row {i}: {bad}"


@pytest.mark.parametrize("name", ROLLUPS)
def test_every_rollup_agrees_with_duckdb(stores: tuple[str, str], name: str) -> None:
    duck, url = stores
    expected = rollup(name, duck, now=NOW)
    assert expected, f"{name}: the workload must give rows"
    assert_agree(expected, rollup(name, url, now=NOW))


QUOTIENTS = [("13336939.375008833333", "1"), ("100000000000000", "3"), ("-100000000000000", "3"),
             ("5", "10000000000000"), ("-3", "2000000000000"), ("7", "3"), ("0", "5"),
             ("123456789.123456789012", "7")]  # fmt: skip


def test_a_cast_of_anything_but_a_quotient_is_refused_not_split_at_its_first_slash() -> None:
    """The cast rewrites split a quotient at its top-level ``/``: ``a + b / c`` split there
    is (a + b) / c, another number, so such a cast is refused when a query is translated
    (every query is, in the tests) rather than answered wrongly."""
    from otel_costattr.clickhouse.dialect import _CAST_DONE, _cast

    for fine in ("a / b", "x.a * b / nullif(c, 0)", "(a - b) / (c + d)", "f(a / b, 1) / g(c)"):
        assert _cast(f"{fine} AS DOUBLE").startswith("(toFloat64("), fine
        assert _cast(f"{fine} AS DECIMAL(38, 12)").startswith(_CAST_DONE), fine
    assert _cast("a - b AS DECIMAL(38, 6)") == f"{_CAST_DONE}a - b AS DECIMAL(38, 6))"
    for wrong in ("a + b / c", "a / b * c", "a / b / c", "CASE WHEN x THEN a / b ELSE c END", "'1' / b"):
        for kind in ("DOUBLE", "DECIMAL(38, 12)"):
            with pytest.raises(RollupError, match="parenthesize"):
                _cast(f"{wrong} AS {kind}")


def test_a_quotient_cast_to_a_decimal_is_duckdbs_to_the_digit(stores: tuple[str, str]) -> None:
    """DuckDB casts a decimal quotient through a DOUBLE: the exact double, scaled and rounded
    half away from zero. ClickHouse took the double's shortest text, which differs past 16
    digits: forecast's projected_usd 13336939.375008830000 against ...833536 (a review)."""
    import duckdb

    from otel_costattr.clickhouse.client import SETTINGS
    from otel_costattr.clickhouse.dialect import _CAST_DONE, _cast

    _, url = stores
    client = connect(parse_target(url))
    cast = _cast("a / b AS DECIMAL(38, 12)").replace(_CAST_DONE, "CAST(")
    with duckdb.connect() as con:
        for a, b in QUOTIENTS:
            want = con.execute(
                f"SELECT CAST(CAST({a} AS DECIMAL(38, 12)) / CAST({b} AS DECIMAL(38, 0)) AS DECIMAL(38, 12))"
            ).fetchone()[0]
            got = client.query(
                f"SELECT {cast} FROM (SELECT toDecimal128('{a}', 12) AS a, toDecimal128('{b}', 0) AS b)",
                settings=SETTINGS,
            ).result_rows[0][0]
            assert got == want, (a, b)
    # past Decimal(38, 12) DuckDB refuses the cast; the dialect's exact conversion wrapped it
    # into a wrong number (a review): NULL there
    for a in ("1000000000000000000000000000000", "150000000000000000000000000"):
        select = f"SELECT {cast} FROM (SELECT toDecimal128('{a}', 0) AS a, toDecimal128('1', 0) AS b)"
        got = client.query(select, settings=SETTINGS).result_rows[0][0]
        assert got is None, a
    # within the type a large quotient is a number, as on DuckDB (its last digits are the
    # engines' own conversions of a decimal to a double, which differ at this size)
    large = "toDecimal128('90000000000000000000000000', 12) AS a, toDecimal128('1', 0) AS b"
    got = client.query(f"SELECT {cast} FROM (SELECT {large})", settings=SETTINGS).result_rows[0][0]
    assert got is not None


def test_every_run_tree_agrees_with_duckdb(stores: tuple[str, str]) -> None:
    """trace: the runs' trees (orphans, handoffs, walks up, unpriced calls) row for row; a
    third of the runs, in time order, keeps this test short (each run is a few queries)."""
    duck, url = stores
    runs = rollup("per_run", duck, limit=0)
    assert len(runs) > 30
    for run in runs[::3]:
        expected = rollup("trace", duck, trace_id=run["trace_id"])
        assert expected
        assert_agree(expected, rollup("trace", url, trace_id=run["trace_id"]))
    assert rollup("trace", url, trace_id="0" * 32) == []


@pytest.mark.parametrize("name", ["per_agent", "per_step", "agent_steps", "daily"])
def test_unpriced_calls_per_agent_step_and_day_agree_with_duckdb(stores: tuple[str, str], name: str) -> None:
    """The workload's calls without a cost (trace 6's unknown model, in its agent's step) are
    in these rollups' unpriced_calls on both engines, each counted once (agent spans' summed
    usage never), as stats counts them."""
    duck, url = stores
    (total,) = [r["unpriced_calls"] for r in rollup("stats", duck, now=NOW) if r["model"] is None]
    assert total >= 1
    for db in (duck, url):
        rows = rollup(name, db, now=NOW)
        assert sum(r["unpriced_calls"] for r in rows) == total, db
        assert any(r["unpriced_calls"] and r["agent" if name != "daily" else "feature"] for r in rows)
    assert_agree(rollup(name, duck, now=NOW), rollup(name, url, now=NOW))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("per_feature", {"feature": "refund"}),
        ("per_model", {"agent": "billing"}),
        ("per_agent", {"service": "sidecar"}),
        ("per_step", {"agent": "triage"}),  # trace 6's unpriced calls among its steps
        ("agent_steps", {"since": "2026-06-02", "until": "2026-06-04"}),
        ("daily", {"since": "2026-06-02", "until": "2026-06-04"}),
        ("top_runs", {"limit": 3}),
        # the kept runs cut by LIMIT (a top-N sort on ClickHouse), newest and dearest first
        ("runs_list", {"limit": 5}),
        ("runs_list", {"order": "cost", "limit": 4}),
        ("per_run", {"limit": 7, "since": "2026-06-02"}),
        ("per_run", {"limit": 0, "agent": "triage"}),
        ("loops", {"factor": 1.5, "min_calls": 3}),
        ("step_jumps", {"min_ratio": 1.5, "min_tokens": 1000}),
        # compare and forecast read calls before since: those are priced too
        ("compare", {"since": "2026-06-03", "until": "2026-06-05"}),
        ("compare", {"since": "2026-06-02", "until": "2026-06-04", "group_by": "user.id"}),
        ("forecast", {"until": "2026-06-04", "group_by": "agent"}),
        ("per_group", {"group_by": "model"}),
        ("per_group", {"group_by": "user.id", "service": "app"}),
        # a prompt is content: neither store keeps it, so its only value is NULL
        ("per_group", {"group_by": "gen_ai.input.messages"}),
        ("per_run", {"where": {"user.id": "u1"}}),
        ("top_runs", {"where": ["user.id=u1", "user.id=u2", "model=gpt-4o"], "limit": 0}),
        ("per_feature", {"where": {"agent": "triage", "service": "sidecar"}}),
        ("per_group", {"where": {"provider": "anthropic"}, "group_by": "user.id"}),
        ("approximations", {"where": {"user.id": "u0"}}),
    ],
)
def test_filters_agree(stores: tuple[str, str], name: str, params: dict[str, Any]) -> None:
    duck, url = stores
    expected = rollup(name, duck, now=NOW, **params)
    assert expected
    assert_agree(expected, rollup(name, url, now=NOW, **params))


RUN_ROLLUPS = (("per_run", {"limit": 0}), ("top_runs", {"limit": 0}), ("runs_list", {"limit": 0}))


def assert_cut_runs_agree(duck: str, url: str) -> None:
    """A window that opens inside a run: the run counts its calls from there on, and its
    root span, which started before the window, still names and starts it, on both engines.
    Fails if the ClickHouse runs read only the roots that start in the window (a "cheap"
    bound on the roots), or lose a run's root in any other way (a review of the runs' join)."""
    runs = [r for r in rollup("per_run", duck, limit=0) if r["calls"] >= 3]
    assert runs
    cut = runs[len(runs) // 2]
    tree = rollup("trace", duck, trace_id=cut["trace_id"])
    calls = sorted(r["start_time"] for r in tree if r["span_role"] == "model_call")
    since, until = calls[1], calls[1] + dt.timedelta(hours=1)  # from the run's second call on
    assert cut["start_time"] < since
    for name, params in RUN_ROLLUPS:
        expected = rollup(name, duck, since=since, until=until, **params)
        assert_agree(expected, rollup(name, url, since=since, until=until, **params))
        (row,) = [r for r in expected if r["trace_id"] == cut["trace_id"]]
        assert row["start_time"] == cut["start_time"] < since
        assert (row["run_name"], row["calls"]) == (cut["run_name"], cut["calls"] - 1)
    # The runs of one service: a sidecar call's run is named by its root, of service app
    # (the orphan call's run has no root).
    for name, params in RUN_ROLLUPS:
        expected = rollup(name, duck, service="sidecar", **params)
        assert sum(r["run_name"] is not None for r in expected) > 1
        assert_agree(expected, rollup(name, url, service="sidecar", **params))


def test_a_window_inside_a_run_keeps_its_root(stores: tuple[str, str]) -> None:
    assert_cut_runs_agree(*stores)


def test_where_values_are_bound_never_sql(stores: tuple[str, str]) -> None:
    duck, url = stores
    hostile = {"user.id": "u1' OR 1=1 --", "model": "x}{y:String}"}
    assert rollup("per_run", url, where=hostile) == rollup("per_run", duck, where=hostile) == []
    everyone = rollup("per_feature", url)
    none_matched = rollup("per_feature", url, where={"no.such.key": "u1"})
    assert everyone and not none_matched


def test_workload_exercises_the_rules(stores: tuple[str, str]) -> None:
    """The agreement above means something: the hard cases are in the data."""
    _, url = stores
    agents = {r["agent"] for r in rollup("per_agent", url)}
    assert {"triage", "researcher", "billing"} <= agents  # the handoff's nested agent
    statuses = {r["cost_status"] for r in rollup("unpriced", url)}
    assert {"unknown_model", "invalid_usage"} <= statuses
    sidecar = rollup("per_agent", url, service="sidecar")
    # calls of a service without the processor: priced here, attributed by walking up
    assert sum(r["calls"] for r in sidecar) == 34
    assert all(r["usd"] > 0 for r in sidecar)
    assert {r["agent"] for r in sidecar} == {"triage", None}  # None: the orphan call
    # ... alone: a call below a tool inside another call's span walks through that call
    assert [r["calls"] for r in sidecar if r["agent"] is None] == [1]
    # counts sent as text no number renders as ('', '00100'): invalid, never priced
    odd = [r for r in rollup("unpriced", url, service="sidecar") if r["cost_status"] == "invalid_usage"]
    assert sum(r["calls"] for r in odd) == 2
    # The OpenAI client against other hosts: priced and stored as the host that billed, with
    # the processor and without it (pricing/endpoints.py).
    for service in ("app", "sidecar"):
        hosted = {(r["provider"], r["model"]): r for r in rollup("per_model", url, service=service)}
        assert hosted[("groq", "llama-3.3-70b-versatile")]["usd"] > 0
        assert hosted[("groq", "llama-3.1-8b-instant")]["usd"] > 0
        assert hosted[("openrouter", "claude-sonnet-4-5")]["usd"] > 0  # the priced model
        # Bedrock's input count excluded the cache: the stored input counts it in
        (bedrock,) = (r for (provider, _), r in hosted.items() if provider == "aws.bedrock")
        assert bedrock["input_tokens"] >= 200 + 2000 + 500 and bedrock["cache_write_tokens"] == 2000


# The calls, the runs, a read of the spans relation itself (the tool spans), the attributes.
TYPED_CHECKED = ("per_feature", "per_run", "step_jumps", "unpriced", "per_group", "reconcile")


def _copy_of_workload(chdb_dir: Path, database: str) -> tuple[str, Any, int]:
    """A database of its own holding the workload's otel_traces: (its URL, a client, spans)."""
    url = f"chdb://{chdb_dir}?database={database}"
    client = connect(parse_target(url), create=True)
    client.command(create_table_sql())
    client.command("INSERT INTO otel_traces SELECT * FROM workload.otel_traces")
    return url, client, client.query("SELECT count() FROM otel_traces").result_rows[0][0]


def test_typed_table_gives_the_same_answers(stores: tuple[str, str], chdb_dir: Path) -> None:
    _, url = stores
    expected = {name: rollup(name, url) for name in TYPED_CHECKED}
    typed, client, total = _copy_of_workload(chdb_dir, "typed")
    target = parse_target(typed)
    assert initialise(client, target) == total
    for name in TYPED_CHECKED:
        assert_agree(expected[name], rollup(name, typed))
    # The typed table keeps a call's attributes without its content (spans/content.py).
    keys = client.query("SELECT groupUniqArrayArray(mapKeys(attributes)) FROM costattr_spans")
    assert "user.id" in keys.result_rows[0][0]
    assert "gen_ai.input.messages" not in keys.result_rows[0][0]
    # New inserts arrive through the materialized view.
    client.command("INSERT INTO typed.otel_traces SELECT * FROM workload.otel_traces LIMIT 5")
    assert client.query("SELECT count() FROM costattr_spans").result_rows[0][0] == total + 5
    assert initialise(client, target) == total + 5  # again: kept as it is (a provisioning script's rerun)
    # A ?table= naming no table, beside the typed table: one line, not the server's SQL.
    with pytest.raises(RollupError, match=r"no table \w+\.nope") as e:
        rollup("per_feature", typed + "&table=nope")
    assert "\n" not in str(e.value) and "SELECT" not in str(e.value)


def test_a_typed_table_answers_only_for_the_table_it_is_filled_from(stores, chdb_dir: Path) -> None:
    # Two Collector pipelines in one database (traces_table_name): once init had typed
    # otel_traces, ?table=prod_traces answered with otel_traces' money, and an init there
    # said "costattr_spans_mv fills it from prod_traces", which it did not.
    _, url = stores
    two = f"chdb://{chdb_dir}?database=two"
    client = connect(parse_target(two), create=True)
    client.command(create_table_sql())
    client.command(create_table_sql("prod_traces"))
    client.command("INSERT INTO otel_traces SELECT * FROM workload.otel_traces")
    client.command(
        "INSERT INTO prod_traces SELECT * FROM workload.otel_traces WHERE cityHash64(TraceId) % 3 = 0"
    )
    prod = two + "&table=prod_traces"
    expected = {name: rollup(name, prod) for name in TYPED_CHECKED}
    initialise(client, parse_target(two))
    for name in TYPED_CHECKED:
        assert_agree(expected[name], rollup(name, prod))
    with pytest.raises(ValueError, match="exists for another table") as e:
        initialise(client, parse_target(prod))
    assert "\n" not in str(e.value)


def test_an_init_cut_short_is_never_read_and_init_again_finishes_it(stores, chdb_dir: Path, capsys) -> None:
    # A backfill that timed out (clickhouse-connect's 300 s; the README's 10M spans took 398)
    # left the typed table holding part of the spans: the rollups read it and left out every
    # span stored before, the empty answer blamed a TTL nobody set, and init refused to run
    # again ("exists already").
    _, url = stores
    expected = {name: rollup(name, url) for name in TYPED_CHECKED}
    cut, client, total = _copy_of_workload(chdb_dir, "cut")
    statements = init_statements(parse_target(cut))
    for statement in statements[:-2]:  # the backfill's INSERT never finished
        client.command(statement)
    client.command("INSERT INTO otel_traces SELECT * FROM workload.otel_traces LIMIT 7")  # the view's
    assert client.query("SELECT count() FROM costattr_spans").result_rows[0][0] == 7
    for name in TYPED_CHECKED:
        assert_agree(expected[name], rollup(name, cut))
    assert main(["clickhouse", "init", "--db", cut]) == 0
    assert capsys.readouterr().out.startswith(f"costattr_spans: {total + 7} rows;")
    for name in TYPED_CHECKED:
        assert_agree(expected[name], rollup(name, cut))
    comment = client.query(
        "SELECT comment FROM system.tables WHERE database = 'cut' AND name = 'costattr_spans'"
    )
    assert comment.result_rows == [("",)]


def test_init_on_a_table_of_another_shape_is_one_line(chdb_dir: Path) -> None:
    # The Collector exporter's JSON mode: the rollups refused it in one line, init gave the
    # server's "Function mapKeys requires at least one argument of type Map".
    shaped = f"chdb://{chdb_dir}?database=shaped"
    client = connect(parse_target(shaped), create=True)
    client.command(
        "CREATE TABLE otel_traces (Timestamp DateTime64(9), TraceId String, SpanId String,"
        " ParentSpanId String, SpanName String, ServiceName String, SpanAttributes JSON,"
        " ResourceAttributes JSON, Duration UInt64)"
        " ENGINE = MergeTree ORDER BY Timestamp"
    )
    with pytest.raises(ValueError, match="JSON mode is not supported") as e:
        initialise(client, parse_target(shaped))
    assert "\n" not in str(e.value) and "DB::Exception" not in str(e.value)


def test_cli_runs_rollups_and_init(stores: tuple[str, str], chdb_dir: Path, capsys: Any) -> None:
    duck, url = stores
    assert main(["rollup", "per-feature", "--db", url, "--format", "json"]) == 0
    out_ch = capsys.readouterr().out
    assert main(["rollup", "per-feature", "--db", duck, "--format", "json"]) == 0
    assert capsys.readouterr().out == out_ch
    fresh = f"chdb://{chdb_dir}?database=cli"
    client = connect(parse_target(fresh), create=True)
    client.command(create_table_sql())
    assert main(["clickhouse", "init", "--db", fresh]) == 0
    assert capsys.readouterr().out == (
        "costattr_spans: 0 rows; costattr_spans_mv fills it from otel_traces\n"
        "costattr_settled: 0 identities settled, 0 unstamped calls settled; "
        "costattr_calls_settled_v2: 0 calls written\n"
    )
    assert main(["clickhouse", "init", "--db", fresh]) == 0  # again: kept
    assert capsys.readouterr().out.startswith("costattr_spans: 0 rows; costattr_spans_mv fills it from")
    assert main(["clickhouse", "init", "--db", fresh, "--no-backfill", "--ttl-days", "30"]) == 1
    assert "--ttl-days does not change its TTL (ALTER TABLE" in capsys.readouterr().err
    assert main(["clickhouse", "init", "--db", f"chdb://{chdb_dir}?database=cli&table=nope"]) == 1
    assert "no table cli.nope" in capsys.readouterr().err  # the database too (a review)
    # A TTL past ClickHouse's DateTime (2106) would wrap around and expire every row at once.
    long_ttl = f"chdb://{chdb_dir}?database=cli_ttl"
    assert main(["clickhouse", "init", "--db", long_ttl, "--ttl-days", "36500"]) == 1
    said = capsys.readouterr().err
    assert "--ttl-days 36500: from 1 to at most 10000" in said and len(said.strip().splitlines()) == 1
    client.command("CREATE DATABASE IF NOT EXISTS cli_ttl")
    client.command(create_table_sql("cli_ttl.otel_traces"))
    assert main(["clickhouse", "init", "--db", long_ttl, "--ttl-days", "10000"]) == 0
    assert main(["clickhouse", "init", "--db", long_ttl, "--ttl-days", "10000"]) == 0  # again: kept
    assert main(["clickhouse", "init", "--db", long_ttl, "--ttl-days", "30"]) == 1  # another TTL: refused
    assert "--ttl-days does not change its TTL" in capsys.readouterr().err
    # Spans older than --ttl-days: the typed table drops them, and init says so (they were
    # counted as kept, and the rollups then said no model call was stored).
    old = f"chdb://{chdb_dir}?database=cli_old"
    client.command("CREATE DATABASE IF NOT EXISTS cli_old")
    client.command(create_table_sql("cli_old.otel_traces"))
    connect(parse_target(old)).command(
        "INSERT INTO otel_traces SELECT * FROM workload.otel_traces"
    )  # the workload's runs, 2026-06
    stored = connect(parse_target(old)).query("SELECT count() FROM otel_traces").result_rows[0][0]
    assert main(["clickhouse", "init", "--db", old, "--ttl-days", "30"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("costattr_spans: 0 rows;")
    assert err == (
        f"note: {stored} spans in otel_traces started more than --ttl-days 30 days ago: costattr_spans"
        " does not keep them, and the rollups leave them out (give otel_traces the same TTL:"
        " the Collector's ttl; or a longer --ttl-days)\n"
    )
    # and an empty rollup then says why, not "is a GenAI instrumentation loaded?" (a review)
    from otel_costattr.rollups.explain import explain_empty

    said = explain_empty(old, {})
    assert said.startswith("0 model calls in costattr_spans, which the rollups read (") and said.endswith(
        f" spans there, {stored:,} in otel_traces): its TTL (clickhouse init --ttl-days) dropped the older"
        " spans, model calls among them"
    ), said


def test_report_on_clickhouse_is_the_duckdb_page(
    stores: tuple[str, str], tmp_path: Path, capsys: Any
) -> None:
    """The report's sections come from the rollups, its waterfalls from the trace rollup:
    the same page from either store, but for the store its commands name."""
    import html
    import shlex

    from otel_costattr.report.commands import store_name

    duck, url = stores
    pages = {}
    for name, db in (("duck", duck), ("clickhouse", url)):
        out = tmp_path / f"{name}.html"
        assert main(["report", "--db", db, "--out", str(out), "--waterfalls", "3"]) == 0
        page = re.sub(rb"generated [^<]* UTC", b"", out.read_bytes())  # the minute it ran
        named = f"--db {html.escape(shlex.quote(store_name(db)))}".encode()
        assert named in page
        pages[name] = page.replace(named, b"--db DB")
    assert pages["clickhouse"] == pages["duck"]
    assert b"refund" in pages["duck"]
    assert b"waterfall" in pages["duck"]


def test_a_missing_traces_table_is_one_short_line(stores: tuple[str, str]) -> None:
    _, url = stores
    # not the server's echo of our SQL (--reprice: tests/test_clickhouse_whatif.py)
    with pytest.raises(RollupError, match=r"no table \w+\.nope") as e:
        rollup("per_feature", url + ("&" if "?" in url else "?") + "table=nope")
    assert "\n" not in str(e.value) and len(str(e.value)) < 300


def test_a_traces_table_of_another_shape_is_one_short_line(stores: tuple[str, str]) -> None:
    """A review: a table with SpanAttributes as JSON (or without Duration) failed every
    rollup with the whole generated SQL in one 12 KB line, and serve started anyway."""
    from otel_costattr.clickhouse.client import server_line

    _, url = stores
    client = connect(parse_target(url))
    client.command(
        "CREATE TABLE other_shape (Timestamp DateTime64(9), TraceId String, SpanId String,"
        " ParentSpanId String, SpanName String, ServiceName String, SpanAttributes String,"
        " Duration UInt64) ENGINE = MergeTree ORDER BY Timestamp"
    )
    with pytest.raises(RollupError) as e:
        rollup("per_feature", url + "&table=other_shape")
    said = str(e.value)
    assert "other_shape.SpanAttributes is String, not Map" in said and len(said) < 300, said
    # any server error quoting the query is cut before it
    assert (
        server_line(RuntimeError("Code: 43. Bad type. In scope SELECT " + "x" * 10_000))
        == "Code: 43. Bad type."
    )
    assert len(server_line(RuntimeError("y" * 10_000))) == 300


def test_money_stays_exact(stores: tuple[str, str]) -> None:
    _, url = stores
    rows = rollup("per_feature", url)
    assert all(isinstance(r["usd"], Decimal) for r in rows if r["usd"] is not None)


def test_a_value_a_rollup_does_not_take_is_refused_alike(stores: tuple[str, str]) -> None:
    # runs_list's order was checked by DuckDB's error() in its SQL: ClickHouse has no such
    # function, and answered "Function with name `error` does not exist" (a review).
    from otel_costattr.rollups.errors import RollupParamError

    said = []
    for db in stores:
        with pytest.raises(RollupParamError) as info:
            rollup("runs_list", db, order="price")
        said.append(str(info.value))
    assert said == ["runs_list: order: expected newest or cost, got price"] * 2


def test_generic_group_by_is_refused_there_in_one_line(stores: tuple[str, str]) -> None:
    """The rollups' generic --group-by is DuckDB's for now: on ClickHouse it is a clear
    refusal, never an answer without the grouping; per-group still groups there."""
    duck, url = stores
    with pytest.raises(RollupParamError, match="--group-by is not available on ClickHouse"):
        rollup("per_feature", url, group_by="model")
    assert_agree(rollup("per_group", duck, group_by="model"), rollup("per_group", url, group_by="model"))


def _json_same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_same(x, y) for x, y in zip(a, b, strict=True))
    return _same(a, b)


def _pages(srv: Running, path: str) -> list[dict[str, Any]]:
    runs, cursor = [], None
    while True:
        page = srv.get_json(path + (f"&cursor={cursor}" if cursor else ""))
        runs += page["runs"]
        if (cursor := page["next_cursor"]) is None:
            return runs


def test_serve_answers_from_clickhouse_as_from_duckdb(stores: tuple[str, str]) -> None:
    """serve --db chdb://...: the real app on uvicorn, read-only; every API answer is the
    DuckDB server's; the dashboard and a run's page render; OTLP is refused with the reason."""
    from otel_costattr.clickhouse.serving import NOT_RECEIVING, ReadOnlySink, read_only
    from otel_costattr.report.live import routes

    duck, url = stores
    runs = rollup("per_run", duck, limit=0)
    paths = [
        "/api/v1/stats",
        "/api/v1/stats?service=sidecar",
        "/api/v1/rollups/per-feature",
        "/api/v1/rollups/per-agent?feature=refund",
        f"/api/v1/runs/{runs[0]['trace_id']}",
        f"/api/v1/runs/{runs[-1]['trace_id'][:12]}",
    ]
    # clickhouse.serving.read_only_app's app, on serverutil's uvicorn thread
    with serving(url, sink=ReadOnlySink(url), extra_routes=routes(url)) as c, serving(Path(duck)) as d:  # type: ignore[arg-type]
        read_only(c.app)
        for path in paths:
            assert _json_same(d.get_json(path), c.get_json(path)), path
        assert _json_same(_pages(d, "/api/v1/runs?limit=7"), _pages(c, "/api/v1/runs?limit=7"))
        assert len(_pages(c, "/api/v1/runs?limit=7")) == len(runs)
        assert c.request("GET", "/api/v1/runs/" + "0" * 32)[0] == 404
        assert c.request("GET", "/api/v1/rollups/per-feature?days=-1")[0] == 400
        # The overview runs a dozen rollups: more than serverutil's 30 s on a loaded machine.
        with urllib.request.urlopen(c.url + "/?since=2026-06-01&until=2026-06-05", timeout=600) as page:
            assert page.status == 200 and b"refund" in page.read()
        status, _, body = c.request("GET", f"/runs/{runs[0]['trace_id']}")
        assert status == 200 and runs[0]["trace_id"].encode() in body
        status, _, body = c.request("GET", f"/runs/{runs[0]['trace_id'][:12]}")  # a prefix, found there
        assert status == 200 and runs[0]["trace_id"].encode() in body
        assert c.request("GET", "/runs/0000dead")[0] == 404
        status, _, body = c.request("POST", "/v1/traces", b"{}", {"Content-Type": "application/json"})
        assert status == 501 and json.loads(body)["message"] == NOT_RECEIVING
        assert c.get_json("/healthz")["stored_spans"] is None


def test_serve_on_clickhouse_refuses_what_only_a_receiver_does(
    stores: tuple[str, str], chdb_dir: Path, capsys: Any
) -> None:
    _, url = stores
    for extra, option in (
        (["--grpc-port", "4317"], "--grpc-port"),
        (["--capture-content"], "--capture-content"),
        (["--pricing", "prices.toml"], "--pricing"),
        (["--workers", "0"], "--workers"),
    ):
        assert main(["serve", "--db", url, "--port", "0", *extra]) == 1
        assert f"Error: {option}: a ClickHouse store is written by the OpenTelemetry Collector" in (
            capsys.readouterr().err
        )
    missing = f"chdb://{chdb_dir}?database=workload&table=nope"
    assert main(["serve", "--db", missing, "--port", "0"]) == 1
    assert "no table workload.nope" in capsys.readouterr().err  # the database too (a review)


def test_serve_on_clickhouse_cuts_off_a_request_head_that_never_ends(tmp_path: Path) -> None:
    """serve --db chdb://... ran uvicorn without the head deadline the DuckDB serve has: a
    connection that never finished its request head stayed open (25 s and on), so anyone who
    reached the port could hold descriptors before any token was checked (a review)."""
    import socket
    import subprocess
    import sys
    import time

    from otel_costattr.server.connections import HEAD_SECONDS

    url = f"chdb://{tmp_path / 'ch'}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = (
        "import sys\n"
        "from otel_costattr.clickhouse import parse_target\n"
        "from otel_costattr.clickhouse.client import connect\n"
        "from otel_costattr.clickhouse.collector import create_table_sql\n"
        "connect(parse_target(sys.argv[1]), create=True).command(create_table_sql())\n"
        "from otel_costattr.cli import main\n"
        "sys.exit(main(['serve', '--db', sys.argv[1], '--port', sys.argv[2], '--no-dashboard']))\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script, url, str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                slow = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        with slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no more
            slow.settimeout(HEAD_SECONDS + 15)
            began = time.monotonic()
            assert slow.recv(1024) == b""  # closed by the server
            assert time.monotonic() - began < HEAD_SECONDS + 5
    finally:
        server.terminate()
        server.wait(30)


HOLD_A_STORE = """
import sys
from otel_costattr.clickhouse import parse_target
from otel_costattr.clickhouse.client import connect
from otel_costattr.clickhouse.collector import create_table_sql
connect(parse_target(sys.argv[1]), create=True).command(create_table_sql())
print("ready", flush=True)
sys.stdin.read()  # held open until the test closes the pipe
"""


def test_a_store_another_process_holds_is_one_line(tmp_path: Path) -> None:
    """A review: chDB printed its own "Code: 76. DB::Exception: Cannot lock file ..." above
    our one line saying another process holds the store. A real second process holds it."""
    import subprocess
    import sys

    url = f"chdb://{tmp_path / 'ch'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_STORE, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        cli = [sys.executable, "-m", "otel_costattr.cli", "rollup", "overview", "--db", url]
        done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith(f"Error: {url}: in use by another process"), done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
    finally:
        holder.communicate(timeout=60)


def test_a_process_without_stderr_reads_a_chdb_store(tmp_path: Path) -> None:
    """The review of the held stderr: a process started with its stderr closed (2>&-, a
    daemon) could open no chDB store ('NoneType' object has no attribute 'flush')."""
    import os
    import subprocess
    import sys

    url = f"chdb://{tmp_path / 'ch'}"
    made = subprocess.run([sys.executable, "-c", HOLD_A_STORE, url], input="", capture_output=True, text=True)
    assert made.stdout == "ready\n", made.stderr[-2000:]
    cli = [sys.executable, "-m", "otel_costattr.cli", "rollup", "stats", "--db", url, "--format", "csv"]
    done = subprocess.run(cli, stdout=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(2))
    assert (done.returncode, done.stdout.split(",")[0]) == (0, "provider"), done.stdout


SERVE_A_STORE = """
import sys
from otel_costattr.clickhouse import parse_target
from otel_costattr.clickhouse.client import connect
from otel_costattr.clickhouse.collector import create_table_sql
connect(parse_target(sys.argv[1]), create=True).command(create_table_sql())
from otel_costattr.cli import main
if sys.argv[3] == "typed":
    assert main(["clickhouse", "init", "--db", sys.argv[1]]) == 0
sys.exit(main(["serve", "--db", sys.argv[1], "--port", sys.argv[2]]))
"""


@pytest.mark.parametrize("typed", [False, True])
def test_serve_says_at_start_that_a_store_without_init_is_slow(tmp_path: Path, typed: bool) -> None:
    """A review: serve on a chDB store without `clickhouse init` took 14-21 s a dashboard
    page, however small the store (each query reads the Map columns, ~1.5 s of CPU), and
    nothing said why or what to do. It says so at start; after init, nothing."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"chdb://{tmp_path / 'ch'}"
    how = "typed" if typed else "map"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE_A_STORE, url, str(port), how], stderr=subprocess.PIPE, text=True
    )
    try:
        lines = []
        assert server.stderr is not None
        for line in server.stderr:  # until the last line serve says before serving
            lines.append(line)
            if "dashboard at" in line:
                break
        said = "".join(lines)
        assert "dashboard at" in said, said[-2000:]
        note = "note: no typed table in " in said
        assert note is not typed, said[-2000:]
        if not typed:
            assert "otel-costattr clickhouse init --db URL" in said
    finally:
        server.terminate()
        server.communicate(timeout=30)  # and its pipe closed


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"feature": "nope"}, None),
        ({"agent": "reserch", "service": "nowhere"}, None),
        ({}, ["user.id=nobody"]),
        ({"feature": "nope"}, ["app.tenant=x", "user.id=y"]),
    ],
)
def test_an_empty_answer_is_explained_as_on_duckdb(
    stores: tuple[str, str], params: dict[str, str], where: list[str] | None
) -> None:
    """An empty answer on ClickHouse said "no database at chdb://..." (a review): the
    explanation now comes from the ClickHouse contract, the same lines as DuckDB's."""
    from otel_costattr.rollups.explain import explain_empty

    duck, ch = stores
    expected = explain_empty(duck, params, where=where)
    assert expected.startswith("the store holds ") and len(expected.splitlines()) > 1
    assert explain_empty(ch, params, where=where) == expected


@pytest.mark.parametrize("name", ["stats", "per_step", "agent_steps", "overview"])
def test_an_average_over_no_call_is_null_as_on_duckdb(stores: tuple[str, str], name: str) -> None:
    """A window without calls: stats' total row averaged no call, NULL on DuckDB; ClickHouse's
    avg of no rows is nan (a review of 2026-12-03 found it)."""
    duck, ch = stores
    empty = {"since": dt.datetime(2030, 1, 1)}
    assert_agree(rollup(name, duck, now=NOW, **empty), rollup(name, ch, now=NOW, **empty))


@pytest.mark.parametrize(
    ("total", "n"),
    [
        ("123456.789012345678", 3),
        ("-0.000000000001", 2),
        ("99999999999999999999999999.999999999999", 1),
        ("-99999999999999999999999999.999999999999", 7),
        ("180000000000000.5", 1),
    ],
)
def test_money_over_a_count_is_the_duckdb_quotient(stores: tuple[str, str], total: str, n: int) -> None:
    """`dialect._per` renders `queries/_per.sql` for ClickHouse: the same exact quotient, at
    the ends of Decimal(38, 12) too (the differential workload's totals are small). Asked of
    the module's chDB (one embedded engine a process: a session of its own would clash)."""
    import duckdb

    from otel_costattr.clickhouse.dialect import _per
    from otel_costattr.rollups.catalog import prelude

    con = duckdb.connect()
    con.execute(prelude("_per.sql"))
    (want,) = con.execute("SELECT costattr_per(CAST(? AS DECIMAL(38, 12)), ?::BIGINT)", [total, n]).fetchone()
    client = connect(parse_target(stores[1]))
    sql = f"SELECT toString({_per(f'toDecimal128({total!r}, 12), toUInt64({n})')})"
    assert Decimal(client.query(sql).result_rows[0][0]) == want


@pytest.mark.parametrize("name", ROLLUPS)
def test_arrow_and_parquet_answers_are_typed_as_on_duckdb(
    stores: tuple[str, str], name: str, tmp_path: Path
) -> None:
    """``arrow=True`` and ``--format parquet`` on ClickHouse carry the DuckDB store's types of
    the rollup, whatever the rows hold: a day's table, an empty one and another day's
    concatenate, and a file of an empty answer has every other file's schema (a review: the
    types had followed the values, money decimal128(12, 12) under $1, an empty answer nulls)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    duck, url = stores
    windows = [{"since": "2026-06-01", "until": "2026-06-02"}, {"since": "2020-01-01", "until": "2020-01-02"}]
    if "since" not in {p.name for p in query(name).params}:  # forecast: the month up to until
        windows = [{"until": w["until"]} for w in windows]
    for window in windows:
        want = rollup(name, duck, now=NOW, arrow=True, **window).schema
        assert rollup(name, url, now=NOW, arrow=True, **window).schema == want, window
    pa.concat_tables([rollup(name, url, now=NOW, arrow=True, **w) for w in windows])
    empty = [f"--{key}={value}" for key, value in windows[1].items()]
    cli = ["rollup", query(name).cli_name, *empty, "--format", "parquet"]
    schemas = []
    for db in stores:
        out = tmp_path / f"{len(schemas)}.parquet"
        assert main([*cli, "--db", db, "--out", str(out)]) == 0
        schemas.append(pq.read_schema(out))
    assert schemas[1] == schemas[0]
    assert not any(pa.types.is_null(t) for t in schemas[1].types)
