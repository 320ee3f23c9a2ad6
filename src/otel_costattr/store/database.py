"""The DuckDB span store: named migrations, and connecting with lock retry.

DuckDB lets one process hold a database file (a second cannot open it at all, not even
read-only), so nobody here holds it for long: writers and readers open a short-lived
connection, retrying a lock conflict with bounded backoff (`connect`).

Writers do not wait for the lock: a batch goes to the spool (store/spool.py), and whoever
next holds the write lock moves it into ``spans`` (store/ingest.py, which says why it is
safe); `connect` does it too, so readers see every span an exporter acknowledged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .._resources import bundled_dir
from . import schema, spool
from .spool import SPOOL_SUFFIX, pending_spool, spool_bytes, spool_dir, write_spool  # noqa: F401 (kept importable here)
from .turns import turns

logger = logging.getLogger(__name__)

_path_locks: dict[str, threading.RLock] = {}
_path_locks_guard = threading.Lock()


# How long a fork waits for this process's writers to close their connections (see
# `_before_fork`); past it the fork goes ahead, logged.
_FORK_WAIT = 10.0
# One fork at a time waits and holds the locks: two threads forking at once would otherwise
# release each other's (a review: locks left held by a thread gone, the store stuck).
_fork_guard = threading.Lock()
# Per thread: .depth, the forks under way in it (one more when an after-fork hook or a
# signal handler forks inside one), .holding, whether its outermost fork got the guard.
_fork_state = threading.local()
_held_at_fork: list[threading.RLock] = []


def _before_fork() -> None:
    """Let the writers of this process finish before it forks (gunicorn --preload, a fork
    multiprocessing pool). DuckDB keeps one database instance per path in a process, and a
    child inherits an open one: its own connect then reuses that copy, whose locks the
    parent's threads held, and hung for good in a review (12 of 80 forks under load), or,
    where it did not hang, committed into a copy the parent's next checkpoint overwrote.
    Every read-write connection is opened under its path's lock, so holding all of them
    means no writer's connection is open at the fork (a reader's may be: README,
    "Durability"). Bounded: a writer waiting on the forking thread must not stall it for
    ever."""
    try:
        depth = getattr(_fork_state, "depth", 0)
        _fork_state.depth = depth + 1
        if depth:
            return  # a fork inside this thread's fork: the outer one waits, and releases
        deadline = time.monotonic() + _FORK_WAIT
        if _fork_guard.acquire(timeout=_FORK_WAIT):
            _fork_state.holding = True
            _wait_for_writers(deadline)
    except Exception:  # never in the way of a fork
        logger.exception("otel-costattr: could not wait for the store's writers before a fork")


def _wait_for_writers(deadline: float) -> None:
    if not _path_locks_guard.acquire(timeout=max(0.0, deadline - time.monotonic())):
        return
    try:
        locks = list(_path_locks.items())
    finally:
        _path_locks_guard.release()
    for path, lock in locks:
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            _held_at_fork.append(lock)
        else:
            logger.warning(
                "otel-costattr: forking while a connection to %s is open (waited %.0f s for it):"
                " the child's writes to it may hang or be lost",
                path,
                _FORK_WAIT,
            )


def _after_fork_in_parent() -> None:
    depth = getattr(_fork_state, "depth", 1) - 1
    _fork_state.depth = max(depth, 0)
    if depth > 0 or not getattr(_fork_state, "holding", False):
        return  # an inner fork, or one that did not get the guard (past the bound): nothing held
    _fork_state.holding = False
    while _held_at_fork:
        _held_at_fork.pop().release()
    _fork_guard.release()


def _forget_path_locks() -> None:
    """In a forked child: a lock the parent's ingester held at the fork would be held for
    ever (its thread is not in the child), and the child's flush would wait on it for ever."""
    global _path_locks, _path_locks_guard, _fork_guard
    _fork_state.holding = False
    _fork_state.depth = 0
    _held_at_fork.clear()
    _fork_guard = threading.Lock()
    _path_locks = {}
    _path_locks_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_forget_path_locks
    )


class StoreError(Exception):
    """The span store could not be opened, migrated or written. Names the path."""


class NewerStore(StoreError):
    """The store was upgraded by a newer version of otel-costattr than this one."""


class ForeignFile(StoreError):
    """Another application's DuckDB file, holding a name the migrations would create."""


class LockTimeout(StoreError):
    """Another process kept the database file locked longer than the retry allowed."""


# What a URL's scheme looks like (two letters at least: "C:" is a Windows drive).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


def missing_database(path: str | os.PathLike[str]) -> str:
    """The one wording for a database file that is not there (``rollup`` says it so). A
    password in what looks like a URL (a scheme mistyped: ``clickhous://user:pw@host``) is
    masked, as the ClickHouse URLs' own messages mask it."""
    shown = _USERINFO.sub(r"\1***@", os.fspath(path))
    scheme = _SCHEME.match(shown)
    if scheme is not None and scheme.group(1).lower() in ("chdb", "clickhouse", "clickhouses"):
        return (
            f"no database at {shown} (a ClickHouse store is clickhouse://host:8123/database or chdb:///path)"
        )
    if scheme is not None:  # mysql://... (a review: read as a missing file)
        return (
            f"no database at {shown} ({scheme.group(1)}: is no store this reads: a DuckDB file's"
            " path, clickhouse://, clickhouses:// or chdb:///path)"
        )
    return f"no database at {shown}"


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` reads as a URL (``scheme://...``), never a file's path here."""
    text = os.fspath(path)
    return isinstance(text, str) and _SCHEME.match(text) is not None and "://" in text


# To the @ a host follows (a password may hold @): over-masking is harmless, a leak is not.
_USERINFO = re.compile(r"(://[^/@:\s]*:)\S*?@(?=[^@/?#\s]*(?:[/?#]|$))")


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


def _facts_migration() -> str:
    # The tables, then the facts built over every span already stored: _facts.sql with its
    # watermark (which store/aggregates.py binds) read as -1.
    queries = bundled_dir("queries")
    facts = (queries / "_facts.sql").read_text("utf-8").replace("$watermark", "-1")
    return (queries / "_facts_tables.sql").read_text("utf-8") + facts


# Migration 0016 has the next identity pass walk every unsettled call again up to this many.
RETRY_UNSETTLED = 10_000

# The column migrations come from the one column list (store/schema.py); any other migration
# (views, indexes) is appended after them, in the order it was released.
MIGRATIONS: tuple[Migration, ...] = (
    *(Migration(name, sql) for name, sql in schema.duckdb_migrations()),
    # The identity the store settles after ingest (store/identity.py); before the views, which
    # read it, so that a new file builds in this order too.
    Migration(*schema.identity_migration()),
    # The attribute columns (store/schema.py ATTRIBUTES), filled for the calls stored; before
    # the views too, which read them.
    Migration(*schema.attribute_migration()),
    # The call contract as the views `calls` and `runs`, so that any DuckDB client opening the
    # file gets the attribution rules (rollups/contract.py derives the rollups' macros from the
    # same file). CREATE OR REPLACE: when the rules change, a new migration runs it again.
    Migration("0002_call_views", (bundled_dir("queries") / "_calls.sql").read_text(encoding="utf-8")),
    # The alerts' states and deliveries (alerts/state.py), so a restart does not re-fire.
    Migration("0005_alert_events", (bundled_dir("queries") / "_alert_events.sql").read_text("utf-8")),
    # The call views again, reading the identity settled at ingest (0006).
    Migration("0007_call_views_settled", (bundled_dir("queries") / "_calls.sql").read_text(encoding="utf-8")),
    # The identity pass's watermark (store/identity.py): only traces that received spans since
    # the last pass are walked again.
    Migration("0008_identity_pass", (bundled_dir("queries") / "_identity_pass.sql").read_text("utf-8")),
    # The call views again: calls with their own or a settled identity read in one scan.
    Migration("0009_call_views_one_scan", (bundled_dir("queries") / "_calls.sql").read_text("utf-8")),
    # The rollup facts (store/aggregates.py), built here once over the spans already stored.
    Migration("0010_rollup_facts", _facts_migration()),
    # The copy of the spans of runs with a call pending, which the fast rollups read them from.
    Migration(
        "0011_rollup_facts_spans", (bundled_dir("queries") / "_facts_spans_tables.sql").read_text("utf-8")
    ),
    # The call views again, with the attribute columns (0012); and those columns in the copy
    # of the pending runs' spans (0011, made before spans had them; a new file's has them
    # already), filled as in spans, so that the fast rollups keep reading it.
    Migration(
        "0013_call_views_attributes",
        (bundled_dir("queries") / "_calls.sql").read_text("utf-8")
        + schema.attribute_migration("costattr_fact_spans", if_not_exists=True)[1],
    ),
    # The unpriced calls in the per-agent and per-step facts (0010 counted them per feature and
    # per run only), counted from the facts' calls; a new file's tables have them already.
    Migration(
        "0014_rollup_facts_unpriced", (bundled_dir("queries") / "_facts_unpriced.sql").read_text("utf-8")
    ),
    # per_step's average input is over the calls that report input (0 tokens stored for a call
    # without usage): the per-step facts count them in a column of their own, usage_calls,
    # added last, so that an older writer's upkeep fails on it; the per-step rows made again
    # from the facts' calls.
    Migration(
        "0015_rollup_facts_usage_calls",
        (bundled_dir("queries") / "_facts_usage_calls.sql").read_text("utf-8"),
    ),
    # The call views again, walking through model calls too (a tool's call below the call that
    # asked for it had no feature or agent). Calls an older version left unsettled at such a
    # parent are walked again by the next pass when their trace grows; with few calls
    # unsettled, the pass's watermark goes back to -1 so that it tries them all once now. Not
    # with many: most are calls whose parent went elsewhere, which never settle, and walking
    # them all in one pass took 1.9 GB for 1M of them (a review), in the application's process.
    Migration(
        "0016_call_views_model_ancestors",
        (bundled_dir("queries") / "_calls.sql").read_text("utf-8")
        + "UPDATE costattr_identity_pass SET watermark = -1 WHERE (SELECT count(*) FROM spans"
        " WHERE span_role = 'model_call' AND identity_settled IS NULL"
        f" AND (feature IS NULL OR agent_name IS NULL)) <= {RETRY_UNSETTLED};\n",
    ),
)

_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS costattr_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
)


def _path_lock(path: str) -> threading.RLock:
    # DuckDB shares one database instance between connections of a process, so in-process
    # writers are not kept apart by the file lock: this lock does it for migrating and
    # ingesting. Reentrant: `writing` holds it around `connect`, which takes it too.
    # Keyed by the real path: DuckDB shares one instance between a store's spellings (a
    # symlinked folder), and two writers through it conflicted (a review).
    key = os.path.realpath(path)
    with _path_locks_guard:
        return _path_locks.setdefault(key, threading.RLock())


def held_here(path: str | os.PathLike[str]) -> bool:
    """Whether this thread is inside `connect` or `writing` for ``path`` (its migrating or
    ingesting, which other threads wait for): a finalizer or a signal handler that waited
    for them there would wait for itself."""
    return _path_lock(str(Path(path).expanduser().absolute()))._is_owned()  # type: ignore[attr-defined]


def is_lock_conflict(error: BaseException) -> bool:
    """True when ``error`` means someone else holds the database file right now."""
    text = str(error)
    return isinstance(error, duckdb.Error) and (
        "Could not set lock" in text or "Conflicting lock" in text or "different configuration" in text
    )


def check_path(path: str | os.PathLike[str]) -> str:
    """Validate a database path before first use: an existing file must be a DuckDB database,
    a new one must be creatable. Returns the absolute path; raises `StoreError` naming it."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text == ":memory:":
        raise StoreError(
            "':memory:' is DuckDB's in-memory database: the span store needs a file (its spool and"
            " other processes' reads live beside it)"
        )
    if "\0" in text:
        raise StoreError(f"{text!r}: a path cannot hold a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes the file system's encoding could not decode
        raise StoreError(f"{ascii(text)}: not a UTF-8 path, which DuckDB cannot open") from None
    p = Path(text).expanduser().absolute()
    if p.is_dir():
        raise StoreError(f"{p}: is a directory, not a DuckDB database file")
    if p.exists():
        if not p.is_file():
            # Opening a FIFO to read its header waited for a writer for ever: the exporter (and
            # with it a zero-code application's start) and `serve` hung.
            raise StoreError(f"{p}: not a regular file, not a DuckDB database file")
        try:
            with open(p, "rb") as f:
                header = f.read(12)
        except OSError as e:
            raise StoreError(f"{p}: cannot read: {e.strerror or e}") from e
        if not header:  # `touch`ed, or a creation killed before DuckDB wrote its header
            raise StoreError(
                f"{p}: an empty file, not a DuckDB database file: delete it to start a store there"
            )
        if len(header) < 12 or header[8:12] != b"DUCK":
            raise StoreError(f"{p}: not a DuckDB database file")
        if not os.access(p, os.W_OK):
            raise StoreError(f"{p}: not writable")
        return str(p)
    parent = p.parent
    if not parent.exists():
        raise StoreError(f"{p}: cannot create: folder {parent} does not exist")
    if not parent.is_dir():
        raise StoreError(f"{p}: cannot create: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{p}: cannot create: directory {parent} is not writable")
    return str(p)


def prepare_writer(path: str | os.PathLike[str]) -> str:
    """`check_path`, then create the spool folder a writer (exporter, receiver) needs.
    Returns the absolute path; raises ``ValueError`` with one line naming the path."""
    try:
        checked = check_path(path)
        spool_dir(checked).mkdir(exist_ok=True)
    except StoreError as e:
        raise ValueError(str(e)) from e
    except OSError as e:
        raise ValueError(f"{path}: cannot create spool folder: {e.strerror or e}") from e
    # A folder that exists but cannot be written (read-only mount, another owner) failed every
    # export, each batch then waiting in memory: found here, at start, instead.
    folder = spool_dir(checked)
    try:
        # .tmp: what a crash leaves between the two calls is cleared with the other temp files
        fd, probe = tempfile.mkstemp(prefix=".write-check-", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"{folder}: spool folder not writable: {e.strerror or e}") from e
    spool.keep_reserve(checked)  # room for the journal's last lines on a full disk
    return checked


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
    connection is migrated and has the spool ingested first (``migrate``, ``ingest``: an
    ingest migrates first whatever ``migrate`` says, since the spool's rows are this
    version's); a read-only one briefly opens read-write to do so when needed, so readers see
    every span an exporter acknowledged. Close the connection soon: while open, nobody else can write.
    Raises `LockTimeout`, or `StoreError` for anything else, naming the path.
    """
    policy = _policy(retry)
    path = str(Path(path).expanduser().absolute())
    # A FIFO: DuckDB waits on it for ever, read-only or not (`store repair`, whose writer
    # connection is not checked by `check_path`, hung on one).
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise StoreError(f"{path}: not a regular file, not a DuckDB database file")
    if read_only:
        if not os.path.exists(path):
            raise StoreError(missing_database(path))
        if (migrate or ingest) and _needs_writer(path, policy, migrate, ingest):
            try:
                connect(path, retry=policy, migrate=migrate, ingest=ingest).close()
            except (LockTimeout, NewerStore, ForeignFile):
                raise
            except StoreError as e:  # e.g. a database we may read but not write
                waiting = len(pending_spool(path)) if ingest else 0
                if waiting:  # what the answers leave out, said first: the cause after it
                    logger.warning(
                        "otel-costattr: %s read as it is, without the spans of %d spool file%s "
                        "waiting to be ingested (that needs it opened for writing: %s)",
                        path, waiting, "" if waiting == 1 else "s", e,
                    )  # fmt: skip
                else:
                    logger.warning("otel-costattr: opening read-only without upgrading: %s", e)
        return _open(path, True, policy)
    con = _open(path, False, policy)
    try:
        with _path_lock(path):
            if migrate or (ingest and pending_spool(path)):
                try:
                    _migrate(con, path, MIGRATIONS)
                except _Invalidated:
                    # A migration's commit that ran out of room in its bound can fail to flush,
                    # and DuckDB then invalidates the instance; or the bound could not be
                    # lifted again: opened afresh (once every connection to it in this process
                    # is closed) and migrated unbounded.
                    con.close()
                    con = _open(path, False, policy)
                    _migrate(con, path, MIGRATIONS, bounded=False)
            if ingest:
                # store/ingest.py builds on this module (StoreError, MIGRATIONS, writing):
                # imported here, when first needed, rather than in a cycle at the top.
                from .ingest import ingest_spool

                # The files pending now, not those written meanwhile: while writers kept
                # spooling, a read waited as long (47 s beside serve and an exporting app,
                # their flushes failing on the lock it held: a review).
                waiting = pending_spool(path)
                upto = waiting[-1].name if waiting else None
                try:
                    while upto is not None and ingest_spool(con, path, upto=upto):
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
    except NewerStore as e:
        raise NewerStore(f"{path}: {e}") from None
    finally:
        con.close()


def _policy(retry: Retry | float | None) -> Retry:
    if retry is None:
        return Retry()
    if isinstance(retry, Retry):
        return retry
    return Retry(timeout=float(retry))


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` without DuckDB's progress bar, which it prints to standard output (even into
    a file) for a query past 2 s: ``--format json > file`` was then no JSON, and serve's log
    gathered bars. Its cursors inherit the settings; printing is off too, since setting
    ``progress_bar_time`` turns the bar back on."""
    con.execute("SET enable_progress_bar = false")
    con.execute("SET enable_progress_bar_print = false")
    return con


def _open(path: str, read_only: bool, policy: Retry) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + policy.timeout
    delay = policy.initial
    while True:
        new = not read_only and not os.path.exists(path)
        try:
            return quiet(duckdb.connect(path, read_only=read_only))
        except duckdb.Error as e:
            if not is_lock_conflict(e):
                if new:
                    _forget_empty(path)
                raise StoreError(f"{path}: cannot open: {e}") from e
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout(
                    f"{path}: locked by another process for more than {policy.timeout:g}s: {e}"
                ) from e
            time.sleep(min(delay, left))
            delay = min(delay * 2, policy.maximum)


def _forget_empty(path: str) -> None:
    """Delete the empty file a failed creation of the store left (DuckDB creates the file,
    then cannot write its header: a full disk). DuckDB refuses an empty file, so every later
    open failed ("not a DuckDB database file") once the disk had room again (a review).
    The file DuckDB created, not the path: a path that is a symlink to a store yet to be
    made keeps its link (unlinked, the next start made the store beside it, off the volume
    the link named, the empty file left there)."""
    made = os.path.realpath(path)
    with contextlib.suppress(OSError):
        if os.path.getsize(made) == 0:
            os.unlink(made)


def pending_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The names of the migrations this version knows and ``con``'s store lacks;
    `NewerStore` when it has one this version does not know."""
    return [m.name for m in _pending(con, MIGRATIONS)]


def _pending(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration]) -> list[Migration]:
    """The ``migrations`` a store lacks; `NewerStore` when it has one this version does not
    know."""
    applied = applied_migrations(con) or set()
    check_known(applied, migrations)
    return [m for m in migrations if m.name not in applied]


def applied_migrations(con: duckdb.DuckDBPyConnection) -> set[str] | None:
    """The migrations a store records; None when it has no ``costattr_migrations`` table."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'costattr_migrations'"
        " AND schema_name = 'main' AND database_name = current_database()"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    return {r[0] for r in con.execute("SELECT name FROM costattr_migrations").fetchall()}


# Names an earlier commit gave a migration that now has another (a store may hold them):
# known, never newer. 0015 was first named for input calls (7f22056), then renamed (1626383).
RETIRED_MIGRATIONS = frozenset({"0015_rollup_facts_input_calls"})


def check_known(applied: set[str], migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Refuse a store a newer version has migrated (a migration name this version does not
    know): written by this version, the newer one's columns would be left empty on what it
    ingests (a store migrated past 0012 and written by an earlier version lost its calls'
    user and tenant columns), and read, the answers could miss what the newer one keeps."""
    unknown = sorted(applied - {m.name for m in migrations} - RETIRED_MIGRATIONS)
    if unknown:
        raise NewerStore(
            f"a newer otel-costattr has upgraded this store (migration {unknown[-1]}): "
            "upgrade otel-costattr to read or write it"
        )


def migrate(con: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations ``con`` lacks, in order, each in its own transaction, recording
    each in ``costattr_migrations``. Returns the names applied. Raises `StoreError`."""
    return _migrate(con, "database", migrations)


class _Invalidated(StoreError):
    """A migration failed on an instance DuckDB has invalidated (a fatal error)."""


def _migrate(
    con: duckdb.DuckDBPyConnection, where: str, migrations: Sequence[Migration], bounded: bool = True
) -> list[str]:
    try:
        if not _pending(con, migrations):
            return []
        _refuse_foreign(con, where)
        con.execute(_MIGRATIONS_TABLE)
    except duckdb.Error as e:
        raise StoreError(f"{where}: cannot read migrations: {e}") from e
    except NewerStore as e:
        raise NewerStore(f"{where}: {e}") from None
    done = []
    for step in _pending(con, migrations):
        try:
            try:
                # Bounded first: a migration that fills columns over the whole table held it
                # all in memory (1.9 GB at 10M spans, in the application's process when its
                # exporter is the first writer after an upgrade); inside the bound DuckDB
                # spills instead (445 MB, 8.6 s).
                bound = {"memory_limit": f"{_MIGRATION_MEMORY}B"} if bounded and _bounds(con) else {}
                with instance_settings(con, bound):
                    _apply(con, step)
            except (duckdb.OutOfMemoryException, duckdb.TransactionException) as room:
                # Out of room in the bound: in a statement, or in the COMMIT, which DuckDB
                # reports as a failed transaction ("Failed to commit: could not allocate
                # block"). Either way once more without the bound (a real conflict fails again).
                rollback(con)
                if bound and not _lifted(con):
                    # The bound could not be put back (in a tiny bound even RESET can find
                    # no room: seen once in CI): retrying here would run out of room again.
                    raise _Invalidated(f"{where}: migration {step.name}: the memory bound stuck") from room
                _apply(con, step)
        except duckdb.Error as e:
            rollback(con)
            failed = _Invalidated if bounded and isinstance(e, duckdb.FatalException) else StoreError
            raise failed(f"{where}: migration {step.name} failed: {e}") from e
        logger.info("otel-costattr: %s: applied migration %s", where, step.name)
        done.append(step.name)
    return done


# What the migrations create under names of their own (the rest are costattr_*).
_OWN_NAMES = ("spans", "calls", "runs", "alert_events", "alert_deliveries")


def _refuse_foreign(con: duckdb.DuckDBPyConnection, where: str) -> None:
    """Refuse, before writing anything, another application's file that holds a table or view
    under a name the migrations create: its first migration failed on the name, after the
    migrations' own table had been added to that file (a review)."""
    if applied_migrations(con) is not None:
        return  # ours: its migrations are recorded
    taken = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
        " AND database_name = current_database() AND table_name IN ?"
        " UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main'"
        " AND database_name = current_database() AND view_name IN ? ORDER BY 1",
        [list(_OWN_NAMES), list(_OWN_NAMES)],
    ).fetchall()
    if taken:
        raise ForeignFile(
            f"{where}: not an otel-costattr database: it has a {taken[0][0]!r} table or view of"
            " its own (no costattr_migrations); left untouched, give another file"
        )


# The buffer pool a migration runs in first (see `_migrate`).
_MIGRATION_MEMORY = 512 * 2**20


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}


def _memory_limit(con: duckdb.DuckDBPyConnection) -> float | None:
    """The instance's memory_limit in bytes; None when it cannot be read or is not the text
    DuckDB 2.0 writes ('18.8 GiB')."""
    try:
        number, unit = str(_setting(con, "memory_limit")).split()
        return float(number) * _UNITS[unit]
    except (duckdb.Error, ValueError, KeyError):
        return None


def _bounds(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `_MIGRATION_MEMORY` would lower the instance's memory_limit (never raise it: on a
    small host DuckDB's default, 80% of its memory, can be below it) and ``con`` is alone."""
    limit = _memory_limit(con)
    return limit is not None and limit > _MIGRATION_MEMORY and alone(con)


def _lifted(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the instance's memory_limit is above `_MIGRATION_MEMORY` again (after a bound)."""
    limit = _memory_limit(con)
    return limit is not None and limit > _MIGRATION_MEMORY


def _apply(con: duckdb.DuckDBPyConnection, step: Migration) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute(step.sql)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    con.execute("INSERT INTO costattr_migrations VALUES (?, ?)", [step.name, now])
    con.execute("COMMIT")


def bundled_statements(file: str) -> list[str]:
    """The statements of the bundled ``queries/`` file ``file``, split by DuckDB's own parser
    on an in-memory connection closed at once. Not ``duckdb.extract_statements``: that opens
    DuckDB's default connection, a database kept open for the life of the process, which a
    forked child (gunicorn --preload after the exporter's first ingest) then tore down at exit
    and died of (SIGSEGV in the task scheduler's destructor: a review)."""
    text = (bundled_dir("queries") / file).read_text(encoding="utf-8")
    con = duckdb.connect(":memory:")
    try:
        return [s.query for s in con.extract_statements(text)]
    finally:
        con.close()


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction of ``con``, if any (after a failed statement)."""
    with contextlib.suppress(duckdb.Error):  # no transaction open: nothing to undo
        con.execute("ROLLBACK")


def writer_turn(path: str | os.PathLike[str], timeout: float) -> AbstractContextManager[None]:
    """This process's turn to write the file at ``path`` (store/turns.py): its readers of it
    close first. `LockTimeout`, naming the path, when the turn did not come in ``timeout``."""
    return turns(str(path)).writing(timeout, lambda why: LockTimeout(f"{path}: {why}"))


@contextmanager
def writing(
    path: str | os.PathLike[str], *, retry: Retry | float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-write connection (migrated, spool left alone), held by one thread
    of this process at a time; closed, releasing the file, on exit."""
    path = str(Path(path).expanduser().absolute())
    policy = _policy(retry)
    # This process's readers of the file close first (store/turns.py), then its writers.
    with writer_turn(path, policy.timeout), _path_lock(path):
        con = connect(path, retry=policy, migrate=True, ingest=False)
        try:
            yield con
        finally:
            con.close()


# current_setting, not duckdb_settings(): the table function builds a row (with its
# description) for every one of DuckDB's settings, 1.6-2.7 ms a read against 0.14, and an
# ingest round reads a dozen (a trim's two after every transaction, `tuned`'s, the pass's).
_SETTING = "SELECT current_setting(?)"


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> object:
    return con.execute(_SETTING, [name]).fetchall()[0][0]  # all: no result left unfinished


def alone(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con`` is the only connection to its database instance. Settings such as
    memory_limit are the instance's: lowered while the application has a connection of its
    own to the store in this process, its queries failed out of memory (9-15 of ~300 during
    one backlog), so bounds are only set on an instance this code has to itself."""
    try:
        # fetchall, not fetchone: a result left unfinished on the connection makes DuckDB
        # refuse the caller's next register() or Arrow scan ("unfinished result").
        rows = con.execute("SELECT * FROM duckdb_connection_count()").fetchall()
    except duckdb.Error:  # a DuckDB without it: assume company
        return False
    return bool(rows) and rows[0][0] == 1


@contextmanager
def instance_settings(con: duckdb.DuckDBPyConnection, values: dict[str, object]) -> Iterator[None]:
    """DuckDB settings ``values`` inside, restored on the way out: they are the database
    instance's, shared by its connections in this process."""
    if not values:
        yield
        return
    before = {name: _setting(con, name) for name in values}
    try:
        for name, value in values.items():
            con.execute(f"SET {name} = '{value}'")
        yield
    finally:
        _restore(con, before)


def _restore(con: duckdb.DuckDBPyConnection, before: dict[str, object]) -> None:
    """Put ``before`` back. A transaction aborted inside (out of memory, mostly) refuses every
    statement until rolled back: it is rolled back and the restore tried again, so the
    instance is never left with the lowered limit (then read as the "before" of every later
    round: measured stuck at 62 MiB)."""
    for attempt in range(2):
        try:
            for name, value in before.items():
                # The default back exactly: the value read is rounded ('18.8 GiB'), and a
                # memory_limit set from it would shrink a little every round.
                con.execute(f"RESET {name}")
                if _setting(con, name) != value:
                    con.execute(f"SET {name} = '{value}'")
            return
        except duckdb.Error as e:  # a failed database may refuse even this
            if attempt:
                logger.warning("otel-costattr: could not restore DuckDB settings %s: %s", sorted(before), e)
            rollback(con)
