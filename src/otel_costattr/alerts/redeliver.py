"""Re-sending a firing or resolved notification that a channel never took.

A store evaluation notifies a crossing once (the FIRING event carrying the payload), and its
end once (the RESOLVED event). When a channel was down then, its ``alert_deliveries`` rows
since that event are failures only, and the notification is due again: each later evaluation
(in any process: it is all in the store) re-sends the stored payload to that channel alone,
with backoff, until one delivery gets through, or the key's state changes (a firing resolved,
a resolved key firing again), or its window has passed (a past day or month; a run older
than the rule's lookback). A later notification of the same rule, scope value, window and
event that got through (a higher threshold) counts as delivered: it says more. (A resolve
never sent again left the incident open for good in whatever took the firing.)

Backoff: the first re-send waits ``RESEND_FIRST`` seconds after the last hand-over (never less
than the channel's own retries can take, so a round still in flight is never doubled), then the
wait doubles per failed round, at most ``RESEND_MOST``. Each re-send is claimed in the store
(a delivery row with ``attempts`` 0) before it is handed over, so two evaluators do not both
send it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from .deliver import Notification
from .rules import CALENDAR, Channel, Rule, RuleSet, parse_duration
from .state import Delivery, record_deliveries, stored_threshold
from .windows import window_bounds

__all__ = ["RESEND_FIRST", "RESEND_MOST", "DueKey", "claim_redeliveries", "patience"]

RESEND_FIRST = 60.0  # seconds
RESEND_MOST = 3600.0

# (rule, scope value, window key, channel): what a notifier has in flight.
DueKey = tuple[str, str, str, str]


def patience(channel: Channel) -> float:
    """The longest one delivery round to ``channel`` takes: every attempt timing out, plus the
    doubling waits between them."""
    return channel.timeout * (channel.retries + 1) + channel.round_waits


def _wait(channel: Channel, failed_rounds: int) -> float:
    first = max(RESEND_FIRST, patience(channel))
    return min(first * 2 ** max(failed_rounds - 1, 0), max(RESEND_MOST, first))


@dataclass(frozen=True)
class _Pending:
    rule: str
    scope_value: str
    window_key: str
    fired_at: dt.datetime
    payload: str
    channel: str
    delivered: bool
    failed_rounds: int
    last: dt.datetime | None


def _stale(rule: Rule, window_key: str, fired_at: dt.datetime, at: dt.datetime, event: str) -> bool:
    # A day or month before the last, or a run older than the lookback, still reads FIRING
    # (nothing resolves it): its news is old, so it is not sent again. The period just ended
    # is still news: its late crossings fire early in the next one (evaluate._judge_late).
    if rule.window in CALENDAR:
        now = at.replace(tzinfo=dt.timezone.utc)
        return window_key not in (window_bounds(rule, now)[2], window_bounds(rule, now, 1)[2])
    if rule.window == "run":
        return (at - fired_at).total_seconds() > rule.lookback
    # A rolling window's key still firing is news however old; its resolve, a window later, not.
    return event == "resolved" and (at - fired_at).total_seconds() > parse_duration(rule.window)


_PENDING = """
WITH latest AS (
    SELECT rule, scope_value, window_key, threshold, arg_max(state, recorded_at) AS state,
           max(recorded_at) AS at
    FROM alert_events WHERE list_contains(?, rule) GROUP BY ALL
), fired AS (
    SELECT e.rule, e.scope_value, e.window_key, e.recorded_at, e.payload
    FROM alert_events AS e JOIN latest AS l
      ON e.rule = l.rule AND e.scope_value = l.scope_value AND e.window_key = l.window_key
     AND e.threshold = l.threshold AND e.recorded_at = l.at
    WHERE l.state IN ('FIRING', 'RESOLVED') AND e.state = l.state AND e.notified AND e.payload IS NOT NULL
)
SELECT f.rule, f.scope_value, f.window_key, f.recorded_at, f.payload, d.channel,
       coalesce(bool_or(d.ok), false), count(*) FILTER (WHERE NOT d.ok AND d.attempts > 0),
       max(d.recorded_at)
FROM fired AS f LEFT JOIN alert_deliveries AS d
  ON d.rule = f.rule AND d.scope_value = f.scope_value AND d.window_key = f.window_key
 AND d.event = json_extract_string(f.payload, '$.event') AND d.recorded_at >= f.recorded_at
GROUP BY ALL
"""


def _firing_delivered(
    con: duckdb.DuckDBPyConnection,
    rule: str,
    value: str,
    window: str,
    resolved_at: dt.datetime,
    thresholds: list[str],
) -> set[str]:
    """The channels that took a firing notification of the episode a resolve at
    ``resolved_at`` of ``thresholds`` (their texts as stored; none known: any) ends: since
    their resolve before it (a rolling window's key is reused by every episode: one that
    took an earlier episode's firing was never told this began). Another threshold's resolve
    does not end their episode (a review: "resolved 0.5, 0.8" failed after "resolved 1.0"
    got through, and was never sent again: their firing had gone before 1.0's resolve)."""
    rows = con.execute(
        """
        SELECT DISTINCT d.channel FROM alert_deliveries AS d
        WHERE d.rule = ? AND d.scope_value = ? AND d.window_key = ? AND d.event = 'firing' AND d.ok
          AND d.recorded_at > coalesce((
              SELECT max(e.recorded_at) FROM alert_events AS e
              WHERE e.rule = ? AND e.scope_value = ? AND e.window_key = ? AND e.state = 'RESOLVED'
                AND e.recorded_at < ? AND (len(?) = 0 OR list_contains(?, e.threshold))),
              '-infinity'::TIMESTAMP)
        """,
        [rule, value, window, rule, value, window, resolved_at, thresholds, thresholds],
    ).fetchall()
    return {r[0] for r in rows}


def _resolved_thresholds(rule: Rule, payload: Mapping[str, Any]) -> list[str]:
    """The rule's thresholds a resolve's payload covers, as `alert_events` stores them."""
    crossed = payload.get("thresholds_crossed")
    if not isinstance(crossed, list):
        return []
    return [stored_threshold(t) for t in rule.thresholds if float(t) in crossed]


def claim_redeliveries(
    con: duckdb.DuckDBPyConnection, rules: RuleSet, at: dt.datetime, busy: Collection[DueKey] = ()
) -> list[Notification]:
    """The notifications due again at ``at`` (naive UTC), claimed in the store. ``busy``: keys
    the caller's notifier still has in flight (never sent twice)."""
    names = [r.name for r in rules.rules]
    if not names:
        return []
    rows = [_Pending(*r) for r in con.execute(_PENDING, [names]).fetchall()]
    by_event: dict[tuple[str, str, str, dt.datetime], list[_Pending]] = {}
    for p in rows:
        by_event.setdefault((p.rule, p.scope_value, p.window_key, p.fired_at), []).append(p)
    rule_of = {r.name: r for r in rules.rules}
    notes: list[Notification] = []
    claims: list[Delivery] = []
    for (name, value, window, fired_at), items in by_event.items():
        payload = json.loads(items[0].payload)
        event = payload["event"]
        rule = rule_of[name]
        if _stale(rule, window, fired_at, at, event):
            continue
        if event == "resolved" and not rule.notify_resolved:
            continue  # the rule says no more resolves (changed since it was recorded)
        told = None
        if event == "resolved":
            told = _firing_delivered(con, name, value, window, fired_at, _resolved_thresholds(rule, payload))
        seen = {p.channel: p for p in items if p.channel is not None}
        due: list[Channel] = []
        rounds, again = 0, False
        for channel_name in rule.channels:
            channel = rules.channels[channel_name]
            p = seen.get(channel_name)
            if p is not None and p.delivered:
                continue
            if told is not None and channel_name not in told:
                continue  # never told it fired: an end it never heard start is no news
            if (name, value, window, channel_name) in busy:
                continue
            if p is None:  # no notifier ever took it (evaluated with --no-notify): due now
                due.append(channel)
                continue
            last = p.last if p.last is not None else fired_at
            if (at - last).total_seconds() < _wait(channel, p.failed_rounds):
                continue
            due.append(channel)
            again = True
            rounds = max(rounds, p.failed_rounds)
        if not due:
            continue
        if again:  # sent before to one of them at least: said so (else its first sending)
            payload["redelivered"] = True
            payload["failed_rounds"] = rounds
        notes.append(Notification(payload, due, at=at))
        claims.extend(Delivery(at, name, value, window, event, c.name, False, 0, None) for c in due)
    record_deliveries(con, claims)
    return notes
