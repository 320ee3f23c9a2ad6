"""Delivery: notifications posted to channels from background threads, bounded queues.

`Notifier.submit` never blocks and never raises: a full queue counts the notification as
dropped. A dispatcher thread records each notification's state changes, then hands it to one
worker thread per channel, which posts with urllib (the channel's timeout bounding each
attempt whole, a receiver that sends a byte now and then included; retries with doubling
backoff, or after the wait a 429's or 503's Retry-After asks, within the backoff's sum), counts
what got through and what did not, and records each outcome in ``alert_deliveries`` when it
has a database, so `alerts check` shows failures from any process. A receiver that is down
or slow holds up only its own channel: the others are told as soon as the notification is
dispatched.
"""

from __future__ import annotations

import collections
import datetime as dt
import email.utils
import http.client
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from .. import _forks
from ..display import visible
from ..store.database import StoreError, writing
from .payload import slack_message
from .rules import Channel, _shown_url
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
        """(rule, scope value, window key, channel) of a firing or resolved notification, per
        channel."""
        if self.payload.get("event") not in ("firing", "resolved"):
            return []
        p = self.payload
        return [(p["rule"], str(p["scope"]["value"]), p["window"]["key"], c.name) for c in self.channels]

    def handed(self, at: dt.datetime) -> list[Delivery]:
        """The rows saying a notifier took this firing or resolved notification at ``at``
        (naive UTC), per channel, not yet tried (``attempts`` 0): `redeliver` waits for their
        outcome before it sends again, where one no notifier ever took (an evaluation with
        ``--no-notify``) goes out with the next evaluation that notifies."""
        event = self.payload.get("event")
        return [
            Delivery(at, rule, value, window, event, channel, False, 0, None)
            for rule, value, window, channel in self.keys()
        ]


@dataclass
class _Counts:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


def post(channel: Channel, payload: Mapping[str, Any]) -> None:
    """POST ``payload`` once (as a Slack message for a Slack channel) within the channel's
    timeout, the whole attempt; raises `OSError` (urllib's errors are OSErrors; a receiver
    too slow in all is a `TimeoutError`) on a failure or a non-2xx answer."""
    body = slack_message(payload) if channel.type == "slack" else payload
    request = urllib.request.Request(
        channel.url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "otel-costattr-alerts"},
        method="POST",
    )
    # urllib's timeout bounds each socket operation: a receiver that sends a byte every few
    # seconds never trips it. The attempt runs in a thread of its own, waited for at most
    # the timeout; one left hanging ends on its own (its socket's timeout, or the receiver),
    # and while a few of a channel's are still hanging, its next attempts fail at once.
    with _hanging_lock:
        if _hanging[channel.url] >= _MAX_HANGING:
            hanging = _hanging[channel.url]
            raise DeliveryError(f"TimeoutError: {hanging} earlier attempts to this channel still hang")
        _hanging[channel.url] += 1
    outcome: list[str | None] = []
    asked: list[float | None] = [None]  # a 429's or 503's Retry-After

    def attempt() -> None:
        try:
            with _OPENER.open(request, timeout=channel.timeout) as response:
                response.read(65536)
            outcome.append(None)
        except Exception as e:  # told to the caller as text: the exception holds the socket
            if isinstance(e, urllib.error.HTTPError):
                e.close()
                if e.code in (429, 503):
                    asked[0] = _retry_after(e.headers.get("Retry-After"))
            text = f"{type(e).__name__}: {e}"
            if isinstance(e, urllib.error.HTTPError) and 300 <= e.code < 400:
                text += f" to {_location(e.headers.get('Location'))}: set the channel's url to the new one"
            # The receiver's words (a reason phrase) reach a terminal and a log: no escapes.
            outcome.append(visible(text))
        finally:
            with _hanging_lock:
                _hanging[channel.url] -= 1

    worker = threading.Thread(target=attempt, name="otel-costattr-alerts-post", daemon=True)
    worker.start()
    worker.join(channel.timeout)
    if not outcome:
        raise DeliveryError(f"TimeoutError: no answer in {channel.timeout:g} s")
    if outcome[0] is not None:
        raise DeliveryError(outcome[0], asked[0])


def _location(location: str | None) -> str:
    """Where a redirect points, as a log line may show it: its scheme and host only (`rules._shown_url`).
    The usual one is the channel's own URL moved to https://, whose path or query holds the
    webhook's secret (a Slack URL's last part is its key): shown whole, it reached the log,
    ``alerts check``, ``alert_deliveries`` and ``/healthz`` (a review)."""
    if location is None:
        return "no Location"
    if location.startswith("/") and not location.startswith("//"):
        return "a path on the same host (not shown)"
    return _shown_url(location)


class _Unredirected(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery (an HTTPError, retried and recorded): followed, urllib
    turned the POST into a GET without the alert, and the GET's 200 counted as delivered
    (an http:// URL redirected to https://: the alert lost for good, a review)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# http(s) only (the channel's scheme is checked at load); no redirect followed.
_OPENER = urllib.request.build_opener(_Unredirected)


class DeliveryError(OSError):
    """A failed attempt, its text naming what failed ('HTTPError: HTTP Error 503: ...');
    ``retry_after``: the seconds a 429 or 503 asked to wait before the next (None: not said)."""

    def __init__(self, text: str, retry_after: float | None = None) -> None:
        super().__init__(text)
        self.retry_after = retry_after


_MAX_DELAY = 300.0  # seconds between two attempts at most, asked for or doubled


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header's seconds (a number, or an HTTP date), within [0, `_MAX_DELAY`];
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.isdigit() else None
        if seconds is None:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:  # asctime's form, or "-0000": an HTTP date is GMT (RFC 9110 5.6.7)
                when = when.replace(tzinfo=dt.timezone.utc)
            seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(max(seconds, 0.0), _MAX_DELAY)


def _moved(old: queue.Queue[Any]) -> queue.Queue[Any]:
    """A new queue holding what ``old`` held but its stop marker, which goes back in ``old``
    (its thread, still busy or not, ends there)."""
    new: queue.Queue[Any] = queue.Queue()
    while True:
        try:
            item = old.get_nowait()
        except queue.Empty:
            break
        if item is not _STOP:
            new.put_nowait(item)
    old.put_nowait(_STOP)
    return new


_STORE_GRACE = 2.0  # seconds `Notifier.stop` waits past its timeout for a store write under way
_MAX_HANGING = 4
_hanging: collections.Counter[str] = collections.Counter()
_hanging_lock = threading.Lock()


class _Pending:
    """One notification on its way to its channels: how many have yet to answer (each
    outcome is recorded as it comes, `Notifier._done`)."""

    def __init__(self, note: Notification) -> None:
        self.note = note
        self.left = len(note.channels)
        self.lock = threading.Lock()

    def add(self, outcome: Delivery) -> bool:
        """One channel answered (``outcome``); True once every channel has."""
        with self.lock:
            self.left -= 1
            return self.left == 0


def _forget_hanging() -> None:
    global _hanging_lock
    _hanging_lock = threading.Lock()
    _hanging.clear()  # the parent's stuck deliveries: their threads are not in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_hanging)


class Notifier:
    """Background threads delivering `Notification`s (the module doc). ``db``: a DuckDB path
    where each outcome is recorded (None: counted only). ``queue_size``: notifications waiting
    at most, for the dispatcher and for each channel."""

    def __init__(self, db: str | None = None, *, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.db = db
        self._size = queue_size
        self._queue: queue.Queue[Any] = queue.Queue()
        self._counts = _Counts()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # one queue and worker per channel (name, url), made when first needed
        self._channels: dict[tuple[str, str], tuple[queue.Queue[Any], threading.Thread]] = {}
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0
        self._inflight: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        # Held by a thread of this notifier writing to the store; ``_closed`` once `stop` has
        # ended: a thread left running then (a receiver that hangs) writes nothing more.
        # DuckDB's code running on a daemon thread as the interpreter exits aborts the
        # process ("FATAL: exception not rethrown", SIGABRT: a review, Ctrl-C on `alerts
        # watch` as a failure was recorded). What it would have written is not lost: a
        # firing handed over and never answered is sent again by a later evaluation.
        self._store_lock = threading.Lock()
        self._closed = False
        _forks.renew_in_child(self)

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads are gone and a lock or queue one of them
        held at the fork stays held for good (the child's next alert hung its span's end);
        what waits is the parent's to deliver (the child would send it twice). Fresh locks
        and empty queues; the threads start with the child's first notification."""
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = None
        self._channels = {}
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._busy = 0
        self._inflight = collections.Counter()
        self._store_lock = threading.Lock()
        # A parent's stop closed its store writes; the child's notifier is not stopped (its
        # ``_stopping`` is fresh), so neither are they: left closed, its every alert was
        # dropped as "stopped" and no outcome recorded (a review).
        self._closed = False

    def start(self) -> None:
        """Start the dispatcher (idempotent). After `stop`, with fresh queues: what the old
        threads had not taken yet (a stop that timed out) goes on in them."""
        with self._lock:
            if self._stopping.is_set():
                with self._idle:  # submit checks and puts under it: none lands in an old queue
                    self._queue = _moved(self._queue)
                    self._channels = {key: (_moved(q), None) for key, (q, _) in self._channels.items()}
                    self._thread = None
                    self._stopping.clear()
                with self._store_lock:
                    self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="otel-costattr-alerts", daemon=True
                )
                self._thread.start()
            for key, (q, worker) in list(self._channels.items()):
                if q.qsize() and (worker is None or not worker.is_alive()):
                    self._channels[key] = (q, self._worker(key[0], q))

    def submit(self, notification: Notification) -> bool:
        """Queue ``notification``; False (and counted as dropped) when `queue_size` wait for
        the dispatcher, or the notifier stopped. Never blocks, never raises. (Each channel
        also keeps at most `queue_size` waiting: `_dispatch`.)"""
        with self._idle:  # `start` swaps the queues under it
            stopped = self._stopping.is_set()
            full = not stopped and self._queue.qsize() >= self._size
            if not stopped and not full:
                self._queue.put_nowait(notification)
                self._busy += 1
                self._inflight.update(notification.keys())
        if stopped:
            with self._lock:
                self._counts.dropped += 1
            return False
        if full:
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
        """Stop accepting, finish what is queued within ``timeout``, then stop the threads
        (waiting for them within the same ``timeout``: a hanging receiver is left behind)."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        with self._idle:  # a submit under way puts before the stop marker, or sees the stop
            self._stopping.set()
        # The dispatcher first: until it has ended it may hand a notification to a channel,
        # which must not have taken its stop marker before that.
        with self._lock:
            dispatcher = (self._queue, self._thread)
        for group in ([dispatcher], None):
            if group is None:
                with self._lock:
                    group = list(self._channels.values())
            for q, thread in group:
                if thread is not None and thread.is_alive():
                    q.put_nowait(_STOP)
            for _, thread in group:
                if thread is not None and thread.is_alive():
                    thread.join(max(0.0, deadline - time.monotonic()))
        # A write under way ends first (none starts after), within the timeout and a grace:
        # one waiting 30 s on another process's lock of the file must not hold a Ctrl-C.
        held = self._store_lock.acquire(timeout=max(0.0, deadline - time.monotonic()) + _STORE_GRACE)
        self._closed = True
        if held:
            self._store_lock.release()

    def in_flight(self) -> set[tuple[str, str, str, str]]:
        """(rule, scope value, window key, channel) of firing notifications queued or being sent."""
        with self._idle:
            return set(self._inflight)

    def stats(self) -> dict[str, Any]:
        """Delivered, failed (retries spent), dropped (queue full), attempts, the last error,
        notifications queued or being delivered."""
        with self._idle:
            busy = self._busy
        with self._lock:
            c = self._counts
            return {
                "delivered": c.delivered, "failed": c.failed, "dropped": c.dropped, "attempts": c.attempts,
                "last_error": c.last_error, "queued": busy,
            }  # fmt: skip

    def _run(self, q: queue.Queue[Any]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            try:
                if self._dispatch(item):
                    continue
            except Exception:  # never let one notification end the dispatcher
                logger.exception("otel-costattr alerts: delivery failed")
            self._finish(item)

    def _dispatch(self, note: Notification) -> bool:
        """Hand ``note`` to its channels' workers; False when there is nothing to send. A
        channel with `queue_size` notifications waiting already is not handed it: counted
        dropped and recorded as a failed delivery (so a later evaluation sends it again),
        while the other channels get it."""
        if note.events and self.db and not self._claim(note):
            return False  # another evaluator (or an earlier run of this one) fired these keys already
        if not note.channels:
            return False
        pending = _Pending(note)
        for channel in note.channels:
            q = self._channel_queue(channel)
            if q.qsize() < self._size:
                q.put_nowait((pending, channel))
                continue
            with self._lock:
                self._counts.dropped += 1
            logger.warning("otel-costattr alerts: channel %s has %d waiting, notification dropped",
                           channel.name, self._size)  # fmt: skip
            # one attempt in the record (attempts 0 is a re-send's claim there): a failure
            # `alerts check` shows, which a later evaluation sends again
            dropped = self._outcome(note, channel, False, 1, "dropped: the channel's queue is full")
            self._done(pending, channel, dropped)
        return True

    def _channel_queue(self, channel: Channel) -> queue.Queue[Any]:
        key = (channel.name, channel.url)
        with self._lock:
            found = self._channels.get(key)
            if found is None or found[1] is None or not found[1].is_alive():
                q: queue.Queue[Any] = queue.Queue() if found is None else found[0]
                found = self._channels[key] = (q, self._worker(channel.name, q))
            return found[0]

    def _worker(self, name: str, q: queue.Queue[Any]) -> threading.Thread:
        thread = threading.Thread(
            target=self._serve_channel, args=(q,), name=f"otel-costattr-alerts-{name}", daemon=True
        )
        thread.start()
        return thread

    def _serve_channel(self, q: queue.Queue[Any]) -> None:
        while True:
            item = q.get()
            if item is _STOP:
                return
            pending, channel = item
            try:
                outcome = self._send(pending.note, channel)
            except Exception:  # never let one delivery end the channel's worker
                logger.exception("otel-costattr alerts: delivery to %s failed", channel.name)
                outcome = self._outcome(pending.note, channel, False, 0, "an internal error")
            self._done(pending, channel, outcome)

    def _done(self, pending: _Pending, channel: Channel, outcome: Delivery) -> None:
        """One channel's outcome: recorded now (not when the slowest channel is done, so other
        evaluators see it), its key no longer in flight; the notification done after the last."""
        try:
            if self.db:
                self._record([outcome])
        finally:
            mine = pending.note.keys()  # a Notification's method, not a dict's
            keys = [k for k in mine if k[3] == channel.name]
            with self._idle:
                self._inflight.subtract(keys)
                self._inflight += collections.Counter()  # drops the keys at zero
            if pending.add(outcome):
                self._finish(pending.note, keys=False)

    def _finish(self, note: Notification, *, keys: bool = True) -> None:
        with self._idle:
            self._busy -= 1
            if keys:
                self._inflight.subtract(note.keys())
                self._inflight += collections.Counter()  # drops the keys at zero
            self._idle.notify_all()

    def _send(self, note: Notification, channel: Channel) -> Delivery:
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
        return self._outcome(note, channel, ok, attempts, error)

    @staticmethod
    def _outcome(
        note: Notification, channel: Channel, ok: bool, attempts: int, error: str | None
    ) -> Delivery:
        p = note.payload
        at = note.at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        return Delivery(at, p["rule"], str(p["scope"]["value"]), p["window"]["key"], p["event"], channel.name,
                        ok, attempts, error)  # fmt: skip

    def _post_with_retries(
        self, channel: Channel, payload: Mapping[str, Any]
    ) -> tuple[bool, int, str | None]:
        delay = channel.backoff
        left = channel.round_waits  # what this round may still wait between attempts
        error = None
        for attempt in range(1, channel.retries + 2):
            asked = None
            try:
                post(channel, payload)
                return True, attempt, None
            # URLError, HTTPError, timeouts, refused; a receiver that does not speak HTTP
            # (BadStatusLine and the rest of http.client's)
            except DeliveryError as e:
                error, asked = str(e), e.retry_after
            except (OSError, ValueError, http.client.HTTPException) as e:
                error = f"{type(e).__name__}: {e}"
            if attempt <= channel.retries:
                # A 429's Retry-After (Slack's rate limit) is waited out: retried at the
                # backoff's 1, 2, 4 s, every retry was spent inside the limit (a review).
                # Within the waits the round may take: a longer ask ends the round, and a
                # later one sends it (`redeliver`: at least a minute on), which counts on no
                # round outlasting `patience` (else two evaluators could both send it).
                wait = delay if asked is None else max(delay, asked)
                if asked is not None and wait > left + 1e-6:  # (the backoff alone fits, float sums aside)
                    error = f"{error} (Retry-After {asked:g} s: left to a later round)"
                    break
                left -= wait
                if self._stopping.wait(wait):
                    break  # stopping: give up the remaining retries
                delay = min(delay * 2, _MAX_DELAY)
        return False, attempt, error

    def _claim(self, note: Notification) -> bool:
        """Record ``note``'s events, and that this notifier took it, unless the store has
        its keys FIRING already (another evaluator fired them): False then, nothing to send."""
        with self._store_lock:
            if not self._closed:
                try:
                    return _claim_events(self.db, note)  # type: ignore[arg-type]
                # Deliver anyway: a duplicate beats a silent budget (duckdb.Error: a state table
                # the store cannot read or write, which `writing` does not turn into a StoreError).
                except (StoreError, OSError, duckdb.Error) as e:
                    logger.warning("otel-costattr alerts: alert state not recorded in %s: %s", self.db, e)
                    return True
        # Stopped: neither recorded nor sent (counted); the store's evaluator fires it.
        with self._lock:
            self._counts.dropped += 1
        return False

    def _record(self, outcomes: Sequence[Delivery]) -> None:
        # Under the lock, the connection's last reference included (`_append_deliveries`'s
        # frame, or an exception's traceback, ends inside it): see ``_store_lock``.
        with self._store_lock:
            if self._closed:  # stopped: the hand-over's row stands, sent again later
                return
            try:
                _append_deliveries(self.db, outcomes)  # type: ignore[arg-type]
            except (StoreError, OSError, duckdb.Error) as e:
                logger.warning("otel-costattr alerts: delivery outcomes not recorded in %s: %s", self.db, e)
            except Exception:
                logger.exception("otel-costattr alerts: delivery outcomes not recorded in %s", self.db)


def _claim_events(db: str, note: Notification) -> bool:
    """`Notifier._claim`'s write: its connection is gone when this returns."""
    events = note.events
    with writing(db, retry=30.0) as con:
        states = latest_states(con, {e.rule for e in events})
        new = [e for e in events if getattr(states.get(e.key), "state", None) != FIRING]
        record_events(con, new, note.handed(max(e.at for e in new)) if new else ())
        return bool(new)


def _append_deliveries(db: str, outcomes: Sequence[Delivery]) -> None:
    """`Notifier._record`'s write: its connection is gone when this returns."""
    with writing(db, retry=30.0) as con:
        record_deliveries(con, outcomes)
