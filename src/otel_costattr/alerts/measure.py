"""A rule's metric per scope value over a window, read from the call contract.

The rollups' TEMP macro ``costattr_calls(since, until, ...)`` (derived from
``queries/_calls.sql`` by `rollups.contract`) supplies the calls, attributed and each counted
once, with the window pushed into the scan; every value is bound, never formatted in. A scope
or filter that names a contract column (as the rollups' ``--where`` does: ``feature`` and
``app.feature`` alike) reads it, inherited identity included; any other is an attribute key,
read from the call's ``attributes`` JSON (the processor copies identity onto each call).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from ..rollups.dimensions import COLUMNS
from .rules import SCOPES, Rule, zone
from .windows import window_bounds

__all__ = [
    "BASELINE_WINDOWS",
    "COST_METRICS",
    "ZERO_WHEN_EMPTY",
    "Measure",
    "calls_without_scope",
    "contributors",
    "measure",
    "month_to_date",
]

_MS = Decimal("0.001")


@dataclass(frozen=True)
class Measure:
    """One scope value's metric in the current window, with its baseline when the rule has one."""

    scope_value: str
    window_key: str
    start: dt.datetime
    end: dt.datetime
    value: Decimal | None  # None only for a key resolved because its scope value left the window
    calls: int
    baseline: Decimal | None = None
    unpriced: int = 0  # calls without a price: a cost is then at least ``value``
    history: int = 0  # the trailing windows the baseline was taken from


def _column(key: str, params: list[Any]) -> str:
    """The SQL of a scope or filter key: the contract's column for a name the rollups' --where
    reads as one (``app.feature``, ``gen_ai.agent.name``, ``service.name``, ``provider``...:
    the call's own value or the one inherited from its run, as every rollup counts it), else
    the call's attribute."""
    column = SCOPES.get(key) or COLUMNS.get(key)
    if column is not None:
        return f"c.{column}"
    params.append(f'$."{key}"')  # the key is checked at load: no quote can reach the path
    return "json_extract_string(c.attributes, ?)"


def _matching(rule: Rule, params: list[Any]) -> list[str]:
    """The tests of the rule's ``match`` filters, their values appended to ``params``."""
    tests = []
    for key, wanted in rule.match:
        tests.append(f"{_column(key, params)} = ?")
        params.append(wanted)
    return tests


def _query(
    rule: Rule, start: dt.datetime, end: dt.datetime, only: str | None = None, among: list[Any] | None = None
) -> tuple[str, list[Any]]:
    select: list[Any] = []  # parameters in the order they appear: SELECT, FROM, WHERE
    scope = _column(rule.scope, select)
    params: list[Any] = []
    where = [f"{_column(rule.scope, params)} IS NOT NULL"]
    where += _matching(rule, params)
    if only is not None:
        where.append(f"{_column(rule.scope, params)} = ?")
        params.append(only)
    if among is not None:  # a semi-join, not a list test on every call
        where.append(f"{_column(rule.scope, params)} IN (SELECT unnest(?))")
        params.append(among)
    errors = "0"
    join = ""
    if rule.metric == "error_rate":  # the span's status is not in the contract: one join by row
        join = "LEFT JOIN spans AS s ON s.rowid = c.call_row"
        errors = "count(*) FILTER (WHERE s.status_code = 'ERROR')"
    sql = f"""
        SELECT {scope} AS scope_value, count(*) AS calls, coalesce(sum(c.cost_usd), 0) AS usd,
               count(DISTINCT c.trace_id) AS runs, {errors} AS errors,
               quantile_cont(c.duration_ms, 0.95) AS p95,
               count(*) FILTER (WHERE c.cost_usd IS NULL) AS unpriced, min(c.start_time) AS first
        FROM costattr_calls(?, ?, NULL, NULL, NULL) AS c {join}
        WHERE {" AND ".join(where)}
        GROUP BY 1
    """
    return sql, [*select, start, end, *params]


def calls_without_scope(con: duckdb.DuckDBPyConnection, rule: Rule, now: dt.datetime) -> int:
    """The calls of the current window the rule's filters keep that carry no scope value: a
    rule measuring nothing says why (a per-user rule whose calls do not carry ``user.id``:
    the processor copies only the identity keys it is told of)."""
    start, end, _ = window_bounds(rule, now)
    params: list[Any] = []
    where = [f"{_column(rule.scope, params)} IS NULL"]
    where += _matching(rule, params)
    sql = f"SELECT count(*) FROM costattr_calls(?, ?, NULL, NULL, NULL) AS c WHERE {' AND '.join(where)}"
    row = con.execute(sql, [start, end, *params]).fetchone()
    return 0 if row is None else int(row[0])


def _value(metric: str, row: Sequence[Any]) -> Decimal | None:
    _, calls, usd, runs, errors, p95, unpriced = row[:7]
    if metric == "cost":
        return Decimal(usd)
    if metric == "cost_per_run":
        return Decimal(usd) / runs if runs else None
    if metric == "calls":
        return Decimal(calls)
    if metric == "error_rate":
        return Decimal(errors) / calls if calls else None
    if metric == "p95_latency":
        return None if p95 is None else Decimal(repr(float(p95))).quantize(_MS)
    return Decimal(unpriced)


def _per_value(con: duckdb.DuckDBPyConnection, rule: Rule, start: dt.datetime, end: dt.datetime) -> dict:
    sql, params = _query(rule, start, end)
    rows = {row[0]: row for row in con.execute(sql, params).fetchall()}
    if rule.window != "run" or not rows:
        return rows
    # The lookback selects the runs (those with a call in it); each is measured whole, every
    # call of it up to ``end``: a run's cost only grows, and its calls older than the lookback
    # are spent too (a run's $0.30 call sliding out of it read as "resolved" at $0.01).
    earliest = _earliest_span(con, list(rows))
    if earliest >= start:
        return rows
    sql, params = _query(rule, earliest, end, among=list(rows))
    return {**rows, **{row[0]: row for row in con.execute(sql, params).fetchall()}}


def _earliest_span(con: duckdb.DuckDBPyConnection, runs: list[Any]) -> dt.datetime:
    """The first start of a span of ``runs`` (trace ids) in the store; the epoch where the
    spans are not there (ClickHouse's alert state file has an empty spans table, and the calls
    pulled from the month's start at least, `clickhouse.alerts.lookback_start`: every one
    of them is then read; taking the empty table's NULL for "nothing earlier", ClickHouse
    still read a run's lookback alone: a review)."""
    try:
        row = con.execute(
            "SELECT min(start_time) FROM spans WHERE trace_id IN (SELECT unnest(?))", [runs]
        ).fetchone()
    except duckdb.CatalogException:
        row = None
    return _EPOCH if row is None or row[0] is None else row[0]


_EPOCH = dt.datetime(1970, 1, 1)


# Metrics that are zero where nothing happened (no calls: no cost); the others are undefined.
ZERO_WHEN_EMPTY = ("cost", "calls", "unpriced_calls")
# Metrics of money: an unpriced call makes them a lower bound, never a value to call OK.
COST_METRICS = ("cost", "cost_per_run")
# The fewest trailing windows with a value a baseline is taken from (all of them when the
# rule has fewer): one window alone makes a ramp-up or a one-off day an anomaly.
BASELINE_WINDOWS = 3


def measure(con: duckdb.DuckDBPyConnection, rule: Rule, now: dt.datetime, back: int = 0) -> list[Measure]:
    """The metric of every scope value with calls in the current window (``now``: aware), or
    ``back`` windows before it. With a baseline, each value's median over those of the
    rule's trailing windows where it has a value: at least ``min_calls`` calls, and for a
    cost every call priced (a window without calls is no evidence of what is usual: counted
    as 0, a weekly job fired every week and a feature new yesterday on its second day). At
    least `BASELINE_WINDOWS` of them (or all, for a shorter baseline), else none; their mean
    when that median is 0 (a metric mostly 0, as an error rate; all 0: a limit of 0, which
    any value above 0 reaches, `evaluate._reaches`)."""
    start, end, key = window_bounds(rule, now, back)
    current = _per_value(con, rule, start, end)
    history: dict[str, list[Decimal]] = {}
    for before in range(back + 1, back + rule.baseline + 1):
        b_start, b_end, _ = window_bounds(rule, now, before)
        past = _per_value(con, rule, b_start, b_end)
        for value in current:
            row = past.get(value)
            if row is None or row[1] < rule.min_calls or (rule.metric in COST_METRICS and row[6]):
                continue
            v = _value(rule.metric, row)
            if v is not None:
                history.setdefault(value, []).append(v)
    needed = min(BASELINE_WINDOWS, rule.baseline)
    out = []
    for value, row in sorted(current.items()):
        v = _value(rule.metric, row)
        if v is None:
            continue
        past_values = history.get(value, [])
        baseline = statistics.median(past_values) if len(past_values) >= max(needed, 1) else None
        if baseline == 0:
            baseline = statistics.mean(past_values)
        # A run's window starts at its first call, not at the start of the lookback.
        first = row[7] if rule.window == "run" and row[7] is not None else start
        unpriced = int(row[6]) if rule.metric in COST_METRICS else 0
        out.append(Measure(str(value), key, first, end, v, int(row[1]), baseline, unpriced, len(past_values)))
    return out


def contributors(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    scope_value: str,
    start: dt.datetime,
    end: dt.datetime,
    limit: int = 5,
) -> dict[str, list[dict[str, Any]]]:
    """The runs, features and models that cost most for ``scope_value`` in the window, each
    with its calls and how many of them are unpriced (``usd`` None when none is priced: an
    unknown model is never shown as $0)."""
    params: list[Any] = []
    where = [f"{_column(rule.scope, params)} = ?"]
    params.append(scope_value)
    where += _matching(rule, params)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, column in (("runs", "trace_id"), ("features", "feature"), ("models", "model")):
        rows = con.execute(
            f"""
            SELECT c.{column}, sum(c.cost_usd) AS usd, count(*) AS calls,
                   count(*) FILTER (WHERE c.cost_usd IS NULL) AS unpriced_calls
            FROM costattr_calls(?, ?, NULL, NULL, NULL) AS c
            WHERE {" AND ".join(where)} AND c.{column} IS NOT NULL
            GROUP BY 1 ORDER BY usd DESC NULLS LAST, calls DESC, 1 LIMIT ?
            """,
            [start, end, *params, limit],
        ).fetchall()
        key = "trace_id" if column == "trace_id" else column.split("_")[0]
        out[name] = [
            {key: r[0], "usd": None if r[1] is None else Decimal(r[1]), "calls": r[2], "unpriced_calls": r[3]}
            for r in rows
        ]
    return out


def month_to_date(
    con: duckdb.DuckDBPyConnection, rule: Rule, scope_value: str, now: dt.datetime
) -> tuple[Decimal, dt.datetime, dt.datetime]:
    """The cost of ``scope_value`` this calendar month in the rule's time zone, where its
    projection starts (the month's start, or its first day with a call when its calls begin
    this month: `_covered_since`) and the month's end (the first instant of the next month),
    naive UTC."""
    month = dataclasses.replace(rule, metric="cost", window="month", baseline=0)
    start, until, _ = window_bounds(month, now)
    tz = zone(rule.timezone)
    local = now.astimezone(tz)
    index = local.year * 12 + local.month  # the next month, counted from year 0
    first = dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=tz)
    sql, params = _query(month, start, until, only=scope_value)
    row = con.execute(sql, params).fetchone()
    return (
        (Decimal(row[2]) if row else Decimal(0)),
        _covered_since(con, month, scope_value, now, start, until, tz),
        first.astimezone(dt.timezone.utc).replace(tzinfo=None),
    )


def _covered_since(
    con: duckdb.DuckDBPyConnection,
    month: Rule,
    scope_value: str,
    now: dt.datetime,
    start: dt.datetime,
    until: dt.datetime,
    tz: Any,
) -> dt.datetime:
    """Where ``scope_value``'s month-end projection starts (naive UTC), as `forecast` decides
    for its row: the month's ``start``, or, when its calls begin this month (none the month
    before), the first day with one, in the rule's time zone (a feature launched on the 20th
    read as 19 days of nothing: a review)."""
    before, _, _ = window_bounds(month, now, back=1)
    sql, params = _query(month, before, until, only=scope_value)
    row = con.execute(sql, params).fetchone()
    first_call = None if row is None else row[7]
    if first_call is None or first_call < start:
        return start
    local = first_call.replace(tzinfo=dt.timezone.utc).astimezone(tz)
    day = dt.datetime.combine(local.date(), dt.time(), tz).astimezone(dt.timezone.utc).replace(tzinfo=None)
    return max(start, day)
