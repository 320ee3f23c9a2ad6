"""Defects a new-user review found in the CLI, each through click's CliRunner on real DuckDB
files: a bad ``--out`` refused before the command runs, one ``Error:`` line for every start-up
mistake, and the money rule in every table."""

from __future__ import annotations

import datetime as dt
import json
import logging

import duckdb
import pytest
from alerts_helpers import rules_file
from click.testing import CliRunner
from test_rollups_workload import build, trace_id

from otel_costattr.cli import cli

BAD_OUTS = ("/proc/costattr-out.json", "/no/such/folder/out.json")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("cli-review") / "spans.duckdb"))


def invoke(*argv):
    return CliRunner().invoke(cli, [str(a) for a in argv], env={"COLUMNS": ""}, catch_exceptions=False)


def one_error_line(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.parametrize("out", BAD_OUTS)
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "parquet"])
@pytest.mark.parametrize(
    "argv",
    [
        ["rollup", "stats"],
        ["runs"],
        ["trace", trace_id(1)],
        ["whatif", "--model", "claude-haiku-4-5"],
        ["store", "status"],
    ],
)
def test_an_unwritable_out_is_one_error_line(db, argv, fmt, out):
    one_error_line(invoke(*argv, "--db", db, "--format", fmt, "--out", out), out)


@pytest.mark.parametrize("out", BAD_OUTS)
def test_pricing_list_and_report_refuse_an_unwritable_out(db, out):
    one_error_line(invoke("pricing", "list", "--out", out), out)
    one_error_line(invoke("report", "--db", db, "--out", out), out)


def test_a_folder_as_out_is_one_error_line(db, tmp_path):
    one_error_line(invoke("rollup", "stats", "--db", db, "--out", tmp_path), "folder")


def test_a_writable_out_is_written_and_nothing_is_left_by_the_check(db, tmp_path):
    out = tmp_path / "stats.json"
    assert invoke("rollup", "stats", "--db", db, "--format", "json", "--out", out).exit_code == 0
    assert out.read_text().startswith("[")
    assert invoke("rollup", "stats", "--db", db, "--out", tmp_path / "x" / "y").exit_code == 1
    assert not (tmp_path / "x").exists()


def _store(tmp_path, workload, receiver, rule: str, costs: list[str]):
    """A run of ``costs`` ten minutes ago in the store, and a file with ``rule``: its path."""
    text = f'[[rules]]\n{rule}\nchannels = ["ops"]\n'
    rules = rules_file(tmp_path / "alerts.toml", text, receiver.url)
    workload.run(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10), costs)
    workload.close()
    return rules


def _firing(tmp_path, workload, receiver):
    """Two calls in the last hour and a rule firing at one call: its rule file."""
    calls = 'name = "calls"\nscope = "service"\nmetric = "calls"\nwindow = "24h"\nthresholds = [1]'
    return _store(tmp_path, workload, receiver, calls, ["0.20", "0.30"])


def _events(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM alert_events").fetchone()[0]
    except duckdb.CatalogException:  # never evaluated: no table yet
        return 0
    finally:
        con.close()


def test_alerts_check_with_a_bad_out_records_and_sends_nothing(tmp_path, workload, receiver):
    rules = _firing(tmp_path, workload, receiver)
    result = invoke("alerts", "check", "--db", workload.path, "--rules", rules, "--out", BAD_OUTS[0])
    one_error_line(result, BAD_OUTS[0])
    assert receiver.bodies == [] and _events(workload.path) == 0
    # Firing with a good --out: exit 3 and the states recorded (the rule does fire).
    good = invoke("alerts", "check", "--db", workload.path, "--rules", rules, "--out", tmp_path / "a.txt")
    assert good.exit_code == 3, good.output
    assert _events(workload.path) > 0


def test_alerts_check_table_shows_money_by_the_money_rule(tmp_path, workload, receiver):
    spend = 'name = "spend"\nscope = "feature"\nmetric = "cost"\nwindow = "24h"\n'
    spend += "budget = 1.00\nthresholds = [0.5]"
    rules = _store(tmp_path, workload, receiver, spend, ["0.0284165"])
    result = invoke("alerts", "check", "--db", workload.path, "--rules", rules, "--no-notify")
    assert result.exit_code == 0, result.output
    row = result.output.splitlines()[2].split()
    assert row[4:7] == ["0.5", "$0.500000", "$0.028416"], result.output  # money(): 6 places under $1
    data = invoke("alerts", "check", "--db", workload.path, "--rules", rules, "--no-notify", "--format=json")
    state = json.loads(data.output)["states"][0]
    assert (state["limit_exact"], state["value_exact"]) == ("0.5", "0.028416"), state


def test_demo_on_an_unwritable_path_is_one_error_line():
    one_error_line(invoke("demo", "--db", "/proc/d.duckdb"), "/proc/d.duckdb")


def test_store_repair_without_a_spool_warns_nothing(tmp_path, caplog):
    path = build(tmp_path / "fresh.duckdb")  # written straight into DuckDB: no spool folder
    with caplog.at_level(logging.WARNING):
        result = invoke("store", "repair", "--db", path)
    assert result.exit_code == 0, result.output
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_alerts_watch_takes_a_duration_and_no_notify(tmp_path, workload, receiver):
    rules = _firing(tmp_path, workload, receiver)
    argv = ("alerts", "watch", "--db", workload.path, "--rules", rules, "--count", "1")
    result = invoke(*argv, "--interval", "60s", "--no-notify")
    assert result.exit_code == 0, result.output
    assert "1 firing" in result.output
    assert receiver.bodies == []
    one_error_line(invoke(*argv, "--interval", "soon"), "--interval", "expected a duration")
    one_error_line(invoke(*argv, "--interval", "0s"), "--interval", "must be above 0")
    assert invoke(*argv, "--interval", "0.05").exit_code == 0  # a bare number: seconds, as before


def test_rollup_list_is_aligned():
    lines = invoke("rollup", "--list").output.splitlines()
    # Where the text after the name (or the parameter's indent) starts: one column for all.
    after_name = [line[len(line.split()[0]) if line[0] != " " else 0 :] for line in lines]
    starts = {len(line) - len(rest.lstrip()) for line, rest in zip(lines, after_name, strict=True)}
    assert len(starts) == 1, starts


def test_report_takes_relative_times_as_its_help_says(db, tmp_path):
    from otel_costattr.report import window

    now = dt.datetime(2026, 6, 9)
    assert window(since="7d", now=now).since == dt.datetime(2026, 6, 2)
    assert window(since="2w", until="1d", now=now).until == dt.datetime(2026, 6, 8)
    out = tmp_path / "costs.html"
    result = invoke("report", "--db", db, "--since", "3650d", "--until", "12h", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.exists()
    one_error_line(invoke("report", "--db", db, "--since", "soon", "--out", out), "since")


@pytest.mark.parametrize(
    "argv",
    [
        ["store", "status"],
        ["store", "repair"],
        ["alerts", "check", "--rules", "RULES"],
        ["alerts", "watch", "--rules", "RULES", "--count", "1"],
    ],
)
def test_duckdb_only_commands_say_so_for_a_clickhouse_url(argv, tmp_path):
    """They said "no database at chdb:///..." or read the URL as a relative path; the password
    of a clickhouse:// URL must not be echoed. Alerts there need a state file: they say so."""
    rule = '[[rules]]\nname = "spend"\nscope = "feature"\nmetric = "cost"\nwindow = "24h"\n'
    rule += 'budget = 1.0\nchannels = ["ops"]\n'
    rules = rules_file(tmp_path / "alerts.toml", rule, "http://127.0.0.1:9/")
    argv = [str(rules) if a == "RULES" else a for a in argv]
    for url in ("chdb:///tmp/nowhere", "clickhouse://u:s3cret@127.0.0.1:9/otel"):
        result = invoke(*argv, "--db", url)
        one_error_line(result, "give --state FILE" if argv[0] == "alerts" else "DuckDB stores only")
        assert "s3cret" not in result.stderr
