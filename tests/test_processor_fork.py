"""A process that forks while another of its threads is inside the cost processor or the
pricing table (gunicorn --preload beside a busy thread, a fork-started process pool): the
child's spans must not hang on a lock the parent's thread held at the fork.

Each case runs in a child interpreter: the lock is held by another thread, as a span
starting under an agent (the processor's lock) or a quote's miss (the table's) holds it
there, or a run budget's check and its notifier's queue; the forked grandchild then traces a
model call under an agent, which crosses the budget, with an alarm.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from opentelemetry.sdk.trace import TracerProvider
    from otel_costattr import CostSpanProcessor
    from otel_costattr.alerts import RunBudgetProcessor, parse_rules
    from otel_costattr.pricing.table import load_pricing

    table = load_pricing(use_env=False)
    processor = CostSpanProcessor(pricing=table)
    rules = parse_rules({  # a budget every call crosses; its channel refuses (port 9): counted
        "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/", "retries": 0}},
        "rules": [{"name": "b", "scope": "run", "metric": "cost", "window": "run",
                   "budget": 1e-9, "channels": ["ops"]}]})
    budget = RunBudgetProcessor(rules)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    provider.add_span_processor(budget)
    tracer = provider.get_tracer("fork")
    held = {"processor": processor._lock, "calls": processor._first_spans._lock,
            "siblings": processor._siblings._lock, "table": table._lock, "budget": budget._lock,
            "notifier": budget.notifier._idle, "queue": budget.notifier._queue.mutex}[sys.argv[1]]
    inside, leave = threading.Event(), threading.Event()

    def other_thread():
        with held:
            inside.set()
            leave.wait()

    threading.Thread(target=other_thread, daemon=True).start()
    inside.wait()
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        with tracer.start_as_current_span("agent", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}):
            with tracer.start_as_current_span("chat", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.id": "r1", "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 1}):
                pass
        ok = processor.stats()["priced"] == 1 and (budget.alerts, budget.errors) == (1, 0)
        os._exit(0 if ok else 3)
    leave.set()
    _, status = os.waitpid(pid, 0)
    print("hung" if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
    """
)


@pytest.mark.parametrize("lock", ["processor", "calls", "table", "budget", "notifier", "queue"])
def test_a_child_forked_while_another_thread_holds_a_lock_traces_and_prices(lock):
    done = subprocess.run([sys.executable, "-c", SCRIPT, lock], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", done.stderr


STOPPED_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, os, sys
    from decimal import Decimal
    from otel_costattr.alerts import Notifier, parse_rules
    from otel_costattr.alerts.deliver import Notification
    from otel_costattr.alerts.state import Event

    db, url = sys.argv[1], sys.argv[2]
    rules = parse_rules({
        "channels": {"ops": {"type": "webhook", "url": url, "retries": 0}},
        "rules": [{"name": "b", "scope": "run", "metric": "cost", "window": "run", "budget": 0.25,
                   "channels": ["ops"]}]})

    def note(run):  # a run budget's firing, as RunBudgetProcessor hands it over
        at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        payload = {"event": "firing", "rule": "b", "scope": {"kind": "run", "value": run, "match": {}},
                   "window": {"kind": "run", "key": "run"}}
        event = Event(at, "b", "run", run, "run", "1", "FIRING", Decimal("0.3"), Decimal("0.25"), True,
                      "processor", payload)
        return Notification(payload, [rules.channels["ops"]], (event,), at)

    notifier = Notifier(db)
    notifier.submit(note("parent"))
    notifier.flush(30)
    notifier.stop()
    before = notifier.stats()["delivered"]
    pid = os.fork()
    if pid == 0:
        notifier.submit(note("child"))
        notifier.flush(30)
        stats = notifier.stats()
        os._exit(0 if (stats["delivered"] - before, stats["dropped"]) == (1, 0) else 3)
    _, status = os.waitpid(pid, 0)
    print(os.WEXITSTATUS(status))
    """
)


def test_a_child_forked_after_its_parent_stopped_the_notifier_delivers_and_records(tmp_path):
    # The parent's stop closed the notifier's store writes; the child's notifier starts afresh
    # (its threads with its first alert), and its alerts were dropped as "stopped".
    from alerts_helpers import Receiver

    from otel_costattr.store.database import connect

    db = str(tmp_path / "s.duckdb")
    connect(db).close()
    receiver = Receiver()
    try:
        args = [sys.executable, "-c", STOPPED_SCRIPT, db, receiver.url]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    finally:
        receiver.close()
    assert done.stdout.strip() == "0", done.stderr
    assert [b["scope"]["value"] for b in receiver.bodies] == ["parent", "child"]
    con = connect(db, read_only=True)
    try:
        sql = "SELECT scope_value, ok FROM alert_deliveries WHERE attempts > 0 ORDER BY 1"
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    assert rows == [("child", True), ("parent", True)]
