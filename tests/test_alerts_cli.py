"""``alerts check`` and ``alerts watch`` on a real store, and `AlertWatcher` as `serve` runs it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from alerts_helpers import free_port_url, rules_file
from click.testing import CliRunner

from otel_costattr.alerts import AlertWatcher
from otel_costattr.cli import cli

ROLLING_BUDGET = """
[[rules]]
name = "research spend"
scope = "feature"
metric = "cost"
window = "24h"
budget = 1.00
thresholds = [0.5, 1.0]
channels = ["ops"]

[[rules]]
name = "calls"
scope = "service"
metric = "calls"
window = "24h"
thresholds = [1000]
channels = ["ops"]
"""


def _recent() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)


def _watch(db, rules, interval: str) -> subprocess.Popen:
    """`alerts watch` in a process of its own (a Ctrl-C is sent to it), its output unbuffered."""
    args = ["alerts", "watch", "--db", str(db), "--rules", str(rules), "--interval", interval]
    return subprocess.Popen(
        [sys.executable, "-m", "otel_costattr.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _check(*args: str):
    return CliRunner().invoke(cli, ["alerts", "check", *args], catch_exceptions=False)


def test_check_exits_0_when_nothing_fires_and_shows_the_closest(tmp_path, workload, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.20"])
    workload.close()
    result = _check("--db", str(workload.path), "--rules", str(rules))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "0 firing, 0 state changes recorded"
    header = ["rule", "scope", "scope_value", "window", "threshold", "limit", "value", "state", "reason"]
    assert lines[1].split() == header
    row = ["research", "spend", "feature", "research", "24h", "0.5", "$0.500000", "$0.200000", "OK"]
    assert lines[2].split() == row  # a cost's limit and value as every table shows money
    assert lines[3].split() == ["calls", "service", "svc", "24h", "1000", "1000", "1", "OK"]
    assert receiver.bodies == []


def test_check_exits_3_while_firing_and_notifies_once(tmp_path, workload, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    first = _check("--db", str(workload.path), "--rules", str(rules))
    assert first.exit_code == 3, first.output
    assert first.output.splitlines()[0] == "1 firing, 1 state changes recorded"
    assert "notifications: 1 delivered, 0 failed" in first.output
    again = _check("--db", str(workload.path), "--rules", str(rules), "--format", "json")
    assert again.exit_code == 3
    data = json.loads(again.output)
    assert data["firing"] == 1 and data["notifications"]["delivered"] == 0
    (firing,) = [s for s in data["states"] if s["state"] == "FIRING"]
    assert firing["value"] == 0.6 and firing["value_exact"] == "0.6" and firing["threshold"] == 0.5
    assert firing["scope_value"] == "research" and data["delivery_failures"]["failed"] == 0
    assert len(receiver.bodies) == 1


def test_what_a_no_notify_check_found_goes_out_with_the_next_check(tmp_path, workload, receiver):
    """--no-notify records states and sends nothing, "the next evaluation that notifies sends
    it": it waited a minute instead (as for a notification another notifier holds) and went
    out marked redelivered (an alerts review). Now the next check sends it, once, as new;
    the check after sends nothing."""
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    quiet = _check("--db", str(workload.path), "--rules", str(rules), "--no-notify")
    assert quiet.exit_code == 3 and receiver.bodies == []
    loud = _check("--db", str(workload.path), "--rules", str(rules))
    assert "notifications: 1 delivered, 0 failed\n" in loud.output, loud.output  # not "sent again"
    (body,) = receiver.bodies
    assert body["event"] == "firing" and "redelivered" not in body
    assert "notifications: 0 delivered" in _check("--db", str(workload.path), "--rules", str(rules)).output
    assert len(receiver.bodies) == 1


def test_check_shows_delivery_failures(tmp_path, workload):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, free_port_url())
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    result = _check("--db", str(workload.path), "--rules", str(rules))
    assert result.exit_code == 3
    assert "notifications: 0 delivered, 1 failed (last: ops: URLError:" in result.output
    later = _check("--db", str(workload.path), "--rules", str(rules))  # from another process, later
    assert "delivery failures recorded: 1 (last " in later.output and ", ops: URLError: " in later.output


def test_a_bad_rule_file_is_one_error_line(tmp_path, workload):
    path = tmp_path / "alerts.toml"
    path.write_text('[[rules]]\nname = "x"\nscope = "feature"\nmetric = "money"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["alerts", "check", "--db", str(workload.path), "--rules", str(path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: rule 'x': field 'metric': expected one of cost, cost_per_run, calls, error_rate, "
        "p95_latency, unpriced_calls, got 'money'\n"
    )


@pytest.mark.parametrize("command", ["check", "watch"])
def test_a_state_file_beside_a_duckdb_store_is_refused(tmp_path, workload, receiver, command):
    """A DuckDB store keeps its own alert states: --state was silently unused (nothing written
    there), where serve refuses --alerts-state in that case."""
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    state = tmp_path / "states.duckdb"
    args = ["--db", str(workload.path), "--rules", str(rules), "--state", str(state), "--no-notify"]
    result = CliRunner().invoke(
        cli, ["alerts", command, *args, *(["--count", "1"] if command == "watch" else [])]
    )
    assert (result.exit_code, result.output) == (
        1, "Error: --state: only with a ClickHouse --db (a DuckDB store keeps its own alert states)\n"
    )  # fmt: skip
    assert not state.exists()
    from otel_costattr.alerts import check_once
    from otel_costattr.store.database import StoreError

    with pytest.raises(StoreError, match="only with a ClickHouse"):  # the Python API alike
        check_once(workload.path, rules, state=state)
    assert not state.exists()


def test_no_data_says_why(tmp_path, workload, receiver):
    text = ROLLING_BUDGET.replace("thresholds = [1000]", "thresholds = [1000]\nmin_calls = 20")
    rules = rules_file(tmp_path / "alerts.toml", text, receiver.url)
    workload.run(_recent(), ["0.20", "0.10"])
    workload.close()
    result = _check("--db", str(workload.path), "--rules", str(rules))
    (line,) = [x for x in result.output.splitlines() if "NO_DATA" in x]
    assert line.split()[:8] == ["calls", "service", "svc", "24h", "1000", "1000", "2", "NO_DATA"]
    assert line.endswith("NO_DATA  2 calls, fewer than min_calls 20")
    result = _check("--db", str(workload.path), "--rules", str(rules), "--format", "json")
    (state,) = [s for s in json.loads(result.output)["states"] if s["state"] == "NO_DATA"]
    assert state["reason"] == "2 calls, fewer than min_calls 20"


def test_db_help_says_the_store_is_written():
    for command in ("check", "watch"):
        text = " ".join(CliRunner().invoke(cli, ["alerts", command, "--help"]).output.split())
        assert "read-only" not in text and "recorded in it (opened read-write" in text


def test_a_missing_database_is_one_error_line_not_a_new_store(tmp_path, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    missing = tmp_path / "typo.duckdb"
    result = CliRunner().invoke(cli, ["alerts", "check", "--db", str(missing), "--rules", str(rules)])
    assert result.exit_code == 1 and result.output == f"Error: no database at {missing}\n"
    assert not missing.exists()
    # The same words as the rollups (one wording for one mistake).
    rollup = CliRunner().invoke(cli, ["runs", "--db", str(missing)])
    assert rollup.exit_code == 1 and rollup.output == result.output


def test_watch_evaluates_each_interval(tmp_path, workload, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    args = ["alerts", "watch", "--db", str(workload.path), "--rules", str(rules)]
    args += ["--interval", "0.05", "--count", "2"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(" 1 firing, 1 state changes") and lines[1].endswith(" 1 firing, 0 state changes")
    assert lines[2] == "notifications: 1 delivered, 0 failed, 0 dropped"
    assert len(receiver.bodies) == 1


def test_alert_watcher_starts_and_stops(tmp_path, workload, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.30", "0.30"])
    workload.flush()
    watcher = AlertWatcher(workload.path, rules, interval=0.05, base_url="http://127.0.0.1:9")
    watcher.start()
    try:
        deadline = time.monotonic() + 30
        while watcher.evaluations < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert watcher.evaluations >= 3 and watcher.errors == 0
    assert len(receiver.bodies) == 1 and receiver.bodies[0]["links"] == {"dashboard": "http://127.0.0.1:9/"}
    count = watcher.evaluations
    time.sleep(0.2)
    assert watcher.evaluations == count  # stopped means stopped


def test_watcher_refuses_a_bad_interval(tmp_path, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    with pytest.raises(ValueError, match="interval must be above 0 seconds and at most 31 days, got 0"):
        AlertWatcher(tmp_path / "x.duckdb", rules, interval=0)


def test_check_writes_csv_and_parquet_like_every_data_command(tmp_path, workload, receiver):
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    base = ["--db", str(workload.path), "--rules", str(rules), "--no-notify"]
    # A row per alert state, as the table shows them (a review: one row, the states as JSON
    # text in one cell); json keeps the whole object.
    csv_out = _check(*base, "--format", "csv")
    assert csv_out.exit_code == 3
    rows = list(csv.DictReader(io.StringIO(csv_out.output)))
    assert [(r["rule"], r["value"], r["state"]) for r in rows] == [
        ("research spend", "0.6", "FIRING"),
        ("calls", "2", "OK"),
    ]
    out = tmp_path / "alerts.parquet"
    assert _check(*base, "--format", "parquet", "--out", str(out)).exit_code == 3
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.column_names == [*csv.DictReader(io.StringIO(csv_out.output)).fieldnames]
    assert table.column("state").to_pylist() == ["FIRING", "OK"]
    # One schema every run, whatever its values: another day's file concatenates.
    one = rules_file(
        tmp_path / "one.toml", ROLLING_BUDGET.split('[[rules]]\nname = "calls"')[0], receiver.url
    )
    other = tmp_path / "other.parquet"
    base[3] = str(one)
    assert _check(*base, "--format", "parquet", "--out", str(other)).exit_code == 3
    import pyarrow as pa

    assert pa.concat_tables([table, pq.read_table(other)]).num_rows == 3
    assert str(table.schema.field("value").type) == "decimal128(38, 12)"


def test_ctrl_c_stops_watch_even_in_the_middle_of_an_evaluation(tmp_path, workload, receiver):
    # Evaluations that take a while (20 rules, each over 8 windows) and almost no pause between
    # them: the interrupt lands inside a DuckDB query, which DuckDB turns into a RuntimeError.
    rule = 'name = "p95 {i}"\nscope = "feature"\nmetric = "p95_latency"\nwindow = "24h"\nbaseline = 7\n'
    text = "".join(f"[[rules]]\n{rule.format(i=i)}thresholds = [50]\n\n" for i in range(20))
    rules = rules_file(tmp_path / "alerts.toml", text, receiver.url)
    for day in range(8):
        workload.run(_recent() - dt.timedelta(days=day), ["0.01"] * 20)
    workload.close()
    proc = _watch(workload.path, rules, "0.01")
    try:
        assert "firing" in proc.stdout.readline()  # the first evaluation is done
        time.sleep(0.3)  # into the next one
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert err.splitlines()[-1] == "interrupted: stopped" and "evaluation failed" not in err
    assert out.splitlines()[-1].startswith("notifications: ")


def test_a_rule_that_fails_stops_no_other_and_exits_1(tmp_path, workload, receiver, monkeypatch, caplog):
    # Any exception but DuckDB's in one rule (budget = 1e-30 reached an InvalidOperation once)
    # stopped the whole evaluation: no rule's state was recorded, no alert sent.
    import importlib

    evaluate_module = importlib.import_module(
        "otel_costattr.alerts.evaluate"
    )  # the package's name is a function
    run = evaluate_module._Judge.run

    def failing(judge):
        if judge.rule.name == "calls":
            raise ArithmeticError("a rule that cannot be decided")
        run(judge)

    monkeypatch.setattr(evaluate_module._Judge, "run", failing)
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url)
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    result = _check("--db", str(workload.path), "--rules", str(rules), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["firing"] == 1 and data["errors"] == [
        "rule 'calls': ArithmeticError: a rule that cannot be decided"
    ]
    assert len(receiver.bodies) == 1  # the other rule's alert went out


def test_check_shows_an_error_rate_as_a_percentage(tmp_path, workload, receiver):
    # A new user's review: the value read 0.3103448275862068965517241379.
    from test_alerts import ROLLING  # error_rate over 24h, at 20%

    rules = rules_file(tmp_path / "alerts.toml", ROLLING, receiver.url)
    workload.run(_recent(), ["0.001"] * 12, errors=4)
    workload.close()
    result = _check("--db", str(workload.path), "--rules", str(rules), "--no-notify")
    assert result.exit_code == 3, result.output
    row = result.output.splitlines()[2].split()
    assert row == ["errors", "feature", "research", "24h", "0.2", "20.0%", "33.3%", "FIRING"]
    args = ("--db", str(workload.path), "--rules", str(rules), "--no-notify")
    data = json.loads(_check(*args, "--json").output)
    assert data["states"][0]["value"] == pytest.approx(1 / 3)  # json keeps the number


def test_ctrl_c_while_a_receiver_hangs_says_what_went_unanswered(tmp_path, workload, receiver):
    """A receiver that hangs when the watcher is stopped: the summary read "0 delivered, 0
    failed, 0 dropped" for a notification on its way (a review); it is counted now."""
    rules = rules_file(tmp_path / "alerts.toml", ROLLING_BUDGET, receiver.url, timeout="60s")
    workload.run(_recent(), ["0.30", "0.30"])
    workload.close()
    receiver.hold.clear()  # every request waits
    proc = _watch(workload.path, rules, "60")
    try:
        assert "1 firing" in proc.stdout.readline()
        assert receiver.arrived.wait(30)  # the notification is at the receiver, unanswered
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        receiver.hold.set()
    assert proc.returncode == 130, (out, err)
    summary = out.splitlines()[-1]
    assert summary == (
        "notifications: 0 delivered, 0 failed, 0 dropped, 1 unanswered (sent again by a later evaluation)"
    ), (out, err)
