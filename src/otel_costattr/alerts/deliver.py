"""Delivery: notifications posted to channels from one background thread, bounded queue.

`Notifier.submit` never blocks and never raises: a full queue counts the notification as
dropped. The worker posts to each channel with urllib (a timeout per attempt, retries with
doubling backoff), counts what got through and what did not, and records each outcome in
``alert_deliveries`` when it has a database, so `alerts check` shows failures from any
process. A receiver that is down or slow holds up only this thread.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import http.client
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .payload import slack_message
from .rules import Channel
from .state import FIRING, Delivery, Event, latest_states, record_deliveries, record_events

__all__ = ["Notification", "Notifier", "post"]

logger = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True)
class Notification:
    """One payload for some channels. ``events``: state changes the worker records first,
    delivering only when some key was not already FIRING in the store (the in-process path,
    which decides without the database). ``at``: when an evaluator handed it over (naive UTC,
    the evaluator's clock), the time its delivery rows carry (None: the time of delivery)."""

    payload: Mapping[str, Any]
    channels: Sequence[Channel]
    events: Sequence[Event] = ()
    at: dt.datetime | None = None

    def keys(self) -> list[tuple[str, str, str, str]]:
        """(rule, scope value, window key, channel) of a firing notification, per channel."""
        if self.payload.get("event") != "firing":
            return []
        p = self.payload
        return [(p["rule"], str(p["scope"]["value"]), p["window"]["key"], c.name) for c in self.channels]


@dataclass
class _Counts:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


def post(channel: Channel, payload: Mapping[str, Any]) -> None:
    """POST ``payload`` once (as a Slack message for a Slack channel); raises `OSError`
    (urllib's errors are OSErrors) on a failure or a non-2xx answer."""
    body = slack_message(payload) if channel.type == "slack" else payload
    request = urllib.request.Request(
        channel.url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "otel-costattr-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=channel.timeout) as response:  # noqa: S310 (http(s) checked at load)
        response.read(65536)


class Notifier:
    """A background thread delivering `Notification`s. ``db``: a DuckDB path where each
    outcome is recorded (None: counted only). ``queue_size``: notifications waiting at most."""

    def __init__(self, db: str | None = None, *, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.db = db
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._counts = _Counts()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0
        self._inflight: collections.Counter[tuple[str, str, str, str]] = collections.Counter()

    def start(self) -> None:
        """Start the worker (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="otel-costattr-alerts", daemon=True)
                self._thread.start()

    def submit(self, notification: Notification) -> bool:
        """Queue ``notification``; False (and counted as dropped) when the queue is full or
        the notifier stopped. Never blocks, never raises."""
        if self._stopping.is_set():
            with self._lock:
                self._counts.dropped += 1
            return False
        try:
            with self._idle:
                self._queue.put_nowait(notification)
                self._busy += 1
                self._inflight.update(notification.keys())
        except queue.Full:
            with self._lock:
                self._counts.dropped += 1
            logger.warning("otel-costattr alerts: delivery queue full, notification dropped")
            return False
        self.start()
        return True

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every queued notification is delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, finish what is queued within ``timeout``, then stop the thread."""
        self.flush(timeout)
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            with contextlib.suppress(queue.Full):  # the worker also stops on the flag
                self._queue.put_nowait(_STOP)
            thread.join(timeout)

    def in_flight(self) -> set[tuple[str, str, str, str]]:
        """(rule, scope value, window key, channel) of firing notifications queued or being sent."""
        with self._idle:
            return set(self._inflight)

    def stats(self) -> dict[str, Any]:
        """Delivered, failed (retries spent), dropped (queue full), attempts, the last error."""
        with self._lock:
            c = self._counts
            return {
                "delivered": c.delivered, "failed": c.failed, "dropped": c.dropped, "attempts": c.attempts,
                "last_error": c.last_error, "queued": self._queue.qsize(),
            }  # fmt: skip

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception:  # never let one notification end the worker
                logger.exception("otel-costattr alerts: delivery failed")
            finally:
                with self._idle:
                    self._busy -= 1
                    self._inflight.subtract(item.keys())
                    self._inflight += collections.Counter()  # drops the keys at zero
                    self._idle.notify_all()

    def _deliver(self, note: Notification) -> None:
        if note.events and self.db and not self._claim(note.events):
            return  # another evaluator (or an earlier run of this one) fired these keys already
        outcomes = []
        for channel in note.channels:
            ok, attempts, error = self._post_with_retries(channel, note.payload)
            with self._lock:
                self._counts.attempts += attempts
                if ok:
                    self._counts.delivered += 1
                else:
                    self._counts.failed += 1
                    self._counts.last_error = f"{channel.name}: {error}"
            if not ok:
                logger.warning("otel-costattr alerts: channel %s failed after %d attempts: %s",
                               channel.name, attempts, error)  # fmt: skip
            p = note.payload
            at = note.at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            outcomes.append(Delivery(
                at, p["rule"], str(p["scope"]["value"]),
                p["window"]["key"], p["event"], channel.name, ok, attempts, error,
            ))  # fmt: skip
        if self.db and outcomes:
            self._record(outcomes)

    def _post_with_retries(
        self, channel: Channel, payload: Mapping[str, Any]
    ) -> tuple[bool, int, str | None]:
        delay = channel.backoff
        error = None
        for attempt in range(1, channel.retries + 2):
            try:
                post(channel, payload)
                return True, attempt, None
            # URLError, HTTPError, timeouts, refused; a receiver that does not speak HTTP
            # (BadStatusLine and the rest of http.client's)
            except (OSError, ValueError, http.client.HTTPException) as e:
                error = f"{type(e).__name__}: {e}"
            if attempt <= channel.retries:
                if self._stopping.wait(delay):
                    break  # stopping: give up the remaining retries
                delay = min(delay * 2, 300.0)
        return False, attempt, error

    def _claim(self, events: Sequence[Event]) -> bool:
        from ..store.database import StoreError, writing

        try:
            with writing(self.db, retry=30.0) as con:  # type: ignore[arg-type]
                states = latest_states(con, {e.rule for e in events})
                new = [e for e in events if getattr(states.get(e.key), "state", None) != FIRING]
                record_events(con, new)
                return bool(new)
        except (StoreError, OSError) as e:  # deliver anyway: a duplicate beats a silent budget
            logger.warning("otel-costattr alerts: alert state not recorded in %s: %s", self.db, e)
            return True

    def _record(self, outcomes: Sequence[Delivery]) -> None:
        from ..store.database import StoreError, writing

        try:
            with writing(self.db, retry=30.0) as con:  # type: ignore[arg-type]
                record_deliveries(con, outcomes)
        except (StoreError, OSError) as e:
            logger.warning("otel-costattr alerts: delivery outcomes not recorded in %s: %s", self.db, e)
        except Exception:
            logger.exception("otel-costattr alerts: delivery outcomes not recorded in %s", self.db)
