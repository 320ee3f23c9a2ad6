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

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence

import pyarrow as pa

from ..pricing.table import PriceTable
from ..spans.record import SpanRecord
from ..spans.rows import SpanMapper
from ..store import database as store
from ..store import ingest
from ..store import spool as journal
from . import otlp_wire as wire
from .mapping import Accepted, PricingFiles, WorkerConfig, map_records, spool
from .pool import MappingPool, WorkerLost

logger = logging.getLogger(__name__)

_INGEST_ROWS = 32_768  # wake the ingester early once this many rows wait (as the exporter)
_MAX_BACKOFF = 60.0
_COMPACT_ROWS = 131_072  # rows ingested since the last vacuum that call for one (~1 row group)
_COMPACT_ROUNDS = 150  # ingest rounds (5 min at 2 s) since the last vacuum that call for one
_BUSY = store.Retry(timeout=0.05)  # the ingester's wait for the lock: another writer, next round
_TURN = 10.0  # its wait for this process's readers to close the file (a page takes ~1 s)
# A round that has moved no file for this long is stalled (`SpanSink.stalled_for`): a frozen
# or hung disk blocks it without an error (a review froze one: /healthz said "ok" meanwhile).
# One step moves up to 256 files; on a loaded machine that is seconds, not minutes.
_STALLED = 120.0


class Backpressure(Exception):
    """The batch was not kept: the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpanSink:
    """Records -> rows -> the fsynced spool of the database at ``path``, and the thread that
    ingests the spool. Thread-safe: `receive` and `accept` may be called from many request
    threads.

    ``pricing``: a `PriceTable`, or `PricingFiles` (loaded here; with ``workers``, loaded
    again by each worker, which checks it got the same table). ``workers``: processes that
    decode, map and spool the bodies `receive` is given (`pool.MappingPool`, started by
    `start`); 0 does it in the calling thread. ``max_spool_bytes``: above it, `accept`
    raises `Backpressure`. ``retry_after``: the seconds a pushed-back client is told to
    wait. ``fsync=False`` only for benchmarks of the rest."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        pricing: PriceTable | PricingFiles | None = None,
        capture_content: bool = False,
        ingest_interval: float = 2.0,
        max_spool_bytes: int = 256 * 2**20,
        retry_after: int = 5,
        fsync: bool = True,
        workers: int = 0,
    ) -> None:
        if ingest_interval <= 0 or max_spool_bytes < 0 or retry_after < 0 or workers < 0:
            raise ValueError("ingest_interval must be > 0, max_spool_bytes, retry_after and workers >= 0")
        files = pricing if isinstance(pricing, PricingFiles) else None
        if files is not None:
            pricing = files.load()  # PricingError (a ValueError): one line naming the file
        elif workers and pricing is not None:
            raise ValueError(
                "a SpanSink with workers takes its pricing as PricingFiles (workers load it again)"
            )
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
        self._pool = None
        if workers:
            config = WorkerConfig(
                str(self.path), files, self._mapper.pricing.digest, bool(capture_content), fsync
            )
            self._pool = MappingPool(config, workers)
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
        self._progress: float | None = None  # monotonic time of the running round's last step
        # When the rounds since the last step began, each ending with spool files kept from
        # the table by a lock or this process's readers (None: the last round moved them all).
        self._kept_out: float | None = None
        self.stall_after = _STALLED
        self.stored_spans = 0
        self.rejected_spans = 0
        self.pushed_back = 0  # requests answered with backpressure
        self.incomplete = 0  # requests whose body never came whole (client gone, or stalled: 408)
        # Requests refused whole (400, 413, 415; gRPC's INVALID_ARGUMENT, not a message over
        # gRPC's own cap): no client retries them, so their spans are lost there: counted.
        self.refused = 0
        # (rejected_spans, pushed_back, incomplete, refused) the spool's journal has
        self._journaled = (0, 0, 0, 0)
        self.last_ingest_error: str | None = None

    @property
    def pricing(self) -> PriceTable:
        """The price table the sink prices unstamped calls with (``serve --pricing``)."""
        return self._mapper.pricing

    @property
    def workers(self) -> int:
        """Mapping worker processes running and warm (0 without: the request threads map)."""
        return self._pool.live if self._pool is not None else 0

    @property
    def lost_workers(self) -> int:
        """Mapping workers that died (each cost its request a 503) and were replaced."""
        return self._pool.lost if self._pool is not None else 0

    # -- receiving ----------------------------------------------------------------------

    def receive(self, body: bytes, content_type: str | None, *, grpc: bool = False) -> Accepted:
        """A decompressed request body (``grpc``: a gRPC Export message), decoded, mapped
        and spooled, in a worker process when the sink has them. Raises `otlp_wire.BadRequest`
        or `Unsupported` for a body that cannot be read, `Backpressure` when nothing was kept
        (the spool full or unwritable, the worker lost)."""
        if self._pool is None:
            return self.accept(*wire.decode(body, content_type, grpc=grpc))
        why = wire.unsupported_type(content_type)
        if why is not None:  # known without shipping the body
            raise wire.Unsupported(why)
        try:
            outcome = self._pool.run((content_type, grpc, self._full()), body)
        except WorkerLost as e:
            raise self.push_back(str(e)) from e
        status = outcome[0]
        if status == "ok":
            accepted = Accepted(*outcome[1:4])
            self._count(accepted, outcome[4])
            return accepted
        if status == "full":
            raise self.push_back(self._full_message())
        if status == "OSError":
            raise self.push_back(f"cannot write the spool: {outcome[1]}")
        error = {"BadRequest": wire.BadRequest, "Unsupported": wire.Unsupported, "TooLarge": wire.TooLarge}
        raise error.get(status, RuntimeError)(outcome[1])

    def accept(self, records: Sequence[SpanRecord], rejected: int = 0, message: str = "") -> Accepted:
        """Map ``records`` and write them as one durable spool file, in this thread. Returns
        what was stored and rejected (``rejected``/``message``: what the decoder left out
        already). Raises `Backpressure` when the spool is full or cannot be written: nothing
        was kept."""
        if records and self._full():  # an empty request keeps nothing: a success, full or not
            raise self.push_back(self._full_message())
        with self._map_lock:  # the mapper is not thread-safe; the fsync below needs no lock
            table, accepted = map_records(self._mapper, records, rejected, message)
        try:
            size = spool(self.path, table, self._fsync)
        except OSError as e:
            raise self.push_back(f"cannot write the spool: {e.strerror or e}") from e
        self._count(accepted, size)
        return accepted

    def _full(self) -> bool:
        return self._spool_estimate >= self._max_spool

    def _full_message(self) -> str:
        return f"the spool holds {self._spool_estimate} bytes, over its bound; the store is behind"

    def count_incomplete(self) -> None:
        """Count a request whose body never came whole: nothing of it was acknowledged."""
        with self._lock:
            self.incomplete += 1

    def count_refused(self) -> None:
        """Count a request refused whole (a body that cannot be read, too large, of a type
        not taken): the client does not retry it."""
        with self._lock:
            self.refused += 1

    def push_back(self, message: str) -> Backpressure:
        """Count a request answered with backpressure (503, retried); the exception to raise."""
        with self._lock:
            self.pushed_back += 1
        return Backpressure(message, self.retry_after)

    def _count(self, accepted: Accepted, size: int) -> None:
        """A request's outcome in the counters (and the ingester woken when rows pile up)."""
        with self._lock:
            self.rejected_spans += accepted.rejected
            if accepted.stored:
                self._spool_estimate += size
                self._spooled_rows += accepted.stored
                self._uncompacted = (self._uncompacted[0] + accepted.stored, self._uncompacted[1])
                self.stored_spans += accepted.stored
                if self._spooled_rows >= _INGEST_ROWS:
                    self._wake.set()

    # -- ingesting ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the mapping workers (warmed; ValueError, one line, when one cannot start)
        and the ingester (it ingests what a previous run left first). Again: nothing new."""
        if self._pool is not None and not self._pool.started:
            self._pool.start()
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
        if self._pool is not None:
            self._pool.stop()
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
            now = (self.rejected_spans, self.pushed_back, self.incomplete, self.refused)
            then, self._journaled = self._journaled, now  # claimed: a concurrent call writes the rest
        new = tuple(a - b for a, b in zip(now, then, strict=True))
        rejected, pushed, incomplete, refused = new
        if any(new) and not journal.record(
            self.path,
            "receiver",
            rejected=rejected,
            pushed_back=pushed,
            incomplete=incomplete,
            refused=refused,
        ):
            with self._lock:  # the journal cannot be written (disk full): counted again next time
                self._journaled = tuple(a - b for a, b in zip(self._journaled, new, strict=True))  # type: ignore[assignment]

    def flush(self, timeout: float = 10.0) -> bool:
        """Ingest the whole spool now (every core). True when nothing is left."""
        deadline = time.monotonic() + timeout
        try:
            while store.pending_spool(self.path):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with store.writer_turn(self.path, left):
                    if not ingest.ingest(self.path, retry=store.Retry(timeout=left)):
                        break
            return True
        except (store.StoreError, OSError) as e:  # OSError: the spool folder cannot be listed
            self.last_ingest_error = str(e)
            logger.error("otel-costattr: receiver flush: %s", e)
            return False
        finally:
            with contextlib.suppress(OSError):
                self._refresh_estimate()

    @property
    def pending_files(self) -> int:
        """Spool files waiting to be ingested."""
        return len(store.pending_spool(self.path))

    @property
    def quarantined_files(self) -> int:
        """Spool files set aside as unreadable (``store repair`` puts them back)."""
        return len(journal.quarantined(self.path))

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
            self._progress = time.monotonic()
            try:
                wait = self._round()
            except Exception:  # the thread must outlive any round: else the spool only grows
                logger.exception("otel-costattr: receiver ingest round failed; retrying")
                wait = self._interval
            finally:
                self._progress = None

    def _round(self) -> float:
        """One ingest round: the spool into the table. Returns the seconds to the next."""
        wait = self._interval
        with self._lock:
            self._spooled_rows = 0
            rows, rounds = self._uncompacted
            self._uncompacted = (rows, rounds + 1)
        compact = rows >= _COMPACT_ROWS or rounds + 1 >= _COMPACT_ROUNDS
        started = time.monotonic()
        try:
            while store.pending_spool(self.path) and not self._stop.is_set():
                # One DuckDB thread: the request handlers keep the other core. Each ingest in
                # a turn of its own: the API's and the pages' readers in this process get the
                # file between them (store/turns.py), and cannot keep it from the ingester.
                with store.writer_turn(self.path, _TURN):
                    if not ingest.ingest(self.path, retry=_BUSY, threads=1, compact=compact):
                        break
                self._progress = time.monotonic()
                self._kept_out = None
                if compact:  # merged: count again from here
                    compact = False
                    with self._lock:
                        self._uncompacted = (self._uncompacted[0] - rows, 0)
            self._failures, self.last_ingest_error = 0, None
            self._kept_out = None
        except store.LockTimeout:
            # Someone else is writing, or this process's readers kept the file (a long page):
            # next round. Rounds that each end so are stalled all the same (`stalled_for`).
            if self._kept_out is None:  # since this round's last step, or its start
                self._kept_out = self._progress if self._progress is not None else started
        except (store.StoreError, OSError) as e:  # disk full, I/O, no descriptors: the files wait
            wait = self._failed(str(e) if isinstance(e, store.StoreError) else f"{self.path}: {e}")
        except Exception:
            logger.exception("otel-costattr: receiver ingest into %s failed; retrying", self.path)
        try:
            self._refresh_estimate()
            self.journal_counts()
        except OSError as e:  # the spool folder cannot be listed now (descriptors, EIO)
            wait = self._failed(f"{self.path}: {e}")
        return wait

    @property
    def stalled_for(self) -> float | None:
        """Seconds the ingest has gone without finishing a step, once that is ``stall_after``
        or more, else None: a round blocked that long (a frozen or hung disk: nothing fails,
        nothing moves), or rounds that each ended with files kept from the table (another
        writer's lock, this process's readers holding the file: a review's 40,000-span run
        page kept an acknowledged span out for 5 minutes while /healthz said "ok")."""
        since = min((t for t in (self._progress, self._kept_out) if t is not None), default=None)
        if since is None:
            return None
        waited = time.monotonic() - since
        return waited if waited >= self.stall_after else None

    def _failed(self, error: str) -> float:
        """Record a round's failure (``/healthz`` is ``degraded`` while it stands); returns
        the seconds to the next round, backing off."""
        self._failures += 1
        self.last_ingest_error = error
        wait = min(self._interval * 2 ** min(self._failures, 16), _MAX_BACKOFF)
        logger.error("otel-costattr: receiver ingest: %s; retrying in %.3g s", error, wait)
        return wait
