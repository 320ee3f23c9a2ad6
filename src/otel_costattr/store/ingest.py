"""Moving the spool into ``spans``: insert without duplicates, quarantine what can never load.

Writers do not wait for the lock. A batch goes first to the *spool*: a Parquet file in
``<db>.spool/``, written under a temporary name, fsynced and atomically renamed, so it is
durable the moment it appears. Whoever next holds the write lock (any process: an exporter's
ingester, or `database.connect` from the CLI) moves the spool files into ``spans``, many files
per transaction, and deletes them after the commit. A crash between commit and delete only
means a file is ingested again; ingestion skips spans already stored, so a span is stored once.

Dedupe is on (trace_id, span_id) without a PRIMARY KEY: DuckDB loads an ART index whole on
every write connection, which made each ingest cost O(table size) (measured 330 ms per 20k
rows on a 2M-row table, versus 25 ms for the anti-join below). A retried span carries the
same start time, so the look for stored spans only scans the row groups whose start_time range
overlaps the incoming batch (zone maps).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import aggregates, identity, schema, spool
from .database import MIGRATIONS, LockTimeout, Retry, StoreError, alone, instance_settings, rollback, writing
from .spool import pending_spool

__all__ = ["IngestError", "ingest", "ingest_spool", "insert_table", "tuned", "unreadable"]

logger = logging.getLogger(__name__)

_ERROR_JOURNAL_EVERY = 30.0  # seconds between journal lines for a database that keeps failing
_failing: dict[str, float] = {}  # path -> when its last ingest error was journaled
# path -> (its journal's inode, its first bytes, the bytes of it read, whether an error was
# open there): `_open_error_elsewhere`
_journal_read: dict[str, tuple[int | None, bytes, int, bool]] = {}
_HEAD = 256


class IngestError(StoreError):
    """Spool files could not be moved into the table for a reason outside the files (no space,
    an I/O error, a failed commit): they stay pending and are tried again later."""


def _insert(con: duckdb.DuckDBPyConnection, source: str, params: list) -> tuple[int, int]:
    """Insert the spans of relation ``source`` that ``spans`` does not hold yet: (rows
    added, rows in ``source``)."""
    lo, hi, rows, timed, distinct = con.execute(
        "SELECT min(start_time), max(start_time), count(*), count(start_time),"
        f" count(DISTINCT (trace_id, span_id)) FROM {source}",
        params,
    ).fetchone()
    if not rows:
        return 0, 0
    # Repeats inside the batch are rare (a retry spooled twice): only then pay for DISTINCT ON,
    # which costs 2.5x the plain insert.
    # The rows as spooled, with the attribute columns the store keeps of model calls.
    columns = f"*, {schema.attribute_select()} FROM {source}"
    select = f"SELECT {columns}" if distinct == rows else f"SELECT DISTINCT ON (trace_id, span_id) {columns}"
    if lo is None:
        window, args = "s.start_time IS NULL", []
    elif timed < rows:  # some without a start time (OTLP's 0): those are stored NULL
        window, args = "(s.start_time BETWEEN ? AND ? OR s.start_time IS NULL)", [lo, hi]
    else:
        window, args = "s.start_time BETWEEN ? AND ?", [lo, hi]
    # Spans stored already are rare too (a file ingested again after a crash between commit and
    # delete), so they are looked for on the keys alone and the batch then streams into the
    # table. An anti-join in the insert itself made the batch, every column of it, the build
    # side of its hash table: 14.5 MB held for 8k spans, on top of the rows being inserted.
    stored = con.execute(
        f"SELECT count(*) FROM spans AS s SEMI JOIN (SELECT trace_id, span_id FROM {source}) AS b"
        f" ON s.trace_id = b.trace_id AND s.span_id = b.span_id WHERE {window}",
        [*params, *args],
    ).fetchone()
    if not stored or not stored[0]:
        row = con.execute(f"INSERT INTO spans BY NAME {select}", params).fetchone()
        return (int(row[0]) if row else 0), rows
    row = con.execute(
        f"""
        INSERT INTO spans BY NAME
        SELECT b.* FROM ({select}) AS b
        WHERE NOT EXISTS (
            SELECT 1 FROM spans AS s
            WHERE s.trace_id = b.trace_id AND s.span_id = b.span_id AND {window}
        )
        """,
        [*params, *args],
    ).fetchone()
    return (int(row[0]) if row else 0), rows


def insert_table(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert the rows of an Arrow table (as `mapping.SpanMapper.table` builds it), skipping
    spans already stored; commits. Returns the number of rows added."""
    con.register("_costattr_batch", table)
    try:
        con.execute("BEGIN TRANSACTION")
        added, _ = _insert(con, "_costattr_batch", [])
        con.execute("COMMIT")
        return added
    except duckdb.Error as e:
        rollback(con)
        raise StoreError(f"cannot insert spans: {e}") from e
    finally:
        con.unregister("_costattr_batch")


def ingest(
    path: str | os.PathLike[str],
    *,
    retry: Retry | float | None = None,
    max_files: int = 256,
    threads: int | None = None,
    compact: bool = True,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Open the store for writing, move up to ``max_files`` spool files into ``spans``, close.
    ``stop()`` True ends it between transactions (`ingest_spool`).
    ``threads`` caps DuckDB's threads meanwhile (a background ingester uses 1, leaving the
    other cores to the application). ``compact=False``, for an ingester inside the
    application's process: checkpoints without DuckDB's vacuum (see `_NO_VACUUM`), in the
    commit itself while the disk has room (see `_checkpoint_at_commit`), and runs the identity
    pass in a small buffer pool (see `_PASS_HEADROOM`). Returns the number of files handled.
    Raises `LockTimeout`, `IngestError` (the files stay pending) or `StoreError`."""
    try:
        with writing(path, retry=retry) as con, tuned(con, threads=threads, compact=compact):
            at_commit = {} if compact or not _alone(con) else _checkpoint_at_commit(path)
            with _settings(con, at_commit):
                return ingest_spool(
                    con,
                    path,
                    max_files=max_files,
                    bounded_pass=not compact,
                    at_commit=bool(at_commit),
                    stop=stop,
                )
    except (IngestError, LockTimeout):
        raise
    except StoreError as e:  # the store cannot be opened or migrated now (e.g. an instance a
        # failed checkpoint invalidated, until every connection to it closes): journaled, so
        # `store status` says why the spool grows
        raise _ingest_failed(path, [], e) from e


# Below this much free space the ingest commits through the WAL (see `_checkpoint_at_commit`).
_ROOM_FOR_CHECKPOINTS = 64 * 2**20


def _checkpoint_at_commit(path: str | os.PathLike[str]) -> dict[str, object]:
    """The settings that make each of the ingest's commits a checkpoint, or none when the disk
    is nearly full.

    Each transaction of the ingest is checkpointed at once anyway (`ingest_spool`). With a
    threshold of one byte DuckDB checkpoints in the COMMIT itself and, the transaction being
    larger than ``auto_checkpoint_skip_wal_threshold`` (100 kB), skips the WAL: the rows are
    written once, into the database file, instead of into the WAL and then the file (commit
    and checkpoint 2.6 us a span against 3.5 for 8k-span transactions, duckdb 2.0.1).
    Durability is the same: COMMIT returns once the checkpoint is on disk, and a checkpoint
    that fails fails the COMMIT, so the files stay pending and are ingested again, deduped.
    DuckDB then invalidates the instance (as after any failed checkpoint, the one that
    followed a WAL commit included): it is opened afresh once every connection to it in this
    process is closed, as the ingester's is after each round.
    The threshold is the instance's: set only while the ingester is its one connection
    (`_alone`), else the application's own connection to the store in this process would
    checkpoint at each of its commits too, and lose the instance to a checkpoint that fails.
    When DuckDB cannot checkpoint at commit (another transaction open in this process) it
    writes the WAL as before. What differs is what a failure leaves behind: a WAL write that
    fails is undone, while the blocks a failed checkpoint wrote stay allocated in the database
    file until its next checkpoint, so on a full disk they took the last room the spool's
    journal needed to record the error (tests/test_store_durability.py's full disk). Hence
    the WAL below `_ROOM_FOR_CHECKPOINTS` of free space."""
    try:
        disk = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return {}
    if disk.f_bavail * disk.f_frsize < _ROOM_FOR_CHECKPOINTS:
        return {}
    return {"checkpoint_threshold": "1B"}


@contextlib.contextmanager
def tuned(
    con: duckdb.DuckDBPyConnection, *, threads: int | None = None, compact: bool = True
) -> Iterator[None]:
    """Inside: DuckDB capped at ``threads``, and with ``compact=False`` its checkpoint vacuum
    off and a checkpoint made on the way out (not left to the close, after the restore). The
    settings are the database instance's, shared by its connections in this process: restored
    on the way out."""
    values: dict[str, object] = {}
    if threads is not None:
        values["threads"] = int(threads)
    if not compact:
        values.update(_NO_VACUUM)
    with _settings(con, values):
        yield
        if not compact and _alone(con):  # now, while vacuum is off; if it cannot (no space),
            # or another connection shares the instance (a failed checkpoint invalidates the
            # instance under it too), the commit is in the WAL and a later checkpoint takes it
            with contextlib.suppress(duckdb.Error):
                con.execute("CHECKPOINT")


# The instance's settings, set and restored (`database.instance_settings`), and whether the
# ingester has the instance to itself (`database.alone`).
_settings = instance_settings
_alone = alone


# DuckDB's checkpoint vacuum merges the row groups that each ingest appends (every commit on a
# fresh connection starts a new one). Measured (duckdb 2.0.1, 32k-row ingests, one thread): the
# checkpoint whose merge completes a row group peaks higher the more rows are stored (+140 MB
# of RSS at 131k rows, +260 at 262k, +390 at 393k; ~125 MB per 123k-row group already there),
# and memory_limit does not bound it. With vacuum off the peak stays flat and the row groups stay
# as ingested (one per round); the next writer with vacuum on (`store.connect`, the CLI,
# `serve`) merges them all at once.
_NO_VACUUM = {"max_vacuum_tasks": 0}


def _insert_files(con: duckdb.DuckDBPyConnection, files: Sequence[Path]) -> tuple[int, int]:
    con.execute("BEGIN TRANSACTION")
    added = _insert(con, "read_parquet(?, union_by_name = true)", [[str(f) for f in files]])
    con.execute("COMMIT")
    return added


def ingest_spool(
    con: duckdb.DuckDBPyConnection,
    path: str | os.PathLike[str],
    *,
    max_files: int = 64,
    bounded_pass: bool = False,
    at_commit: bool = False,
    stop: Callable[[], bool] | None = None,
    upto: str | None = None,
) -> int:
    """Move up to ``max_files`` spool files (oldest first; named ``upto`` or before, when
    given, whatever the suffix: an Arrow file of ``upto``'s name converted is still it) into
    ``spans``, then run the
    identity pass (``bounded_pass``: in a small buffer pool first, see `_PASS_HEADROOM`, and
    after every `_SETTLE_EVERY` transactions).
    Returns how many files were moved (0: none pending, or none readable).

    The files go in transactions of about `_CHUNK_ROWS` spans each, deleted after each commit
    (``bounded_pass``: checkpointed too, and DuckDB's buffers trimmed, see `_trim`, while
    ``con`` is the instance's one connection, see `_alone`; ``at_commit``: the caller made
    commits checkpoints, see `_checkpoint_at_commit`, undone here for the rest of the round
    once another connection joins or the disk fills). When a
    transaction fails, each of its files is checked on its own, read-only and away from this
    database (`unreadable`): only a file that check rejects is quarantined (``bad/``, counted,
    `repair` retries it). If every file passes, the failure was the database's or the disk's
    (no space, I/O, a failed commit): the files not yet committed stay pending and
    `IngestError` is raised, so the caller retries later. Nothing acknowledged is set aside
    for an environmental fault. ``stop()`` True after a transaction ends the round there
    (the identity pass run over what it committed): an exporter's ingester stopping at the
    interpreter's exit, which a daemon thread still inside DuckDB then would abort."""
    converted = True
    try:
        spool.clean_stale_tmp(path)
        try:
            spool.convert_arrow(path, max_files)
        except OSError as e:  # the old files wait for the next ingest; the Parquet ones go on
            converted = False
            # journaled (store status shows it) and left unrecovered by this round's success
            logger.warning("otel-costattr: Arrow spool files of %s not converted now: %s", path, e)
            _ingest_failed(path, [], OSError(f"Arrow spool files not converted: {e}"))
        files = [
            f
            for f in pending_spool(path)
            if f.name.endswith(spool.PARQUET) and (upto is None or _stem(f.name) <= _stem(upto))
        ][:max_files]
    except OSError as e:  # the spool folder cannot be read right now (descriptors, EIO)
        raise _ingest_failed(path, [], e) from e
    if not files:
        return 0
    added = moved = 0
    chunks = list(_chunks(files))
    for n, chunk in enumerate(chunks, 1):
        if at_commit and (not _alone(con) or not _checkpoint_at_commit(path)):
            # A connection joined the instance mid-round, or the disk filled: back to the WAL
            # for the rest of the round (the round's `_settings` restores the rest).
            with contextlib.suppress(duckdb.Error):
                con.execute("RESET checkpoint_threshold")
            at_commit = False
        spans, taken = _move(con, path, chunk)
        added += spans
        moved += taken
        if not bounded_pass:  # the rows committed wait in memory until the pass's checkpoint
            if stop is not None and stop():
                break
            continue
        alone = _alone(con)
        # A checkpoint that fails invalidates the instance: never under another connection.
        checkpointed = alone
        if alone:
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error:  # e.g. no space: the commit is in the WAL
                checkpointed = False
        stopping = stop is not None and stop()
        if n % _SETTLE_EVERY == 0 or n == len(chunks) or stopping:
            _settle(con, alone)
        # Only rows on disk can be let go: a trim before the checkpoint wrote the rows just
        # committed out to temporary files (14 MB for 60 transactions).
        if checkpointed:
            _trim(con)
        if stopping:
            break
    if not bounded_pass:
        _settle(con, bounded_pass)  # the one hook of store/identity.py and store/aggregates.py
    if converted and (_failing.pop(str(path), None) is not None or _open_error_elsewhere(path)):
        spool.record(path, "ingest_recovered", files=moved)
        logger.warning("otel-costattr: ingesting into %s works again", path)
    logger.debug("otel-costattr: ingested %d spool files (%d new spans)", moved, added)
    return moved


# A transaction's rows wait in memory, uncompressed, until its commit and the checkpoint after
# it: about 1.7 KB a span of the exporter's (3.4 MB a 2,048-span file, DuckDB 2.0.1). The
# exporter's ingester takes whatever is pending, more when the machine is busy or the lock was
# held, and one transaction for all of it raised the application's peak RSS by that much: 128
# pending files (262k spans) +257 MB. Moved in transactions of this many spans, each
# checkpointed, with a `_trim` every 4 of them and after the pass: +55-58 MB, for 1.3-1.6x the
# CPU (2.8-3.7 s against 1.8-2.3; commits and checkpoints ~0.6 s, trims 0.1 s). With a `_trim`
# after each and the pass every `_SETTLE_EVERY`: +38-39 MB, 3.3-3.7 s against 2.35-2.65 s
# (benchmarks/bench_ingest_backlog.py, 2026-12-03).
_CHUNK_ROWS = 8192
# In the application's process the identity pass and the rollup facts' upkeep run after every
# this many transactions (and after the last), inside a bound (see `_PASS_HEADROOM`). What the
# upkeep needs grows with the spans moved since it last ran: once for a backlog of 128 files
# (262k spans) it outgrew the bound and ran again unbounded (+169 MB). After every 32k spans,
# the exporter's usual round (`_INGEST_ROWS`), a backlog needs no more than a round. The
# transaction's own trim comes after the pass: the bound is what the pool holds plus a
# headroom, and right after a trim it holds too little.
_SETTLE_EVERY = 4


def _trim(con: duckdb.DuckDBPyConnection) -> None:
    """Give back the buffers DuckDB keeps in this process once what they held is checkpointed:
    they are not in duckdb_memory(), and only a lower memory_limit frees them (measured: six
    16k-span transactions in one connection held +46 MB more; a bound relative to the pool's
    use grew with it, ~1 MB a transaction). The limit is the instance's: set and restored at
    once, and only when no other connection shares it (`_alone`).

    Setting the limit is also what hands the freed memory back to the system: DuckDB then
    purges its allocator's (jemalloc's) dirty pages, which otherwise stay resident until they
    are reused. Between two transactions they were 17-31 MB (``stats.arenas.<i>.pdirty``),
    and the blocks kept cached another 10-25 (``duckdb_memory()``, growing 1 MB a
    transaction): hence a trim after every transaction, down to a quarter of the pass's
    headroom, when the ingester has the instance to itself (`_alone`). What it evicts is
    read again when needed (the next look for stored spans reads the newest row group's
    keys)."""
    floor = _PASS_HEADROOM // 4
    with contextlib.suppress(duckdb.Error), _settings(con, {"memory_limit": f"{floor}B"}):
        pass


def _chunks(files: Sequence[Path]) -> Iterator[list[Path]]:
    """``files`` in order, in runs of about `_CHUNK_ROWS` spans (a bigger file alone), read
    from each file's footer. A file whose footer cannot be read goes alone: it is `_move`'s
    to judge, and only it is then checked."""
    chunk: list[Path] = []
    rows = 0
    for f in files:
        try:
            n = pq.read_metadata(f).num_rows
        except Exception:  # not only OSError, ArrowException: a flipped bit in a column name
            n = _CHUNK_ROWS  # is a UnicodeDecodeError (a review: one such file stopped all ingest)
        if chunk and rows + n > _CHUNK_ROWS:
            yield chunk
            chunk, rows = [], 0
        chunk.append(f)
        rows += n
    if chunk:
        yield chunk


def _stem(name: str) -> str:
    """A spool file's name without its suffix (the time it was written, its process, its
    number): one order whatever the format."""
    return name.partition(".")[0]


# What an insert of spool files raises when it fails: DuckDB's errors, and the one its
# Python client raises when the error's message holds a corrupt file's raw bytes.
_INSERT_FAILED = (duckdb.Error, UnicodeDecodeError)


def _move(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], files: list[Path]) -> tuple[int, int]:
    """Insert ``files`` in one transaction and delete them; a file `unreadable` rejects is
    quarantined and the rest tried again. Returns the spans added and the files moved; raises
    `IngestError` when the failure was not the files'."""
    try:
        added, rows = _insert_files(con, files)
    except _INSERT_FAILED as e:
        rollback(con)
        good = [f for f in files if not _set_aside_if_unreadable(path, f)]
        if len(good) == len(files):
            raise _ingest_failed(path, files, e) from e
        try:  # the bad ones are out of the way: the rest in one transaction again
            added, rows = _insert_files(con, good) if good else (0, 0)
        except _INSERT_FAILED as e2:
            rollback(con)
            raise _ingest_failed(path, good, e2) from e2
        files = good
    for f in files:
        f.unlink(missing_ok=True)
    if rows > added:
        # Spans whose (trace id, span id) was stored already, or came twice: a retry's copy
        # (nothing lost), or ids that collide (a broken id generator: spans lost). Counted
        # either way, for `store status` (a review saw 4 of 5 colliding spans vanish unseen).
        spool.record(path, "repeated", spans=rows - added)
    return added, len(files)


# The identity pass reads a few columns of every row group stored (its look for calls left to
# settle, and the scans of its walk), and DuckDB keeps each block it reads in the buffer pool
# until the connection closes: in the application's process the ingester's peak grew with the
# table (55 MB of blocks at 1M spans in 209 row groups, duckdb_memory(); the 1M-span RSS run of
# benchmarks/bench_exporter.py). Given only this much room above what the pool holds already,
# the scans evict blocks as they go; above, not instead of, what it holds: an absolute limit
# could push the rows just committed out to a temporary file. A pass that needs more room (a
# backlog of calls to walk: 100k needed more than 16 MB) runs again without the bound.
_PASS_HEADROOM = 16 * 2**20

# The rollup facts' upkeep (store/aggregates.py) builds a few temporary tables of the batch's
# calls; DuckDB gives each column of an in-memory table a 256 KiB block, so it needs a few MB
# of working room whatever the table's size (measured: 2-4 MB for a batch of 400 spans) on top
# of the pass's headroom. That room is lent for the upkeep only: the limit then goes back to
# the pass's bound, which evicts what the upkeep's scans read above it (the temporary tables
# are dropped by then), and the checkpoint runs inside that bound, so the blocks it writes for
# the facts are not kept either (they were +1.3-2.1 MB held after each ingest).
_FACTS_WORK = 8 * 2**20


def _settle(con: duckdb.DuckDBPyConnection, bounded: bool) -> None:
    if bounded:
        try:
            used = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
            bound = int(used[0] or 0) + _PASS_HEADROOM
            with _settings(con, {"memory_limit": f"{bound}B"}):
                identity.attempt(con)
                con.execute(f"SET memory_limit = '{bound + _FACTS_WORK}B'")
                aggregates.attempt(con)  # the rollup facts, from what the pass settled
                con.execute(f"SET memory_limit = '{bound}B'")
                with contextlib.suppress(duckdb.Error):  # else `tuned`'s own checkpoint does it
                    con.execute("CHECKPOINT")
            return
        except (duckdb.Error, ValueError) as e:  # out of memory, mostly: once more, unbounded
            logger.debug("otel-costattr: identity pass in a small buffer pool failed: %s", e)
        # On a connection of its own: after a pass that ran out of memory was rolled back, its
        # connection's temporary catalog could refuse to create the pass's tables again
        # ("Catalog write-write conflict on create ... costattr_identity_todo": 2 of 450 such
        # retries under load), which left the calls unsettled until the next ingest.
        with con.cursor() as fresh:
            identity.settle(fresh)
            aggregates.maintain(fresh)
        return
    identity.settle(con)
    aggregates.maintain(con)


def _open_error_elsewhere(path: str | os.PathLike[str]) -> bool:
    """Whether the journal holds an ingest error no ingest recovered from: another process's
    (this one's are in `_failing`), which exited before its next ingest worked, so that only
    this success can close it; `store status` said "not resolved" for good. Read on from
    where this process last stopped (the whole file after a rollover): a receiver pushing
    back journals a line every round, and the whole journal is up to 4 MB."""
    journal = spool.spool_dir(path) / spool.JOURNAL
    try:
        with open(journal, "rb") as f:
            stat = os.fstat(f.fileno())
            inode, head, done, open_ = _journal_read.get(str(path), (None, b"", 0, False))
            # Another file than the one read (rolled over, or emptied or deleted and written
            # again, maybe on the same inode): its first line, which holds a time and a pid,
            # tells; then it is read whole.
            first = f.read(_HEAD)
            if inode != stat.st_ino or stat.st_size < done or first[: len(head)] != head:
                done, open_ = 0, False
            if stat.st_size == done:
                return open_
            f.seek(done)
            data = f.read()
    except OSError:
        _journal_read.pop(str(path), None)  # gone: whatever comes next is read whole
        return False
    whole = data.rfind(b"\n") + 1  # lines another process is writing are read next time
    for line in data[:whole].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "ingest_error":
            open_ = True
        elif kind == "ingest_recovered":
            open_ = False
        elif kind == "carried":  # a rollover's totals (spool._roll_over)
            open_ = bool(event.get("last_error")) and not event.get("recovered_time")
    done += whole
    _journal_read[str(path)] = (stat.st_ino, first[: min(done, _HEAD)], done, open_)
    return open_


def _ingest_failed(path: str | os.PathLike[str], files: Sequence[Path], error: BaseException) -> IngestError:
    """The error to raise for an environmental failure; journaled at most every 30 s."""
    message = " ".join(str(error).split())
    now = time.monotonic()
    last = _failing.get(str(path))
    if last is None or now - last >= _ERROR_JOURNAL_EVERY:
        _failing[str(path)] = now
        try:
            pending: int | None = len(pending_spool(path))
        except OSError:
            pending = None
        spool.record(path, "ingest_error", error=message, pending_files=pending)
    return IngestError(f"{path}: {len(files)} spool files kept for a later try: {message}")


def _set_aside_if_unreadable(path: str | os.PathLike[str], file: Path) -> bool:
    """Quarantine ``file`` if `unreadable` says it can never be ingested. True when it is no
    longer pending (quarantined, or already taken by another process)."""
    if not file.exists():
        return True
    if file.name in _readable:
        return False
    reason = unreadable(file)
    if reason is None:
        if len(_readable) >= 4096:  # bounded; a miss only costs a second check
            _readable.clear()
        _readable.add(file.name)
        return False
    spool.quarantine(path, file, reason)
    return True


_readable: set[str] = set()  # spool files `unreadable` passed: not checked again while pending
# Failures of the process or the machine, not of the file: out of memory, interrupted. An IO
# error is the file's only when the system reads it whole and the check fails alike twice
# (`unreadable`): else it could not be opened or read (no descriptors left, EIO,
# permissions). A corrupt or foreign file fails with a parse, schema or constraint error.
_PROBE_ENVIRONMENT = (
    duckdb.OutOfMemoryException,
    duckdb.InterruptException,
    duckdb.FatalException,
)


def unreadable(file: Path) -> str | None:
    """Why ``file`` can never be ingested, or None when it can.

    The check inserts the file into an empty in-memory database with the same schema (one a
    process, each insert rolled back: `_probe`), so it
    says something about the file alone: not Parquet, corrupt, columns or types the table
    cannot take, missing ids. A failure of the real database (full disk, I/O errors, an
    invalidated instance) cannot reach it. Memory exhaustion and interrupts are not held
    against the file, nor is a file that cannot be opened or read (no descriptors left, EIO):
    it stays pending."""
    first = _probe(file)
    if first is None or first[0] is None:
        return None
    kind, message = first
    if kind == "io":
        # DuckDB says IO Error for some corrupt Parquet too ("INT16 converted type can only
        # be set for value of Type::INT32"): an error naming no fault of the system, about a
        # file the system reads whole, twice alike, is the file's. Any other stays pending: a
        # process one descriptor short failed DuckDB's open twice while Python's read passed,
        # and three good files were quarantined ("Too many open files": a review).
        if any(fault in message for fault in _SYSTEM_FAULTS) or not _reads_whole(file):
            return None
        again = _probe(file)
        if again != first:
            return None
    if not file.exists():
        return None  # taken by another process meanwhile
    return message


# What DuckDB's IO errors say of the system's faults: the system's text of each errno a read
# can meet, never the file's. Not DuckDB's own words ("Could not read enough bytes" is also
# its Parquet reader on a footer pointing past the file's end: a corrupt file, kept pending
# for good and every later one behind it, a review found).
_SYSTEM_FAULTS = tuple(
        os.strerror(code)
        for code in (
            errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EIO, errno.EACCES, errno.EPERM,
            errno.ENOSPC, errno.EAGAIN, errno.EINTR, errno.EROFS, errno.ENOENT, errno.EBUSY,
            errno.ESTALE, errno.ETIMEDOUT, errno.ENXIO, errno.EDQUOT,
        )
)  # fmt: skip


def _probe(file: Path) -> tuple[str | None, str] | None:
    """(kind, why) of inserting ``file`` into an empty in-memory store: kind None when it goes
    in, "io" for DuckDB's IO error, "file" for an error about the file; None when the check
    itself could not run or failed for the process's sake (memory, an interrupt). The insert
    is rolled back, so the store stays empty for the next check."""
    _probe_unseen_fork()
    with _probe_state["lock"]:
        probe = _probe_store()
        if probe is None:
            return None  # cannot even check: keep the file
        try:
            # A check a signal handler's exception interrupted may have left its transaction
            # open: BEGIN then failed, and the next good file was blamed (a review).
            with contextlib.suppress(duckdb.Error):
                probe.execute("ROLLBACK")
            probe.execute("BEGIN TRANSACTION")
        except (duckdb.Error, MemoryError):
            _probe_state.pop("store", None)
            return None
        kept = False
        try:
            probe.execute("INSERT INTO spans BY NAME SELECT * FROM read_parquet(?)", [str(file)])
            kept = True
        except duckdb.IOException as e:
            kept = True
            return "io", _reason(str(e), file)
        except _PROBE_ENVIRONMENT:
            return None
        except duckdb.Error as e:
            kept = True
            return "file", _reason(str(e), file)
        except UnicodeDecodeError:  # the error's message held the file's raw (corrupt) bytes
            kept = True
            return "file", "corrupt: DuckDB's error about it is not even text"
        except MemoryError:
            return None
        finally:
            try:
                probe.execute("ROLLBACK")
            except duckdb.Error:
                kept = False
            if not kept:  # out of memory, interrupted: a fresh one next time
                _probe_state.pop("store", None)
                with contextlib.suppress(duckdb.Error):
                    probe.close()
        return None, ""


# The checks' in-memory store, made once a process (its migrations took 0.1 s a file: a
# failed transaction of 81 files held the write lock 15 s checking them, a review saw), and
# the lock its checks take turns under, made afresh in a forked child (a fork during a check
# left the child's lock held for good).
_probe_state: dict[str, Any] = {"lock": threading.Lock(), "pid": os.getpid()}


def _probe_forked() -> None:
    """In a forked child: the parent's in-memory store is not the child's to use, nor to
    free. Freed (when the interpreter exits, say), DuckDB tears down an instance whose
    threads stayed in the parent, and the child died at exit of SIGSEGV or an abort (gunicorn
    --preload workers after the exporter's ingester once checked a file: a review). So it is
    made immortal here, one small instance a child, and the child makes its own."""
    _probe_state["pid"] = os.getpid()
    _probe_state["lock"] = threading.Lock()
    inherited = _probe_state.pop("store", None)
    if inherited is not None:
        try:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(inherited))
        except Exception:  # not CPython: keep it referenced, as before
            _probe_state.setdefault("inherited", []).append(inherited)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_probe_forked)


@atexit.register
def _probe_unseen_fork() -> None:
    """`_probe_forked` in a child of a fork Python's hooks did not see (a C extension's own
    fork()): before each check, and at exit, before the modules are torn down, for a child
    that never checks (it freed the parent's store then: a review)."""
    if _probe_state["pid"] != os.getpid():
        _probe_forked()


def _probe_store() -> duckdb.DuckDBPyConnection | None:
    probe = _probe_state.get("store")
    if probe is not None:
        return probe
    try:
        probe = duckdb.connect(":memory:")
        for step in MIGRATIONS:
            probe.execute(step.sql)
        probe.execute("SET threads = 1")
    except (duckdb.Error, MemoryError):
        return None
    _probe_state["store"] = probe
    return probe


def _reads_whole(file: Path) -> bool:
    """Whether the system reads ``file`` from start to end (no EIO, descriptors to spare)."""
    try:
        with open(file, "rb") as f:
            while f.read(1 << 20):
                pass
    except OSError:
        return False
    return True


def _reason(message: str, file: Path) -> str:
    """DuckDB's error as one line about the file: without the probe's SQL it echoes ('LINE 1:
    INSERT INTO spans ... ^^^'), the file by its name (it is about to move to bad/)."""
    message = message.split("\nLINE ", 1)[0].replace(str(file), file.name)
    return " ".join(message.split())
