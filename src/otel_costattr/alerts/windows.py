"""Where a rule's window lies at a given time: calendar periods in the rule's time zone,
rolling windows ending now, and the trailing windows a baseline is taken over."""

from __future__ import annotations

import datetime as dt

from .rules import CALENDAR, Rule, parse_duration, zone

__all__ = ["window_bounds"]


def window_bounds(rule: Rule, now: dt.datetime, back: int = 0) -> tuple[dt.datetime, dt.datetime, str]:
    """The window ``back`` windows before the current one, as naive UTC [start, end) and its
    key: the period (``2026-12-02``, ``2026-12``) for calendar windows, else the window's name.
    ``now`` is aware. Window ``run`` gives the lookback."""
    utc = dt.timezone.utc
    if rule.window in CALENDAR:
        tz = zone(rule.timezone)
        local = now.astimezone(tz)
        if rule.window == "day":
            day = local.date() - dt.timedelta(days=back)
            start = dt.datetime.combine(day, dt.time(), tz)
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
            key = day.isoformat()
        else:
            index = local.year * 12 + local.month - 1 - back
            start = dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=tz)
            following = index + 1
            end = dt.datetime(following // 12, following % 12 + 1, 1, tzinfo=tz)
            key = f"{start.year:04d}-{start.month:02d}"
        if back == 0:
            end = min(end, now)
        return _naive(start.astimezone(utc)), _naive(end.astimezone(utc)), key
    length = dt.timedelta(seconds=rule.lookback if rule.window == "run" else parse_duration(rule.window))
    end = now - length * back
    return _naive((end - length).astimezone(utc)), _naive(end.astimezone(utc)), rule.window


def _naive(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=None)
