"""Queries from outside the bundle, run the way a bundled rollup runs.

A component with SQL of its own over the call contract (the server's cursor-paged runs list,
``server/runs_page.sql``) writes the same ``-- @about`` / ``-- @param`` header as a file in
``queries/``, reads it with `custom_query` (checked as the catalogue checks its files) and runs
it with `run_custom`: parameters bound and checked by `params.bind`, the contract's TEMP
relations prepared, errors raised as `RollupError`, exactly as `queries.rollup` does. It is
not in the catalogue (no CLI command, no ``/api/v1/rollups`` entry).
"""

from __future__ import annotations

from typing import Any

from .catalog import Query
from .catalog import _parse as _parse_header
from .params import bind
from .queries import Database, Rows, _connection, _prepare, _run

__all__ = ["custom_query", "run_custom"]


def custom_query(name: str, sql: str) -> Query:
    """``sql`` (with a rollup's header) as a `Query` named ``name``; `RollupError` when the
    header is malformed."""
    return _parse_header(name, sql)


def run_custom(db: Database, q: Query, **params: Any) -> Rows:
    """The rows of ``q`` over ``db`` (a path, or an open connection, kept open) with
    ``params`` (None: not given); `RollupParamError` for a bad parameter, `RollupError`
    for a store that cannot answer."""
    values = bind(q, params)
    with _connection(db) as con:
        _prepare(con)
        return _run(con, q.sql, values)
