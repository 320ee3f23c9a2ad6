"""The store evaluators: `check_once` (``alerts check``, for cron) and `AlertWatcher`, which
runs it every ``interval`` seconds on a thread (``alerts watch``, and ``serve``'s lifespan)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ..store.database import StoreError, connect, missing_database, writer_turn, writing
from .deliver import Notification, Notifier
from .evaluate import Evaluation, evaluate
from .redeliver import claim_redeliveries
from .rules import RuleSet, load_rules
from .state import delivery_failures

__all__ = ["AlertWatcher", "CheckResult", "check_once", "state_path"]

logger = logging.getLogger(__name__)
# The longest interval between checks: a month's, well inside what a thread's wait and the
# clock take (1,000,000 days overflowed them: a traceback, or a server with no watcher).
LONGEST_INTERVAL = 31 * 86_400.0


@dataclass
class CheckResult:
    """An evaluation, the delivery failures the store holds, and how many notifications that
    no channel took earlier were handed over again."""

    evaluation: Evaluation
    failures: dict[str, Any]
    redelivered: list[Notification] = field(default_factory=list)


def _rules(rules: RuleSet | str | os.PathLike[str]) -> RuleSet:
    return rules if isinstance(rules, RuleSet) else load_rules(Path(rules))


def check_once(
    db: str | os.PathLike[str],
    rules: RuleSet | str | os.PathLike[str],
    *,
    notifier: Notifier | None = None,
    now: dt.datetime | None = None,
    base_url: str | None = None,
    state: str | os.PathLike[str] | None = None,
) -> CheckResult:
    """Evaluate once: record state changes in ``db`` and hand notifications to ``notifier``
    (None: not sent), with the firing notifications a channel never took that are due again
    (`redeliver`). A ClickHouse ``db`` is measured there and its states kept in the DuckDB
    file ``state`` (`clickhouse.alerts`). Raises `StoreError` when the store is missing or
    cannot be opened (`RollupError` when ClickHouse cannot answer)."""
    ruleset = _rules(rules)
    now = now or dt.datetime.now(dt.timezone.utc)
    again: list[Notification] = []
    with _store(db, ruleset, now, state) as (con, calls):
        # With a notifier, its taking of what fires is recorded with the states (`evaluate`),
        # before the look for notifications due again (which would take one no notifier took
        # for its own) and before any other evaluator can see the states.
        evaluation = evaluate(con, ruleset, now, base_url=base_url, calls=calls, handed=notifier is not None)
        if notifier is not None:
            at = evaluation.at.astimezone(dt.timezone.utc).replace(tzinfo=None)
            try:
                again = claim_redeliveries(con, ruleset, at, notifier.in_flight())
            except duckdb.Error as e:
                raise StoreError(f"alerts: cannot read the deliveries: {e}") from e
        failures = delivery_failures(con)
    if notifier is not None:
        for note in [*evaluation.notifications, *again]:
            notifier.submit(note)
    return CheckResult(evaluation, failures, again)


def state_path(db: str | os.PathLike[str], state: str | os.PathLike[str] | None) -> str:
    """Where the alert states of ``db`` are written: the DuckDB store itself, or for a
    ClickHouse store the ``state`` file (`StoreError` when not given, and when given for a
    DuckDB store, where it would be silently unused, as `serve --alerts-state` says)."""
    from ..clickhouse.target import is_clickhouse_url

    if not is_clickhouse_url(db):
        if state is not None:
            raise StoreError(
                "--state: only with a ClickHouse --db (a DuckDB store keeps its own alert states)"
            )
        return os.fspath(db)
    if state is None:
        raise StoreError(
            "alerts on a ClickHouse store keep their states in a local DuckDB file: give --state FILE"
        )
    return os.fspath(state)


@contextmanager
def _store(
    db: str | os.PathLike[str], rules: RuleSet, now: dt.datetime, state: str | os.PathLike[str] | None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, str | None]]:
    """The connection the rules are evaluated on and the calls SQL `evaluate` takes."""
    from ..clickhouse.runner import clickhouse_target

    target = clickhouse_target(db)
    if target is None:
        state_path(db, state)  # a state file beside a DuckDB store: refused, never silently unused
        if not os.path.isfile(db):  # a mistyped path must not become an empty store that never fires
            raise StoreError(missing_database(db))
        # The spool ingested first, so the newest spans count: in a writer's turn (a server's
        # readers of the file would keep it out: store/turns.py).
        with writer_turn(db, 10.0):
            connect(db).close()
        # Then evaluated holding the store's lock in this process, as the in-process budget's
        # claim takes it: a RunBudgetProcessor firing a run while this evaluation measures it
        # would otherwise be fired by both (their states are read, then written).
        with writing(db) as con:
            yield con, None
        return
    from ..clickhouse.alerts import check_rules, state_connection
    from ..clickhouse.local import CALLS_MACRO

    try:
        check_rules(rules)
    except ValueError as e:
        raise StoreError(str(e)) from None  # names the file, rule and field itself
    with state_connection(target, state_path(db, state), rules, now) as con:
        yield con, CALLS_MACRO


def _interrupted(error: BaseException | None) -> bool:
    # DuckDB reports a SIGINT during a query as RuntimeError("Query interrupted") (or its
    # InterruptException), possibly wrapped in a StoreError.
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, (KeyboardInterrupt, duckdb.InterruptException)) or (
            type(error) is RuntimeError and "interrupted" in str(error).lower()
        ):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


class AlertWatcher:
    """Evaluates ``rules`` on ``db`` every ``interval`` seconds on a daemon thread and delivers
    in the background (``state``: the DuckDB file of a ClickHouse ``db``'s alert states).
    ``base_url``: where ``serve`` answers, for links in the payloads. ``notify`` False:
    evaluate and record states only (``alerts watch --no-notify``).
    A failed evaluation is logged and counted (``errors``), never raised; `stop` ends it."""

    def __init__(
        self,
        db: str | os.PathLike[str],
        rules: RuleSet | str | os.PathLike[str],
        interval: float = 60.0,
        base_url: str | None = None,
        *,
        notifier: Notifier | None = None,
        notify: bool = True,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        if not 0 < interval <= LONGEST_INTERVAL:
            raise ValueError(f"interval must be above 0 seconds and at most 31 days, got {interval!r}")
        self.db = str(db)
        self.rules = _rules(rules)  # a bad file fails here, at start, in one line
        self.interval = float(interval)
        self.base_url = base_url
        self.state = state_path(self.db, state)  # a ClickHouse db without a state file: at start
        self._state = state  # what check_once takes: None for a DuckDB store, which keeps its own
        self.notifier = notifier or Notifier(self.state)
        self.notify = notify
        self.last: CheckResult | None = None
        self.evaluations = 0
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start evaluating (the first evaluation at once)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.notifier.start()
        self._thread = threading.Thread(target=self._run, name="otel-costattr-alert-watch", daemon=True)
        self._thread.start()

    def run_once(self) -> CheckResult | None:
        """One evaluation now; None (counted in ``errors``) when it failed."""
        try:
            notifier = self.notifier if self.notify else None
            result = check_once(
                self.db, self.rules, notifier=notifier, base_url=self.base_url, state=self._state
            )
        except Exception as e:  # a locked or broken store: try again next interval
            if _interrupted(e):  # Ctrl-C in the middle of a query: not a failure, a stop
                raise KeyboardInterrupt from e
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            logger.warning("otel-costattr alerts: evaluation failed: %s", self.last_error)
            return None
        self.evaluations += 1
        self.last = result
        if result.evaluation.errors:  # some rules failed (logged); the others were evaluated
            self.errors += 1
            self.last_error = result.evaluation.errors[0]
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop evaluating and give queued notifications ``timeout`` seconds to go out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.notifier.stop(timeout)
