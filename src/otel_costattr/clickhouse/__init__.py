"""ClickHouse as a span store: the rollups over the OpenTelemetry Collector's ``otel_traces``.

Applications export OTLP to a Collector whose ``clickhouse`` exporter writes ``otel_traces``
(the processor has already stamped each model call's cost). ``--db clickhouse://...`` (or
``chdb:///path``, the embedded engine) then runs every rollup there: `target` parses the URL,
`client` connects through clickhouse-connect (the ``clickhouse`` extra, imported lazily),
`prelude` renders the ClickHouse preludes (``queries/clickhouse/``) from the rules' homes,
`dialect` makes a rollup's DuckDB SQL into ClickHouse SQL, `runner` runs it (`onetrace` the
``trace`` rollup), `typed` keeps the optional typed table (``otel-costattr clickhouse init``),
`settle` settles identities and prices once and `ledger` keeps the settled calls the rollups read,
`collector` is the exporter's table, `serving` is ``serve`` over ClickHouse (read-only),
`local` puts a window's calls in an in-memory DuckDB where ``--reprice`` and ``whatif`` run,
`alerts` evaluates alert rules there with their states in a local DuckDB file.
"""

from __future__ import annotations

from .target import DEFAULT_TABLE, Target, is_clickhouse_url, parse_target

__all__ = ["DEFAULT_TABLE", "Target", "is_clickhouse_url", "parse_target", "rollup_source"]


def rollup_source(db: str) -> Target | None:
    """What the rollup runner needs for a ``--db`` string: a `Target` when it names a
    ClickHouse store (``clickhouse://``, ``clickhouses://``, ``chdb://``), None when it is a
    DuckDB path. Raises `ValueError` (one line) for a malformed ClickHouse URL. ``serve`` and
    ``report`` pass the result (or the path) to `otel_costattr.rollups.queries.rollup`."""
    return parse_target(db)
