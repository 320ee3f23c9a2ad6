"""Defects a second new-user review found, each through the real command on real files: a
store that cannot be opened is unhealthy, a service tier a model lacks is said, error texts
quote values as typed, bad settings stop every command, a read never creates a chDB store,
and the examples install as the README does."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_rollups_workload import build

from otel_costattr.alerts.watch import AlertWatcher
from otel_costattr.cli import cli
from otel_costattr.store.maintenance import status

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("review-fixes") / "spans.duckdb"))


def invoke(*argv, env=None):
    return CliRunner().invoke(
        cli, [str(a) for a in argv], env={"COLUMNS": "", **(env or {})}, catch_exceptions=False
    )


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr[len("Error: ") : -1]


# --- 1. store status --check: a store that cannot be opened is not healthy --------------------


def _truncated(db: str, tmp_path: Path) -> Path:
    cut = tmp_path / "trunc.duckdb"
    cut.write_bytes(Path(db).read_bytes()[:20000])
    return cut


@pytest.mark.parametrize("make", [_truncated, lambda db, tmp: Path("/etc/passwd")])
def test_a_store_that_cannot_be_opened_fails_the_check(db, tmp_path, make):
    path = make(db, tmp_path)
    result = invoke("store", "status", "--db", path, "--check")
    assert result.exit_code == 3, result.output
    assert "UNREADABLE (" in result.output
    answer = json.loads(invoke("store", "status", "--db", path, "--format", "json").output)
    assert answer["healthy"] is False and answer["stored_error"]


def test_a_readable_store_stays_healthy(db):
    assert status(db).healthy
    assert invoke("store", "status", "--db", db, "--check").exit_code == 0


# --- 5. a service tier the model does not have is said, not applied silently ------------------


def test_a_tier_the_model_lacks_is_a_note_and_the_json_says_which_applied():
    flex = invoke("price", "gpt-4o", "--input", "1000", "--service-tier", "flex", "--format", "json")
    assert flex.exit_code == 0
    assert flex.stderr == "Note: openai/gpt-4o has no flex tier: priced at the standard rate\n"
    assert json.loads(flex.stdout)["service_tier"] is None
    batch = invoke("price", "gpt-4o", "--input", "1000", "--service-tier", "batch", "--format", "json")
    assert batch.stderr == "" and json.loads(batch.stdout)["service_tier"] == "batch"


# --- 6. error texts quote values as typed; parameters below any sense are refused -------------


def test_error_texts_quote_values_cleanly(db, tmp_path):
    big = error_line(invoke("rollup", "stats", "--db", db, "--days", "100000000000000000000"))
    assert big == "stats: days: must be at most 36500, got 100000000000000000000"
    late = error_line(
        invoke("rollup", "stats", "--db", db, "--since", "2030-01-01", "--until", "2029-06-01T10:30")
    )
    assert late == "stats: since (2030-01-01 00:00:00) must be before until (2029-06-01 10:30:00)"
    report = error_line(invoke("report", "--db", db, "--since", "2030-01-01", "--out", tmp_path / "r.html"))
    assert re.fullmatch(
        r"report: since \(2030-01-01 00:00:00\) must be before until \(\S+ \d\d:\d\d:\d\d\)", report
    )
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname = "spend"\nmetric = "cost"\nwindow = "day"\nbudget = 1\n')
    missing = error_line(invoke("alerts", "check", "--db", db, "--rules", rules))
    assert missing.startswith(f"{rules}: rule 'spend': field 'scope': expected ") and missing.endswith(
        ", but it is missing"
    )


def test_absurd_lower_values_are_refused_in_one_line(db, tmp_path):
    ratio = error_line(invoke("rollup", "step-jumps", "--db", db, "--param", "min_ratio=-1"))
    assert ratio == "step-jumps: min_ratio: must be at least 1, got -1"
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        '[[rules]]\nname = "spend"\nscope = "feature"\nmetric = "cost"\nwindow = "day"\nbudget = 1\n'
    )
    argv = ("alerts", "watch", "--db", db, "--rules", rules, "--count", "1", "--no-notify")
    assert error_line(invoke(*argv, "--interval", "1ms")) == "--interval: must be at least 10ms, got '1ms'"
    assert invoke(*argv, "--interval", "10ms").exit_code == 0
    # and absurd higher ones: 1,000,000 days overflowed the clock (a traceback; under serve,
    # a server with no watcher: a review)
    assert (
        error_line(invoke(*argv, "--interval", "1000000d"))
        == "--interval: must be at most 31d, got '1000000d'"
    )
    assert invoke(*argv, "--interval", "31d").exit_code == 0
    with pytest.raises(ValueError, match="at most 31 days"):
        AlertWatcher(db, rules, interval=float("inf"))


# --- 7. a bad setting stops every command at start, naming the variable and the file ----------


@pytest.mark.parametrize(
    "argv",
    [
        ["rollup", "stats", "--db", "DB"],
        ["store", "status", "--db", "DB"],
        ["runs", "--db", "DB"],
        ["pricing", "list"],
    ],
)
def test_bad_price_files_in_the_environment_stop_every_command(db, tmp_path, argv):
    argv = [db if a == "DB" else a for a in argv]
    missing = tmp_path / "nonexistent.toml"
    got = error_line(invoke(*argv, env={"OTEL_COSTATTR_PRICING_FILES": str(missing)}))
    assert got == f"OTEL_COSTATTR_PRICING_FILES: {missing}: cannot read: No such file or directory"
    broken = tmp_path / "broken.toml"
    broken.write_text("x = [\n")
    got = error_line(invoke(*argv, env={"OTEL_COSTATTR_PRICING_FILES": str(broken)}))
    assert got.startswith(f"OTEL_COSTATTR_PRICING_FILES: {broken}: invalid TOML")
    # What only the whole table can check: an alias with no target, an unknown fallback (a
    # review found both passing every command that does not price).
    for text, problem in [
        ('provider = "acme"\n[[model]]\nid = "a"\nalias_of = "nope"\n', "model 'a': alias_of: no priced"),
        ('provider = "acme"\nfallback = ["ghost"]\n', "fallback: unknown provider 'ghost'"),
    ]:
        broken.write_text(text)
        got = error_line(invoke(*argv, env={"OTEL_COSTATTR_PRICING_FILES": str(broken)}))
        assert got.startswith(f"OTEL_COSTATTR_PRICING_FILES: {broken}: {problem}"), got
    bad_flag = error_line(invoke(*argv, env={"OTEL_COSTATTR_CAPTURE_CONTENT": "maybe"}))
    assert bad_flag.startswith("OTEL_COSTATTR_CAPTURE_CONTENT='maybe': expected true or false")
    assert invoke(*argv, "--help", env={"OTEL_COSTATTR_PRICING_FILES": str(missing)}).exit_code == 0


# --- 8. a read never creates a chDB store -----------------------------------------------------


def test_a_read_of_a_missing_chdb_folder_creates_nothing(tmp_path):
    where = tmp_path / "x" / "ch"
    got = error_line(invoke("rollup", "per-run", "--db", f"chdb://{where}"))
    assert got == f"chdb://{where}: no chDB store there (no such folder)"
    assert not (tmp_path / "x").exists()


# --- 3. the examples install as the README does ------------------------------------------------


def test_the_examples_install_from_a_clone_with_the_tested_pins():
    texts = {p: p.read_text() for p in [*ROOT.glob("examples/*.*"), *ROOT.glob("examples/*/README.md")]}
    for path, text in texts.items():
        assert not re.search(r"pip install '?otel-costattr", text), (
            f"{path}: not on PyPI: install from a clone"
        )
    pins = dict(
        re.findall(
            r"^([\w.-]+)==(\S+)", (ROOT / "tests/producers/requirements-openai-v2.txt").read_text(), re.M
        )
    )
    script = dict(re.findall(r"'([\w.-]+)==([^']+)'", texts[ROOT / "examples/zero_code.sh"]))
    assert script and all(pins[name] == version for name, version in script.items()), script


def test_a_read_of_what_is_no_chdb_store_creates_nothing(tmp_path, chdb_dir):
    """A ClickHouse review: a folder holding no store was given chDB's tmp/ by a rollup, a
    mistyped ?database= was created by a read, init on a mistyped path left its folder, and a
    mistyped scheme printed the password."""
    pytest.importorskip("chdb")
    from otel_costattr.clickhouse import parse_target
    from otel_costattr.clickhouse.client import connect
    from otel_costattr.clickhouse.collector import create_table_sql

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("mine")
    for argv in (("rollup", "overview"), ("clickhouse", "settle"), ("clickhouse", "init")):
        got = error_line(invoke(*argv, "--db", f"chdb://{docs}"))
        assert got == f"chdb://{docs}: no chDB store there (the folder holds none)"
    assert sorted(os.listdir(docs)) == ["notes.txt"]
    mistyped = tmp_path / "nowhere" / "ch"
    got = error_line(invoke("clickhouse", "init", "--db", f"chdb://{mistyped}"))
    assert got == f"chdb://{mistyped}: no chDB store there (no such folder)"
    assert not (tmp_path / "nowhere").exists()
    client = connect(parse_target(f"chdb://{chdb_dir}?database=review_base"), create=True)
    client.command(create_table_sql())
    got = error_line(invoke("rollup", "overview", "--db", f"chdb://{chdb_dir}?database=typo"))
    assert got == f"chdb://{chdb_dir}: no database 'typo' there"
    assert client.query("SELECT count() FROM system.databases WHERE name = 'typo'").result_rows == [(0,)]
    got = error_line(invoke("rollup", "overview", "--db", "clickhous://admin:hunter2@db:8123/otel"))
    assert got == (  # the password masked; the scheme named as none this reads
        "no database at clickhous://admin:***@db:8123/otel (clickhous: is no store this reads: a"
        " DuckDB file's path, clickhouse://, clickhouses:// or chdb:///path)"
    )


def test_init_without_backfill_over_stored_spans_is_refused(chdb_dir):
    """A ClickHouse review: init --no-backfill over a store that had spans made every answer
    empty ("is a GenAI instrumentation loaded?"), and init could not be run again to fix it."""
    pytest.importorskip("chdb")
    from otel_costattr.clickhouse import parse_target
    from otel_costattr.clickhouse.client import connect, has_table
    from otel_costattr.clickhouse.collector import create_table_sql

    url = f"chdb://{chdb_dir}?database=review_nobackfill"
    client = connect(parse_target(url), create=True)
    client.command(create_table_sql("review_nobackfill.otel_traces"))
    client.command(
        "INSERT INTO review_nobackfill.otel_traces (Timestamp, TraceId, SpanId, SpanName)"
        f" VALUES (now64(9), '{'a' * 32}', '{'b' * 16}', 'chat')"
    )
    got = error_line(invoke("clickhouse", "init", "--db", url, "--no-backfill"))
    assert got == (
        f"chdb://{chdb_dir}: --no-backfill on a new costattr_spans would leave out the 1 spans already"
        " in otel_traces (the rollups read costattr_spans once it exists): run init without it"
    )
    assert not has_table(client, "review_nobackfill", "costattr_spans")
    assert invoke("clickhouse", "init", "--db", url).exit_code == 0
    assert has_table(client, "review_nobackfill", "costattr_spans")


@pytest.mark.parametrize(
    "argv",
    [
        ("clickhouse", "init"),
        ("clickhouse", "settle"),
        ("serve",),
        ("store", "status"),
        ("store", "repair"),
        ("rollup", "overview"),
    ],
)
@pytest.mark.parametrize(
    "url", ["clickhous://admin:hunter2@db:8123/otel", "http://admin:hunter2@db:8123/otel"]
)
def test_a_mistyped_url_never_prints_its_password(tmp_path, monkeypatch, argv, url):
    """A URL of a scheme no command reads is one line with the password masked, from the
    ClickHouse commands and from those that took it for a file's path (a review: ``serve``
    and ``store status`` printed it whole, resolved as a folder), and nothing is created."""
    monkeypatch.chdir(tmp_path)
    got = error_line(invoke(*argv, "--db", url))
    assert "hunter2" not in got and "admin:***@db:8123/otel" in got, got
    assert not any(tmp_path.iterdir())
