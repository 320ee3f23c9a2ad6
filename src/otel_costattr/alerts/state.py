"""Alert states in the store: the ``alert_events`` and ``alert_deliveries`` tables.

The tables come from migration ``0005_alert_events`` (``queries/_alert_events.sql``). An alert
key is (rule, scope value, window key, threshold); its state is its newest event, OK when it
has none. Only changes are appended, so the table grows with what happened, not with how often
anyone looked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

__all__ = [
    "FIRING",
    "NO_DATA",
    "OK",
    "RESOLVED",
    "Delivery",
    "Event",
    "KeyState",
    "delivery_failures",
    "latest_states",
    "record_deliveries",
    "record_events",
    "stored_threshold",
]

OK, FIRING, RESOLVED, NO_DATA = "OK", "FIRING", "RESOLVED", "NO_DATA"

Key = tuple[str, str, str, str]  # rule, scope_value, window_key, threshold


@dataclass(frozen=True)
class KeyState:
    """What the store knows of one key: its state, since when, its last notified firing, and
    the last of those a notifier took (a delivery row at or after it: an evaluation with
    --no-notify notifies, and no one takes it until a later one sends it)."""

    state: str
    at: dt.datetime
    last_fired: dt.datetime | None
    last_told: dt.datetime | None = None


@dataclass
class Event:
    """One state change of one key (``payload``: what the channels were sent, if anything)."""

    at: dt.datetime
    rule: str
    scope: str
    scope_value: str
    window_key: str
    threshold: str
    state: str
    value: Decimal | None
    limit: Decimal | None
    notified: bool
    source: str
    payload: Mapping[str, Any] | None = None

    @property
    def key(self) -> Key:
        return (self.rule, self.scope_value, self.window_key, self.threshold)


@dataclass(frozen=True)
class Delivery:
    """A notification's fate at one channel, once its retries are spent or it got through."""

    at: dt.datetime
    rule: str
    scope_value: str
    window_key: str
    event: str
    channel: str
    ok: bool
    attempts: int
    error: str | None


def latest_states(con: duckdb.DuckDBPyConnection, rules: Iterable[str]) -> dict[Key, KeyState]:
    """The current state of every key of ``rules`` the store has seen."""
    names = list(rules)
    if not names:
        return {}
    rows = con.execute(
        """
        WITH taken AS (  -- a firing's notification a notifier took: rows at or after its event
            SELECT rule, scope_value, window_key, max(recorded_at) AS at
            FROM alert_deliveries
            WHERE event = 'firing' AND list_contains(?, rule)
            GROUP BY ALL
        )
        SELECT e.rule, e.scope_value, e.window_key, e.threshold, arg_max(e.state, e.recorded_at),
               max(e.recorded_at), max(e.recorded_at) FILTER (WHERE e.state = 'FIRING' AND e.notified),
               max(e.recorded_at) FILTER (WHERE e.state = 'FIRING' AND e.notified AND e.recorded_at <= t.at)
        FROM alert_events AS e
        LEFT JOIN taken AS t USING (rule, scope_value, window_key)
        WHERE list_contains(?, e.rule)
        GROUP BY ALL
        """,
        [names, names],
    ).fetchall()
    return {(r[0], r[1], r[2], r[3]): KeyState(r[4], r[5], r[6], r[7]) for r in rows}


# A key's value may be an identity a user chose: bounded so one row stays small.
_MAX_TEXT = 512


def stored_value(scope_value: str) -> str:
    """A scope value as `alert_events` keeps it (and `latest_states` gives it back): what
    an evaluation must look a key's state up by, or a long value is never found again."""
    return scope_value[:_MAX_TEXT]


def stored_threshold(threshold: Decimal) -> str:
    """A threshold as `alert_events` keeps it in a key ("0.5", "1"): what the evaluators
    write and what the resend of a resolve looks its thresholds up by."""
    return f"{threshold.normalize():f}"


# A row's time is never before the newest already stored (a microsecond after it, if need
# be): a key's state is its newest row and a delivery answers the event before it, so after
# the system clock stepped back an evaluation's rows must still come last (a review: from a
# step back of 50 minutes, each evaluation found the key's "future" row newest, changed it
# again and sent a firing each time, the resolve never).
_INSERT_EVENT = """
INSERT INTO alert_events SELECT
    greatest(?::TIMESTAMP, (SELECT max(recorded_at) + INTERVAL 1 MICROSECOND FROM alert_events)),
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
"""
_INSERT_DELIVERY = """
INSERT INTO alert_deliveries SELECT
    greatest(?::TIMESTAMP, (SELECT max(recorded_at) FROM alert_events),
             (SELECT max(recorded_at) FROM alert_deliveries)),
    ?, ?, ?, ?, ?, ?, ?, ?
"""


def record_events(
    con: duckdb.DuckDBPyConnection, events: Sequence[Event], deliveries: Sequence[Delivery] = ()
) -> None:
    """Append ``events`` in one transaction, with ``deliveries`` (the notifier's taking of
    what they fire, `deliver.Notification.handed`: no evaluator may see one without the other)."""
    if not events:
        return
    rows = [
        (
            e.at, e.rule, e.scope, e.scope_value[:_MAX_TEXT], e.window_key, e.threshold, e.state,
            _bounded(e.value), _bounded(e.limit), e.notified, e.source,
            None if e.payload is None else json.dumps(e.payload),
        )
        for e in events
    ]  # fmt: skip
    con.execute("BEGIN TRANSACTION")
    try:
        con.executemany(_INSERT_EVENT, rows)
        record_deliveries(con, deliveries)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _bounded(value: Decimal | None) -> Decimal | None:
    # DECIMAL(38, 12): a metric value beyond it (absurd data) is stored as unknown, not an error.
    if value is None or not value.is_finite() or abs(value) >= Decimal(10) ** 26:
        return None
    return value.quantize(Decimal("1e-12"))


def record_deliveries(con: duckdb.DuckDBPyConnection, deliveries: Sequence[Delivery]) -> None:
    """Append ``deliveries``."""
    if deliveries:
        con.executemany(
            _INSERT_DELIVERY,
            [
                (d.at, d.rule, d.scope_value[:_MAX_TEXT], d.window_key, d.event, d.channel, d.ok, d.attempts,
                 None if d.error is None else d.error[:_MAX_TEXT])
                for d in deliveries
            ],
        )  # fmt: skip


def delivery_failures(con: duckdb.DuckDBPyConnection, since: dt.datetime | None = None) -> dict[str, Any]:
    """Failed deliveries (all time, or from ``since``): how many, and the newest one. A row
    with no attempts is a re-send claimed, not an outcome (`redeliver`). The outcomes of one
    evaluation's notifications carry its time: the one recorded last is the last to fail
    (not any of them, which named another channel than the notifier's own count did)."""
    row = con.execute(
        """
        WITH failed AS (
            SELECT recorded_at, channel, error, rule, rowid AS n FROM alert_deliveries
            WHERE NOT ok AND attempts > 0 AND (?::TIMESTAMP IS NULL OR recorded_at >= ?::TIMESTAMP)
        )
        SELECT (SELECT count(*) FROM failed), l.recorded_at, l.channel, l.error, l.rule
        FROM (SELECT 1)
        LEFT JOIN (SELECT * FROM failed ORDER BY recorded_at DESC, n DESC LIMIT 1) AS l ON true
        """,
        [since, since],
    ).fetchone()
    assert row is not None
    return {
        "failed": row[0],
        "last_at": row[1],
        "last_channel": row[2],
        "last_error": row[3],
        "last_rule": row[4],
    }
