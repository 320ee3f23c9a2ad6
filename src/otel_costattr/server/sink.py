"""`SpanSink`: where the receiver puts what it accepts, durably, before it answers 200.

Received spans take the exporter's path (``store/exporter.py``) from the record on: records
-> `spans.rows.SpanMapper` (the content rule, tokens, identity, a price when the span has no
cost) -> one fsynced spool file (`store.spool.write_spool`) -> acknowledged. A background
thread moves the spool into the table with `store.ingest.ingest`, as the exporter's ingester
does; a restart (or any other writer, or `store.connect`) ingests what a killed server left.

The ingester checkpoints without DuckDB's vacuum (`store.ingest.tuned`, ``compact=False``,
as the exporter does): the vacuum's merge costs CPU the request handlers need, and its memory
peak grows with the table. Unlike the exporter, the server is the long-lived writer, so it
merges the row groups itself now and then: in the round after `_COMPACT_ROWS` rows or
`_COMPACT_ROUNDS` rounds since the last merge, and when it stops.

Where the exporter buffers in memory when the spool is full, the receiver pushes back
instead: its clients retry (OTLP exporters retry 429/503 and UNAVAILABLE), so nothing
waits in a process that a kill -9 would lose. `Backpressure` is raised when the spool is over
its bound (the database stayed locked, or cannot take the files) or cannot be written.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from ..pricing.table import PriceTable
from ..spans.record import SpanRecord
from ..spans.rows import SpanMapper
from ..store import database as store
from ..store import ingest
from ..store import spool as journal

logger = logging.getLogger(__name__)

_INGEST_ROWS = 32_768  # wake the ingester early once this many rows wait (as the exporter)
_MAX_BACKOFF = 60.0
_COMPACT_ROWS = 131_072  # rows ingested since the last vacuum that call for one (~1 row group)
_COMPACT_ROUNDS = 150  # ingest rounds (5 min at 2 s) since the last vacuum that call for one
_BUSY = store.Retry(timeout=0.05)  # the ingester's wait for the lock: another writer, next round


class Backpressure(Exception):
    """The batch was not kept: the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Accepted:
    """What became of one request's spans: ``stored`` are on disk, ``rejected`` were not
    kept (their reasons in ``message``, for ``partial_success``)."""

    stored: int
    rejected: int
    message: str


class SpanSink:
    """Records -> rows -> the fsynced spool of the database at ``path``, and the thread that
    ingests the spool. Thread-safe: `accept` may be called from many request threads.

    ``max_spool_bytes``: above it, `accept` raises `Backpressure`. ``retry_after``: the
    seconds a pushed-back client is told to wait. ``fsync=False`` only for benchmarks of
    the rest."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pricing: PriceTable | None = None,
        capture_content: bool = False,
        ingest_interval: float = 2.0,
        max_spool_bytes: int = 256 * 2**20,
        retry_after: int = 5,
        fsync: bool = True,
    ) -> None:
        if ingest_interval <= 0 or max_spool_bytes < 0 or retry_after < 0:
            raise ValueError("ingest_interval must be > 0, max_spool_bytes and retry_after >= 0")
        self.path = store.prepare_writer(path)  # ValueError: one line naming the path
        # Create or upgrade the schema now, and ingest what a previous run left: a bad file
        # shows at start, not at the first request. A lock held elsewhere (an exporter) is
        # no reason not to start: the ingester takes the spool when the lock is free.
        try:
            store.connect(self.path, retry=10.0).close()
        except store.LockTimeout as e:
            logger.warning("otel-costattr: %s; the ingester retries", e)
        self._mapper = SpanMapper(pricing, capture_content=capture_content)
        pa.array([0])  # pyarrow imports pandas (if installed) on its first conversion, 0.3 s: now
        self._map_lock = threading.Lock()  # the mapper's caches and counters are not thread-safe
        self._lock = threading.Lock()
        self._interval = float(ingest_interval)
        self._max_spool = int(max_spool_bytes)
        self.retry_after = int(retry_after)
        self._fsync = fsync
        self._spool_estimate = store.spool_bytes(self.path)
        self._spooled_rows = 0
        self._uncompacted = (0, 0)  # (rows spooled, ingest rounds) since the last vacuum
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._failures = 0
        self.stored_spans = 0
        self.rejected_spans = 0
        self.pushed_back = 0  # requests answered with backpressure
        self._journaled = (0, 0)  # (rejected_spans, pushed_back) the spool's journal has
        self.last_ingest_error: str | None = None

    # -- receiving ----------------------------------------------------------------------

    def accept(self, records: Sequence[SpanRecord], rejected: int = 0, message: str = "") -> Accepted:
        """Map ``records`` and write them as one durable spool file. Returns what was stored
        and rejected (``rejected``/``message``: what the decoder left out already). Raises
        `Backpressure` when the spool is full or cannot be written: nothing was kept."""
        if self._spool_estimate >= self._max_spool:
            with self._lock:
                self.pushed_back += 1
            raise Backpressure(
                f"the spool holds {self._spool_estimate} bytes, over its bound; the store is behind",
                self.retry_after,
            )
        with self._map_lock:
            errors = self._mapper.errors
            table = self._mapper.table(records)
            unmapped = self._mapper.errors - errors
        if unmapped:
            rejected += unmapped
            why = f"{unmapped} span{'s' if unmapped != 1 else ''} could not be mapped"
            message = f"{message}; {why}" if message else why
        if table.num_rows:
            try:
                size = store.write_spool(self.path, table, fsync=self._fsync)
            except OSError as e:
                with self._lock:
                    self.pushed_back += 1
                raise Backpressure(f"cannot write the spool: {e.strerror or e}", self.retry_after) from e
            with self._lock:
                self._spool_estimate += size
                self._spooled_rows += table.num_rows
                self._uncompacted = (self._uncompacted[0] + table.num_rows, self._uncompacted[1])
                self.stored_spans += table.num_rows
                self.rejected_spans += rejected
                if self._spooled_rows >= _INGEST_ROWS:
                    self._wake.set()
        elif rejected:
            with self._lock:
                self.rejected_spans += rejected
        return Accepted(table.num_rows, rejected, message)

    # -- ingesting ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the ingester (it ingests what a previous run left first)."""
        if self._worker is None or not self._worker.is_alive():
            self._stop.clear()
            self._worker = threading.Thread(
                target=self._run, name="otel-costattr-receiver-ingest", daemon=True
            )
            self._worker.start()
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the ingester and ingest what is left, waiting up to ``timeout`` for the lock.
        True when the spool is empty; else the files wait for the next writer."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout + 5)
            self._worker = None
        try:
            return self.flush(timeout)
        finally:
            self.journal_counts()

    def journal_counts(self) -> None:
        """Write the spans rejected and requests pushed back since the last call to the spool's
        journal, where ``store status`` reads them (the ingester does it every round)."""
        with self._lock:
            now = (self.rejected_spans, self.pushed_back)
            then, self._journaled = self._journaled, now  # claimed: a concurrent call writes the rest
        rejected, pushed = now[0] - then[0], now[1] - then[1]
        if (rejected or pushed) and not journal.record(
            self.path, "receiver", rejected=rejected, pushed_back=pushed
        ):
            with self._lock:  # the journal cannot be written (disk full): counted again next time
                self._journaled = (self._journaled[0] - rejected, self._journaled[1] - pushed)

    def flush(self, timeout: float = 10.0) -> bool:
        """Ingest the whole spool now (every core). True when nothing is left."""
        deadline = time.monotonic() + timeout
        try:
            while store.pending_spool(self.path):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not ingest.ingest(self.path, retry=store.Retry(timeout=left)):
                    break
            return True
        except store.StoreError as e:
            self.last_ingest_error = str(e)
            logger.error("otel-costattr: receiver flush: %s", e)
            return False
        finally:
            self._refresh_estimate()

    @property
    def pending_files(self) -> int:
        """Spool files waiting to be ingested."""
        return len(store.pending_spool(self.path))

    def _refresh_estimate(self) -> None:
        size = store.spool_bytes(self.path)
        with self._lock:
            self._spool_estimate = size

    def _run(self) -> None:
        wait = 0.0
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                return
            wait = self._round()

    def _round(self) -> float:
        """One ingest round: the spool into the table. Returns the seconds to the next."""
        wait = self._interval
        with self._lock:
            self._spooled_rows = 0
            rows, rounds = self._uncompacted
            self._uncompacted = (rows, rounds + 1)
        compact = rows >= _COMPACT_ROWS or rounds + 1 >= _COMPACT_ROUNDS
        try:
            while store.pending_spool(self.path) and not self._stop.is_set():
                # One DuckDB thread: the request handlers keep the other core.
                if not ingest.ingest(self.path, retry=_BUSY, threads=1, compact=compact):
                    break
                if compact:  # merged: count again from here
                    compact = False
                    with self._lock:
                        self._uncompacted = (self._uncompacted[0] - rows, 0)
            self._failures, self.last_ingest_error = 0, None
        except store.LockTimeout:
            pass  # someone else is writing: next round
        except store.StoreError as e:  # disk full, I/O, a failed commit: the files wait
            self._failures += 1
            self.last_ingest_error = str(e)
            wait = min(self._interval * 2 ** min(self._failures, 16), _MAX_BACKOFF)
            logger.error("otel-costattr: receiver ingest: %s; retrying in %.0f s", e, wait)
        except Exception:
            logger.exception("otel-costattr: receiver ingest into %s failed; retrying", self.path)
        finally:
            self._refresh_estimate()
            self.journal_counts()
        return wait
