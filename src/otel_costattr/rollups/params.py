"""A rollup's parameters: coerce each value to its declared SQL type and validate the set.

Values are bound as DuckDB named parameters (``$since``), never formatted into the SQL.
A query that takes ``since`` also accepts ``days`` here (``since`` = now - days, or
``until`` - days when ``until`` is given; a relative default start counts back from it too).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .dimensions import check_key
from .errors import RollupParamError

if TYPE_CHECKING:
    from .catalog import Query

__all__ = ["AGO", "NOW", "TYPES", "WINDOW_PARAMS", "bind", "coerce", "shown", "timestamp"]

# What every rollup over the attributed calls takes (the CLI's common options).
WINDOW_PARAMS = ("since", "until", "service", "feature", "agent")
TYPES = ("TIMESTAMP", "VARCHAR", "INTEGER", "DOUBLE")
# A TIMESTAMP parameter declared ``= NOW`` defaults to the time of the call (bind's ``now``);
# one declared ``= 7d`` (AGO) to that long before it.
NOW = "NOW"
# Bounds on what a parameter can mean, so an absurd value is refused with its name instead of
# overflowing a date or an integer deep inside Python or DuckDB (a traceback, not an answer).
_MAX_DAYS = 36_500  # a hundred years of spans
_INTEGER_RANGE = (-(2**31), 2**31 - 1)  # SQL INTEGER, as the queries declare them
# The least value a parameter can mean, by name in any rollup: a count or a percentage is
# never negative, and a ratio or factor below 1 would list drops as jumps or loops.
_AT_LEAST = {"limit": 0, "min_tokens": 0, "min_calls": 0, "pct": 0, "min_ratio": 1, "factor": 1, "step": 0}
# ``since`` / ``until`` relative to now: 7d, 12h, 2w (ago).
AGO = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([hdw])\s*", re.IGNORECASE)
_UNIT_DAYS = {"h": 1 / 24, "d": 1.0, "w": 7.0}


def shown(value: Any) -> str:
    """A value as an error message quotes it: text as typed, a whole number without an
    exponent or a trailing ``.0``, a time to the second (naive: UTC, as every stored time)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}" + ("" if value.tzinfo is None else f"{value:%z}")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _timestamp(value: Any) -> dt.datetime:
    """A naive UTC datetime (the spans table's TIMESTAMP) from a datetime, date or ISO text."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(
                "expected an ISO date or time (YYYY-MM-DD[THH:MM[:SS]]) or a time ago (7d, 12h, 2w)"
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
                raise ValueError("out of range once converted to UTC") from None
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    raise ValueError("expected a datetime, a date or ISO text")


def coerce(qname: str, pname: str, ptype: str, value: Any) -> Any:
    """``value`` as the SQL type ``ptype``; text is accepted for every type (the CLI)."""
    try:
        if ptype == "TIMESTAMP":
            return _timestamp(value)
        if ptype == "VARCHAR":
            if not isinstance(value, str):
                raise ValueError("expected text")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
            raise ValueError("expected a number")
        try:
            number = Decimal(
                value.strip()
                if isinstance(value, str)
                else repr(value)
                if isinstance(value, float)
                else value
            )
        except ArithmeticError:
            raise ValueError("expected a number") from None
        if not number.is_finite():
            raise ValueError("expected a finite number")
        if ptype == "INTEGER":
            if number != number.to_integral_value():
                raise ValueError("expected a whole number")
            low, high = _INTEGER_RANGE
            if number > high:
                raise ValueError(f"must be at most {high}")
            if number < low:
                raise ValueError(f"must be at least {low}")
            return int(number)
        as_float = float(number)
        if not math.isfinite(as_float):
            raise ValueError("too large for a number (DOUBLE)")
        return as_float
    except ValueError as e:
        raise RollupParamError(f"{qname}: {pname}: {e}, got {value!r}") from None


def _ago(qname: str, pname: str, now: dt.datetime, days: float, given: Any) -> dt.datetime:
    """``now`` less ``days`` (positive, at most a hundred years)."""
    if days <= 0:
        raise RollupParamError(f"{qname}: {pname}: must be positive, got {given}")
    if days > _MAX_DAYS:
        unit = "" if pname == "days" else " days ago"
        raise RollupParamError(f"{qname}: {pname}: must be at most {_MAX_DAYS}{unit}, got {given}")
    try:
        return now - dt.timedelta(days=days)
    except OverflowError:  # only with a `now` near year 1
        raise RollupParamError(f"{qname}: {pname}: reaches before year 1, got {given}") from None


def timestamp(qname: str, pname: str, value: Any, now: dt.datetime) -> dt.datetime:
    """A ``since`` / ``until`` as a user gives it: an ISO date or time (UTC), a datetime, or
    relative (``7d``, ``12h``, ``2w``: that long before ``now``). The one rule for every window
    (the rollups, the report, the dashboard); raises `RollupParamError` naming ``pname``."""
    m = AGO.fullmatch(value) if isinstance(value, str) else None
    if m:
        return _ago(qname, pname, now, float(m.group(1)) * _UNIT_DAYS[m.group(2).lower()], value)
    return coerce(qname, pname, "TIMESTAMP", value)  # type: ignore[no-any-return]


def clock(qname: str, now: Any) -> dt.datetime:
    """The time a query's relative windows count back from, naive UTC like every stored time:
    ``now`` (a datetime; one with a timezone is converted), else the time of the call."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if not isinstance(now, dt.datetime):
        raise RollupParamError(f"{qname}: now: expected a datetime, got {type(now).__name__} {shown(now)!r}")
    if now.tzinfo is not None:
        try:
            return now.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except OverflowError:
            raise RollupParamError(f"{qname}: now: out of range once converted to UTC, got {now!r}") from None
    return now


def bind(
    q: Query, params: Mapping[str, Any], *, now: dt.datetime | None = None, also: Sequence[str] = ()
) -> dict[str, Any]:
    """Validate ``params`` for query ``q`` and return the full set of named values.

    ``None`` means "not given" (the default applies). ``days`` turns into ``since``, and
    ``since`` / ``until`` may be relative (``7d``, ``12h``, ``2w``: that long before now);
    ``now`` (naive UTC) is for tests. ``also``: keywords the caller took before binding
    (`rollup`'s ``where``), named among the valid ones when a parameter is unknown.
    """
    given = {k: v for k, v in params.items() if v is not None}
    valid = q.accepts()
    unknown = sorted(set(given) - set(valid))
    if "group_by" in unknown:
        raise RollupParamError(f"{q.name}: cannot group by a key: {q.nogroup or 'it is not a rollup'}")
    if unknown:
        raise RollupParamError(
            f"{q.name}: unknown parameter {unknown[0]!r} (valid: {', '.join([*valid, *also]) or 'none'})"
        )
    current = clock(q.name, now)
    for key in ("since", "until"):
        if isinstance(given.get(key), str) and AGO.fullmatch(given[key]):
            given[key] = timestamp(q.name, key, given[key], current)
    # A window's length given without its start (``days``, a default such as compare's 7
    # days) ends at ``until`` when there is one: "the 7 days before the 20th".
    end = coerce(q.name, "until", "TIMESTAMP", given["until"]) if "until" in given else current
    for p in q.params:
        relative = p.type == "TIMESTAMP" and isinstance(p.default, str) and p.default != NOW
        if relative and p.name not in given and not (p.name == "since" and "days" in given):
            given[p.name] = timestamp(q.name, p.name, p.default, end if p.name == "since" else current)
    if "days" in given:
        if "since" in given:
            raise RollupParamError(f"{q.name}: give days or since, not both")
        typed = given.pop("days")
        days = coerce(q.name, "days", "DOUBLE", typed)
        given["since"] = _ago(q.name, "days", end, days, shown(typed))
    out = {}
    for p in q.params:
        if p.name in given:
            out[p.name] = coerce(q.name, p.name, p.type, given[p.name])
            if p.choices and out[p.name] not in p.choices:
                expected = (
                    f"{', '.join(p.choices[:-1])} or {p.choices[-1]}" if len(p.choices) > 1 else p.choices[0]
                )
                raise RollupParamError(f"{q.name}: {p.name}: expected {expected}, got {out[p.name]}")
            if p.name == "group_by":
                out[p.name] = check_key(q.name, p.name, out[p.name])
        elif p.required:
            raise RollupParamError(f"{q.name}: missing required parameter {p.name!r}")
        else:
            out[p.name] = current if p.default == NOW else p.default
    for key, least in _AT_LEAST.items():
        if out.get(key) is not None and out[key] < least:
            rule = "must not be negative" if least == 0 else f"must be at least {least}"
            raise RollupParamError(f"{q.name}: {key}: {rule}, got {shown(out[key])}")
    since, until = out.get("since"), out.get("until")
    if since is not None and until is not None and since >= until:
        raise RollupParamError(f"{q.name}: since ({shown(since)}) must be before until ({shown(until)})")
    return out
