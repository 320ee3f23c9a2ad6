"""`otel-costattr rollup | runs | trace`: output formats, exit codes and exact error text, and
docs that cannot go stale (help on every command and option, every query in the README)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import click
import duckdb
import pytest
from test_rollups_workload import build, trace_id

from otel_costattr.cli import cli, main
from otel_costattr.rollups.catalog import query, rollups
from otel_costattr.rollups.queries import rollup

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch):
    # These tests pin whole table lines; fitting to a terminal is tested in test_cli_output.py.
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("cli") / "spans.duckdb"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_per_feature_json_schema(capsys, db):
    code, out, err = run(capsys, "rollup", "per-feature", "--db", db, "--format", "json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [list(row) for row in rows] == [
        ["feature", "runs", "calls", "input_tokens", "output_tokens", "usd", "usd_exact", "usd_per_run",
         "usd_per_run_exact", "unpriced_calls"]
    ] * 4  # fmt: skip
    refund = next(row for row in rows if row["feature"] == "refund")
    # money as JSON numbers, each with its exact decimal string, as `otel-costattr price` does
    assert refund == {
        "feature": "refund", "runs": 2, "calls": 4, "input_tokens": 13200, "output_tokens": 1320,
        "usd": 0.0148, "usd_exact": "0.0148", "usd_per_run": 0.0074, "usd_per_run_exact": "0.0074",
        "unpriced_calls": 0,
    }  # fmt: skip


def test_json_flag_is_format_json(capsys, db):
    # `--json`, as gh and llm take it, was "No such option '--json'. Did you mean '--since'?"
    expected = run(capsys, "rollup", "per-feature", "--db", db, "--format", "json")
    assert run(capsys, "rollup", "per-feature", "--db", db, "--json") == expected
    assert (
        run(capsys, "runs", "--db", db, "--json")[1] == run(capsys, "runs", "--db", db, "--format", "json")[1]
    )
    assert "--json" not in run(capsys, "rollup", "--help")[1]  # one documented way: --format


# Audit rollups list calls the shared workload does not have (its totals are pinned): they are
# checked on their own stores in tests/test_pricing_approximate.py and test_pricing_reconcile.py.
AUDIT_ROLLUPS = {"approximations", "reconcile"}


@pytest.mark.parametrize(
    "name", [n.replace("_", "-") for n in rollups() if n not in {"trace", *AUDIT_ROLLUPS}]
)
def test_every_rollup_prints_json_with_its_columns(capsys, db, name):
    code, out, err = run(capsys, "rollup", name, "--db", db, "--format", "json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    # each amount with its exact string; a share of the money (usd_share) is a fraction: none
    money = [c for c in rollup(name, db=db)[0] if "usd" in c and not c.endswith("_share")]
    expected = [k for c in rollup(name, db=db)[0] for k in ((c, f"{c}_exact") if c in money else (c,))]
    assert all(list(row) == expected for row in rows)
    assert all(isinstance(row[f"{c}_exact"], (str, type(None))) for row in rows for c in money)


def test_table_is_aligned_with_money_formatted(capsys, db):
    code, out, _ = run(capsys, "rollup", "per-feature", "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "feature",
        "runs",
        "calls",
        "input_tokens",
        "output_tokens",
        "usd",
        "usd_per_run",
        "unpriced_calls",
    ]
    assert lines[1].split() == ["research", "3", "15", "56,000", "1,500", "$0.063500", "$0.021167", "0"]
    assert lines[3].split()[0] == "-"  # no feature
    # numbers are right-aligned: every line ends at the same column
    assert len({len(line) for line in lines}) == 1


def test_csv(capsys, db):
    code, out, _ = run(capsys, "rollup", "top-runs", "--db", db, "--format", "csv", "--limit", "2")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(row["trace_id"], row["usd"]) for row in rows] == [
        (trace_id(2), "0.0455"),
        (trace_id(1), "0.0141"),
    ]


def test_filters_window_and_params(capsys, db):
    window = ("--since", "2026-06-01", "--until", "2026-06-02")
    code, out, _ = run(
        capsys, "rollup", "per-model", "--db", db, "--feature", "refund", *window, "--format", "json"
    )
    assert code == 0
    assert {row["model"]: row["usd_exact"] for row in json.loads(out)} == {
        "claude-sonnet-4-5": "0.009", "gpt-4o": "0.003", "gpt-4o-mini": "0.0021",
    }  # fmt: skip
    code, out, _ = run(
        capsys, "rollup", "step-jumps", "--db", db, "--param", "min_tokens=5000", "--format", "json"
    )
    assert code == 0 and len(json.loads(out)) == 2


def test_runs(capsys, db):
    code, out, _ = run(capsys, "runs", "--db", db, "--limit", "2", "--format", "json")
    assert code == 0
    assert [row["trace_id"] for row in json.loads(out)] == [trace_id(8), trace_id(7)]
    code, out, _ = run(capsys, "runs", "--db", db, "--agent", "researcher")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["trace_id", "run_name", "agent", "feature"]
    assert len(out.splitlines()) == 4


def test_trace_prints_the_tree(capsys, db):
    code, out, _ = run(capsys, "trace", trace_id(1), "--db", db)
    assert code == 0
    # a line saying what every span shares, then the header; the tree is the first column
    names = [re.search(r"[│├└─ ]*(\S.*?)\s{2,}", line).group(1) for line in out.splitlines()[2:]]
    assert names == [
        "invoke_workflow refund", "invoke_agent triage", "chat gpt-4o", "invoke_agent billing",
        "chat claude-sonnet-4-5", "execute_tool lookup_order", "chat gpt-4o-mini",
    ]  # fmt: skip
    assert "└─ invoke_agent triage" in out
    assert "│  └─ invoke_agent billing" not in out  # triage is the last child: no guide line
    assert "   ├─ chat gpt-4o " in out
    code, out, _ = run(capsys, "trace", trace_id(1), "--db", db, "--format", "json")
    rows = json.loads(out)
    assert rows[0]["subtree_usd_exact"] == "0.0141" and rows[0]["depth"] == 0


def test_reprice_from_the_command_line(capsys, db, tmp_path):
    contract = tmp_path / "contract.toml"
    contract.write_text(
        'provider = "openai"\notel_names = ["openai"]\n[[model]]\nid = "gpt-4o"\n'
        'match = [{ equals = "gpt-4o" }]\n[[model.price]]\ninput = 5\noutput = 20\ncache_read = 2.5\n'
    )
    code, out, _ = run(capsys, "rollup", "per-model", "--db", db, "--pricing", contract, "--format", "json")
    assert code == 0
    gpt = next(row for row in json.loads(out) if row["model"] == "gpt-4o")
    assert (gpt["usd_exact"], gpt["usd_repriced_exact"]) == ("0.0037", "0.0074")
    code, out, _ = run(capsys, "rollup", "per-model", "--db", db, "--reprice")
    assert code == 0 and "usd_repriced" in out.splitlines()[0]


# --- errors: one line, exit 1; usage errors exit 2 -----------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["rollup", "per-feature", "--limit", "3"],
            "per-feature: unknown parameter 'limit'"
            " (valid: days, since, until, service, feature, agent, group_by, where)",
        ),
        (["rollup", "per-feature", "--days", "abc"], "per-feature: days: expected a number, got 'abc'"),
        (
            ["rollup", "per-feature", "--days", "2", "--since", "2026-06-01"],
            "per-feature: give days or since, not both",
        ),
        (
            ["rollup", "per-feature", "--since", "yesterday"],
            "per-feature: since: expected an ISO date or time (YYYY-MM-DD[THH:MM[:SS]])"
            " or a time ago (7d, 12h, 2w), got 'yesterday'",
        ),
        (["trace", "f" * 32], "no spans for trace " + "f" * 32 + " in {db}"),
    ],
)
def test_errors_are_one_line(capsys, db, argv, message):
    code, out, err = run(capsys, *argv, "--db", db)
    assert (code, out) == (1, "")
    assert err == f"Error: {message.format(db=db)}\n"


# A name or shape click itself checks is a usage error (exit 2), with the usage line first and
# the closest name suggested; these exited 1 before the CLI moved to click.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["rollup", "per-fature"],
            "Invalid value for '[NAME]': unknown rollup 'per-fature' (valid: agent-steps, "
            "approximations, compare, daily, daily-model, forecast, loops, overview, per-agent, "
            "per-feature, per-group, per-model, per-run, per-step, reconcile, runs-list, stats, "
            "step-jumps, top-runs, trace, unpriced)."
            " Did you mean 'per-feature'?",
        ),
        (["rollup"], "name a rollup (see 'otel-costattr rollup --list')"),
        (
            ["rollup", "loops", "--param", "factor"],
            "Invalid value for '--param': expects NAME=VALUE, got 'factor'",
        ),
        (
            ["trace", "xyz"],
            "Invalid value for 'TRACE_ID': not a trace id (32 hex digits, or the first 4 or more): 'xyz'",
        ),
        (["rolup", "per-feature"], "No such command 'rolup'. Did you mean 'rollup'?"),
        (["runs", "--format", "parquet"], "--format parquet writes a file: give --out FILE"),
        (["runs", "--json", "--format", "csv"], "--json is --format json: not with --format csv"),
    ],
)
def test_usage_errors_exit_2_with_the_closest_name(capsys, db, argv, message):
    code, out, err = run(capsys, *argv, "--db", db)
    assert (code, out) == (2, "")
    assert err.startswith("Usage: otel-costattr ")
    assert err.splitlines()[-1] == f"Error: {message}"


def test_a_missing_database(capsys, tmp_path):
    missing = tmp_path / "nope.duckdb"
    code, out, err = run(capsys, "runs", "--db", missing)
    assert (code, out, err) == (1, "", f"Error: no database at {missing}\n")


@pytest.mark.parametrize(
    ("given", "said"),
    [
        # A review: both read as a missing file, "no database at ...", and nothing more.
        ("mysql://u:pw@x/y", "no database at mysql://u:***@x/y (mysql: is no store this reads: a DuckDB"
         " file's path, clickhouse://, clickhouses:// or chdb:///path)"),
        ("chdb:", "no database at chdb: (a ClickHouse store is clickhouse://host:8123/database or chdb:///path)"),
    ],
)  # fmt: skip
def test_a_database_url_of_no_scheme_we_read_says_so(capsys, given, said):
    assert run(capsys, "rollup", "per-feature", "--db", given) == (1, "", f"Error: {said}\n")


def test_a_chdb_url_naming_a_file_says_it_is_a_file(capsys, db):
    pytest.importorskip("clickhouse_connect")
    code, out, err = run(capsys, "rollup", "per-feature", "--db", f"chdb://{db}")
    assert (code, out) == (1, "")
    assert err == f"Error: chdb://{db}: no chDB store there (a file, not a chDB folder)\n"


def test_db_defaults_to_the_exporters_variable(capsys, db, monkeypatch):
    monkeypatch.setenv("OTEL_COSTATTR_DUCKDB_PATH", db)
    code, out, _ = run(capsys, "rollup", "stats", "--format", "json")
    assert code == 0 and json.loads(out)[0]["calls"] == 24


def test_reading_waits_for_a_writer_instead_of_failing(tmp_path):
    """Another process holds the file for a moment (an exporter ingesting): the CLI retries."""
    path = build(tmp_path / "busy.duckdb")
    script = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
        " time.sleep(1.0); c.close()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException):  # a plain open fails outright
            duckdb.connect(str(path), read_only=True)
        assert rollup("stats", db=path)[0]["calls"] == 24
    assert holder.returncode == 0


# --- docs cannot go stale ----------------------------------------------------------------


def _commands(command: click.Command, path: str = "otel-costattr"):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_has_help_and_an_example():
    seen = []
    for path, command in _commands(cli):
        seen.append(path)
        assert command.help and command.get_short_help_str(), f"{path}: no help"
        # The example must run this very command (a group's: one of its commands).
        example = re.search(r"Example:\n((?:\s+otel-costattr .*\n?)+)", command.help)
        assert example and path in example.group(1), f"{path}: no example line in its help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts}: no help"
    assert {"otel-costattr pricing show", "otel-costattr store repair", "otel-costattr demo"} <= set(seen)


def test_rollup_help_lists_every_bundled_query_from_the_catalogue(capsys):
    code, out, _ = run(capsys, "rollup", "--help")
    assert code == 0
    listed = out[out.index("Rollups (from queries/*.sql):") :]
    for name in rollups():
        q = query(name)
        # each name starts a line, with the first words of its @about line beside it
        assert re.search(rf"^  {q.cli_name}\s+{re.escape(' '.join(q.about.split()[:3]))}", listed, re.M), name


def test_every_bundled_query_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [q.replace("_", "-") for q in rollups() if f"`{q.replace('_', '-')}`" not in readme]
    assert not missing, f"README.md does not document: {', '.join(missing)}"
    for command in (
        "otel-costattr demo",
        "otel-costattr rollup",
        "otel-costattr runs",
        "otel-costattr trace",
    ):
        assert command in readme, command


def test_an_error_names_the_rollup_as_it_was_typed(capsys, db):
    # The library's names are Python's (per_feature); the command line's are per-feature.
    code, _, err = run(capsys, "rollup", "per-feature", "--db", db, "--days", "0")
    assert code == 1 and err.startswith("Error: per-feature: days:"), err
    code, _, err = run(capsys, "rollup", "agent-steps", "--db", db, "--days", "0")
    assert code == 1 and err.startswith("Error: agent-steps: days:"), err


def test_a_param_that_is_an_option_of_its_own_is_a_usage_error(capsys, db):
    # --param group-by=x reached rollup() twice and raised a TypeError, a traceback
    code, _, err = run(capsys, "rollup", "per-feature", "--db", db, "--param", "group-by=x")
    assert code == 2 and "--param group-by: use --group-by instead" in err
    code, _, err = run(capsys, "rollup", "per-feature", "--db", db, "--param", "days=3")
    assert code == 2 and "--param days: use --days instead" in err
