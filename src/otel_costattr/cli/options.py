"""Options several commands share (``--db``, ``--pricing``, the query window), declared once."""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import settings
from ..pricing.table import PriceTable, load_pricing

F = TypeVar("F", bound=Callable[..., Any])


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def pricing_option(fn: F) -> F:
    """``--pricing FILE``, repeatable: user price files over the bundled table."""
    return click.option(
        "--pricing",
        multiple=True,
        metavar="FILE",
        help="a user price file layered over the bundled table (repeatable)",
    )(fn)


def price_table(pricing: Sequence[str]) -> PriceTable:
    """The bundled table with ``pricing`` files layered over it."""
    return load_pricing(list(pricing))


# What --db names; each command adds how it opens the file.
DB_HELP = (
    "the DuckDB file the exporter writes (default: $OTEL_COSTATTR_DUCKDB_PATH, else otel-costattr.duckdb)"
)


def writing_db_option(what: str) -> Callable[[F], F]:
    """``--db PATH`` for a command that writes ``what`` into the store (no ClickHouse there)."""
    return click.option(
        "--db",
        metavar="PATH",
        help=f"{DB_HELP}; {what} (opened read-write, retrying while an exporter writes)",
    )


def db_option(fn: F) -> F:
    """``--db PATH``, defaulting to the exporter's variable: read-only, or a ClickHouse store."""
    return click.option(
        "--db",
        metavar="PATH",
        help=DB_HELP + "; opened read-only, retrying while an exporter writes; or a ClickHouse store: "
        "clickhouse://user:password@host:8123/database, chdb:///path",
    )(fn)


def duckdb_option(how: str) -> Callable[[F], F]:
    """``--db PATH`` for a command on DuckDB stores only, opened ``how``."""
    return click.option("--db", metavar="PATH", help=f"{DB_HELP}; {how}; DuckDB stores only")


def db_path(db: str | None) -> str:
    """``--db`` as given, else where the exporter writes. A URL of another scheme (a
    ``clickhous://user:pw@host`` typo) is one line, its password masked: taken for a file's
    path, the commands that resolve it printed it whole (a review)."""
    from ..clickhouse.target import is_clickhouse_url
    from ..store.database import is_url, missing_database
    from .output import CLIError

    path = db or settings.duckdb_path()
    if is_url(path) and not is_clickhouse_url(path):
        raise CLIError(missing_database(path))
    return path


def duckdb_path(db: str | None, what: str) -> str:
    """`db_path` for the command ``what`` that works on DuckDB stores only: a ClickHouse URL
    is one line saying so (not "no database at ...", which reads as a typo)."""
    from ..clickhouse.target import is_clickhouse_url
    from .output import CLIError

    path = db_path(db)
    if is_clickhouse_url(path):
        raise CLIError(f"{what} works on DuckDB stores only; --db names a ClickHouse store")
    return path


def window_options(
    *,
    limit: int | None = None,
    group_by: bool = True,
    where: bool = True,
    limits: bool = True,
    limited: str = "runs",
) -> Callable[[F], F]:
    """``--db`` and the window every rollup takes (``--days``/``--since``/``--until``/
    ``--service``/``--feature``/``--agent``/``--where``) plus ``--limit`` and ``--group-by``
    (``group_by``/``where``/``limits`` False: a command that cannot honour them does not
    offer them).
    Values stay text: the rollups layer checks them, so a bad one is one line,
    ``Error: ...``, naming the parameter."""

    def decorate(fn: F) -> F:
        limit_help = f"at most N {limited}, 0 for all" + (f"; default {limit}" if limit else "")
        for option in reversed(
            (
                click.option(
                    "--days",
                    metavar="N",
                    help="only the last N days (of model calls, by start time), or the N days before --until",
                ),
                click.option(
                    "--since",
                    metavar="WHEN",
                    help="from this UTC date or time (YYYY-MM-DD[THH:MM]), or that long ago (7d, 12h, 2w)",
                ),
                click.option(
                    "--until", metavar="WHEN", help="up to this UTC date or time, excluded (or 1d: a day ago)"
                ),
                click.option("--service", help="only spans of this service.name"),
                click.option("--feature", help="only model calls attributed to this feature"),
                click.option("--agent", help="only model calls attributed to this agent"),
                *(
                    [
                        click.option(
                            "--where",
                            multiple=True,
                            metavar="KEY=VALUE",
                            help="only model calls whose KEY (an identity key such as user.id or "
                            "app.tenant, or model, provider, service) is VALUE; repeatable: a key twice "
                            "matches either value",
                        )
                    ]
                    if where
                    else []
                ),
                *([click.option("--limit", metavar="N", default=limit, help=limit_help)] if limits else []),
                *(
                    [
                        click.option(
                            "--group-by",
                            "group_by",
                            metavar="KEY",
                            help="the answer per value of this identity key (user.id, app.tenant, "
                            "gen_ai.conversation.id) or model, provider, service, feature, agent: "
                            "columns key and value in front (every rollup but the run lists and trace)",
                        )
                    ]
                    if group_by
                    else []
                ),
            )
        ):
            fn = option(fn)
        return db_option(fn)

    return decorate


def reprice_options(fn: F) -> F:
    """``--reprice`` and ``--pricing``: add ``usd_repriced`` next to the stamped cost."""
    fn = pricing_option(fn)
    return click.option(
        "--reprice",
        is_flag=True,
        help="add usd_repriced: cost recomputed from the stored tokens with today's bundled "
        "table (plus any --pricing files), next to the cost stamped at the time",
    )(fn)


def duration_option(*names: str, default: str, help: str) -> Callable[[F], F]:
    """An option taking a duration as the alert rules write one (``50ms``, ``30s``, ``5m``,
    ``1h``; a bare number is seconds), at least 10ms and at most 31d, given to the command as
    seconds (float). A bad value is one line, ``Error: --name: ...``. ``alerts watch
    --interval`` and ``serve --alerts-interval`` take it alike."""

    def seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
        from ..alerts.rules import parse_duration
        from ..alerts.watch import LONGEST_INTERVAL
        from .output import CLIError

        text = value.strip()
        try:
            result = parse_duration(text + "s" if _BARE_NUMBER.match(text) else text)
        except ValueError as e:
            raise CLIError(f"{param.opts[0]}: {e}") from e
        if not result > 0:
            raise CLIError(f"{param.opts[0]}: must be above 0, got {value!r}")
        if result < _SHORTEST_INTERVAL:  # shorter only spins: each round opens the store
            raise CLIError(f"{param.opts[0]}: must be at least 10ms, got {value!r}")
        if result > LONGEST_INTERVAL:
            raise CLIError(f"{param.opts[0]}: must be at most 31d, got {value!r}")
        return result

    return click.option(
        *names, default=default, show_default=True, metavar="DURATION", callback=seconds, help=help
    )


_DUCKDB_MAGIC = (8, b"DUCK")  # a DuckDB file's header: the magic at byte 8


def _store_behind(path: str) -> str | None:
    """What of a span store ``path`` is (a DuckDB database, its write-ahead log, a file in its
    spool), or None: ``--out`` must never overwrite the data a command reads."""
    from ..store.spool import SPOOL_SUFFIX

    def is_duckdb(candidate: str) -> bool:
        offset, magic = _DUCKDB_MAGIC
        try:
            # Only a regular file is read: opening a pipe, a FIFO or a terminal to read waited
            # for input for ever (`--out /dev/stdout | jq` hung: a review).
            if not stat.S_ISREG(os.stat(candidate).st_mode):
                return False
            with open(candidate, "rb") as f:
                return f.read(offset + len(magic))[offset:] == magic
        except OSError:
            return False

    if is_duckdb(path):
        return "is a DuckDB database"
    if path.endswith(".wal") and is_duckdb(path[: -len(".wal")]):
        return f"is the write-ahead log of the database {path[: -len('.wal')]}"
    for folder in Path(path).parents:
        if folder.name.endswith(SPOOL_SUFFIX) and is_duckdb(str(folder)[: -len(SPOOL_SUFFIX)]):
            return f"is inside the spool of the database {str(folder)[: -len(SPOOL_SUFFIX)]}"
    return None


_BARE_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_SHORTEST_INTERVAL = 0.01  # seconds: 10ms


def check_out(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> str | None:
    """The click callback of every ``--out FILE``: refuse, before the command runs (and so
    before ``alerts check`` records states or sends anything), a path that cannot be written:
    one ``Error:`` line naming it."""
    from .output import CLIError

    if value is None:
        return None
    path = os.path.abspath(value)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise CLIError(f"--out {value}: is a folder, not a file")
    if not os.path.isdir(folder):
        raise CLIError(f"--out {value}: no folder {folder}")
    store = _store_behind(path)
    if store:
        raise CLIError(f"--out {value}: {store}; write the output elsewhere")
    existed = os.path.exists(path)
    if existed and not stat.S_ISREG(os.stat(path).st_mode):
        # A pipe, a FIFO, a terminal, a device: opened once, when the output is ready (opened
        # and closed here, a FIFO's reader saw its end before any output).
        if not os.access(path, os.W_OK):
            raise CLIError(f"--out {value}: cannot write it: permission denied")
        return value
    try:  # by trying: permission bits do not tell (root, read-only mounts, /proc)
        with open(path, "a", encoding="utf-8"):
            pass
        if not existed:
            os.unlink(path)
    except OSError as e:
        raise CLIError(f"--out {value}: cannot write it: {e.strerror or e}") from e
    return value
