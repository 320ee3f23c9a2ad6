"""One evaluation of the rules against the store: measure, decide each key's state, record the
changes, and say what to notify.

A key is (rule, scope value, window key, threshold). Its state moves OK -> FIRING when the
value reaches the threshold's limit, FIRING -> RESOLVED when it drops below, and is NO_DATA
when there is nothing to compare (fewer calls than ``min_calls``, no baseline, a cost below
its limit with unpriced calls, or no calls at all for the rule: then the key's scope value is
``*``). Only changes are stored
(`state.record_events`), so a restarted evaluator carries on where it stopped and never
re-fires. Calendar windows start each period with fresh keys: each threshold fires once per
day or month. Anti-spam: thresholds crossed together are one notification, and a key that
fired is not notified again within the rule's ``cooldown`` (told once it is over if it still
fires).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from ..display import count
from ..rollups.catalog import contract_prelude
from ..rollups.dimensions import COLUMNS
from ..store.database import StoreError
from .deliver import Notification
from .measure import (
    BASELINE_WINDOWS,
    COST_METRICS,
    ZERO_WHEN_EMPTY,
    Measure,
    calls_without_scope,
    contributors,
    measure,
    month_to_date,
)
from .payload import build_payload
from .rules import CALENDAR, SCOPES, Channel, Rule, RuleSet
from .state import (
    FIRING,
    NO_DATA,
    OK,
    RESOLVED,
    Event,
    KeyState,
    latest_states,
    record_events,
    stored_threshold,
    stored_value,
)
from .windows import window_bounds

logger = logging.getLogger(__name__)

__all__ = ["Evaluation", "KeyRow", "evaluate"]


@dataclass(frozen=True)
class KeyRow:
    """One key's state after an evaluation (a row of ``alerts check``)."""

    rule: str
    scope: str
    scope_value: str
    window_key: str
    threshold: Decimal | None
    limit: Decimal | None
    value: Decimal | None
    state: str
    changed: bool
    reason: str | None = None  # why a key is NO_DATA

    @property
    def ratio(self) -> Decimal:
        """How close to its limit (for choosing what to show when nothing fires)."""
        if self.value is None or not self.limit:
            return Decimal(-1)
        return self.value / self.limit


@dataclass
class Evaluation:
    """What one evaluation found: every key's state, the changes stored, what to send."""

    at: dt.datetime
    rows: list[KeyRow] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # rules that failed; the others went on

    @property
    def firing(self) -> list[KeyRow]:
        """The keys firing now."""
        return [r for r in self.rows if r.state == FIRING]

    def summary(self) -> list[KeyRow]:
        """Every key not OK, and for a rule with none, its key closest to its limit."""
        out: list[KeyRow] = []
        by_rule: dict[str, list[KeyRow]] = {}
        for row in self.rows:
            by_rule.setdefault(row.rule, []).append(row)
        for rows in by_rule.values():
            shown = [r for r in rows if r.state != OK]
            out.extend(shown or [max(rows, key=lambda r: r.ratio)])
        return out


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def evaluate(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    now: dt.datetime | None = None,
    *,
    base_url: str | None = None,
    calls: str | None = None,
    handed: bool = False,
) -> Evaluation:
    """Evaluate ``rules`` on the store behind ``con`` (read-write: the changes are recorded)
    at ``now`` (aware; default: the current time). Delivery is the caller's (`Notifier`);
    ``handed``: the caller's notifier takes the notifications, recorded with the events
    (`deliver.Notification.handed`). ``calls``: SQL run after the contract's macros that says
    where the calls come from (a ClickHouse store's, `clickhouse.alerts`)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    try:
        con.execute(contract_prelude())
        if calls is not None:
            con.execute(calls)
        previous = latest_states(con, [r.name for r in rules.rules])
    except duckdb.Error as e:
        raise StoreError(f"alerts: cannot read the store: {e}") from e
    result = Evaluation(at=now)
    for rule in rules.rules:
        try:
            _Judge(con, rule, rules, previous, now, base_url, result).run()
        except duckdb.Error as e:
            raise StoreError(f"alerts: rule {rule.name!r}: {e}") from e
        except Exception as e:  # one rule's failure never stops the others' alerts
            logger.exception("otel-costattr alerts: rule %r failed", rule.name)
            result.errors.append(f"rule {rule.name!r}: {type(e).__name__}: {e}")
    at = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
    taken = [d for note in result.notifications for d in note.handed(at)] if handed else []
    try:
        record_events(con, result.events, taken)
    except duckdb.Error as e:
        raise StoreError(f"alerts: cannot record alert states: {e}") from e
    return result


_MICROSECOND = dt.timedelta(microseconds=1)
_PICO = Decimal("1e-12")
_WIDE = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP)

# How long into a day or month the one before is measured again (see _Judge._judge_late).
LATE_SECONDS = 6 * 3600


class _Judge:
    """Decides the keys of one rule and what to notify."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        rule: Rule,
        rules: RuleSet,
        previous: Mapping[tuple[str, str, str, str], KeyState],
        now: dt.datetime,
        base_url: str | None,
        result: Evaluation,
    ) -> None:
        self.con, self.rule, self.previous, self.now = con, rule, previous, now
        self.channels = [rules.channels[name] for name in rule.channels]
        self.base_url, self.result = base_url, result
        self.at = now.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def run(self) -> None:
        measures = measure(self.con, self.rule, self.now)
        if not measures:
            start, end, key = window_bounds(self.rule, self.now)
            reason = "no calls in the window"
            if self.rule.scope != "run":
                bare = calls_without_scope(self.con, self.rule, self.now)
                if bare:
                    reason = f"{bare} calls in the window, none with {self.rule.scope}"
                    if self.rule.scope not in SCOPES and self.rule.scope not in COLUMNS:  # an attribute
                        reason += " (add it to the processor's identity_keys, or OTEL_COSTATTR_IDENTITY_KEYS)"
            for t in self.rule.thresholds:
                self._set("*", key, t, None, None, NO_DATA, reason)
        seen = set()
        for m in measures:
            seen.add(stored_value(m.scope_value))
            self._judge(m)
        if self.rule.window not in CALENDAR and self.rule.window != "run":
            self._resolve_gone(seen)
        elif self.rule.window in CALENDAR:
            start = window_bounds(self.rule, self.now)[0]
            late = (self.at - start).total_seconds() <= LATE_SECONDS
            if late or self._kept_quiet_in(window_bounds(self.rule, self.now, back=1)[2]):
                for m in measure(self.con, self.rule, self.now, back=1):
                    self._judge_late(m, crossings=late)

    def _kept_quiet_in(self, window_key: str) -> bool:
        """Whether a key of this rule in the period ``window_key`` fires and its cooldown,
        now over, kept it quiet (`_kept_quiet`): one to tell, even past `LATE_SECONDS`."""
        name = self.rule.name
        return any(
            rule == name and key == window_key and self._kept_quiet(st)
            for (rule, _, key, _), st in self.previous.items()
        )

    def _judge_late(self, m: Measure, *, crossings: bool = True) -> None:
        """The window just ended, early in the next one (``crossings``: within
        `LATE_SECONDS` of its end): a threshold crossed after its last evaluation (the spans
        of its last minutes, or spans that arrived late) fires now, once; nothing else of it
        changes (its keys stay as they were when it ended). A firing its cooldown kept quiet
        is told once the cooldown is over, as `_judge` does, whenever in the next period
        that is (a cooldown may end after `LATE_SECONDS`)."""
        fired: list[tuple[Decimal, Event]] = []
        quiet: list[tuple[Decimal, Decimal | None]] = []
        speaking: list[Decimal] = []
        for t in self.rule.thresholds:
            limit = self.rule.limit(t, m.baseline)
            before = self._state(m.scope_value, m.window_key, t)
            if self._no_data(m, limit) is not None or not _reaches(m.value, limit):
                continue
            if before is not None and before.state == FIRING:
                if self._heard(before):
                    speaking.append(t)
                elif self._kept_quiet(before):
                    quiet.append((t, limit))
                continue
            if not crossings:
                continue
            event = self._set(m.scope_value, m.window_key, t, m.value, limit, FIRING)
            if event is not None and not self._cooling(before):
                fired.append((t, event))
                speaking.append(t)
        fired.extend(self._retold(m, quiet, speaking))
        if fired:
            self._notify("firing", m, fired)

    def _state(self, scope_value: str, window_key: str, threshold: Decimal) -> KeyState | None:
        key = (self.rule.name, stored_value(scope_value), window_key, stored_threshold(threshold))
        return self.previous.get(key)

    def _set(
        self,
        scope_value: str,
        window_key: str,
        t: Decimal,
        value: Decimal | None,
        limit: Decimal | None,
        state: str,
        reason: str | None = None,
    ) -> Event | None:
        before = self._state(scope_value, window_key, t)
        old = before.state if before else OK
        if state == OK and old in (RESOLVED, OK):
            state = old  # a resolved key stays RESOLVED until it fires again
        changed = state != old
        self.result.rows.append(KeyRow(self.rule.name, self.rule.scope, scope_value, window_key, t, limit,
                                       value, state, changed, reason))  # fmt: skip
        if not changed:
            return None
        event = Event(self.at, self.rule.name, self.rule.scope, scope_value, window_key, stored_threshold(t),
                      state, value, limit, False, "store")  # fmt: skip
        self.result.events.append(event)
        return event

    def _judge(self, m: Measure) -> None:
        fired: list[tuple[Decimal, Event]] = []
        resolved: list[tuple[Decimal, Event]] = []
        began: list[dt.datetime] = []  # when the firings that resolve now began
        ending = False  # a key resolves now
        quiet: list[tuple[Decimal, Decimal | None]] = []  # firing keys a cooldown kept quiet, now over
        speaking: list[Decimal] = []  # firing keys whose firing someone heard (or hears now)
        still: dict[Decimal, tuple[Decimal | None, KeyState]] = {}  # heard firings that go on: limit, state
        for t in self.rule.thresholds:
            limit = self.rule.limit(t, m.baseline)
            before = self._state(m.scope_value, m.window_key, t)
            reason = self._no_data(m, limit)
            if reason is not None and before is not None and before.state == FIRING:
                # Too little to decide is no all-clear: the key stays firing (no resolve, and
                # no second "firing" when the data comes back bad) until the data decides.
                state, reason = FIRING, f"{reason}: still firing until there is enough to decide"
            elif reason is not None:
                state = NO_DATA
            elif _reaches(m.value, limit):
                state = FIRING
            else:
                state = RESOLVED if before is not None and before.state == FIRING else OK
            event = self._set(m.scope_value, m.window_key, t, m.value, limit, state, reason)
            if event is None:
                if state == FIRING and self._heard(before):
                    speaking.append(t)
                    still[t] = (limit, before)  # type: ignore[assignment]
                elif reason is None and state == FIRING and self._kept_quiet(before):
                    quiet.append((t, limit))
                continue
            if state == FIRING and not self._cooling(before):
                fired.append((t, event))
                speaking.append(t)
            elif state == RESOLVED:
                ending = True
                if self._told(before):
                    resolved.append((t, event))
                    began.append(before.at)  # type: ignore[union-attr]
        fired.extend(self._retold(m, quiet, speaking))
        if ending:  # told or not: one found with --no-notify held the lower ones' message too
            fired.extend(self._unheard(m, still, fired))
        # A resolve first: with a re-told firing both come at once (1.0 resolved, 0.5 still
        # firing), and the message last heard must be the one still true.
        if resolved:
            self._notify("resolved", m, resolved, self._took_firing(m.scope_value, m.window_key, min(began)))
        if fired:
            self._notify("firing", m, fired)

    def _no_data(self, m: Measure, limit: Decimal | None) -> str | None:
        """Why there is nothing to compare, or None."""
        rule = self.rule
        if m.calls < rule.min_calls:
            return f"{count(m.calls, 'call')}, fewer than min_calls {rule.min_calls}"
        if limit is None:
            needed = min(BASELINE_WINDOWS, rule.baseline)
            calls = f"{count(rule.min_calls, 'call')} or more" if rule.min_calls > 1 else "calls"
            priced = ", all priced" if rule.metric in COST_METRICS else ""
            return (f"no baseline: {m.history} of the {rule.baseline} windows before had {calls}{priced}, "
                    f"{needed} needed")  # fmt: skip
        if m.unpriced and m.value is not None and not _reaches(m.value, limit):
            # A cost with calls no price is known for is at least its value: never an all-clear.
            return f"{count(m.unpriced, 'unpriced call')}: the cost is at least {_text(m.value)}"
        return None

    def _told(self, before: KeyState | None) -> bool:
        # A resolve is told only when the firing it ends was: a notifier took it (not one a
        # cooldown kept quiet, nor one found with --no-notify that no evaluation sent since).
        if not self.rule.notify_resolved or before is None or before.last_told is None:
            return False
        return before.last_told >= before.at

    def _heard(self, before: KeyState | None) -> bool:
        """Whether the firing ``before`` is was told (a notifier was handed it)."""
        return before is not None and before.last_fired is not None and before.last_fired >= before.at

    def _kept_quiet(self, before: KeyState | None) -> bool:
        """Whether ``before`` is a firing its cooldown kept quiet, and the cooldown is over (a
        rule without channels tells nothing: none is kept quiet)."""
        if not self.channels or before is None or before.state != FIRING or self._cooling(before):
            return False
        return not self._heard(before)

    def _retold(
        self, m: Measure, quiet: Sequence[tuple[Decimal, Decimal | None]], speaking: Sequence[Decimal]
    ) -> list[tuple[Decimal, Event]]:
        """A firing its cooldown kept quiet (``quiet``: threshold and limit), still firing
        once the cooldown is over, is told then (the last word anyone had may be "resolved"),
        unless a higher threshold that fires now, and was heard (``speaking``), speaks for it."""
        top = max(speaking, default=None)
        return [(t, self._again(m, t, limit)) for t, limit in quiet if top is None or top < t]

    def _again(self, m: Measure, t: Decimal, limit: Decimal | None) -> Event:
        """A firing key's event, told again (see `_kept_quiet`): the row `_set` added stays."""
        event = Event(self.at, self.rule.name, self.rule.scope, m.scope_value, m.window_key,
                      stored_threshold(t), FIRING, m.value, limit, False, "store")  # fmt: skip
        self.result.events.append(event)
        return event

    def _took_firing(
        self, scope_value: str, window_key: str, since: dt.datetime, *, on_its_way: bool = True
    ) -> list[Channel]:
        """The rule's channels that took a firing of the key (rule, ``scope_value``,
        ``window_key``) from ``since`` on, or (``on_its_way``) have one on its way (handed
        over, no outcome yet: a channel's notifications go out in order): a resolve is news
        to them alone (a receiver down while a key fired, back when it resolved, was sent an
        end it never heard start: a review)."""
        on_its_way_sql = "count(*) FILTER (WHERE attempts = 0) > count(*) FILTER (WHERE attempts > 0)"
        rows = self.con.execute(
            "SELECT channel FROM alert_deliveries WHERE rule = ? AND scope_value = ? AND window_key = ?"
            " AND event = 'firing' AND recorded_at >= ? GROUP BY channel HAVING bool_or(ok)"
            f" OR ({on_its_way_sql} AND ?)",
            [self.rule.name, stored_value(scope_value), window_key, since, on_its_way],
        ).fetchall()
        took = {r[0] for r in rows}
        return [c for c in self.channels if c.name in took]

    def _unheard(
        self,
        m: Measure,
        still: Mapping[Decimal, tuple[Decimal | None, KeyState]],
        fired: Sequence[tuple[Decimal, Event]],
    ) -> list[tuple[Decimal, Event]]:
        """Thresholds that go on firing as a higher one resolves, told again when a channel
        never took their firing and nothing will send it: they were crossed together with the
        one resolving, whose event held their message, and `redeliver` sends a key's newest
        message only (a review: 0.8 and 1.0 fired while the receiver was down; back when 1.0
        resolved, it never heard that 0.8 fired, and 0.8 fired on for an hour)."""
        if not still or not self.channels:
            return []
        top = max(still)
        if any(t >= top for t, _ in fired):
            return []  # a firing told now speaks for them
        before = still[top][1]
        # One on its way may yet fail: told again, it comes after it (a review).
        heard = {c.name for c in self._took_firing(m.scope_value, m.window_key, before.at, on_its_way=False)}
        if all(c.name in heard for c in self.channels) or self._own_message(m, top, before.at):
            return []
        return [(t, self._again(m, t, limit)) for t, (limit, _) in sorted(still.items())]

    def _own_message(self, m: Measure, threshold: Decimal, at: dt.datetime) -> bool:
        """Whether the key's firing event at ``at`` holds its message (`redeliver` sends it)."""
        row = self.con.execute(
            "SELECT bool_or(payload IS NOT NULL) FROM alert_events WHERE rule = ? AND scope_value = ?"
            " AND window_key = ? AND threshold = ? AND recorded_at = ? AND state = 'FIRING'",
            [self.rule.name, stored_value(m.scope_value), m.window_key, stored_threshold(threshold), at],
        ).fetchone()
        return bool(row and row[0])

    def _cooling(self, before: KeyState | None) -> bool:
        if before is None or before.last_fired is None or not self.rule.cooldown:
            return False
        return (self.at - before.last_fired).total_seconds() < self.rule.cooldown

    def _resolve_gone(self, seen: set[str]) -> None:
        # A rolling window's scope value with no calls left in it: nothing to alert on. Its
        # value is 0 where no calls cost nothing, else unknown.
        gone: dict[str, list[tuple[Decimal, Event]]] = {}
        began: dict[str, dt.datetime] = {}
        for (rule, value, key, threshold), st in self.previous.items():
            mine = rule == self.rule.name and key == self.rule.window
            if mine and value not in seen and value != "*" and st.state == FIRING:
                t = Decimal(threshold)
                now = Decimal(0) if self.rule.metric in ZERO_WHEN_EMPTY else None
                event = self._set(value, key, t, now, self.rule.limit(t), RESOLVED)
                if event is not None and self._told(st):
                    gone.setdefault(value, []).append((t, event))
                    began[value] = min(began.get(value, st.at), st.at)
        start, end, key = window_bounds(self.rule, self.now)
        for value, items in gone.items():
            now = items[0][1].value
            took = self._took_firing(value, key, began[value])
            self._notify("resolved", Measure(value, key, start, end, now, 0), items, took)  # type: ignore[arg-type]

    def _notify(
        self,
        event: str,
        m: Measure,
        items: Sequence[tuple[Decimal, Event]],
        channels: Sequence[Channel] | None = None,
    ) -> None:
        """Record the message on its events and hand it to ``channels`` (default: the rule's;
        a resolve's: those that took its firing; none: no one to tell, nothing recorded)."""
        channels = self.channels if channels is None else channels
        if not channels:
            return
        # Firing: the highest threshold crossed speaks for all; resolved: the lowest.
        t, main = max(items, key=lambda i: i[0]) if event == "firing" else min(items, key=lambda i: i[0])
        top: Mapping[str, Any] | None = None
        projection = None
        if event == "firing":
            top = contributors(self.con, self.rule, m.scope_value, m.start, m.end)
            current = m.window_key == window_bounds(self.rule, self.now)[2]
            if self.rule.metric == "cost" and self.rule.scope != "run" and current:
                projection = self._projection(m.scope_value)
        payload = build_payload(
            event=event, rule=self.rule, scope_value=m.scope_value, window_key=m.window_key, start=m.start,
            end=m.end, value=m.value, threshold=t, limit=main.limit, crossed=sorted(i[0] for i in items),
            baseline=m.baseline, projection=projection, top=top, base_url=self.base_url, at=self.at,
        )  # fmt: skip
        for _, e in items:
            e.notified = True
        main.payload = payload
        self.result.notifications.append(Notification(payload, channels, at=self.at))

    def _projection(self, scope_value: str) -> tuple[Decimal, dt.datetime]:
        spent, start, end = month_to_date(self.con, self.rule, scope_value, self.now)
        elapsed = (self.at - start) // _MICROSECOND
        if elapsed <= 0:
            return spent, end
        # Whole microseconds, divided exactly and rounded as forecast's costattr_per does:
        # float seconds carried a double's digits into the exact string.
        total = (end - start) // _MICROSECOND
        return _WIDE.divide(spent * total, Decimal(elapsed)).quantize(_PICO, context=_WIDE), end


def _reaches(value: Decimal | None, limit: Decimal | None) -> bool:
    """Whether ``value`` reaches ``limit``. A limit of 0 is a baseline of 0 (its windows had
    none: no unpriced call, no error): any value above it does, the spike such a rule is for
    (500 unpriced calls after a week of none stayed NO_DATA, "the limit is 0": a review)."""
    if value is None or limit is None:
        return False
    return value >= limit if limit > 0 else value > 0
