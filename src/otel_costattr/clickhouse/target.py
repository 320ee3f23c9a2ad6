"""Where a ClickHouse span store is: ``--db`` URLs for ClickHouse, parsed and checked.

Two forms (anything else is a DuckDB file path, and `parse_target` returns None):

- ``clickhouse://user:password@host:8123/database`` (``clickhouses://`` for TLS, port 8443 by
  default): a ClickHouse server over HTTP, through clickhouse-connect;
- ``chdb:///absolute/path`` (or ``chdb://memory`` for a throwaway engine): the embedded engine,
  through clickhouse-connect's in-process chDB backend (one engine, so one path, per process).

Query options: ``table`` (default ``otel_traces``, the Collector exporter's
``traces_table_name``) and, for chDB, ``database`` (default ``default``). A bad URL raises
`ValueError` with one line naming the URL (password masked) and the part at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["DEFAULT_TABLE", "Target", "is_clickhouse_url", "masked", "parse_target"]

DEFAULT_TABLE = "otel_traces"
_SCHEMES = ("clickhouse", "clickhouses", "chdb")
_OPTIONS = frozenset({"table", "database"})
# Identifiers are formatted into SQL (a table name cannot be bound): only plain ones pass.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class Target:
    """A parsed ClickHouse ``--db``: engine (``server`` or ``chdb``) and where its spans are."""

    engine: str
    database: str
    table: str = DEFAULT_TABLE
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    secure: bool = False
    path: str | None = None  # chDB: the data directory; None: in memory

    def display(self) -> str:
        """The URL without its password, for messages."""
        if self.engine == "chdb":
            return f"chdb://{self.path or 'memory'}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        who = f"{self.user}@" if self.user else ""
        return f"{scheme}://{who}{self.host}:{self.port}/{self.database}"

    def no_table(self, more: str = "") -> str:
        """The one line for a Collector's table that is not there, named with its database
        (a ``?database=`` of a chDB URL is in no other part of the message)."""
        return f"{self.display()}: no table {self.database}.{self.table} (the Collector's traces table{more})"


def is_clickhouse_url(db: object) -> bool:
    """Whether ``db`` is a ClickHouse URL (a string starting with one of the schemes)."""
    return isinstance(db, str) and db.split(":", 1)[0].lower() in _SCHEMES and "://" in db


def masked(db: str) -> str:
    """``db`` with its credentials masked: everything between the scheme and the last '@'
    (a generated password may hold '/', '#', '?' or '@', so where the credentials end
    cannot be told more closely), the user kept when it is plainly one."""
    scheme, sep, rest = db.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user, colon, _ = credentials.partition(":")
        shown = f"{user}:***" if colon and re.fullmatch(r"[\w.%+-]*", user) else "***"
        return f"{scheme}://{shown}@{host}"
    return db


def _fail(db: str, what: str) -> ValueError:
    """The error for a bad ``db`` URL, its credentials masked (`masked`)."""
    return ValueError(f"--db {masked(db)}: {what}")


def _identifier(db: str, name: str, value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise _fail(db, f"{name} {value!r} is not a plain identifier (letters, digits, _)")
    return value


def parse_target(db: str) -> Target | None:
    """``db`` as a `Target`, or None when it is not a ClickHouse URL (a DuckDB path)."""
    if not is_clickhouse_url(db):
        return None
    try:
        parts = urlsplit(db)
        port = parts.port
    except ValueError as e:  # its text quotes the URL's parts (a password's start as the port)
        why = "not a port number from 0 to 65535" if "port" in str(e).lower() else "not a valid URL"
        raise _fail(db, f"{why} (percent-encode '/', '#', '?' and '@' in a user or password)") from None
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise _fail(db, f"unknown option {unknown[0]!r} (valid: {', '.join(sorted(_OPTIONS))})")
    table = _identifier(db, "table", options.get("table", DEFAULT_TABLE))
    if scheme == "chdb":
        if parts.username or parts.password or port:
            raise _fail(db, "chdb:// takes a path (chdb:///data/dir), not a user, password or port")
        location = parts.netloc if parts.netloc else parts.path
        if parts.netloc and parts.netloc != "memory":
            raise _fail(db, "write chdb:///absolute/path (three slashes) or chdb://memory")
        path = None if location in ("memory", "") else unquote(location)
        if parts.netloc == "" and not path:
            raise _fail(db, "no path: write chdb:///absolute/path or chdb://memory")
        database = _identifier(db, "database", options.get("database", "default"))
        return Target("chdb", database, table, path=path)
    if not parts.hostname:
        raise _fail(db, "no host: write clickhouse://user:password@host:8123/database")
    if "database" in options:
        raise _fail(db, "give the database as the path (clickhouse://host:8123/database)")
    secure = scheme == "clickhouses"
    database = unquote(parts.path.strip("/")) or "default"
    database = _identifier(db, "database", database)
    return Target(
        "server",
        database,
        table,
        host=parts.hostname,
        port=port or (8443 if secure else 8123),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        secure=secure,
    )
