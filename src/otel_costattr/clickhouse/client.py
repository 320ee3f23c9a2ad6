"""Connections to a ClickHouse span store, through clickhouse-connect (the ``clickhouse``
extra), imported only here and only when a ClickHouse ``--db`` is used.

clickhouse-connect (>= 1.12) has an experimental in-process chDB backend: ``get_client(
interface="chdb", path=...)`` gives the same client API over the embedded engine (no
external_data, no async client, one engine per process). Both engines are therefore reached
through one client type; chDB clients are cached per path because the engine is per process.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .target import Target

__all__ = ["SETTINGS", "ClickHouseError", "connect", "has_table"]


class ClickHouseError(Exception):
    """A ClickHouse store cannot be reached or read (one line)."""


# What the shared SQL relies on, for every query: outer joins give NULL (not the type's
# default) where nothing matched, GROUPING SETS give NULL for the columns a set leaves out,
# times are UTC whatever the server's zone, and a name that is both a column and an alias
# (``sum(usd) AS usd`` over a column usd) means the column, as in DuckDB, and a CAST keeps
# NULL (DuckDB's CAST(NULL AS DOUBLE) is NULL; ClickHouse's fails unless told).
SETTINGS = {
    "cast_keep_nullable": 1,
    "prefer_column_name_to_alias": 1,
    "join_use_nulls": 1,
    "group_by_use_nulls": 1,
    "session_timezone": "UTC",
}

_chdb_clients: dict[tuple[str | None, str], Any] = {}
_lock = threading.Lock()


def _module() -> Any:
    try:
        import clickhouse_connect
    except ImportError:
        raise ClickHouseError(
            "ClickHouse needs the clickhouse extra: pip install 'otel-costattr[clickhouse]'"
            " (from a clone: pip install -e '.[clickhouse]')"
        ) from None
    return clickhouse_connect


def connect(target: Target, *, create: bool = False) -> Any:
    """A clickhouse-connect client for ``target`` (cached for chDB: one engine per process).
    A chDB folder that does not exist is an error unless ``create`` (`clickhouse init`):
    chDB would create it, so a read with a mistyped path would leave a store behind."""
    if target.engine == "chdb" and target.path and not create:
        if not os.path.isdir(target.path):
            what = "a file, not a chDB folder" if os.path.exists(target.path) else "no such folder"
            raise ClickHouseError(f"{target.display()}: no chDB store there ({what})")
        if not os.path.isdir(os.path.join(target.path, _CHDB_MARK)):
            # chDB would make one there (its tmp/ folder first): a read names it instead.
            raise ClickHouseError(f"{target.display()}: no chDB store there (the folder holds none)")
    cc = _module()
    try:
        if target.engine == "chdb":
            with _lock:
                key = (target.path, target.database)
                client = _chdb_clients.get(key)
                if client is None:
                    with _chdb_stderr(target.path) as said:
                        client = cc.get_client(interface="chdb", path=target.path)
                    said()
                    if create:
                        client.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
                    elif not _has_database(client, target.database):
                        # Read as it is: a mistyped ?database= must not leave one behind.
                        raise ClickHouseError(f"{target.display()}: no database {target.database!r} there")
                    client.database = target.database
                    _chdb_clients[key] = client
                return client
        return cc.get_client(
            host=target.host,
            port=target.port,
            username=target.user or "default",
            password=target.password or "",
            database=target.database,
            secure=target.secure,
        )
    except ClickHouseError:
        raise
    except ImportError as e:
        if target.engine == "chdb":  # clickhouse-connect's own hint names its extra, not ours
            raise ClickHouseError(
                f"{target.display()}: the embedded engine is not installed: pip install chdb"
            ) from None
        raise ClickHouseError(f"{target.display()}: {e}") from None
    except Exception as e:  # clickhouse-connect's own errors carry the server's text
        if target.engine == "chdb" and target.path and _held_elsewhere(target.path):
            raise ClickHouseError(
                f"{target.display()}: in use by another process (chDB opens a store in one process"
                " at a time: stop the other, a serve or a notebook)"
            ) from e
        raise ClickHouseError(f"{target.display()}: {_reason(e)}") from e


@contextlib.contextmanager
def _chdb_stderr(folder: str | None) -> Iterator[Callable[[], None]]:
    """chDB's own stderr (file descriptor 2) while it opens a store, held: given back (the
    function yielded) once the open succeeded, or at once when it failed, less chDB's lines
    about a lock when another process holds the store, which the one line of `connect` says
    instead (a review saw chDB's "Code: 76. DB::Exception: Cannot lock file ..." above it).
    Other threads' stderr in that moment comes out after it, none lost. Nothing is held when
    it cannot be: no stderr (closed, None), no temporary file."""
    if sys.stderr is not None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to hold
        yield lambda: None
        return
    try:
        held = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after fd 2 is back
    except OSError:
        os.close(saved)
        yield lambda: None
        return
    text = b""

    def give_back() -> None:
        if text:
            with contextlib.suppress(OSError):
                os.write(2, text)

    try:
        os.dup2(held.fileno(), 2)
        try:
            yield give_back
        finally:
            os.dup2(saved, 2)
            held.seek(0)
            text = held.read()
    except Exception:
        if folder and _held_elsewhere(folder):
            kept = [line for line in text.splitlines(keepends=True) if not _LOCKED.search(line)]
            text = b"".join(kept)
        give_back()
        raise
    except BaseException:  # Ctrl-C during the open: what chDB said is not lost
        give_back()
        raise
    finally:
        os.close(saved)
        held.close()


# chDB's words when another process holds a store's lock (its status file).
_LOCKED = re.compile(rb"Cannot lock file|Another server instance in same directory")


# What chDB makes in a store's folder on first open: a folder without it holds no store.
_CHDB_MARK = "metadata"


def _has_database(client: Any, name: str) -> bool:
    query = "SELECT count() FROM system.databases WHERE name = {name:String}"
    found = client.query(query, parameters={"name": name})
    return bool(found.result_rows[0][0])


def _reason(error: BaseException) -> str:
    """One line for a failed connection: the socket's own reason when there is one (the
    driver's message wraps it in a URL with a query id and a retry count), else the first
    line of the server's text."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect: {cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    return server_line(error)


def server_line(error: BaseException) -> str:
    """A server's error as one short line: its first, cut before the query it quotes
    (ClickHouse appends the whole generated SQL after " In scope ": 12 KB for a rollup over
    a table of another shape) and at 300 characters."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else repr(error)
    text = text.split(" In scope ", 1)[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _held_elsewhere(folder: str) -> bool:
    """Whether another process holds the chDB store in ``folder``: chDB locks its ``status``
    file (flock) while open, and when it cannot, prints why itself and raises only "Error
    initializing EmbeddedServer". Asked after an open failed, never before (a probe's own
    lock could fail an open starting elsewhere at that moment)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return False
    try:
        fd = os.open(os.path.join(folder, "status"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def has_table(client: Any, database: str, name: str) -> bool:
    """Whether ``database`` holds a table (or view) ``name``."""
    return bool(
        client.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {name:String}",
            parameters={"db": database, "name": name},
        ).result_rows[0][0]
    )
