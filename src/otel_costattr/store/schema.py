"""The columns of the ``spans`` table, written once; every backend's form is derived from them.

`SPANS` lists each column with its logical type, nullability, the migration that introduced
it and what it holds. From it come the Arrow schema of the rows and spool files
(`arrow_schema`, imported by `spans/rows.py`), the DuckDB migrations (`duckdb_migrations`,
wrapped by `store/database.py`) and the ClickHouse column types (`clickhouse_types`).

Adding a column is adding one entry at the end of `SPANS` with a new migration name: it
becomes an ``ALTER TABLE spans ADD COLUMN`` migration, so old files gain it and new files are
created with it, in the same place. A released migration is frozen: editing or moving an
entry that names one changes SQL that old files already ran (tests/test_schema.py pins it).

Only pyarrow is imported here: `spans/rows.py` needs this module, and the processor's users
must not pay for duckdb.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

SPANS_TABLE = "spans"
CREATE_SPANS = "0001_create_spans"


@dataclass(frozen=True)
class LogicalType:
    """A column type, and how each backend spells it."""

    name: str
    arrow: pa.DataType
    duckdb: str
    clickhouse: str


STRING = LogicalType("string", pa.string(), "VARCHAR", "String")
TIMESTAMP_US = LogicalType("timestamp_us", pa.timestamp("us"), "TIMESTAMP", "DateTime64(6)")
FLOAT64 = LogicalType("float64", pa.float64(), "DOUBLE", "Float64")
INT64 = LogicalType("int64", pa.int64(), "BIGINT", "Int64")
INT32 = LogicalType("int32", pa.int32(), "INTEGER", "Int32")
DECIMAL_38_12 = LogicalType("decimal(38,12)", pa.decimal128(38, 12), "DECIMAL(38, 12)", "Decimal(38, 12)")
BOOLEAN = LogicalType("boolean", pa.bool_(), "BOOLEAN", "Bool")
# JSON travels as text in Arrow (the spool) and ClickHouse; DuckDB's JSON type checks it on insert.
JSON = LogicalType("json", pa.string(), "JSON", "String")


@dataclass(frozen=True)
class Column:
    """One column of ``spans``: name, logical type, the migration that added it, a one-line doc."""

    name: str
    type: LogicalType
    migration: str
    doc: str
    nullable: bool = True


def _c(name: str, kind: LogicalType, doc: str, *, nullable: bool = True) -> Column:
    return Column(name, kind, CREATE_SPANS, doc, nullable)


SPANS: tuple[Column, ...] = (
    _c("trace_id", STRING, "W3C trace id, 32 lowercase hex digits.", nullable=False),
    _c("span_id", STRING, "Span id, 16 lowercase hex digits; unique with trace_id.", nullable=False),
    _c("parent_span_id", STRING, "The parent's span id; NULL for a root span."),
    _c("name", STRING, "The span name."),
    _c("kind", STRING, "SpanKind name: INTERNAL, CLIENT, SERVER, PRODUCER, CONSUMER."),
    _c("start_time", TIMESTAMP_US, "Start, naive UTC, microseconds."),
    _c("end_time", TIMESTAMP_US, "End, naive UTC, microseconds."),
    _c("duration_ms", FLOAT64, "end - start in milliseconds."),
    _c("status_code", STRING, "StatusCode name: UNSET, OK, ERROR."),
    _c("status_message", STRING, "Status description; only the exception type unless content is captured."),
    _c("service_name", STRING, "The resource's service.name."),
    _c("scope_name", STRING, "Instrumentation scope name."),
    _c("scope_version", STRING, "Instrumentation scope version."),
    _c("span_role", STRING, "model_call, duplicate_call, agent, tool, workflow or other."),
    _c("operation", STRING, "gen_ai.operation.name."),
    _c("provider", STRING, "The provider, from the first of semconv.PROVIDER_KEYS present."),
    _c("request_model", STRING, "gen_ai.request.model."),
    _c("response_model", STRING, "gen_ai.response.model (or llm.model_name, or embedding.model_name)."),
    _c("input_tokens", INT64, "Input tokens including cache reads and writes; model calls only."),
    _c("output_tokens", INT64, "Output tokens including reasoning; model calls only."),
    _c("cache_read_tokens", INT64, "Input tokens read from the prompt cache; model calls only."),
    _c("cache_write_tokens", INT64, "Input tokens written to the prompt cache; model calls only."),
    _c("reasoning_tokens", INT64, "Reasoning tokens (part of output_tokens); model calls only."),
    _c("cost_usd", DECIMAL_38_12, "Exact cost in USD; NULL when unpriced or implausible; model calls only."),
    _c("cost_status", STRING, "priced, unknown_model, no_usage, invalid_usage or implausible."),
    _c("cost_source", STRING, "'span' (stamped by a processor) or 'exporter' (priced on export)."),
    _c("pricing_version", STRING, "Version of the pricing table that priced the call."),
    _c("priced_model", STRING, "The pricing entry the model resolved to."),
    _c("agent_name", STRING, "gen_ai.agent.name (an OpenInference AGENT span: agent.name)."),
    _c("agent_id", STRING, "gen_ai.agent.id."),
    _c("agent_version", STRING, "gen_ai.agent.version."),
    _c("feature", STRING, "app.feature, the feature the span is attributed to."),
    _c("step", INT32, "The agent step (gen_ai.agent.step)."),
    _c("tool_name", STRING, "gen_ai.tool.name."),
    _c("conversation_id", STRING, "gen_ai.conversation.id."),
    _c("workflow_name", STRING, "gen_ai.workflow.name."),
    _c("attributes", JSON, "Span attributes as a JSON object, message content left out unless captured."),
    _c("resource", JSON, "Resource attributes as a JSON object."),
    _c("events", JSON, "Events as a JSON array of {name, time_unix_nano, attributes}."),
    _c("links", JSON, "Links as a JSON array of {trace_id, span_id, attributes}."),
)

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def check(columns: Sequence[Column]) -> None:
    """Raise `ValueError` naming the column when ``columns`` cannot describe one table whose
    migrations build the same column order in a new file and in an upgraded old one."""
    if not columns:
        raise ValueError("a table needs at least one column")
    seen: set[str] = set()
    done: set[str] = set()  # migrations whose columns are all listed already
    current = None
    for column in columns:
        if not _IDENTIFIER.fullmatch(column.name):  # names are written into SQL unquoted
            raise ValueError(f"column {column.name!r}: not a lowercase SQL identifier")
        if column.name in seen:
            raise ValueError(f"column {column.name!r}: listed twice")
        seen.add(column.name)
        if column.migration != current:
            # ADD COLUMN appends, so a migration's columns must be contiguous and in order.
            if column.migration in done:
                raise ValueError(
                    f"column {column.name!r}: migration {column.migration!r} is not contiguous;"
                    " a new column goes at the end with a new migration"
                )
            if current is not None:
                done.add(current)
            current = column.migration
        if column.migration != columns[0].migration and not column.nullable:
            # Rows stored before the column existed have no value for it.
            raise ValueError(f"column {column.name!r}: a column added by a later migration must be nullable")


def arrow_schema(columns: Sequence[Column] = SPANS) -> pa.Schema:
    """The Arrow schema of rows and spool files, in table order.

    Every field is nullable, NOT NULL columns included: that is what the spool has always
    written, and the table enforces NOT NULL when a file is ingested."""
    return pa.schema([pa.field(c.name, c.type.arrow) for c in columns])


def _duckdb_column(column: Column) -> str:
    return f"{column.name} {column.type.duckdb}" + ("" if column.nullable else " NOT NULL")


def duckdb_migrations(
    columns: Sequence[Column] = SPANS, table: str = SPANS_TABLE
) -> tuple[tuple[str, str], ...]:
    """(name, SQL) of each migration that builds ``table`` from ``columns``, in order: the
    first migration creates the table, each later one adds its columns."""
    check(columns)
    groups: dict[str, list[Column]] = {}
    for column in columns:
        groups.setdefault(column.migration, []).append(column)
    steps = []
    for i, (name, group) in enumerate(groups.items()):
        if i == 0:
            body = ",\n".join(f"    {_duckdb_column(c)}" for c in group)
            sql = f"CREATE TABLE {table} (\n{body}\n);"
        else:
            sql = "\n".join(f"ALTER TABLE {table} ADD COLUMN {_duckdb_column(c)};" for c in group)
        steps.append((name, sql))
    return tuple(steps)


def clickhouse_types(columns: Sequence[Column] = SPANS) -> dict[str, str]:
    """Column name -> ClickHouse type, in table order; a nullable column is ``Nullable(...)``."""
    return {
        c.name: c.type.clickhouse if not c.nullable else f"Nullable({c.type.clickhouse})" for c in columns
    }


# Columns the DuckDB store fills in itself after ingest (store/identity.py), not part of a
# span's row: the spool, rows.py and ClickHouse never see them. They come before the call
# views' migrations in store/database.py, which read them. Frozen once released, like SPANS.
IDENTITY_MIGRATION = "0006_call_identity"
IDENTITY: tuple[Column, ...] = (
    Column("identity_settled", BOOLEAN, IDENTITY_MIGRATION, "TRUE once settled_* hold the call's identity."),
    Column("settled_feature", STRING, IDENTITY_MIGRATION, "The call's feature, else its nearest ancestor's."),
    Column("settled_agent_name", STRING, IDENTITY_MIGRATION, "The agent, else the nearest ancestor's."),
    Column("settled_agent_version", STRING, IDENTITY_MIGRATION, "That agent's version."),
)


def identity_migration(table: str = SPANS_TABLE) -> tuple[str, str]:
    """(name, SQL) of the migration adding the `IDENTITY` columns to ``table``."""
    check((*SPANS, *IDENTITY))
    return IDENTITY_MIGRATION, "\n".join(
        f"ALTER TABLE {table} ADD COLUMN {_duckdb_column(c)};" for c in IDENTITY
    )


# The attributes rollups read by key most (the identity keys users group by, reconcile's
# two), kept beside the JSON as columns: json_extract_string of one key parses the call's whole
# JSON (3.6 s of CPU for per-group over 4.5M calls of ~660 bytes), a column reads itself. The
# ClickHouse contract carries the same columns under the same names (clickhouse/prelude.py).
# The store fills them for model calls at ingest (`attribute_select`; the rollups read them
# from the calls only) with exactly the text json_extract_string gives (NULL when absent; a
# number, bool or nested value as its JSON text); migration 0012 fills the calls stored before.
# A model call inserted into spans by other SQL must add `attribute_select` likewise: the
# contract reads the columns, not the JSON (falling back to the JSON row by row scanned the
# JSON column again: 0.53 s of CPU against 0.04 s for the column at 10M spans).
# Keys written out here (semconv.COST_SOURCE, semconv.COMPUTED_COST: tests/test_schema.py
# checks them) so that this module imports pyarrow only.
ATTRIBUTE_COLUMNS = {
    "user.id": "attr_user_id",
    "enduser.id": "attr_enduser_id",
    "app.tenant": "attr_app_tenant",
    "tenant.id": "attr_tenant_id",
    "session.id": "attr_session_id",
    "costattr.cost_source": "attr_costattr_cost_source",
    "costattr.computed_cost": "attr_costattr_computed_cost",
}
ATTRIBUTES_MIGRATION = "0012_attribute_columns"
ATTRIBUTES: tuple[Column, ...] = (
    *(
        Column(c, STRING, ATTRIBUTES_MIGRATION, f"The attribute {k!r} as text.")
        for k, c in ATTRIBUTE_COLUMNS.items()
    ),
)
# One parse of the JSON for all the keys (a list of paths), for model calls only.
_PATHS = "[" + ", ".join(f"'$.\"{key}\"'" for key in ATTRIBUTE_COLUMNS) + "]"
_VALUES = f"CASE WHEN span_role = 'model_call' THEN json_extract_string(attributes, {_PATHS}) END"


@functools.cache
def attribute_select() -> str:
    """The `ATTRIBUTES` computed from a spans row's ``span_role`` and ``attributes``, as a
    SELECT list (the ingest appends it to the row's columns). DuckDB computes the shared
    list of values once per row (common subexpression)."""
    values = [f"({_VALUES})[{i}] AS {column}" for i, column in enumerate(ATTRIBUTE_COLUMNS.values(), 1)]
    return ", ".join(values)


def attribute_fill(table: str = SPANS_TABLE) -> str:
    """An UPDATE that sets the `ATTRIBUTES` columns of every model call in ``table`` from its
    attributes, as `attribute_select` computes them (for rows inserted without them)."""
    sets = ", ".join(
        f"{column} = (json_extract_string(attributes, {_PATHS}))[{i}]"
        for i, column in enumerate(ATTRIBUTE_COLUMNS.values(), 1)
    )
    return f"UPDATE {table} SET {sets} WHERE span_role = 'model_call';"


def attribute_refill(table: str = SPANS_TABLE) -> str:
    """An UPDATE that fills the `ATTRIBUTES` columns of the model calls in ``table`` that
    have none of them set while their attributes hold one of the keys: calls an older
    version's exporter wrote into a store this version had upgraded (`store repair`)."""
    empty = " AND ".join(f"{column} IS NULL" for column in ATTRIBUTE_COLUMNS.values())
    found = ", ".join(
        f"(json_extract_string(attributes, {_PATHS}))[{i}]" for i in range(1, len(ATTRIBUTE_COLUMNS) + 1)
    )
    fill = attribute_fill(table).removesuffix(";")
    return f"{fill} AND {empty} AND coalesce({found}) IS NOT NULL;"


def attribute_migration(table: str = SPANS_TABLE, *, if_not_exists: bool = False) -> tuple[str, str]:
    """(name, SQL) of the migration adding the `ATTRIBUTES` columns to ``table`` (unless it
    has them, with ``if_not_exists``) and filling them for the model calls stored (5 s of
    CPU, peak RSS 1.85 GB at 10M spans, 4.5M calls)."""
    check((*SPANS, *IDENTITY, *ATTRIBUTES))
    add = "ADD COLUMN IF NOT EXISTS" if if_not_exists else "ADD COLUMN"
    adds = [f"ALTER TABLE {table} {add} {_duckdb_column(c)};" for c in ATTRIBUTES]
    return ATTRIBUTES_MIGRATION, "\n".join([*adds, attribute_fill(table)])
