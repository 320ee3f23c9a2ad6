"""The one column list of ``spans`` and what is derived from it: Arrow, DuckDB, ClickHouse."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from otel_costattr.spans import rows
from otel_costattr.store import database as store
from otel_costattr.store import ingest, schema
from otel_costattr.store.schema import INT64, STRING, TIMESTAMP_US, Column

# Released migrations, as the SQL old files ran. Frozen: a derived migration that stops matching
# its text here would leave old files and new files with different tables.
RELEASED = {
    "0001_create_spans": """
        CREATE TABLE spans (
            trace_id VARCHAR NOT NULL,
            span_id VARCHAR NOT NULL,
            parent_span_id VARCHAR,
            name VARCHAR,
            kind VARCHAR,
            start_time TIMESTAMP,
            end_time TIMESTAMP,
            duration_ms DOUBLE,
            status_code VARCHAR,
            status_message VARCHAR,
            service_name VARCHAR,
            scope_name VARCHAR,
            scope_version VARCHAR,
            span_role VARCHAR,
            operation VARCHAR,
            provider VARCHAR,
            request_model VARCHAR,
            response_model VARCHAR,
            input_tokens BIGINT,
            output_tokens BIGINT,
            cache_read_tokens BIGINT,
            cache_write_tokens BIGINT,
            reasoning_tokens BIGINT,
            cost_usd DECIMAL(38, 12),
            cost_status VARCHAR,
            cost_source VARCHAR,
            pricing_version VARCHAR,
            priced_model VARCHAR,
            agent_name VARCHAR,
            agent_id VARCHAR,
            agent_version VARCHAR,
            feature VARCHAR,
            step INTEGER,
            tool_name VARCHAR,
            conversation_id VARCHAR,
            workflow_name VARCHAR,
            attributes JSON,
            resource JSON,
            events JSON,
            links JSON
        );
        """,
}


def normalised(sql: str) -> str:
    return " ".join(sql.split())


def columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = 'spans' ORDER BY ordinal_position"
    ).fetchall()


def test_released_migrations_are_derived_unchanged():
    derived = {m.name: m.sql for m in store.MIGRATIONS}
    for name, sql in RELEASED.items():
        assert normalised(derived[name]) == normalised(sql), name


def test_the_store_migrations_start_with_the_column_migrations_in_order():
    names = [name for name, _ in schema.duckdb_migrations()]
    assert [m.name for m in store.MIGRATIONS[: len(names)]] == names == [schema.CREATE_SPANS]


def test_rows_use_the_schema_arrow_types_in_table_order():
    assert schema.arrow_schema() == rows.SCHEMA
    assert tuple(c.name for c in schema.SPANS) == rows.COLUMN_NAMES
    assert [t for _, t in rows.COLUMNS] == [c.type.arrow for c in schema.SPANS]


# -- ClickHouse ----------------------------------------------------------------------------


def test_clickhouse_types_cover_every_column_in_order():
    types = schema.clickhouse_types()
    assert list(types) == list(rows.COLUMN_NAMES)
    assert all(types.values())


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("trace_id", "String"),
        ("span_id", "String"),
        ("parent_span_id", "Nullable(String)"),
        ("start_time", "Nullable(DateTime64(6))"),
        ("duration_ms", "Nullable(Float64)"),
        ("input_tokens", "Nullable(Int64)"),
        ("step", "Nullable(Int32)"),
        ("cost_usd", "Nullable(Decimal(38, 12))"),
        ("attributes", "Nullable(String)"),
    ],
)
def test_clickhouse_types_by_hand(column, expected):
    assert schema.clickhouse_types()[column] == expected


def test_clickhouse_nullability_is_the_duckdb_tables():
    con = duckdb.connect(":memory:")
    try:
        store.migrate(con)
        duck = {name: nullable == "YES" for name, _, nullable in columns(con)}
    finally:
        con.close()
    click = {name: kind.startswith("Nullable(") for name, kind in schema.clickhouse_types().items()}
    # The identity the DuckDB store settles itself, and the attributes it keeps as columns,
    # are no part of a span's row.
    derived = {c.name for c in (*schema.IDENTITY, *schema.ATTRIBUTES)}
    assert derived <= set(duck)
    assert click == {name: nullable for name, nullable in duck.items() if name not in derived}
    assert not duck["trace_id"] and duck["cost_usd"]


# -- adding a column -----------------------------------------------------------------------

# A test-local schema: the real one (with the columns the store fills itself, which its
# ingest writes) plus what a later release might add. Two columns in one migration, one in
# the next.
EXTENDED = (
    *schema.SPANS,
    *schema.IDENTITY,
    *schema.ATTRIBUTES,
    Column("region", STRING, "0002_add_region", "Cloud region of the call."),
    Column("budget_tokens", INT64, "0002_add_region", "Token budget the caller set."),
    Column("queued_at", TIMESTAMP_US, "0003_add_queued_at", "When the call was queued."),
)


def _migrations(columns_: tuple[Column, ...]) -> list[store.Migration]:
    return [store.Migration(name, sql) for name, sql in schema.duckdb_migrations(columns_)]


def test_a_column_added_later_upgrades_a_file_made_by_the_real_0001(tmp_path):
    old_path, new_path = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    columns_ = [schema.CREATE_SPANS, schema.IDENTITY_MIGRATION, schema.ATTRIBUTES_MIGRATION]
    real_0001 = [m for m in store.MIGRATIONS if m.name in columns_]
    con = duckdb.connect(str(old_path))
    try:
        assert store.migrate(con, real_0001) == columns_
        before = rows.rows_to_table([_values(trace=1, cost_usd=Decimal("0.25"))])
        assert ingest.insert_table(con, before) == 1
        steps = _migrations(EXTENDED)
        assert steps[0] == real_0001[0]  # adding a column leaves the released migration alone
        assert store.migrate(con, steps) == ["0002_add_region", "0003_add_queued_at"]
        upgraded = columns(con)
        # The old row reads NULL in the new columns; a row of the new shape goes in by name.
        assert con.execute("SELECT cost_usd, region, budget_tokens, queued_at FROM spans").fetchall() == [
            (Decimal("0.25"), None, None, None)
        ]
        after = rows.rows_to_table([_values(trace=2)]).append_column("region", [["eu-west-1"]])
        assert ingest.insert_table(con, after) == 1
        assert con.execute("SELECT region FROM spans ORDER BY trace_id").fetchall() == [
            (None,),
            ("eu-west-1",),
        ]
    finally:
        con.close()
    con = duckdb.connect(str(new_path))
    try:
        assert store.migrate(con, _migrations(EXTENDED)) == [
            *columns_,
            "0002_add_region",
            "0003_add_queued_at",
        ]
        assert columns(con) == upgraded  # an upgraded old file and a new file agree
    finally:
        con.close()
    assert [name for name, _, _ in upgraded] == [c.name for c in EXTENDED]
    assert upgraded[-3:] == [
        ("region", "VARCHAR", "YES"),
        ("budget_tokens", "BIGINT", "YES"),
        ("queued_at", "TIMESTAMP", "YES"),
    ]


def _values(trace: int, **values) -> tuple:
    row = dict.fromkeys(rows.COLUMN_NAMES)
    row.update(trace_id=f"{trace:032x}", span_id=f"{trace:016x}", attributes="{}", resource="{}")
    row.update(events="[]", links="[]", **values)
    return tuple(row[c] for c in rows.COLUMN_NAMES)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((Column("trace_id", STRING, "0002_x", "again"),), "'trace_id': listed twice"),
        ((Column("Region", STRING, "0002_x", "upper case"),), "'Region': not a lowercase SQL identifier"),
        ((Column("a", STRING, "0002_x", "required", nullable=False),), "'a': a column added by a later"),
        (
            (Column("a", STRING, "0002_x", "x"), Column("b", STRING, schema.CREATE_SPANS, "back to 0001")),
            "'b': migration '0001_create_spans' is not contiguous",
        ),
    ],
)
def test_a_schema_that_old_and_new_files_could_not_share_is_refused(extra, message):
    with pytest.raises(ValueError, match=message):
        schema.duckdb_migrations((*schema.SPANS, *extra))
