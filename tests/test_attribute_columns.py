"""The attributes the DuckDB store keeps as columns (store/schema.py ATTRIBUTE_COLUMNS).

Rollups read ``user.id``, ``app.tenant``, reconcile's two keys, ... from the columns, other
keys from the JSON. The columns must hold exactly what ``json_extract_string`` reads from the
JSON (NULL when absent, '' kept, a number, bool, list or object as its JSON text) whatever
way the spans came in: the exporter (real TracerProvider), the OTLP receiver (real server,
OTLP JSON with every value shape), a spool file as the previous version wrote it, and a
store written by the previous version and migrated (0012 fills the calls stored). Each
check compares the columns and the rollups grouped and filtered by each key with the JSON
read of the same calls.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import duckdb
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from serverutil import serving
from test_server_otlp import CALL  # a priced chat call (acme-large)

from otel_costattr.rollups.queries import rollup
from otel_costattr.spans import rows
from otel_costattr.store import database as store
from otel_costattr.store import schema
from otel_costattr.store.exporter import DuckDBSpanExporter
from otel_costattr.store.spool import write_spool

KEYS = list(schema.ATTRIBUTE_COLUMNS)


def _path(key: str) -> str:
    return f'$."{key}"'


def check_store(path) -> int:
    """Assert the columns and the rollups by each key agree with the JSON; returns how many
    (call, key) pairs carry a value."""
    with duckdb.connect(str(path), read_only=True) as con:
        values = 0
        for key, column in schema.ATTRIBUTE_COLUMNS.items():
            differ, held, other = con.execute(
                f"SELECT count(*) FILTER (WHERE span_role = 'model_call'"
                f"   AND {column} IS DISTINCT FROM json_extract_string(attributes, $p)),"
                f" count({column}) FILTER (WHERE span_role = 'model_call'),"
                f" count({column}) FILTER (WHERE span_role IS DISTINCT FROM 'model_call')"
                " FROM spans",
                {"p": _path(key)},
            ).fetchone()
            assert (differ, other) == (0, 0), key
            values += held
            by_json = {
                v: (n, usd)
                for v, n, usd in con.execute(
                    "SELECT json_extract_string(attributes, $p), count(*), sum(cost_usd)"
                    " FROM calls GROUP BY 1",
                    {"p": _path(key)},
                ).fetchall()
            }
            grouped = rollup("per_group", db=path, group_by=key)
            assert {r["value"]: (r["calls"], r["usd"]) for r in grouped} == by_json, key
            by_feature = rollup("per_feature", db=path, group_by=key)
            assert {r["value"] for r in by_feature} == set(by_json), key
            for value, (n, _) in by_json.items():
                if value is not None:
                    where = rollup("per_feature", db=path, where={key: value})
                    assert sum(r["calls"] for r in where) == n, (key, value)
    return values


def test_the_exporter_fills_them_with_the_json_text_of_each_shape(tmp_path, table):
    db = tmp_path / "spans.duckdb"
    exporter = DuckDBSpanExporter(db, pricing=table, ingest_interval=0.05)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    # Each key gets each shape on a different call (the shapes rotate by key), or none.
    shapes = ["u-1", "", 42, 4.5, True, ("a", "b"), None, "u-2"]
    with tracer.start_as_current_span("invoke_agent a", attributes={"user.id": "on-the-agent"}):
        for i in range(len(shapes)):
            attributes = dict(CALL)
            for k, key in enumerate(KEYS):
                shape = shapes[(i + k) % len(shapes)]
                if shape is not None:
                    attributes[key] = shape
            with tracer.start_as_current_span(f"chat {i}", attributes=attributes):
                pass
    provider.shutdown()
    with store.connect(db, read_only=True) as con:
        kept = con.execute(
            "SELECT attr_user_id FROM spans WHERE span_role = 'model_call' ORDER BY name"
        ).fetchall()
    assert [v for (v,) in kept] == ["u-1", "", "42", "4.5", "true", '["a","b"]', None, "u-2"]
    assert check_store(db) == len(KEYS) * 7


def _otlp(value: dict, key: str) -> dict:
    return {"key": key, "value": value}


# OTLP JSON AnyValue shapes, as another language's SDK or the Collector sends them.
OTLP_SHAPES = [
    {"stringValue": "t-1"},
    {"stringValue": ""},
    {"intValue": "12345678901234567"},
    {"doubleValue": 0.25},
    {"boolValue": False},
    {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}},
    {"kvlistValue": {"values": [{"key": "org", "value": {"stringValue": "acme"}}]}},
    None,
]


def test_the_otlp_receiver_fills_them_for_every_value_shape(tmp_path, table):
    db = tmp_path / "s.duckdb"
    spans = []
    for i in range(len(OTLP_SHAPES)):
        attrs = [
            _otlp({"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}, k)
            for k, v in CALL.items()
        ]
        for k, key in enumerate(KEYS):
            shape = OTLP_SHAPES[(i + k) % len(OTLP_SHAPES)]
            if shape is not None:
                attrs.append(_otlp(shape, key))
        spans.append({
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": f"{i + 1:016x}", "name": f"chat {i}",
            "kind": 3, "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": 1767225601000000000,
            "attributes": attrs,
        })  # fmt: skip
    spans.append({
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "00000000000000ff", "name": "root",
        "kind": 1, "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": 1767225601000000000,
        "attributes": [_otlp({"stringValue": "not-a-call"}, "user.id")],
    })  # fmt: skip
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "hand"}, "spans": spans}]}]})
    with serving(db, table=table) as srv:
        status, _, _ = srv.request("POST", "/v1/traces", body.encode(), {"Content-Type": "application/json"})
        assert status == 200
        srv.wait_ingested()
    with duckdb.connect(str(db), read_only=True) as con:
        nested = con.execute(
            "SELECT DISTINCT attr_app_tenant FROM spans"
            " WHERE attr_app_tenant LIKE '{%' OR attr_app_tenant LIKE '[%'"
        ).fetchall()
    assert len(nested) == 2  # the list and the object, as JSON text
    assert check_store(db) == len(KEYS) * 7


def _row(n: int, attributes: dict, role: str = "model_call") -> tuple:
    row = dict.fromkeys(rows.COLUMN_NAMES)
    at = dt.datetime(2026, 6, 1) + dt.timedelta(minutes=n)
    row.update(
        trace_id=f"{n % 3 + 1:032x}", span_id=f"{n + 1:016x}", name=f"chat {n}", span_role=role,
        start_time=at, end_time=at + dt.timedelta(seconds=1), cost_usd=Decimal("0.001") * (n + 1),
        cost_status="priced", input_tokens=10, output_tokens=5, feature="f",
        attributes=json.dumps(attributes), resource="{}", events="[]", links="[]",
    )  # fmt: skip
    return tuple(row[c] for c in rows.COLUMN_NAMES)


JSON_SHAPES = ["x-1", "", 7, -0.5, True, None, [1, {"a": "b"}], {"k": [True]}, "x-2"]


def _json_rows() -> list[tuple]:
    out = []
    for i in range(len(JSON_SHAPES) + 1):
        attributes = {}
        for k, key in enumerate(KEYS):
            pos = (i + k) % (len(JSON_SHAPES) + 1)
            if pos < len(JSON_SHAPES):  # one position leaves the key out; None is JSON null
                attributes[key] = JSON_SHAPES[pos]
        out.append(_row(i, attributes))
    out.append(_row(99, {"user.id": "an-agent"}, role="agent"))
    return out


def test_a_spool_file_of_the_previous_version_is_read_with_them(tmp_path):
    db = tmp_path / "spool.duckdb"
    store.connect(db).close()
    # The spool's columns are the span row's (rows.SCHEMA): the attribute columns are never in it.
    assert not set(schema.ATTRIBUTE_COLUMNS.values()) & set(rows.COLUMN_NAMES)
    write_spool(db, rows.rows_to_table(_json_rows()))
    store.connect(db).close()  # ingests the spool
    assert check_store(db) == sum(
        1
        for r in _json_rows()[:-1]
        for key in KEYS
        if json.loads(r[rows.COLUMN_NAMES.index("attributes")]).get(key) is not None
    )


def test_a_store_of_the_previous_version_is_filled_by_the_migration(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        # The columns the previous version had, its rows inserted as its ingest did.
        previous = [m for m in store.MIGRATIONS if m.name in (schema.CREATE_SPANS, schema.IDENTITY_MIGRATION)]
        store.migrate(con, previous)
        batch = rows.rows_to_table(_json_rows())  # noqa: F841 - DuckDB reads the local by name
        con.execute("INSERT INTO spans BY NAME SELECT * FROM batch")
    applied = []
    with store.connect(db) as con:
        applied = [r[0] for r in con.execute("SELECT name FROM costattr_migrations").fetchall()]
    assert schema.ATTRIBUTES_MIGRATION in applied
    assert check_store(db) > len(KEYS) * 6
    # The fast rollups (facts and the copy of pending runs, made again) answer as the calls do.
    assert rollup("per_feature", db=db)[0]["calls"] == len(_json_rows()) - 1


def test_the_keys_are_the_ones_the_rest_of_the_code_names():
    from otel_costattr import semconv
    from otel_costattr.clickhouse.prelude import ATTRIBUTE_COLUMNS

    assert ATTRIBUTE_COLUMNS is schema.ATTRIBUTE_COLUMNS
    assert {semconv.COST_SOURCE, semconv.COMPUTED_COST} <= set(schema.ATTRIBUTE_COLUMNS)


def test_a_store_whose_facts_keep_pending_runs_is_migrated_with_them(tmp_path):
    from otel_costattr.store import aggregates

    db = tmp_path / "pending.duckdb"
    store.connect(db).close()
    orphan = list(_row(50, {"user.id": "orphan", "app.tenant": "t"}))
    orphan[rows.COLUMN_NAMES.index("parent_span_id")] = "00000000000000aa"  # not stored: pending
    orphan[rows.COLUMN_NAMES.index("feature")] = None
    write_spool(db, rows.rows_to_table([*_json_rows(), tuple(orphan)]))
    store.connect(db).close()  # ingested; the facts keep the orphan's run pending, with a copy
    with duckdb.connect(str(db)) as con:  # as the previous version left it
        assert aggregates.pending_traces(con) == 1
        copied = con.execute("SELECT count(*) FROM costattr_fact_spans").fetchone()[0]
        assert copied > 1  # the orphan's trace, every span
        for table in ("spans", "costattr_fact_spans"):
            for column in schema.ATTRIBUTE_COLUMNS.values():
                con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        con.execute(
            "DELETE FROM costattr_migrations WHERE name IN ($a, $b)",
            {"a": schema.ATTRIBUTES_MIGRATION, "b": "0013_call_views_attributes"},
        )
    with store.connect(db) as con:
        assert aggregates.pending_traces(con) == 1 and aggregates.copy_fits(con)
        assert con.execute(
            "SELECT count(*), count(*) FILTER (WHERE attr_user_id IS NOT DISTINCT FROM"
            " json_extract_string(attributes, '$.\"user.id\"')),"
            " count(*) FILTER (WHERE attr_user_id = 'orphan')"
            " FROM costattr_fact_spans WHERE span_role = 'model_call'"
        ).fetchone() == (copied, copied, 1)
    assert check_store(db) > len(KEYS) * 6
    fast = rollup("per_feature", db=db)
    assert sum(r["calls"] for r in fast) == len(_json_rows())
    assert {
        r["value"] for r in rollup("per_feature", db=db, where={"user.id": "orphan"}, group_by="user.id")
    } == {"orphan"}
