"""Alerts over a ClickHouse store: the rules measured on calls selected there, the states kept
in a local DuckDB file (``--state``).

The alert states (``alert_events``: a key fires once per window, across restarts and
processes) and the delivery outcomes (``alert_deliveries``: what a later evaluation sends
again) must be written by the evaluator. A ClickHouse store is the Collector's, often read
with a read-only user, and its MergeTree tables have no transactions for "record the change
only if the newest state differs"; a small DuckDB file has both, and is exactly the table
the DuckDB store keeps (migration ``0005_alert_events``), so `alerts.state`, `alerts.redeliver`
and `alerts.deliver.Notifier` work on it unchanged. It holds no span.

Each evaluation selects the calls of the widest window the rules read (their windows,
baselines and the month a projection needs) from ClickHouse through its call contract
(`local.fetch`, attributes whole: rules scope and filter on any key), loads them as a TEMP
table of the state file's connection, and `alerts.evaluate` runs its DuckDB SQL over them
(`local.CALLS_MACRO`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from ..alerts.evaluate import LATE_SECONDS
from ..alerts.rules import CALENDAR, RuleSet
from ..alerts.windows import window_bounds
from ..store.database import StoreError, connect
from .local import fetch, load
from .target import Target

__all__ = ["UNSUPPORTED_METRICS", "check_rules", "lookback_start", "state_connection"]

# The span's status is not in the ClickHouse spans relation (queries/clickhouse/_spans.sql).
UNSUPPORTED_METRICS = ("error_rate",)


def check_rules(rules: RuleSet) -> None:
    """`ValueError` (one line, naming the file, the rule and the field, as the rule file's
    own errors do) for a rule ClickHouse cannot measure yet."""
    for rule in rules.rules:
        if rule.metric in UNSUPPORTED_METRICS:
            raise ValueError(
                f"{rules.source}: rule {rule.name!r}: field 'metric': {rule.metric!r} is not available on"
                " ClickHouse yet "
                "(the span status is not read there)"
            )


def lookback_start(rules: RuleSet, now: dt.datetime) -> dt.datetime:
    """The earliest instant (naive UTC) any rule reads at ``now`` (aware): its oldest baseline
    window (in the first `LATE_SECONDS` of a day or month, the baseline of the one just ended,
    which `evaluate` measures again), and the month its projection reads, with the month
    before for a cost rule's (whether its scope's calls begin this month)."""
    starts = []
    at = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
    for rule in rules.rules:
        back = rule.baseline
        if rule.window in CALENDAR and (at - window_bounds(rule, now)[0]).total_seconds() <= LATE_SECONDS:
            back += 1  # early in a day or month the one just ended is measured again (late firings)
        starts.append(window_bounds(rule, now, back)[0])
        month = dataclasses.replace(rule, metric="cost", window="month", baseline=0)
        # A cost rule's projection starts where its scope's calls begin when they begin this
        # month (`alerts.measure._covered_since`): it reads the month before to tell. A run
        # rule costs each run whole from what is pulled: the month before too, so a run begun
        # before the 1st is whole on the 1st (it read its lookback alone there: a review).
        wide = (rule.metric == "cost" and rule.scope != "run") or rule.window == "run"
        starts.append(window_bounds(month, now, back=1 if wide else 0)[0])
    return min(starts) if starts else now.astimezone(dt.timezone.utc).replace(tzinfo=None)


@contextmanager
def state_connection(
    target: Target, state: str | os.PathLike[str], rules: RuleSet, now: dt.datetime
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The state file ``state`` opened read-write (created with the store's schema when new),
    with ``target``'s calls since `lookback_start` loaded for `local.CALLS_MACRO`. Raises
    `RollupError` when ClickHouse cannot answer, `StoreError` when the file cannot be opened."""
    calls, _ = fetch(target, {"since": lookback_start(rules, now)}, all_attributes=True)
    con = connect(os.fspath(state))
    try:
        try:
            load(con, calls)
        except duckdb.Error as e:
            raise StoreError(f"alerts: cannot load the calls into {os.fspath(state)}: {e}") from e
        yield con
    finally:
        con.close()
