"""``alerts check`` (evaluate once, for cron: exit 3 while something fires) and ``alerts watch``
(evaluate every interval until interrupted). Both read the rules from ``alerts.toml``."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import click

from ..alerts.deliver import Notification, Notifier
from ..alerts.evaluate import KeyRow
from ..alerts.payload import unit
from ..alerts.redeliver import patience
from ..alerts.rules import load_rules
from ..alerts.state import delivery_failures
from ..alerts.watch import AlertWatcher, CheckResult, check_once, state_path
from ..display import money, visible_lines
from ..store.database import connect
from .options import db_path, duration_option, writing_db_option
from .output import Record, Table, json_object, output, table_lines

# Exit status of `alerts check` while at least one alert fires (as `store status --check`).
FIRING_EXIT = 3
INTERRUPTED_EXIT = 130  # as a shell reports a command ended by SIGINT
MAX_WAIT = 300.0  # seconds `alerts check` waits for deliveries (a receiver that is down)
_COLUMNS = ("rule", "scope", "scope_value", "window", "threshold", "limit", "value", "state", "reason")
# The states as csv and parquet: one schema every run, whatever its values (a review: decimal
# scales and a null-typed reason read from each run's values, so two days' files did not concat).
_NUMBER = "DECIMAL(38,12)"
_TYPES = {c: ("VARCHAR" if c not in ("threshold", "limit", "value") else _NUMBER) for c in _COLUMNS}


# Not options.db_option: the alerts record their states in the store, so they open it to write.
_db_option = writing_db_option("alert states and deliveries are recorded in it")


def _rules_option(fn: Any) -> Any:
    return click.option(
        "--rules",
        "rules_path",
        default="alerts.toml",
        show_default=True,
        metavar="FILE",
        help="the rule file (format in the README, section Alerts)",
    )(fn)


def _row(r: KeyRow) -> dict[str, Any]:
    return {
        "rule": r.rule, "scope": r.scope, "scope_value": r.scope_value, "window": r.window_key,
        "threshold": r.threshold, "limit": r.limit, "value": r.value, "state": r.state, "reason": r.reason,
    }  # fmt: skip


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)


def _percent(value: Any) -> str:
    return "" if value is None else f"{Decimal(value) * 100:.1f}%"


_SHOWN_AS: dict[str, Callable[[Any], str]] = {"usd": money, "ratio": _percent}


def _sent_again(result: CheckResult) -> int:
    """How many notifications went out again (a firing a notifier took and no channel got);
    not those found by an evaluation that notified no one (--no-notify), sent now for the
    first time."""
    return sum(1 for note in result.redelivered if note.payload.get("redelivered"))


def _state_option(fn: Any) -> Any:
    return click.option(
        "--state",
        metavar="FILE",
        help="with a ClickHouse --db (clickhouse://..., chdb:///path): the local DuckDB file that keeps "
        "the alert states and "
        "deliveries (created when missing; the same file every run, so each key fires once per window)",
    )(fn)


def _no_notify_option(fn: Any) -> Any:
    return click.option(
        "--no-notify",
        is_flag=True,
        help="evaluate and record states, send nothing (the next evaluation that notifies sends it)",
    )(fn)


@click.group()
def alerts() -> None:
    """Budget and anomaly alerts over the store, from a rule file.

    \b
    Example:
      otel-costattr alerts check --db spans.duckdb --rules alerts.toml
    """


@alerts.command("check")
@_db_option
@_state_option
@_rules_option
@_no_notify_option
@click.option("--base-url", metavar="URL", help="where `serve` answers, for links in the payloads")
@output
def check(
    db: str | None, state: str | None, rules_path: str, no_notify: bool, base_url: str | None
) -> Record:
    """Evaluate every rule once, notify, and exit 3 while an alert fires (0 otherwise).

    Shows every alert that is not OK (NO_DATA with its reason), and for a rule with none,
    its value closest to a limit; then delivery failures (retries spent) the store
    recorded. A firing or resolved notification no channel took is sent again, with
    backoff, by the next evaluations until one delivery gets through.

    \b
    Example:
      otel-costattr alerts check --db spans.duckdb --rules alerts.toml || page-someone
      otel-costattr alerts check --db clickhouse://u:p@host:8123/otel --state alerts.duckdb
    """
    ruleset = load_rules(rules_path)
    path = db_path(db)
    states = state_path(path, state)  # the store itself, or a ClickHouse store's --state file
    notifier = None if no_notify else Notifier(states)
    result = check_once(path, ruleset, notifier=notifier, base_url=base_url, state=state)
    sent = ""
    if notifier is not None:
        # Wait out every retry, but never more than MAX_WAIT: what is left is reported undelivered.
        notes = [*result.evaluation.notifications, *result.redelivered]
        notifier.flush(min(MAX_WAIT, sum(_patience(n) for n in notes)))
        notifier.stop(1)
        stats = notifier.stats()
        sent = f"notifications: {stats['delivered']} delivered, {stats['failed']} failed"
        sent += _unanswered(stats)
        again = _sent_again(result)
        if again:
            sent += f" ({again} sent again: undelivered before)"
        if stats["last_error"]:
            sent += f" (last: {stats['last_error']})"
        # What this run could not deliver is in the store now: read the failures again.
        result = CheckResult(result.evaluation, _failures(states), result.redelivered)
    rows = [_row(r) for r in result.evaluation.summary()]
    firing = len(result.evaluation.firing)
    failures = result.failures
    failed = f"delivery failures recorded: {failures['failed']}"
    if failures["failed"]:
        failed += f" (last {failures['last_at']:%Y-%m-%d %H:%M:%S} UTC, {failures['last_channel']}: "
        failed += f"{failures['last_error']})"
    # The table shows a cost's limit and value as every table shows money, and an error
    # rate's as a percentage (a review: 0.3103448275862068965517241379); json keeps numbers.
    shows = {r.name: _SHOWN_AS.get(unit(r.metric), _number) for r in ruleset.rules}
    shown = [{**r, **{c: shows.get(r["rule"], _number)(r[c]) for c in ("limit", "value")}} for r in rows]
    table = Table(_COLUMNS, shown, money=(), cells={c: _number for c in ("threshold", "reason")})
    text = [f"{firing} firing, {len(result.evaluation.events)} state changes recorded", *table_lines(table)]
    text += [line for line in (sent, failed) if line]
    errors = result.evaluation.errors
    text += [f"failed: {e}" for e in errors]
    data = {
        "firing": firing,
        "states": [json_object(r, {"threshold", "limit", "value"}) for r in rows],
        "notifications": None
        if notifier is None
        else {**notifier.stats(), "redelivered": _sent_again(result)},
        "delivery_failures": json_object(failures, set()),
        "errors": errors,
    }
    # csv and parquet: a row per alert state, as the table shows them (a review: one row
    # holding the states as JSON text); json: the whole object
    states_table = Table(_COLUMNS, rows, money=(), types=_TYPES)
    # a rule that could not be evaluated is a failure for cron, firing or not
    code = 1 if errors else FIRING_EXIT if firing else 0
    return Record(data=data, text="\n".join(text), exit_code=code, rows=states_table)


def _patience(note: Notification) -> float:
    # Every attempt timing out, plus the doubling waits between them, channel after channel.
    return sum(patience(c) for c in note.channels) + 1


def _failures(db: str) -> dict[str, Any]:
    con = connect(db, read_only=True)
    try:
        return delivery_failures(con)
    finally:
        con.close()


@alerts.command("watch")
@_db_option
@_state_option
@_rules_option
@duration_option("--interval", default="60s", help="time between evaluations (50ms, 30s, 5m, 1h; 60 is 60s)")
@click.option("--base-url", metavar="URL", help="where `serve` answers, for links in the payloads")
@click.option("--count", type=int, default=0, metavar="N", help="stop after N evaluations (0: never)")
@_no_notify_option
def watch(
    db: str | None,
    state: str | None,
    rules_path: str,
    interval: float,
    base_url: str | None,
    count: int,
    no_notify: bool,
) -> None:
    """Evaluate the rules every interval and notify, until interrupted (Ctrl-C: exit 130).

    \b
    Example:
      otel-costattr alerts watch --db spans.duckdb --rules alerts.toml --interval 60s
    """
    watcher = AlertWatcher(
        db_path(db),
        load_rules(rules_path),
        interval=interval,
        base_url=base_url,
        notify=not no_notify,
        state=state,
    )
    interrupted = threading.Event()
    restore = _on_interrupt(interrupted)
    done = 0
    try:
        while not count or done < count:
            result = watcher.run_once()
            if interrupted.is_set():  # a Ctrl-C that the evaluation caught (DuckDB does)
                raise KeyboardInterrupt
            done += 1
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            if result is None:
                click.echo(visible_lines(f"{stamp} evaluation failed: {watcher.last_error}"), err=True)
            else:
                ev = result.evaluation
                click.echo(f"{stamp} {len(ev.firing)} firing, {len(ev.events)} state changes")
                for error in ev.errors:
                    click.echo(visible_lines(f"{stamp} failed: {error}"), err=True)
            if count and done >= count:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        interrupted.set()
    finally:
        restore()
        watcher.stop()
        stats = watcher.notifier.stats()
        click.echo(f"notifications: {stats['delivered']} delivered, {stats['failed']} failed, "
                   f"{stats['dropped']} dropped{_unanswered(stats)}")  # fmt: skip
    if interrupted.is_set():
        click.echo("interrupted: stopped", err=True)
        raise SystemExit(INTERRUPTED_EXIT)


def _unanswered(stats: dict[str, Any]) -> str:
    """The notifications still on their way when the notifier stopped (a receiver that
    hangs): counted nowhere else, so a Ctrl-C's summary read "0 delivered, 0 failed" for
    three in flight (a review). A firing never answered is sent again by a later evaluation."""
    left = stats.get("queued") or 0
    return f", {left} unanswered (sent again by a later evaluation)" if left else ""


def _on_interrupt(flag: threading.Event) -> Callable[[], None]:
    """Ctrl-C sets ``flag`` before interrupting: DuckDB turns the interrupt of a query into a
    RuntimeError that an evaluation reports and survives, so the loop must see it some other
    way. Returns what puts the previous handler back (nothing outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        flag.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)
