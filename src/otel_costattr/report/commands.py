"""The command lines a page names for what it does not show whole (a table cut to its first
rows, a waterfall to its first spans, the tail's few waterfalls): the CLI over the page's
own store, window and filters, each word quoted for a POSIX shell, so that run as printed
it lists the rows the page counted (a review: ``otel-costattr rollup runs-list --limit 0``,
without them, read another store or every day of this one)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..clickhouse.target import is_clickhouse_url, masked
from ..display import without_bidi
from ..rollups.catalog import query
from ..rollups.errors import UnknownRollup
from ..rollups.queries import Database
from .data import Window

__all__ = ["Commands", "store_name"]


def store_name(db: Database) -> str | None:
    """``db`` as ``--db`` names it: a path as given, a ClickHouse URL with its password
    masked (a page is no place for it: the reader puts it back); None for a connection a
    library user passed, which no command line can name."""
    if is_clickhouse_url(db):
        return masked(str(db))
    if isinstance(db, str | os.PathLike):
        return os.fspath(db)
    return None


def _quoted(word: str) -> str:
    """``word`` quoted for a POSIX shell. One holding a bidi control (shown raw, an unclosed
    one reverses the page's text after it: `tables.shorten`) is written as printf's octal
    escapes of its bytes, which the shell turns back into it: the command stays exact."""
    if without_bidi(word) == word:
        return shlex.quote(word)
    return "\"$(printf '" + "".join(f"\\{byte:03o}" for byte in word.encode()) + "')\""


@dataclass(frozen=True)
class Commands:
    """The commands over one page's store (``db``: `store_name`'s) and ``window``."""

    db: str | None
    window: Window

    def command(self, *words: str, options: Sequence[str] = (), windowed: bool = True) -> str:
        """``otel-costattr WORDS --db DB``, then (``windowed``) the window as its bounds (a
        relative ``--days 7`` or an open ``--until``, run later, would list other rows) and
        its filters, then ``options``."""
        argv = ["otel-costattr", *words]
        if self.db is not None:
            argv += ["--db", self.db]
        if windowed:
            for name, value in self.window.params().items():
                argv += [f"--{name}", value.isoformat() if isinstance(value, dt.datetime) else str(value)]
        return " ".join(_quoted(word) for word in [*argv, *options])

    def rollup(self, name: str, **params: str) -> str:
        """The command listing every row of the rollup ``name``: its ``params`` as ``--param``,
        and ``--limit 0`` where it takes a limit (runs-list, pointed to, stopped at its own
        100: a review)."""
        try:
            limited = "limit" in query(name).accepts()
        except UnknownRollup:
            limited = False
        options = [word for key, value in params.items() for word in ("--param", f"{key}={value}")]
        return self.command(
            "rollup", name.replace("_", "-"), options=[*options, *(["--limit", "0"] if limited else [])]
        )

    def trace(self, trace_id: str) -> str:
        """The command listing every span of one run (a run's spans are its own: no window)."""
        return self.command("trace", trace_id, windowed=False)
