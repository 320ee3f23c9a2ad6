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
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import _forks, semconv
from ..cost.bounds import MAX_CALL_USD
from .deliver import Notification, Notifier
from .payload import build_payload
from .rules import Rule, RuleSet, load_rules
from .state import FIRING, Event, stored_threshold

__all__ = ["RunBudgetProcessor"]

logger = logging.getLogger(__name__)

# Where a match key is read on a call span (the processor copies identity onto calls), for
# the names the store reads as a column of the call (rollups.dimensions.COLUMNS) besides the
# attribute keys themselves: service and provider are read apart (`_call_value`).
_SPAN_KEYS = {
    "feature": semconv.FEATURE,
    "agent": semconv.AGENT_NAME,
    "conversation": semconv.CONVERSATION_ID,
}
_PER_RUN = ("cost", "calls")


# A run's cost is summed as whole picodollars: the store's precision (cost_usd DECIMAL(38,12)),
# exact integer arithmetic, and ~0.1 us per call where a Decimal per call cost ~1 us.
_PICO = 10**12
# A cost no call can have (NaN, negative, above MAX_CALL_USD) adds nothing, as in the store.
_MAX_CALL = float(MAX_CALL_USD)
_STATUS, _COST, _DUPLICATE = semconv.COST_STATUS, semconv.COST, semconv.DUPLICATE


class _Watch:
    """One rule as the span path reads it: its thresholds and limits in order, the limits in
    picodollars (or calls)."""

    __slots__ = ("cost", "limits", "match", "rule", "thresholds")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.cost = rule.metric == "cost"
        self.match = rule.match
        pairs = [(t, limit) for t in rule.thresholds if (limit := rule.limit(t)) is not None]
        self.thresholds = [t for t, _ in pairs]
        scale = _PICO if self.cost else 1
        self.limits = [math.ceil(limit * scale) for _, limit in pairs]

    def value(self, total: int) -> Decimal:
        """A run's total as USD (or calls)."""
        return Decimal(total).scaleb(-12) if self.cost else Decimal(total)


class _Run:
    __slots__ = ("next", "start", "totals")

    def __init__(self, start: int, rules: int) -> None:
        self.totals = [0] * rules  # per rule: picodollars, or calls
        self.next = [0] * rules  # per rule: the index of the next limit to cross
        self.start = start


class RunBudgetProcessor(SpanProcessor):
    """Alerts on per-run rules (``scope = "run"``, ``window = "run"``, metric ``cost`` or
    ``calls``) as spans end. ``db``: the DuckDB file where states are recorded (None: this
    process dedupes alone). ``max_runs``: runs tracked at once (past it, the run whose last
    call is oldest is forgotten, counted in ``forgotten_runs``). ``errors`` counts the checks
    that failed and the spans ended inside one (a finalizer or a signal handler on a thread
    in the middle of a check: not added to their run, never waited for)."""

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
        self._watches = tuple(_Watch(r) for r in self.rules)
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
        # Re-entrant only so that `_is_owned` can tell a span ended by a finalizer or a signal
        # handler on a thread inside the block below (see `_on_end`).
        self._lock = threading.RLock()
        self.alerts = 0
        self.errors = 0
        self.forgotten_runs = 0  # runs dropped past max_runs, their totals with them
        _forks.renew_in_child(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (one another thread held at the fork, a call's end
        being added up, stays held there for good)."""
        self._lock = threading.RLock()

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
        if self._lock._is_owned():  # type: ignore[attr-defined]
            # A finalizer (an unclosed stream wrapper ending its span) or a signal handler,
            # run by this thread inside the block below: waiting would be for ever, and the
            # run's totals may be half changed. The call is not added to its run: counted.
            self.errors += 1
            logger.warning("otel-costattr alerts: a span ended inside the budget check; not counted")
            return
        attrs = span.attributes
        status = None if attrs is None else attrs.get(_STATUS)
        context = span.context
        # The run's root ended: it is over. A span whose parent is remote (a request a gateway
        # or a worker serves, a call proxied alone) ends only its part here: more of the run
        # may come (kept, within max_runs; dropping it there, a gateway's five $0.10 calls of
        # one run never summed past a $0.25 budget: a review).
        ended = span.parent is None
        if status is None or status == _DUPLICATE or context is None:
            if ended and context is not None:
                with self._lock:
                    self._runs.pop(context.trace_id, None)
            return
        cost = attrs.get(_COST)  # type: ignore[union-attr] (status came from attrs)
        if not (type(cost) is float and 0 <= cost <= _MAX_CALL):  # as the store: never summed
            cost = float(cost) if type(cost) is int and 0 <= cost <= _MAX_CALL else 0.0
        pico = round(cost * _PICO)
        crossed = []
        with self._lock:
            run = self._runs.get(context.trace_id)
            if run is None:
                run = self._runs[context.trace_id] = _Run(span.start_time or 0, len(self._watches))
                while len(self._runs) > self.max_runs:  # the run idle longest goes, counted
                    self._runs.popitem(last=False)
                    self.forgotten_runs += 1
            else:  # a run still spending is the last to be forgotten
                self._runs.move_to_end(context.trace_id)
            for i, watch in enumerate(self._watches):
                if watch.match and not _matches(watch.rule, attrs, span):
                    continue
                total = run.totals[i] = run.totals[i] + (pico if watch.cost else 1)
                k = run.next[i]
                if k < len(watch.limits) and total >= watch.limits[k]:
                    first = k
                    while k < len(watch.limits) and total >= watch.limits[k]:
                        k += 1
                    run.next[i] = k
                    crossed.append((watch.rule, watch.value(total), watch.thresholds[first:k], run.start))
            if ended:
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
            Event(now, rule.name, "run", trace_id, "run", stored_threshold(t), FIRING, value, rule.limit(t),
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
        found = _call_value(key, attrs, span)
        if found is None or str(found) != wanted:
            return False
    return True


def _call_value(key: str, attrs: Mapping[str, Any], span: ReadableSpan) -> object:
    """A match key's value on a call span, as the store's calls hold it (`alerts.measure`)."""
    if key in ("service", "service.name"):
        return span.resource.attributes.get("service.name") if span.resource else None
    if key == "provider":
        return semconv.read_call_fields(attrs)[1]
    if key == "model":  # the model it was priced as, else the one it names
        return attrs.get(semconv.PRICED_MODEL) or semconv.read_call_fields(attrs)[0]
    return attrs.get(_SPAN_KEYS.get(key, key))
