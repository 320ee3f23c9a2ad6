"""The DuckDB span store: schema, migrations, connecting with lock retry, and the spool.

DuckDB lets one process hold a database file (a second cannot open it at all, not even
read-only), so nobody here holds it for long: writers and readers open a short-lived
connection, retrying a lock conflict with bounded backoff (`connect`).

Writers do not wait for the lock. A batch goes first to the *spool*: a Parquet file in
``<db>.spool/``, written under a temporary name, fsynced and atomically renamed, so it is
durable the moment it appears. Whoever next holds the write lock (any process: an exporter's
ingester, or `connect` from the CLI) moves the spool files into ``spans``, many files per
transaction, and deletes them after the commit. A crash between commit and delete only means
a file is ingested again; ingestion skips spans already stored, so a span is stored once.

Dedupe is on (trace_id, span_id) without a PRIMARY KEY: DuckDB loads an ART index whole on
every write connection, which made each ingest cost O(table size) (measured 330 ms per 20k
rows on a 2M-row table, versus 25 ms for the anti-join below). A retried span carries the
same start time, so the anti-join only scans the row groups whose start_time range overlaps
the incoming batch (zone maps).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from .._resources import bundled_dir
from . import schema, spool

# The spool's file functions live in store/spool.py; these names stay importable from here.
from .spool import SPOOL_SUFFIX, pending_spool, spool_bytes, spool_dir, write_spool  # noqa: F401

logger = logging.getLogger(__name__)

_ERROR_JOURNAL_EVERY = 30.0  # seconds between journal lines for a database that keeps failing
_failing: dict[str, float] = {}  # path -> when its last ingest error was journaled
_path_locks: dict[str, threading.RLock] = {}
_path_locks_guard = threading.Lock()


class StoreError(Exception):
    """The span store could not be opened, migrated or written. Names the path."""


class LockTimeout(StoreError):
    """Another process kept the database file locked longer than the retry allowed."""


class IngestError(StoreError):
    """Spool files could not be moved into the table for a reason outside the files (no space,
    an I/O error, a failed commit): they stay pending and are tried again later."""


@dataclass(frozen=True)
class Retry:
    """Bounded exponential backoff for a lock conflict: ``timeout`` seconds in all."""

    timeout: float = 10.0
    initial: float = 0.005
    maximum: float = 0.2

    def __post_init__(self) -> None:
        if self.timeout < 0 or self.initial <= 0 or self.maximum < self.initial:
            raise ValueError(f"invalid retry policy: {self!r}")


@dataclass(frozen=True)
class Migration:
    """One named schema step. Its SQL is frozen once released: change the schema by adding
    a migration (for a column: an entry in `schema.SPANS`), never by editing one."""

    name: str
    sql: str


# The column migrations come from the one column list (store/schema.py); any other migration
# (views, indexes) is appended after them, in the order it was released.
MIGRATIONS: tuple[Migration, ...] = (
    *(Migration(name, sql) for name, sql in schema.duckdb_migrations()),
    # The call contract as the views `calls` and `runs`, so that any DuckDB client opening the
    # file gets the attribution rules (rollups/contract.py derives the rollups' macros from the
    # same file). CREATE OR REPLACE: when the rules change, a new migration runs it again.
    Migration("0002_call_views", (bundled_dir("queries") / "_calls.sql").read_text(encoding="utf-8")),
)

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS costattr_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
)


def _path_lock(path: str) -> threading.RLock:
    # DuckDB shares one database instance between connections of a process, so in-process
    # writers are not kept apart by the file lock: this lock does it for migrating and
    # ingesting. Reentrant: `writing` holds it around `connect`, which takes it too.
    with _path_locks_guard:
        return _path_locks.setdefault(path, threading.RLock())


def is_lock_conflict(error: BaseException) -> bool:
    """True when ``error`` means someone else holds the database file right now."""
    text = str(error)
    return isinstance(error, duckdb.Error) and (
        "Could not set lock" in text or "Conflicting lock" in text or "different configuration" in text
    )


def check_path(path: str | os.PathLike[str]) -> str:
    """Validate a database path before first use: an existing file must be a DuckDB database,
    a new one must be creatable. Returns the absolute path; raises `StoreError` naming it."""
    p = Path(path).expanduser().absolute()
    if p.is_dir():
        raise StoreError(f"{p}: is a directory, not a DuckDB database file")
    if p.exists():
        try:
            with open(p, "rb") as f:
                header = f.read(12)
        except OSError as e:
            raise StoreError(f"{p}: cannot read: {e.strerror or e}") from e
        if len(header) < 12 or header[8:12] != b"DUCK":
            raise StoreError(f"{p}: not a DuckDB database file")
        if not os.access(p, os.W_OK):
            raise StoreError(f"{p}: not writable")
        return str(p)
    parent = p.parent
    if not parent.is_dir():
        raise StoreError(f"{p}: cannot create: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{p}: cannot create: directory {parent} is not writable")
    return str(p)


def connect(
    path: str | os.PathLike[str],
    *,
    read_only: bool = False,
    retry: Retry | float | None = None,
    migrate: bool = True,
    ingest: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the span store, retrying a lock conflict with bounded backoff.

    ``retry``: a `Retry`, a timeout in seconds, or None for the default (10 s). A read-write
    connection is migrated and has the spool ingested first (``migrate``, ``ingest``); a
    read-only one briefly opens read-write to do so when needed, so readers see every span
    an exporter acknowledged. Close the connection soon: while open, nobody else can write.
    Raises `LockTimeout`, or `StoreError` for anything else, naming the path.
    """
    policy = _policy(retry)
    path = str(Path(path).expanduser().absolute())
    if read_only:
        if not os.path.exists(path):
            raise StoreError(f"{path}: no such database")
        if (migrate or ingest) and _needs_writer(path, policy, migrate, ingest):
            try:
                connect(path, retry=policy, migrate=migrate, ingest=ingest).close()
            except LockTimeout:
                raise
            except StoreError as e:  # e.g. a database we may read but not write
                logger.warning("otel-costattr: opening read-only without upgrading: %s", e)
        return _open(path, True, policy)
    con = _open(path, False, policy)
    try:
        with _path_lock(path):
            if migrate:
                _migrate(con, path, MIGRATIONS)
            if ingest:
                try:
                    while ingest_spool(con, path):
                        pass
                except StoreError as e:  # the files stay for a later writer; still open
                    logger.warning("otel-costattr: spool not ingested: %s", e)
    except BaseException:
        con.close()
        raise
    return con


def _needs_writer(path: str, policy: Retry, migrate: bool, ingest: bool) -> bool:
    if ingest and pending_spool(path):
        return True
    if not migrate:
        return False
    con = _open(path, True, policy)
    try:
        return bool(_pending(con, MIGRATIONS))
    finally:
        con.close()


def _policy(retry: Retry | float | None) -> Retry:
    if retry is None:
        return Retry()
    if isinstance(retry, Retry):
        return retry
    return Retry(timeout=float(retry))


def _open(path: str, read_only: bool, policy: Retry) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + policy.timeout
    delay = policy.initial
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.Error as e:
            if not is_lock_conflict(e):
                raise StoreError(f"{path}: cannot open: {e}") from e
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout(
                    f"{path}: locked by another process for more than {policy.timeout:g}s: {e}"
                ) from e
            time.sleep(min(delay, left))
            delay = min(delay * 2, policy.maximum)


def _pending(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration]) -> list[Migration]:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'costattr_migrations'"
        " AND schema_name = 'main' AND database_name = current_database()"
    ).fetchone()
    applied: set[str] = set()
    if exists and exists[0]:
        applied = {r[0] for r in con.execute("SELECT name FROM costattr_migrations").fetchall()}
    return [m for m in migrations if m.name not in applied]


def migrate(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations ``con`` lacks, in order, each in its own transaction, recording
    each in ``costattr_migrations``. Returns the names applied. Raises `StoreError`."""
    return _migrate(con, "database", migrations)


def _migrate(con: duckdb.DuckDBPyConnection, where: str, migrations: Sequence[Migration]) -> list[str]:
    try:
        if not _pending(con, migrations):
            return []
        con.execute(_MIGRATIONS_TABLE)
    except duckdb.Error as e:
        raise StoreError(f"{where}: cannot read migrations: {e}") from e
    done = []
    for step in _pending(con, migrations):
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(step.sql)
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            con.execute("INSERT INTO costattr_migrations VALUES (?, ?)", [step.name, now])
            con.execute("COMMIT")
        except duckdb.Error as e:
            _rollback(con)
            raise StoreError(f"{where}: migration {step.name} failed: {e}") from e
        logger.info("otel-costattr: %s: applied migration %s", where, step.name)
        done.append(step.name)
    return done


# -- ingest -----------------------------------------------------------------------------


def _insert(con: duckdb.DuckDBPyConnection, source: str, params: list) -> int:
    """Insert the spans of relation ``source`` that ``spans`` does not hold yet."""
    lo, hi, rows, distinct = con.execute(
        "SELECT min(start_time), max(start_time), count(*), count(DISTINCT (trace_id, span_id))"
        f" FROM {source}",
        params,
    ).fetchone()
    if not rows:
        return 0
    # Repeats inside the batch are rare (a retry spooled twice): only then pay for DISTINCT ON,
    # which costs 2.5x the plain insert.
    select = f"SELECT * FROM {source}"
    if distinct != rows:
        select = f"SELECT DISTINCT ON (trace_id, span_id) * FROM {source}"
    if lo is None:
        window, args = "s.start_time IS NULL", []
    else:
        window, args = "s.start_time BETWEEN ? AND ?", [lo, hi]
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
    return int(row[0]) if row else 0


def insert_table(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert the rows of an Arrow table (as `mapping.SpanMapper.table` builds it), skipping
    spans already stored; commits. Returns the number of rows added."""
    con.register("_costattr_batch", table)
    try:
        con.execute("BEGIN TRANSACTION")
        added = _insert(con, "_costattr_batch", [])
        con.execute("COMMIT")
        return added
    except duckdb.Error as e:
        _rollback(con)
        raise StoreError(f"cannot insert spans: {e}") from e
    finally:
        con.unregister("_costattr_batch")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # no transaction open: nothing to undo
        con.execute("ROLLBACK")


@contextmanager
def writing(
    path: str | os.PathLike[str], *, retry: Retry | float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-write connection (migrated, spool left alone), held by one thread
    of this process at a time; closed, releasing the file, on exit."""
    path = str(Path(path).expanduser().absolute())
    with _path_lock(path):
        con = connect(path, retry=retry, migrate=True, ingest=False)
        try:
            yield con
        finally:
            con.close()


def ingest(
    path: str | os.PathLike[str],
    *,
    retry: Retry | float | None = None,
    max_files: int = 256,
    threads: int | None = None,
) -> int:
    """Open the store for writing, move up to ``max_files`` spool files into ``spans``, close.
    ``threads`` caps DuckDB's threads meanwhile (a background ingester uses 1, leaving the
    other cores to the application). Returns the number of files handled. Raises
    `LockTimeout`, `IngestError` (the files stay pending) or `StoreError`."""
    with writing(path, retry=retry) as con:
        if threads is None:
            return ingest_spool(con, path, max_files=max_files)
        before = con.execute("SELECT current_setting('threads')").fetchone()[0]
        con.execute(f"SET threads = {int(threads)}")
        try:
            return ingest_spool(con, path, max_files=max_files)
        finally:
            with contextlib.suppress(duckdb.Error):  # a failed database may refuse even this
                con.execute(f"SET threads = {int(before)}")


def _insert_files(con: duckdb.DuckDBPyConnection, files: Sequence[Path]) -> int:
    con.execute("BEGIN TRANSACTION")
    added = _insert(con, "read_parquet(?, union_by_name = true)", [[str(f) for f in files]])
    con.execute("COMMIT")
    return added


def ingest_spool(con: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], *, max_files: int = 64) -> int:
    """Move up to ``max_files`` spool files (oldest first) into ``spans`` in one transaction,
    then delete them. Returns how many files were handled (0: spool empty).

    When the transaction fails, each file is checked on its own, read-only and away from this
    database (`unreadable`): only a file that check rejects is quarantined (``bad/``, counted,
    `repair` retries it). If every file passes, the failure was the database's or the disk's
    (no space, I/O, a failed commit): the files stay pending and `IngestError` is raised, so
    the caller retries later. Nothing acknowledged is set aside for an environmental fault."""
    try:
        spool.clean_stale_tmp(path)
        files = pending_spool(path)[:max_files]
    except OSError as e:  # the spool folder cannot be read right now (descriptors, EIO)
        raise _ingest_failed(path, [], e) from e
    if not files:
        return 0
    try:
        added = _insert_files(con, files)
    except duckdb.Error as e:
        _rollback(con)
        good = [f for f in files if not _set_aside_if_unreadable(path, f)]
        if len(good) == len(files):
            raise _ingest_failed(path, files, e) from e
        try:  # the bad ones are out of the way: the rest in one transaction again
            added = _insert_files(con, good) if good else 0
        except duckdb.Error as e2:
            _rollback(con)
            raise _ingest_failed(path, good, e2) from e2
        files = good
    for f in files:
        f.unlink(missing_ok=True)
    if _failing.pop(str(path), None) is not None:
        spool.record(path, "ingest_recovered", files=len(files))
        logger.warning("otel-costattr: ingesting into %s works again", path)
    logger.debug("otel-costattr: ingested %d spool files (%d new spans)", len(files), added)
    return len(files)


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
# Failures of the process or the machine, not of the file: out of memory, interrupted, or
# the file could not be opened or read at all (no file descriptors left, EIO, permissions).
# A corrupt or foreign file fails with a parse, schema or constraint error instead.
_PROBE_ENVIRONMENT = (
    duckdb.OutOfMemoryException,
    duckdb.InterruptException,
    duckdb.FatalException,
    duckdb.IOException,
)


def unreadable(file: Path) -> str | None:
    """Why ``file`` can never be ingested, or None when it can.

    The check inserts the file into a fresh in-memory database with the same schema, so it
    says something about the file alone: not Parquet, corrupt, columns or types the table
    cannot take, missing ids. A failure of the real database (full disk, I/O errors, an
    invalidated instance) cannot reach it. Memory exhaustion and interrupts are not held
    against the file, nor is a file that cannot be opened or read (no descriptors left, EIO):
    it stays pending."""
    try:
        probe = duckdb.connect(":memory:")
    except duckdb.Error:
        return None  # cannot even check: keep the file
    try:
        for step in MIGRATIONS:
            probe.execute(step.sql)
        probe.execute("SET threads = 1")
        probe.execute("INSERT INTO spans BY NAME SELECT * FROM read_parquet(?)", [str(file)])
    except _PROBE_ENVIRONMENT:
        return None
    except duckdb.Error as e:
        if not file.exists():
            return None  # taken by another process meanwhile
        return " ".join(str(e).split())
    finally:
        probe.close()
    return None
