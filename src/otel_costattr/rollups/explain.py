"""Answers that explain themselves: what the store holds when a rollup finds nothing, and
which run a trace id prefix names.

`explain_empty` is what the CLI prints (on stderr, exit 0) under an empty answer: the window
of model calls the store holds, its number of runs, and the feature, agent or ``--where``
values it knows that are closest to the ones asked for. `find_trace` turns a unique prefix
of a trace id into the id.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from typing import Any

import duckdb

from .. import settings
from ..clickhouse.runner import clickhouse_target
from ..display import visible
from ..semconv import IDENTITY_KEYS
from ..store.schema import ATTRIBUTE_COLUMNS
from .custom import custom_query
from .dimensions import COLUMNS, dimension_call, where_pairs
from .errors import RollupError, first_line
from .queries import Database, _connection, _prepare, _run

__all__ = ["explain_empty", "find_trace"]

_HEX = frozenset("0123456789abcdef")
_MIN_PREFIX = 4
_SHOWN = 8  # names listed at most
_FILTERED = (("feature", "feature"), ("agent", "agent_name"), ("service", "service_name"))


def _when(value: dt.datetime | None) -> str:
    return "?" if value is None else value.strftime("%Y-%m-%d %H:%M")


def near(asked: str, known: list[str]) -> str:
    """The values of ``known`` closest to ``asked`` (``closest: ...``), else the first few
    (``known: ...``), else ``none stored``: how an answer that matched nothing names what did."""
    close = difflib.get_close_matches(asked, known, n=3, cutoff=0.5)
    listed = sorted(close) or known[:_SHOWN]
    more = "" if close or len(known) <= _SHOWN else f" (+{len(known) - _SHOWN} more)"
    label = "closest" if close else "known"
    return f"{label}: {', '.join(map(_named, listed))}{more}" if listed else "none stored"


def _named(value: str) -> str:
    """A stored value as a hint lists it: as it is, or quoted when it is empty, holds a
    comma, or has blanks around it or a character a line cannot show, those shown as code
    points (`display.visible`: one value with a newline made the one-line hint two)."""
    plain = value and value == value.strip() and value.isprintable() and "," not in value
    return value if plain else f"'{visible(value)}'"


def explain_empty(db: Database, params: Mapping[str, Any] | None = None, *, where: Any = None) -> str:
    """Why a rollup over ``db`` with ``params`` (``feature``, ``agent``, ``since``, ...;
    as given to `rollup`) and ``where`` may have found nothing: one line on what the store
    holds, then one per filter given, with the closest values stored. ``db`` may be a
    ClickHouse URL: the same lines, from the same contract there."""
    params = dict(params or {})
    filters = where_pairs("explain", where)
    if clickhouse_target(db) is not None:
        return _explain_clickhouse(str(db), params, filters)
    try:
        with _connection(db) as con:
            _prepare(con)
            holds = _run(con, _HOLDS.sql, {})[0]

            def known(param: str) -> list[str]:
                return _distinct(con, dict(_FILTERED)[param])

            def spans() -> int:
                return int(con.execute("SELECT count(*) FROM spans").fetchone()[0])

            return _lines(holds, spans, known, lambda key: _distinct(con, None, key), params, filters)
    except duckdb.Error as e:
        raise RollupError(first_line(e)) from e


# What the store holds, in SQL both engines read (the ClickHouse dialect expands the macro).
_HOLDS = custom_query(
    "explain_holds",
    "-- @about Model calls, runs, first and last call the store holds.\n"
    "SELECT count(*) AS calls, count(DISTINCT trace_id) AS runs, min(start_time) AS first_call,"
    " max(start_time) AS last_call FROM costattr_calls(NULL, NULL, NULL, NULL, NULL)",
)


def _lines(
    holds: Mapping[str, Any],
    spans: Callable[[], int],
    known: Callable[[str], list[str]],
    known_key: Callable[[str], list[str]],
    params: Mapping[str, Any],
    filters: list[tuple[str, list[str]]],
) -> str:
    if not holds["calls"]:
        # Spans but no model call: usually an instrumentation that failed to load, the
        # commonest reason a new user sees only empty answers (issue 17).
        count = spans()
        if count:
            stored = f"{count:,} span{'s' if count != 1 else ''} stored"
            return f"{stored}, 0 model calls: is a GenAI instrumentation loaded?"
        return "the store holds no spans yet"
    lines = [
        f"the store holds {holds['runs']} runs ({holds['calls']} model calls)"
        f" from {_when(holds['first_call'])} to {_when(holds['last_call'])} UTC"
    ]
    given = [param for param, _column in _FILTERED if params.get(param) is not None]
    alone = len(given) + len(filters) == 1
    for param in given:
        lines.append(f"{param} {params[param]!r}: {_found(str(params[param]), known(param), alone)}")
    for key, values in filters:
        lines.append(f"{key} = {' or '.join(map(repr, values))}: {_found(values, known_key(key), alone)}")
    return "\n".join(lines)


def _found(asked: str | list[str], known: list[str], alone: bool) -> str:
    """`near`, unless a value asked is stored: then it is the filters together (or the
    window) that hold no call, and its closest values, itself first, said nothing (a review:
    ``--where user.id=u1 --where app.tenant=globex`` answered "user.id = 'u1': closest: u1")."""
    values = [asked] if isinstance(asked, str) else asked
    if any(value in known for value in values):
        return "stored, but no call of the window has it" + ("" if alone else " with the other filters")
    return near(values[0], known)


def _explain_clickhouse(db: str, params: Mapping[str, Any], filters: list[tuple[str, list[str]]]) -> str:
    """`explain_empty` over a ClickHouse store: the counts through the ClickHouse contract,
    the values known through the per-group rollup (a column or any identity key)."""
    from ..clickhouse.client import connect, has_table  # needs the extra
    from ..clickhouse.runner import TYPED_TABLE, typed_unfit
    from ..clickhouse.serving import run_query
    from .queries import rollup

    (holds,) = run_query(db, _HOLDS)

    def known(param: str) -> list[str]:
        rows = rollup("per_group", db, group_by=param)
        return sorted(str(r["value"]) for r in rows if r["value"] is not None)[:1000]

    target = clickhouse_target(db)
    assert target is not None

    def spans() -> int:
        return int(connect(target).query(f"SELECT count() FROM {target.table}").result_rows[0][0])

    if not holds["calls"]:
        client = connect(target)
        if has_table(client, target.database, TYPED_TABLE) and typed_unfit(client, target) is None:
            # the calls are read from the typed table, whose TTL (clickhouse init --ttl-days)
            # may have dropped what the Collector's table still holds (an init cut short
            # leaves one that is not read: runner.typed_unfit)
            count = spans()
            typed = int(client.query(f"SELECT count() FROM {TYPED_TABLE}").result_rows[0][0])
            if typed < count:
                return (
                    f"0 model calls in {TYPED_TABLE}, which the rollups read ({typed:,} spans there,"
                    f" {count:,} in {target.table}): its TTL (clickhouse init --ttl-days) dropped"
                    " the older spans, model calls among them"
                )
    return _lines(holds, spans, known, known, params, filters)


def _distinct(con: duckdb.DuckDBPyConnection, column: str | None, key: str | None = None) -> list[str]:
    expr = column or dimension_call("$key")
    rows = con.execute(
        f"SELECT DISTINCT {expr} AS v FROM costattr_calls(NULL, NULL, NULL, NULL, NULL) "
        "WHERE v IS NOT NULL ORDER BY v LIMIT 1000",
        {"key": key} if key is not None else {},
    ).fetchall()
    return [str(r[0]) for r in rows]


def find_trace(db: Database, prefix: str) -> str:
    """The one stored trace id starting with ``prefix`` (at least 4 hex digits, any case);
    `RollupError` when none or several do. A ClickHouse URL is looked up there."""
    if clickhouse_target(db) is not None:
        from ..clickhouse.serving import find_trace as find_in_clickhouse  # needs the extra

        return find_in_clickhouse(str(db), prefix)
    text = trace_prefix(prefix)
    with _connection(db) as con:
        try:
            found = con.execute(
                "SELECT DISTINCT trace_id FROM spans WHERE starts_with(trace_id, $p) "
                "ORDER BY trace_id LIMIT 3",
                {"p": text},
            ).fetchall()
        except duckdb.Error as e:
            raise RollupError(first_line(e)) from e
    return one_trace(text, [r[0] for r in found])


def trace_prefix(prefix: str) -> str:
    """``prefix`` as the lower-case hex a trace id lookup takes; `RollupError` when it is not
    4 to 32 hex digits. The rule every backend's `find_trace` applies first."""
    text = prefix.strip().lower()
    if not (_MIN_PREFIX <= len(text) <= 32) or not set(text) <= _HEX:
        raise RollupError(f"not a trace id or a prefix of one (4 to 32 hex digits): {prefix!r}")
    return text


def one_trace(text: str, found: list[str]) -> str:
    """The answer to a prefix lookup, given the (up to 3, sorted) ids starting with ``text``:
    the one id, or `RollupError` saying none or several."""
    if not found:
        raise RollupError(f"no trace id starts with {text}")
    if len(found) > 1:
        shown = ", ".join(found[:2])
        raise RollupError(f"{text} is the start of several trace ids ({shown}, ...): give more digits")
    return str(found[0])


def ungrouped(rows: list[dict[str, Any]], key: str, carried: Callable[[], bool] | None = None) -> str | None:
    """What to say when ``--group-by key`` put every row in the block of calls without the
    key (a typo, ``user_id`` for ``user.id``, read as a real answer: a review): None when
    some row has a value, there is no row to judge, or ``carried()`` says some call the
    answer leaves out carries the key all the same (for a rollup of some calls only, such as
    ``unpriced``: the review of the first form; None: the rows hold every call of the
    window, as per-group's, compare's and forecast's do)."""
    grouped = [r for r in rows if r.get("level") != "total"]
    if not grouped or any(r.get("value") is not None for r in grouped):
        return None
    if carried is not None and carried():
        return None
    known = {*COLUMNS, *IDENTITY_KEYS, *settings.identity_keys()}
    known |= {k for k in ATTRIBUTE_COLUMNS if not k.startswith("costattr.")}
    if key in known:  # spelled right: naming it as its own closest match read as a typo (a review)
        why = "it is a key the rollups know, and no call of this window sets it"
    else:
        why = f"keys are matched as spelled ({near(key, sorted(known))})"
    return f"no call here carries {key!r}: every row is the calls without it ('-'); {why}"


def carries(db: Database, key: str, params: Mapping[str, Any], where: Any = None) -> bool:
    """Whether some call of the window and filters ``params`` and ``where`` (a rollup's, as
    given to `rollup`) carries ``key``: per-group over them has a row with a value."""
    from .catalog import query
    from .queries import rollup

    accepted = query("per_group").accepts()
    window = {k: v for k, v in params.items() if k in accepted and k != "group_by"}
    return any(r["value"] is not None for r in rollup("per_group", db, group_by=key, where=where, **window))
