"""In-process per-run budgets: a companion span processor beside `CostSpanProcessor`.

`RunBudgetProcessor` keeps a running total per trace from the cost the cost processor stamps
(``gen_ai.usage.cost``, written in OnEnding, so it is there in every ``on_end`` whatever the
registration order) and raises a rule's alert the moment a run crosses a threshold: each
(rule, run, threshold) once. ``on_end`` does a dict update under a lock and, on a crossing,
queues a notification (never blocking: a full queue counts it as dropped); delivery, and
recording the state in the store so that ``alerts check`` does not fire it again, happen on the
`Notifier`'s thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import semconv
from .deliver import Notification, Notifier
from .payload import build_payload
from .rules import Rule, RuleSet, load_rules
from .state import FIRING, Event

__all__ = ["RunBudgetProcessor"]

logger = logging.getLogger(__name__)

# Where a match key is read on a call span (the processor copies identity onto calls).
_SPAN_KEYS = {"feature": semconv.FEATURE, "agent": semconv.AGENT_NAME, "model": semconv.PRICED_MODEL}
_PER_RUN = ("cost", "calls")


class _Run:
    __slots__ = ("calls", "cost", "fired", "start")

    def __init__(self, start: int) -> None:
        self.cost: dict[str, Decimal] = {}
        self.calls: dict[str, int] = {}
        self.fired: set[tuple[str, Decimal]] = set()
        self.start = start


class RunBudgetProcessor(SpanProcessor):
    """Alerts on per-run rules (``scope = "run"``, ``window = "run"``, metric ``cost`` or
    ``calls``) as spans end. ``db``: the DuckDB file where states are recorded (None: this
    process dedupes alone). ``max_runs``: runs tracked at once (the oldest are forgotten)."""

    def __init__(
        self,
        rules: RuleSet | str | os.PathLike[str],
        *,
        db: str | os.PathLike[str] | None = None,
        notifier: Notifier | None = None,
        base_url: str | None = None,
        max_runs: int = 10_000,
    ) -> None:
        ruleset = rules if isinstance(rules, RuleSet) else load_rules(Path(rules))
        self.rules = tuple(r for r in ruleset.rules if r.window == "run" and r.metric in _PER_RUN)
        if not self.rules:
            raise ValueError(
                f"{ruleset.source}: no per-run rule (scope 'run', window 'run', metric cost or calls)"
            )
        if max_runs < 1:
            raise ValueError(f"max_runs must be at least 1, got {max_runs}")
        self.channels = {r.name: [ruleset.channels[c] for c in r.channels] for r in self.rules}
        self.notifier = notifier or Notifier(None if db is None else str(db))
        self.base_url = base_url
        self.max_runs = max_runs
        self._runs: OrderedDict[int, _Run] = OrderedDict()
        self._lock = threading.Lock()
        self.alerts = 0
        self.errors = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Add a model call's cost to its run; queue an alert for each threshold crossed."""
        try:
            self._on_end(span)
        except Exception:  # a hook never raises into the application
            self.errors += 1
            logger.exception("otel-costattr alerts: run budget check failed")

    def _on_end(self, span: ReadableSpan) -> None:
        attrs = span.attributes or {}
        status = attrs.get(semconv.COST_STATUS)
        context = span.context
        local_root = span.parent is None or span.parent.is_remote
        if status is None or status == semconv.DUPLICATE or context is None:
            if local_root and context is not None:
                with self._lock:
                    self._runs.pop(context.trace_id, None)  # the run ended in this process
            return
        cost = attrs.get(semconv.COST)
        amount = (
            Decimal(repr(cost)) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        )
        crossed = []
        with self._lock:
            run = self._runs.get(context.trace_id)
            if run is None:
                run = self._runs[context.trace_id] = _Run(span.start_time or 0)
                while len(self._runs) > self.max_runs:
                    self._runs.popitem(last=False)
            for rule in self.rules:
                if not _matches(rule, attrs, span):
                    continue
                run.calls[rule.name] = calls = run.calls.get(rule.name, 0) + 1
                if amount is not None and amount.is_finite() and amount >= 0:
                    run.cost[rule.name] = run.cost.get(rule.name, Decimal(0)) + amount
                value = run.cost.get(rule.name, Decimal(0)) if rule.metric == "cost" else Decimal(calls)
                new = [
                    t for t in rule.thresholds if (rule.name, t) not in run.fired and value >= rule.limit(t)
                ]
                run.fired.update((rule.name, t) for t in new)
                if new:
                    crossed.append((rule, value, new, run.start))
            if local_root:
                self._runs.pop(context.trace_id, None)
        for rule, value, new, start in crossed:
            self._raise(rule, f"{context.trace_id:032x}", value, new, start)

    def _raise(self, rule: Rule, trace_id: str, value: Decimal, crossed: list[Decimal], start: int) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        began = dt.datetime.fromtimestamp(start / 1e9, dt.timezone.utc).replace(tzinfo=None) if start else now
        top = max(crossed)
        payload = build_payload(
            event="firing", rule=rule, scope_value=trace_id, window_key="run", start=began, end=now,
            value=value, threshold=top, limit=rule.limit(top), crossed=sorted(crossed),
            base_url=self.base_url, at=now, source="processor",
        )  # fmt: skip
        events = [
            Event(now, rule.name, "run", trace_id, "run", f"{t.normalize():f}", FIRING, value, rule.limit(t),
                  True, "processor", payload if t == top else None)
            for t in crossed
        ]  # fmt: skip
        self.alerts += 1
        self.notifier.submit(Notification(payload, self.channels[rule.name], events))

    def shutdown(self) -> None:
        """Deliver what is queued (a few seconds at most) and stop the delivery thread."""
        self.notifier.stop()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for queued notifications to be delivered or given up."""
        return self.notifier.flush(timeout_millis / 1000)


def _matches(rule: Rule, attrs: Mapping[str, Any], span: ReadableSpan) -> bool:
    for key, wanted in rule.match:
        if key == "service":
            found = span.resource.attributes.get("service.name") if span.resource else None
        else:
            found = attrs.get(_SPAN_KEYS.get(key, key))
        if found is None or str(found) != wanted:
            return False
    return True
