"""Per-run budgets in-process: `RunBudgetProcessor` beside the real `CostSpanProcessor`, alerts
posted to a real receiver on 127.0.0.1, never blocking the span path."""

from __future__ import annotations

import datetime as dt

import pytest
from alerts_helpers import NOW, Receiver, Workload, rules_file

from otel_costattr.alerts import Notifier, RunBudgetProcessor, check_once, load_rules

RUN_BUDGET = """
[[rules]]
name = "run budget"
scope = "run"
metric = "cost"
window = "run"
budget = 0.25
channels = ["ops"]
"""


def test_a_run_crossing_its_budget_alerts_once(tmp_path, table, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url))
    budget = RunBudgetProcessor(rules)
    w = Workload(tmp_path / "spans.duckdb", table, extra_processors=(budget,))
    try:
        over = w.run(NOW, ["0.10", "0.10", "0.10", "0.10", "0.10"])  # crosses at the third call
        w.run(NOW, ["0.10", "0.10"])  # another run, under budget
        assert budget.force_flush()
    finally:
        w.close()
    (body,) = receiver.bodies
    assert body["source"] == "processor" and body["event"] == "firing"
    assert body["scope"] == {"kind": "run", "value": over, "match": {}}
    assert body["value_exact"] == "0.3" and body["limit_exact"] == "0.25" and body["percent_used"] == 120.0
    assert budget.alerts == 1 and budget.errors == 0


def test_the_store_does_not_fire_again_what_the_processor_fired(tmp_path, table, receiver):
    path = rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url)
    db = tmp_path / "spans.duckdb"
    budget = RunBudgetProcessor(load_rules(path), db=db)
    w = Workload(db, table, extra_processors=(budget,))
    try:
        run_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        over = w.run(run_at, ["0.20", "0.20"])
        assert budget.force_flush()
        w.flush()
    finally:
        w.close()
    assert len(receiver.bodies) == 1
    notifier = Notifier(str(db))
    result = check_once(db, load_rules(path), notifier=notifier)  # cron, after the fact
    assert notifier.flush(30)
    notifier.stop()
    firing = [(r.scope_value, r.state, r.changed) for r in result.evaluation.firing]
    assert firing == [(over, "FIRING", False)]
    assert len(receiver.bodies) == 1


def test_a_hanging_receiver_never_blocks_the_span_path(tmp_path, table):
    receiver = Receiver()
    receiver.hold.clear()  # every request hangs until released
    try:
        rules = load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url))
        budget = RunBudgetProcessor(rules, notifier=Notifier(queue_size=2))
        w = Workload(tmp_path / "spans.duckdb", table, extra_processors=(budget,))
        try:
            for _ in range(6):  # six runs over budget while the receiver holds the first post
                w.run(NOW, ["0.30"])
            assert receiver.arrived.wait(10)
            # All spans ended while the receiver still held the first request.
            assert not receiver.hold.is_set()
            stats = budget.notifier.stats()
            assert budget.alerts == 6 and stats["dropped"] >= 3
        finally:
            receiver.hold.set()
            assert budget.force_flush()
            w.close()
    finally:
        receiver.close()
    assert len(receiver.bodies) == 6 - budget.notifier.stats()["dropped"]


def test_a_rule_file_without_run_rules_is_refused(tmp_path, receiver):
    text = RUN_BUDGET.replace('scope = "run"', 'scope = "feature"')
    text = text.replace('window = "run"', 'window = "day"')
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url))
    with pytest.raises(ValueError, match="no per-run rule"):
        RunBudgetProcessor(rules)


def test_a_run_exactly_at_its_budget_fires_where_float_sums_fall_short(tmp_path, table, receiver):
    # 0.01 + 0.06 is 0.06999999999999999 in floats: a float total would never reach $0.07.
    text = RUN_BUDGET.replace("budget = 0.25", "budget = 0.07")
    budget = RunBudgetProcessor(load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url)))
    w = Workload(tmp_path / "spans.duckdb", table, extra_processors=(budget,))
    try:
        w.run(NOW, ["0.01", "0.06"])
        assert budget.force_flush()
    finally:
        w.close()
    (body,) = receiver.bodies
    assert body["value_exact"] == "0.07" and body["percent_used"] == 100.0
