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
