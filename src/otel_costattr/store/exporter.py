"""DuckDBSpanExporter: land finished spans in a local DuckDB file, fast, safely, nothing lost.

    provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter("spans.duckdb")))

or, with no code: ``OTEL_TRACES_EXPORTER=duckdb opentelemetry-instrument python app.py``
(configured by ``OTEL_COSTATTR_DUCKDB_PATH`` and ``OTEL_COSTATTR_CAPTURE_CONTENT``).

How a batch travels (see store/database.py and store/ingest.py for why):

1. ``export`` reads the spans (`sdk.seam_records.records_from_sdk`), maps them to rows
   (`spans.rows.SpanMapper`) and writes them as one durable spool file next to the database
   (temp name, fsync, atomic rename), then returns SUCCESS: an acknowledged batch survives
   SIGKILL. It never waits for the database lock.
2. A background thread moves spool files into the database every ``ingest_interval``
   seconds (sooner once 32k rows wait) with a short-lived connection, so the file lock is
   held only while ingesting and other processes (readers, other exporters) get the file in
   between. Spool files left by any process are ingested by whichever process next gets the
   lock; `store.connect` ingests them too, so readers see every acknowledged span.
3. When the spool is over ``max_spool_bytes`` (the database stayed locked, say) or cannot be
   written, batches wait in memory, up to ``max_buffered_spans``; past that they are
   dropped, counted in ``dropped_spans``, logged, and written to the spool's journal, where
   ``otel-costattr store status`` sums them over every process. Such an export returns FAILURE.
4. When the database cannot take the spool (disk full, I/O errors, a failed commit), the
   files stay pending and the ingester retries with exponential backoff; only a file DuckDB
   can never read is quarantined (see `ingest.ingest_spool`).

Why not insert each batch directly with its own connection: measured on 2 cores, open +
insert + commit + close costs 25-55 ms per 2048 spans (checkpoint spikes to 250 ms), i.e. at
most 40-80k spans/s before any extraction, and it makes every export wait for the lock. A
spool file costs 2-4 ms; ingesting many at once amortises the connection and the commit, and
runs beside the application instead of inside ``export``.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence, Sized
from pathlib import Path
from typing import Any

import pyarrow as pa
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import settings, telemetry
from ..pricing.table import PriceTable, default_pricing
from ..sdk.seam_records import records_from_sdk
from ..spans.rows import SpanMapper
from . import database as store
from . import ingest, spool

logger = logging.getLogger(__name__)

ENV_PATH = settings.DUCKDB_PATH
ENV_CAPTURE_CONTENT = settings.CAPTURE_CONTENT
DEFAULT_PATH = settings.DEFAULT_DUCKDB_PATH
_LOG_EVERY = 10.0  # seconds between repeated warnings of one kind
# Ingest early once this many rows wait. Small enough that ingestion keeps pace on another
# core while the application exports flat out (little is left for the final flush), large
# enough to amortise connect, commit and checkpoint: of 16k, 32k, 61k and 123k rows, 32k
# gave the best end-to-end throughput on 2 cores, at 512 and at 2048 spans a batch.
_INGEST_ROWS = 32_768
# After an ingest failure that is not a lock (no space, I/O, a failed commit) the ingester
# waits interval x 2^n between tries, up to this; the spool keeps every batch meanwhile.
_MAX_BACKOFF = 60.0
# Between two ingests of a backlog the ingester lets go of the lock this long, so that readers
# in other processes get the file; not while a flush of this process waits for it (see
# `DuckDBSpanExporter._ingest_round`).
_BACKLOG_PAUSE = 0.05
# A flush waiting for the turn looks this often whether its files were ingested meanwhile.
_FLUSH_LOOK = 0.05
_INSIDE = (
    "otel-costattr: %s called on a thread inside the %s exporter or its store (a finalizer or"
    " a signal handler on a thread in one of their locked blocks): not done now; spans"
    " exported stay in its spool"
)


class DuckDBSpanExporter(SpanExporter):
    """Exports spans to a DuckDB file (table ``spans``, see `store`), pricing model calls
    that arrive without a cost. Never raises into the application.

    ``path``: the database file (default: ``$OTEL_COSTATTR_DUCKDB_PATH`` or
    ``otel-costattr.duckdb``). ``capture_content``: keep prompts and completions (default:
    ``$OTEL_COSTATTR_CAPTURE_CONTENT``, else False). ``pricing``: the table pricing spans
    without a cost (default: `default_pricing()`). Raises ``ValueError`` naming the path when
    it is not a writable DuckDB file, and for a malformed environment variable.

    Put it behind a ``BatchSpanProcessor``: every ``export`` call writes and fsyncs one file,
    which a ``SimpleSpanProcessor`` would do for every span, inside ``span.end()``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        capture_content: bool | None = None,
        pricing: PriceTable | None = None,
        ingest_interval: float = 2.0,
        lock_timeout: float = 10.0,
        max_spool_bytes: int = 256 * 2**20,
        max_buffered_spans: int = 65_536,
        fsync: bool = True,
    ) -> None:
        if pricing is not None and not isinstance(pricing, PriceTable):
            raise ValueError(f"pricing must be a PriceTable (see load_pricing()), got {pricing!r}")
        numbers = {
            "ingest_interval": ingest_interval,
            "lock_timeout": lock_timeout,
            "max_spool_bytes": max_spool_bytes,
            "max_buffered_spans": max_buffered_spans,
        }
        for name, value in numbers.items():
            # NaN passed every comparison below, and then the ingester's wait raised in its
            # thread at every export; infinity overflowed a thread's join.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if ingest_interval <= 0 or lock_timeout < 0:
            raise ValueError("ingest_interval must be > 0 and lock_timeout >= 0")
        if max_spool_bytes < 0 or max_buffered_spans < 0:
            raise ValueError("max_spool_bytes and max_buffered_spans must be >= 0")
        if path is None:
            path = settings.duckdb_path()
        if capture_content is None:
            capture_content = settings.flag(ENV_CAPTURE_CONTENT)
        if pricing is None:
            try:
                pricing = default_pricing()
            except OSError as e:  # PricingError is already a ValueError naming the file
                raise ValueError(f"cannot load the pricing table: {e}") from e
        self.path = store.prepare_writer(path)
        try:  # create or upgrade the schema now, so a bad file shows at configuration time
            store.connect(self.path, retry=min(lock_timeout, 1.0), ingest=False).close()
        except store.LockTimeout as e:
            logger.warning("otel-costattr: %s; the schema is checked at the first ingest", e)
        except store.StoreError as e:
            raise ValueError(str(e)) from e
        self._mapper = SpanMapper(pricing, capture_content=capture_content)
        # pyarrow imports pandas (when installed) on its first conversion, ~0.2 s under a lock
        # of its own: here, never in an export, where a fork (gunicorn, a process pool) taken
        # meanwhile left the child's exporter waiting on that lock for ever.
        pa.array([0])
        self._interval = float(ingest_interval)
        self._lock_timeout = float(lock_timeout)
        self._max_spool = int(max_spool_bytes)
        self._max_buffered = int(max_buffered_spans)
        self._fsync = fsync
        self._dropped = 0
        self._dropped_inside = 0  # by exports made inside a locked block (`_export_inside`)
        self._dropped_in_flight = 0  # by exports still writing at shutdown (`_count_flights`)
        self._journaled_drops = 0  # of dropped_spans, how many the journal has
        self._shutdown = False
        self._last_log: dict[str, float] = {}
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork(weakref.ref(self)))
        telemetry.track_exporter(self)

    def _reset(self) -> None:
        """Fresh locks, buffer and worker state (at construction and in a forked child)."""
        # Guards the buffer and the counts. Re-entrant only so that `_is_owned` can say this
        # thread is inside one of its blocks: a span ended by a finalizer (a stream wrapper's
        # __del__, run by the collector at any allocation) or a signal handler (SIGTERM calling
        # the provider's shutdown) runs on a thread that may hold it; see `_inside`.
        self._lock = threading.RLock()
        # Whose turn it is to write the table: the background round, a flush, a buffer write.
        # Re-entrant only so that `_is_owned` can say this thread holds it (see `_take_turn`).
        self._turn = threading.RLock()
        # Flushes waiting for the turn, changed under ``_lock``: while any waits, the round
        # does not pause between ingests. A count, not an Event: see `_take_turn`.
        self._flushes_waiting = 0
        self._buffer: deque[pa.Table] = deque()
        self._buffered = 0
        # Counts under ``_lock``, for a flush to tell what became of the batches the buffer
        # held at its call (a FIFO: they are out once ``_buffer_out`` reaches its count in):
        self._buffer_in = 0  # batches put in the buffer
        self._buffer_out = 0  # taken out: written, spooled or dropped by shutdown
        self._drained = 0  # taken out into the spool
        self._cleared = 0  # spans shutdown dropped from it
        self._spool_estimate = store.spool_bytes(self.path)
        # Exports writing their batch to the spool, under ``_lock``: the writing thread's ident
        # -> (the export's number, its spans). Keyed by thread: a thread is in one export at a
        # time, so an entry an interrupt left behind (Ctrl-C between two bytecodes of `_land`)
        # is replaced by the thread's next export instead of waiting for shutdown.
        # Those shutdown found still writing are counted dropped (`_count_flights`) until
        # they land (`_land`): a disk that does not answer must not lose a batch uncounted.
        # (A forked child has none of its parent's threads, so none of their exports.)
        self._flights: dict[int, tuple[int, int]] = {}
        self._flight_numbers = itertools.count()
        self._counted_flights: dict[int, int] = {}  # of those, shutdown counted: number -> spans
        self._stop = threading.Event()
        self._wake = _Bell()
        self._spooled_rows = 0  # since the worker last ingested
        self._failures = 0  # ingest failures in a row, other than a busy lock
        self._retry_at = 0.0  # monotonic time before which the ingester does not try again
        self._worker: threading.Thread | None = None
        if getattr(self, "_pid", os.getpid()) != os.getpid():
            # A forked child: the drops counted so far are the parent's, to journal there (each
            # child of a gunicorn --preload journaled them again at its exit: 600 for 200).
            self._journaled_drops = self._final_drops()
        self._pid = os.getpid()
        _LIVE.add(self)

    @property
    def capture_content(self) -> bool:
        """Whether prompt and completion attributes are stored."""
        return self._mapper.capture_content

    @property
    def dropped_spans(self) -> int:
        """Spans given to `export` that were not stored and never will be (logged)."""
        return self._final_drops() + self._dropped_in_flight

    def _final_drops(self) -> int:
        """The drops that are final, what the journal takes: not those of exports still
        writing at shutdown (`_count_flights`), which may land yet (a review: journaled, they
        were counted twice in `store status` when the write failed, and stayed when it landed)."""
        return self._dropped + self._dropped_inside + self._mapper.errors

    @property
    def content_dropped(self) -> int:
        """Attributes left out of stored rows because they may hold prompt or completion
        text (each row also says how many in ``costattr.content_dropped``)."""
        return self._mapper.content_dropped

    @property
    def buffered_spans(self) -> int:
        """Spans held in memory, waiting for room in the spool."""
        return self._buffered

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        """Persist ``spans``: SUCCESS once they are durable on disk (they reach the table within
        about ``ingest_interval``); FAILURE when they could only be kept in memory (written
        later), or were dropped (counted in `dropped_spans`): after shutdown, past the memory
        bound, or when the batch could not be mapped."""
        if self._shutdown:
            if given := _length(spans):
                self._drop(given, "exporter shut down")
            return SpanExportResult.FAILURE
        unkept = 0  # the spans lost if this raises: none is in the spool or memory yet
        try:
            if not isinstance(spans, Sized):  # an iterator: read once, counted as it is read
                read: list[Any] = []
                try:
                    read.extend(spans)
                finally:
                    unkept = len(read)
                spans = read
            unkept = len(spans)
            inside = self._inside()
            if not inside:  # (inside, the block may be the one starting the worker)
                self._ensure_worker()
            mapper = self._mapper
            records = records_from_sdk(spans, mapper.skipped)  # a span it skips is counted
            unkept = len(records)
            table = mapper.table(records)
            unkept = table.num_rows
            if table.num_rows == 0:
                return SpanExportResult.SUCCESS
            if inside:
                return self._export_inside(table)
            flight = next(self._flight_numbers)
            try:
                self._take_off(flight, table.num_rows)
                if self._buffer:
                    self._drain_buffer()  # keep arrival order: older batches first
                if not self._buffer and self._spool(table):
                    return SpanExportResult.SUCCESS
                unkept = 0
                self._keep(table)  # kept in memory, or dropped and counted
            finally:
                self._land(flight)
        except Exception:
            logger.exception("otel-costattr: export to %s failed", self.path)
            if unkept:  # the SDK does not retry a FAILURE: these are gone
                self._drop(unkept, "export failed")
        return SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Move everything exported so far (and any spool left by others) into the table,
        waiting no longer than ``timeout_millis`` for the database lock and for the
        background ingester. True when all of it is in the table (or quarantined, unreadable:
        see the README's Durability); spans exported while it runs are not waited for. What
        ``export`` refused (FAILURE: counted in `dropped_spans` and the spool's journal) was
        never kept, so a True says nothing of it: read `dropped_spans` for that.
        ``TracerProvider.force_flush()`` does not call this (the SDK's batch processor only
        exports): call it on the exporter to know that spans reached the table."""
        try:
            if not timeout_millis >= 0:  # negative, NaN
                timeout_millis = 0
            if self._inside():  # it would wait for the block this thread is in: never
                self._log("inside flush", _INSIDE, "force_flush", self.path)
                return False
            return self._flush(time.monotonic() + timeout_millis / 1000)
        except Exception:
            logger.exception("otel-costattr: flush to %s failed", self.path)
            return False

    def shutdown(self) -> None:
        """Stop the ingester and flush (waiting up to ``lock_timeout`` for the lock). Spool
        files that could not be ingested stay on disk for the next writer."""
        if self._shutdown:
            return
        if self._inside() or self._turn._is_owned() or store.held_here(self.path):
            # Inside a locked block, a flush's round or an in-process open of the store (which
            # the worker's join and the last flush would wait for, the worker waiting for this
            # thread; a caller's own `store.writing` block too, deliberately or not: there the
            # job is only put off). Not shut down: done whole at the interpreter's exit, once
            # the block has unwound (after a handler's sys.exit), or by a later call. The
            # provider's own shutdown at exit cannot be counted on: the handler's call to it
            # unregistered it, and a BatchSpanProcessor passes a shutdown on once. Meanwhile
            # exports are kept.
            _DEFERRED.add(self)  # shut down at exit, unless a later call does it first
            self._log("inside shutdown", _INSIDE, "shutdown", self.path)
            return
        self._shutdown = True
        _DEFERRED.discard(self)
        try:
            deadline = time.monotonic() + self._lock_timeout
            self._stop_ingester()
            done = self._flush(deadline)
            self._drop_buffer("exporter shut down")
            self._count_flights(deadline)
            if not done:
                logger.warning(
                    "otel-costattr: %s could not take the spool before shutdown (locked, or failing:"
                    " 'otel-costattr store status' says which); %d spool files wait in %s for the"
                    " next writer",
                    self.path,
                    len(store.pending_spool(self.path)),
                    store.spool_dir(self.path),
                )
        except Exception:
            logger.exception("otel-costattr: shutdown of the %s exporter failed", self.path)

    # -- internals --------------------------------------------------------------------

    def _inside(self) -> bool:
        """Whether this thread is inside one of the exporter's locked blocks: a finalizer or
        a signal handler has called in. Waiting for the lock would wait for itself for ever,
        and the block's counts may be half changed."""
        return self._lock._is_owned()  # type: ignore[attr-defined]

    def _export_inside(self, table: pa.Table) -> SpanExportResult:
        """`export` from inside a locked block: the batch goes to the spool as any other, a
        file of its own, but no count is changed (the block may be changing it): the spool
        estimate learns the file at the next ingest, and a batch the spool refuses is dropped
        and counted apart (`_dropped_inside`), not kept in memory."""
        try:
            store.write_spool(self.path, table, fsync=self._fsync)
        except OSError as e:
            self._dropped_inside += table.num_rows
            self._log("drop", "otel-costattr: dropped %d spans for %s (%s)", table.num_rows, self.path, e)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _drop_buffer(self, why: str) -> None:
        """Count the spans still waiting in memory as dropped (``why``), and journal every
        drop not journaled yet: nothing is left to write them."""
        with self._lock:
            lost, self._buffered = self._buffered, 0
            self._buffer_out += len(self._buffer)
            self._cleared += lost  # here, not in _drop: a flush reads it in this lock
            self._buffer.clear()
        if lost:
            self._drop(lost, why)
        self._journal_drops()

    def _stop_at_exit(self) -> None:
        """`_at_exit` for an exporter never shut down: its ingester stopped, what waits in
        memory spooled if the spool takes it, else counted as dropped, and every drop
        journaled (`store status` said 0 dropped beside 400 spans the exporter dropped: its
        ingester, which journals them, stopped first; a review)."""
        try:
            self._stop_ingester()
            self._drain_buffer()
            self._drop_buffer("interpreter exit")
        except Exception:
            logger.exception("otel-costattr: stopping the %s exporter at exit failed", self.path)

    def _stop_ingester(self) -> None:
        """Tell the ingester to stop (between transactions) and wait for it, up to the lock
        timeout and 5 s."""
        self._stop.set()
        self._wake.ring()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(self._lock_timeout + 5)

    def _ensure_worker(self) -> None:
        if self._pid != os.getpid():  # forked without the at-fork hook
            self._reset()
        worker = self._worker
        if worker is None or not worker.is_alive():
            with self._lock:
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(
                        target=_run_worker,
                        args=(weakref.ref(self), self._stop, self._wake, self._interval),
                        name="otel-costattr-ingest",
                        daemon=True,
                    )
                    self._worker.start()

    def _take_off(self, number: int, spans: int) -> None:
        """Note this thread's export ``number`` writing ``spans`` to the spool."""
        with self._lock:
            self._flights[threading.get_ident()] = (number, spans)

    def _land(self, number: int) -> None:
        """The export ``number`` is done: spooled, kept, or dropped and counted where it
        failed. Shutdown's count of it as dropped (`_count_flights`) is taken back."""
        with self._lock:
            me = threading.get_ident()
            flight = self._flights.get(me)
            if flight is not None and flight[0] == number:
                del self._flights[me]
            landed = number in self._counted_flights
            spans = self._counted_flights.pop(number, 0)
            self._dropped_in_flight -= spans
        if landed:
            logger.warning(
                "otel-costattr: the write of %d spans to %s's spool that shutdown counted as"
                " dropped has ended: in the spool, or counted where it failed",
                spans,
                self.path,
            )

    def _count_flights(self, deadline: float) -> None:
        """Exports still writing to the spool at shutdown (a disk that does not answer: a
        review froze one) are waited for until ``deadline``, then counted in `dropped_spans`
        and logged: the process may exit before they end, and their batch with it. Not
        journaled: the disk is the one not answering. An export that lands later takes its
        count back (`_land`). An export of this very thread (a signal handler calling shutdown
        while the thread it interrupted writes) cannot end before this returns: not waited
        for (a review: shutdown stalled the whole ``lock_timeout``), counted all the same,
        since a handler that exits next abandons its write."""
        me = threading.get_ident()
        while time.monotonic() < deadline:
            with self._lock:
                if all(thread == me for thread in self._flights):
                    break
            time.sleep(0.01)
        with self._lock:
            waiting = {t: f for t, f in self._flights.items() if f[0] not in self._counted_flights}
            self._counted_flights.update(dict(waiting.values()))
            others = sum(spans for t, (_, spans) in waiting.items() if t != me)
            own = sum(spans for t, (_, spans) in waiting.items() if t == me)
            self._dropped_in_flight += others + own
        if others:
            logger.error(
                "otel-costattr: %d spans of exports to %s were still being written to its spool"
                " when shutdown ended (is the disk answering?): counted as dropped, and lost if the"
                " process exits before the writes end",
                others,
                self.path,
            )
        if own:
            logger.warning(
                "otel-costattr: shutdown of %s was called while this thread was writing %d spans to"
                " its spool (a signal handler?): counted as dropped until that write ends",
                self.path,
                own,
            )

    def _spool(self, table: pa.Table) -> bool:
        if self._spool_estimate >= self._max_spool:
            self._log(
                "full",
                "otel-costattr: spool %s is full (%d bytes); buffering in memory",
                store.spool_dir(self.path),
                self._spool_estimate,
            )
            return False
        try:
            size = store.write_spool(self.path, table, fsync=self._fsync)
        except OSError as e:
            self._log(
                "spool", "otel-costattr: cannot write spool file in %s: %s", store.spool_dir(self.path), e
            )
            return False
        with self._lock:
            self._spool_estimate += size
            self._spooled_rows += table.num_rows
            if self._spooled_rows >= _INGEST_ROWS:
                self._wake.ring()
        return True

    def _keep(self, table: pa.Table) -> None:
        with self._lock:
            # After shutdown cleared the buffer (an export that overlapped it), nothing
            # would ever write it: dropped, counted.
            if not self._shutdown and self._buffered + table.num_rows <= self._max_buffered:
                self._buffer.append(table)
                self._buffer_in += 1
                self._buffered += table.num_rows
                return
        self._drop(table.num_rows, "exporter shut down" if self._shutdown else "memory buffer full")

    def _drain_buffer(self) -> None:
        while True:
            with self._lock:
                if not self._buffer:
                    return
                table = self._buffer[0]
            if not self._spool(table):
                return
            with self._lock:
                if self._buffer and self._buffer[0] is table:
                    self._buffer.popleft()
                    self._buffered -= table.num_rows
                    self._buffer_out += 1
                    self._drained += 1

    def _drop(self, count: int, why: str) -> None:
        with self._lock:
            self._dropped += count
            total = self._dropped
        if self._shutdown:
            self._journal_drops()  # no ingester round is left to write it
        self._log(
            "drop",
            "otel-costattr: dropped %d spans for %s (%s); %d dropped in all",
            count,
            self.path,
            why,
            total,
            level=logging.ERROR,
        )

    def _log(
        self, kind: str, msg: str, *args: Any, level: int = logging.WARNING, exc_info: bool = False
    ) -> None:
        """Log, at most once every few seconds per kind: a stuck database must not flood."""
        now = time.monotonic()
        if now - self._last_log.get(kind, -_LOG_EVERY) >= _LOG_EVERY:
            self._last_log[kind] = now
            logger.log(level, msg, *args, exc_info=exc_info)

    def _failed(self) -> None:
        """Count an ingest failure and back off: interval x 2^n, at most a minute."""
        self._failures += 1
        delay = min(self._interval * 2 ** min(self._failures, 16), _MAX_BACKOFF)
        self._retry_at = time.monotonic() + delay

    def _journal_drops(self) -> None:
        """Write spans dropped since the last call to the spool's journal (for `store status`).
        Any thread may call it (an export after shutdown): the count is claimed under the lock."""
        with self._lock:
            total = self._final_drops()
            new = total - self._journaled_drops
            if new <= 0:
                return
            self._journaled_drops = total
        if not spool.record(self.path, "dropped", spans=new):
            with self._lock:
                self._journaled_drops -= new  # counted again at the next call

    def _ingest_round(self, retry: store.Retry, deadline: float | None = None) -> bool:
        """Ingest spool files until none are left (True), or the lock is busy or the database
        cannot take them now (False: they stay pending). Raises nothing from the store.

        With a ``deadline`` (a flush) it waits for the turn no longer than that, and is done
        (True) as soon as the files pending when it was called are gone, whoever ingested
        them: a round that spools keep feeding can hold the turn for as long as they come."""
        try:
            if deadline is None:
                return self._in_turn(None, None, lambda: self._ingest_files(retry, None))
            pending = set(store.pending_spool(self.path))
            if not pending:
                return True
            return self._in_turn(
                deadline,
                lambda: pending.isdisjoint(store.pending_spool(self.path)),
                lambda: self._ingest_files(retry, deadline, pending),
            )
        finally:
            size = store.spool_bytes(self.path)
            with self._lock:
                self._spool_estimate = size

    def _ingest_files(
        self, retry: store.Retry, deadline: float | None, mine: set[Path] | None = None
    ) -> bool:
        """`_ingest_round`'s work, in the turn; a flush's is done once the files pending at
        its call (``mine``) are gone, even while exports keep adding more."""
        while files := store.pending_spool(self.path):
            if mine is not None and mine.isdisjoint(files):
                return True
            if deadline is None and self._stop.is_set():
                return False  # shutting down: its own flush takes over, bounded
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                retry = store.Retry(timeout=left, initial=retry.initial, maximum=retry.maximum)
            try:
                # In the background, one DuckDB thread: the application keeps the other
                # cores (measured 2-3x less CPU a row than two threads on two cores). A
                # flush has the caller waiting: every core.
                threads = 1 if deadline is None else None
                # compact=False: no vacuum, whose peak grows with the table.
                # The background round ends between transactions once stopped (the
                # interpreter's exit: `_at_exit`); a flush's goes on.
                stop = self._stop.is_set if deadline is None else None
                if not ingest.ingest(self.path, retry=retry, threads=threads, compact=False, stop=stop):
                    break
            except store.LockTimeout:
                return False
            except store.StoreError as e:  # disk full, I/O, a failed commit: retried
                self._failed()
                self._log("ingest", "otel-costattr: %s; retrying", e, level=logging.ERROR)
                return False
            self._failures, self._retry_at = 0, 0.0
            if deadline is None and store.pending_spool(self.path):
                # A backlog: let a waiting reader in between chunks. Not while the
                # application waits in force_flush (its flush takes the turn next anyway):
                # measured, 50 ms of each flush at the end of 65k spans in batches of 2048,
                # ~5% of the run. The round is not cut short for it: a flush that took over
                # ingested with every DuckDB thread and a connection of its own, which cost
                # more CPU than the pause it saved (measured: 0.89x the spans/s end to end).
                self._pause()
        return True

    def _in_turn(
        self, deadline: float | None, done: Callable[[], bool] | None, work: Callable[[], bool]
    ) -> bool:
        """``work()`` holding the turn (whose turn it is to write the table). Without a
        ``deadline`` (the background) it waits as long as it takes; a flush waits until its
        deadline (False), or until ``done()`` says another holder did its work (True); see
        `_take_turn`. False on a thread that holds the turn already (a flush from a finalizer
        or a signal handler inside a round), which would otherwise write beside itself."""
        turn = self._turn
        if turn._is_owned():
            return False
        try:
            if deadline is None:
                turn.acquire()
            elif (got := self._take_turn(deadline, done or (lambda: False))) != "held":
                return got == "done"
            return work()
        finally:
            try:  # noqa: SIM105 (suppress enters in Python) one call, no test first: `_take_turn`
                turn.release()
            except RuntimeError:  # not taken
                pass

    def _pause(self) -> None:
        """`_BACKLOG_PAUSE`, ended as soon as a flush waits for the turn."""
        until = time.monotonic() + _BACKLOG_PAUSE
        while not self._flushes_waiting and time.monotonic() < until:
            time.sleep(_BACKLOG_PAUSE / 10)

    def _take_turn(self, deadline: float, done: Callable[[], bool]) -> str:
        """Wait for the turn as a flush: "held" (the caller releases it), "done" once
        ``done()`` says another holder did the flush's work, "late" at ``deadline``. Meanwhile
        the background round does not pause between ingests (`_flushes_waiting`).

        Called inside `_in_turn`'s ``try``, whose ``finally`` releases the turn if this
        thread holds it: a timed acquire cannot be a ``with``, and an exception a signal
        handler raises (Ctrl-C) as it returns would otherwise leave the turn taken for ever.
        That ``finally`` calls ``release`` at once and takes the error of a turn not held:
        a test first (``if turn._is_owned()``) is a point where such an exception lands
        between the test and the release. For the same reason the waiting is counted in a
        plain ``with`` block, not by an Event: ``Event.set`` enters a Condition through a
        Python ``__enter__``, where an exception after the lock was taken leaves the Event
        locked, and every later ``set`` or ``wait`` hung (the stress test found both)."""
        counted = False
        try:
            with self._lock:
                self._flushes_waiting += 1
                counted = True
            while True:
                left = deadline - time.monotonic()
                if self._turn.acquire(timeout=max(min(left, _FLUSH_LOOK), 0)):
                    return "held"
                if done():
                    return "done"
                if left <= _FLUSH_LOOK:
                    return "late"
        finally:
            if counted:
                with self._lock:
                    self._flushes_waiting -= 1

    def _write_buffer(
        self, retry: store.Retry | None, deadline: float | None = None, upto: int | None = None
    ) -> bool:
        """The batches in the buffer now, which the spool would not take, go straight into
        the table (not those put in meanwhile: exports may keep adding while the spool is
        full). A flush (``deadline``) waits for the lock what is left of its time once it
        has the turn, and stops at its deadline; False then, or when the turn stayed taken.
        True once every one of those batches is out of the buffer: written, or moved to the
        spool or dropped meanwhile (`_flush` looks at `_drained` and `_cleared`). Raises the
        store's errors."""
        if upto is None:
            with self._lock:
                upto = self._buffer_in

        def work() -> bool:
            if deadline is None:
                return self._write_buffered(retry or store.Retry(timeout=0), upto, None)
            left = store.Retry(timeout=max(deadline - time.monotonic(), 0))
            return self._write_buffered(left, upto, deadline)

        return self._in_turn(deadline, lambda: self._buffer_out >= upto, work)

    def _write_buffered(self, retry: store.Retry, upto: int, deadline: float | None) -> bool:
        """`_write_buffer`'s work, in the turn."""
        with store.writing(self.path, retry=retry) as con, ingest.tuned(con, compact=False):
            while True:
                with self._lock:
                    if self._buffer_out >= upto or not self._buffer:
                        return True
                    table = self._buffer[0]
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                ingest.insert_table(con, table)
                with self._lock:
                    # An export may have spooled and popped it meanwhile (`_drain_buffer`
                    # takes no turn): the ingest skips the copy, and the head is then the
                    # next batch, not written yet.
                    if self._buffer and self._buffer[0] is table:
                        self._buffer.popleft()
                        self._buffered -= table.num_rows
                        self._buffer_out += 1

    def _flush(self, deadline: float) -> bool:
        with self._lock:
            cleared = self._cleared  # a shutdown's drop from here on is this flush's loss
        self._drain_buffer()
        with self._lock:
            drained, upto = self._drained, self._buffer_in
        done = self._ingest_round(store.Retry(timeout=0), deadline)
        if self._buffer_out < upto:
            try:
                if not self._write_buffer(None, deadline, upto):
                    return False
            except store.StoreError:  # locked, or the database cannot take them: kept
                return False
        with self._lock:
            drained_since, cleared_since = self._drained != drained, self._cleared != cleared
        if drained_since:  # an export or the ingester spooled buffered batches meanwhile:
            # their files came after the round's look, and an empty buffer is not a table
            done = self._ingest_round(store.Retry(timeout=0), deadline) and done
        if cleared_since:
            return False  # a shutdown meanwhile dropped what the buffer held
        return done and self._buffer_out >= upto


def _length(spans: Any) -> int:
    """How many spans an export was given (0 for something that holds none); an iterable
    with no length is counted by going through it."""
    try:
        return len(spans)
    except TypeError:
        try:
            return sum(1 for _ in spans)
        except Exception:
            return 0


class _Bell:
    """The ingester's wake-up: one thread waits, any rings. One lock, taken while silent, so
    that ringing (``export`` on the application's thread) is one C call: ``Event.set`` enters
    a Condition through a Python ``__enter__``, where an exception a signal handler raises
    (Ctrl-C) once its lock is taken leaves the Event locked, and the next export hung in
    ``set`` holding the exporter's lock (see `DuckDBSpanExporter._take_turn`)."""

    def __init__(self) -> None:
        self._silent = threading.Lock()
        self._silent.acquire()

    def ring(self) -> None:
        try:  # noqa: SIM105 (suppress enters in Python) one call
            self._silent.release()
        except RuntimeError:  # rung already
            pass

    def wait(self, timeout: float) -> bool:
        """True when rung within ``timeout`` seconds (the ring is then used up)."""
        return self._silent.acquire(timeout=min(max(timeout, 0), threading.TIMEOUT_MAX))


# Exporters whose shutdown was called from inside (`DuckDBSpanExporter.shutdown`), held until
# it is done: by a later call, or at the interpreter's exit.
_DEFERRED: set[DuckDBSpanExporter] = set()


# Every exporter not garbage collected: at exit, their ingesters are stopped (`_at_exit`).
_LIVE: weakref.WeakSet[DuckDBSpanExporter] = weakref.WeakSet()


@atexit.register
def _at_exit() -> None:
    """Shut down the exporters deferred, then stop every other exporter's ingester and wait
    for it (up to its lock timeout and 5 s): an interpreter that exits while a daemon thread
    is inside DuckDB aborts the process (SIGABRT, 'FATAL: exception not rethrown'), which a
    review saw in 8 of 10 exits of an exporter never shut down (one used alone, or under
    ``TracerProvider(shutdown_on_exit=False)``). What it has not ingested stays in the spool,
    on disk, for the next writer."""
    for exporter in list(_DEFERRED):
        exporter.shutdown()
    for exporter in list(_LIVE):
        if not exporter._shutdown:
            exporter._stop_at_exit()


def _run_worker(ref: weakref.ref, stop: threading.Event, wake: _Bell, interval: float) -> None:
    """The ingester: spool -> table every ``interval`` seconds, or sooner when much waits.
    Holds only a weak reference, so an exporter dropped without shutdown does not leak a
    thread forever."""
    busy = store.Retry(timeout=0.05)
    wait = interval
    while True:
        wake.wait(wait)
        if stop.is_set():
            return
        exporter = ref()
        if exporter is None:
            return
        wait = exporter._retry_at - time.monotonic()
        if wait > 0:  # backing off after a failure: a wake-up does not shorten it
            exporter._journal_drops()  # drops made meanwhile (the spool full) count at once
            del exporter
            continue
        wait = interval
        with exporter._lock:
            exporter._spooled_rows = 0
        try:
            exporter._drain_buffer()
            if exporter._ingest_round(busy) and exporter._buffer:
                exporter._write_buffer(busy)  # the spool refused them: write them directly
        except store.LockTimeout:
            pass  # busy: next round
        except store.StoreError as e:  # the database cannot take the buffer now: kept
            exporter._failed()
            exporter._log("ingest", "otel-costattr: %s; retrying", e, level=logging.ERROR)
        except Exception:
            exporter._log(
                "ingest",
                "otel-costattr: ingest into %s failed; retrying",
                exporter.path,
                level=logging.ERROR,
                exc_info=True,
            )
        exporter._journal_drops()
        del exporter


def _after_fork(ref: weakref.ref) -> Any:
    def reset() -> None:
        exporter = ref()
        if exporter is not None:
            exporter._reset()

    return reset
