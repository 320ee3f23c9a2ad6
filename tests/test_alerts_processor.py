"""Per-run budgets in-process: `RunBudgetProcessor` beside the real `CostSpanProcessor`, alerts
posted to a real receiver on 127.0.0.1, never blocking the span path."""

from __future__ import annotations

import datetime as dt
import threading
import time

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
        # The held post must not time out meanwhile (the six runs take seconds on a busy machine).
        path = rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url, timeout="60s")
        budget = RunBudgetProcessor(load_rules(path), notifier=Notifier(queue_size=2))
        w = Workload(tmp_path / "spans.duckdb", table, extra_processors=(budget,))
        try:
            for _ in range(6):  # six runs over budget while the receiver holds the first post
                w.run(NOW, ["0.30"])
            assert receiver.arrived.wait(10)
            # All spans ended while the receiver still held the first request.
            assert not receiver.hold.is_set()
            # Past the held post and the two queues of two, the rest is dropped: by the
            # dispatcher, which may still be handing them on at this point on a busy machine
            # (a CI run once read one drop here), so the count is waited for, not read once.
            deadline = time.monotonic() + 30
            while budget.notifier.stats()["dropped"] < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert budget.alerts == 6 and budget.notifier.stats()["dropped"] >= 3
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


def test_past_max_runs_the_run_idle_longest_is_forgotten_and_counted(tmp_path, table, receiver):
    # The first run tracked was forgotten first even while it kept spending: a run interleaved
    # with many others never reached its budget. Now the run whose last call is oldest goes.
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from otel_costattr import CostSpanProcessor

    budget = RunBudgetProcessor(
        load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url)), max_runs=3
    )
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(budget)
    tracer = provider.get_tracer("t")
    start = int(NOW.timestamp() * 1e9)

    def spend(root, output_tokens):  # acme-large: $10 a million output tokens
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme",
                 "gen_ai.request.model": "acme-large", "gen_ai.usage.input_tokens": 0,
                 "gen_ai.usage.output_tokens": output_tokens}  # fmt: skip
        tracer.start_span("chat", trace.set_span_in_context(root), attributes=attrs, start_time=start).end()

    long_run = tracer.start_span("long", start_time=start)
    spend(long_run, 20_000)  # $0.20 of $0.25
    others = [tracer.start_span(f"other {i}", start_time=start) for i in range(3)]
    spend(others[0], 1)
    spend(others[1], 1)
    spend(long_run, 1_000)  # $0.21: still spending
    spend(others[2], 1)  # a fourth run: one is forgotten, not the long one
    spend(long_run, 10_000)  # $0.31: over
    assert budget.force_flush()
    provider.shutdown()
    (body,) = receiver.bodies
    assert body["scope"]["value"] == f"{long_run.get_span_context().trace_id:032x}"
    assert body["value_exact"] == "0.31"
    assert budget.forgotten_runs == 1


def test_a_span_ended_inside_the_budget_check_is_counted_not_waited_for(tmp_path, table, receiver):
    """A finalizer (an unclosed stream wrapper ending its span when the collector runs, at
    any allocation) or a signal handler can end a span on a thread in the middle of the
    budget check: that span is counted in ``errors``, not added to its run, and never waits
    for the lock its own thread holds (before, the application's thread hung for good)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from otel_costattr import CostSpanProcessor

    budget = RunBudgetProcessor(load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url)))
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(budget)
    tracer = provider.get_tracer("t")
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "acme",
        "gen_ai.request.model": "acme-large",
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 30_000,
    }  # fmt: skip  ($0.30: over the budget)
    root = tracer.start_span("run")
    inner = tracer.start_span("chat", trace.set_span_in_context(root), attributes=attrs)
    ended: list = []

    def inside():
        with budget._lock:  # the check the finalizer or the handler interrupted
            inner.end()
        ended.append(budget.errors)

    thread = threading.Thread(target=inside, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "hung: the span's end waits for a lock its own thread holds"
    assert ended == [1] and budget.alerts == 0  # not added to the run: no alert from it
    tracer.start_span("chat", trace.set_span_in_context(root), attributes=attrs).end()
    root.end()
    assert budget.force_flush()
    provider.shutdown()
    assert budget.alerts == 1 and len(receiver.bodies) == 1  # the next call is checked as before


def test_a_run_budget_is_delivered_when_its_state_cannot_be_recorded(tmp_path, table, receiver):
    """A DuckDB error reading or writing the alert states (here the table is gone) escaped the
    claim that says "deliver anyway": the alert was neither sent nor counted."""
    import duckdb

    from otel_costattr.store import database as store

    db = tmp_path / "spans.duckdb"
    store.connect(db).close()
    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE alert_events CASCADE")
    rules = load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url))
    budget = RunBudgetProcessor(rules, db=db)
    w = Workload(tmp_path / "other.duckdb", table, extra_processors=(budget,))
    try:
        over = w.run(NOW, ["0.20", "0.20"])
        assert budget.force_flush()
    finally:
        w.close()
    (body,) = receiver.bodies
    assert body["scope"]["value"] == over and budget.alerts == 1


def test_an_evaluation_holds_the_store_against_the_in_process_claim(tmp_path, table, receiver, monkeypatch):
    """An evaluation reads the states, measures, then writes; a RunBudgetProcessor's claim of
    a run in the same process (another connection) could record the run FIRING in between, and
    both sent it (a review). The evaluation now holds the store's lock in this process from
    its read to its write: the claim's `writing` waits for it."""
    import importlib

    from otel_costattr.store.database import writing

    evaluation = importlib.import_module("otel_costattr.alerts.evaluate")  # the module, not the function

    rules = load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url))
    w = Workload(tmp_path / "spans.duckdb", table)
    try:
        w.run(NOW, ["0.10"])
        w.flush()
    finally:
        w.close()
    measuring, release = threading.Event(), threading.Event()
    real = evaluation.measure

    def slow_measure(*args, **kwargs):
        measuring.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "measure", slow_measure)
    checking = threading.Thread(target=check_once, args=(w.path, rules), kwargs={"now": NOW})
    checking.start()
    assert measuring.wait(30)
    claimed = threading.Event()

    def claim() -> None:
        with writing(w.path, retry=30):
            claimed.set()

    claimer = threading.Thread(target=claim)
    claimer.start()
    try:
        assert not claimed.wait(1.0)  # held while the evaluation measures
    finally:
        release.set()
        checking.join(30)
        claimer.join(30)
    assert claimed.is_set()


def test_match_keys_read_as_the_store_reads_them(tmp_path, table, receiver):
    # A review: the store's evaluation reads service.name, provider and model as the call's
    # columns, the in-process budgets read them as literal span attributes: the same rule
    # file fired in `alerts check` and never in-process.
    matches = {
        "feature": "research", "app.feature": "research", "service": "svc", "service.name": "svc",
        "provider": "acme", "model": "acme-large",
    }  # fmt: skip
    text = "".join(
        f'[[rules]]\nname = "by {key}"\nscope = "run"\nmetric = "calls"\nwindow = "run"\n'
        f'thresholds = [2]\nmatch = {{ "{key}" = "{value}" }}\nchannels = ["ops"]\n\n'
        for key, value in matches.items()
    )
    budget = RunBudgetProcessor(load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url)))
    w = Workload(tmp_path / "spans.duckdb", table, extra_processors=(budget,))
    try:
        w.run(NOW, ["0.10", "0.10", "0.10"])
        assert budget.force_flush()
    finally:
        w.close()
    assert sorted(b["rule"] for b in receiver.bodies) == sorted(f"by {key}" for key in matches)


def test_a_run_served_request_by_request_is_summed_across_them(tmp_path, table, receiver):
    """A gateway gets five $0.10 calls of one run, each request with the agent's traceparent:
    each call's span was a local root, its run forgotten as it ended, and the $0.25 budget
    never crossed in-process (a review). Only the run's root ending forgets it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from otel_costattr import CostSpanProcessor

    budget = RunBudgetProcessor(load_rules(rules_file(tmp_path / "alerts.toml", RUN_BUDGET, receiver.url)))
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(budget)
    tracer = provider.get_tracer("gateway")
    run = 0x1234567890ABCDEF1234567890ABCDEF
    for i in range(5):
        remote = NonRecordingSpan(SpanContext(run, 0x1000 + i, is_remote=True, trace_flags=TraceFlags(1)))
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": "acme-large",
            "gen_ai.usage.input_tokens": 50_000,
            "gen_ai.usage.output_tokens": 0,
        }  # fmt: skip  ($0.10 at $2 a million)
        tracer.start_span("chat", context=trace.set_span_in_context(remote), attributes=attrs).end()
    assert budget.force_flush()
    provider.shutdown()
    (body,) = receiver.bodies
    assert (body["scope"]["value"], body["value_exact"]) == (f"{run:032x}", "0.3")
    assert budget.alerts == 1 and len(budget._runs) == 1  # kept for the run's next request
