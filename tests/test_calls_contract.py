"""The call contract persisted as views (queries/_calls.sql): any DuckDB client opening the
file reads ``calls`` and ``runs`` with the attribution rules, and gets what the rollups give."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal

import duckdb
import pytest
from test_rollups_workload import DAY0, TOTAL_CALLS, Writer, build, identity, trace_id

from otel_costattr.rollups import contract
from otel_costattr.rollups.queries import _prepare, rollup
from otel_costattr.store import database as store

D = Decimal
# sha256 of queries/_calls.sql as the last views migration created it. A file migrated before
# keeps the views it got: when the rules change, add a migration that runs the file again
# (store/database.py, after 0002_call_views), then pin the new digest here. A change to the
# "-- @rollups:" lines and comments alone (the macros' p_traces, rollups/facts.py; their
# unpriced_calls_repriced, 2026-12-07) leaves the views as DuckDB stores them
# (duckdb_views().sql, comments dropped) the same: no migration.
CONTRACT_SHA256 = "b4e952c9d2237d21b5259507fa2664fb9b5f3860fe72851c2bcaa14fffc5e421"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """The rollup workload, plus a run whose call comes from another service (a gateway traced
    without the processor): the call and the gateway's SERVER span carry no identity."""
    path = build(tmp_path_factory.mktemp("contract") / "spans.duckdb")
    con = store.connect(path)
    try:
        w = Writer(con)
        at = DAY0 + dt.timedelta(days=8)
        root = w.span(9, "invoke_workflow refund", role="workflow", at=at, ms=60_000, **identity("refund"))
        agent = w.span(9, "invoke_agent triage", parent=root, role="agent", at=at, ms=50_000,
                       **identity("refund", "triage", "v1"))  # fmt: skip
        server = w.span(9, "POST /generate", parent=agent, at=at, service_name="llm-gateway")
        w.call(9, "gpt-4o-mini", 4000, 0, "0.0006", parent=server, at=at, service_name="llm-gateway")
    finally:
        con.close()
    return path


def client(path):
    """A plain DuckDB connection, as any client would open the file (no otel-costattr SQL)."""
    return duckdb.connect(str(path), read_only=True)


def columns(con, relation):
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def test_the_views_have_the_contract_columns(db):
    with client(db) as con:
        assert columns(con, "calls") == [*contract.CALL_COLUMNS, *contract.ATTRIBUTE_CALL_COLUMNS]
        assert columns(con, "runs") == list(contract.RUN_COLUMNS)
    # The header of the contract file names every column too.
    header = contract.contract_sql().split("CREATE OR REPLACE VIEW", 1)[0]
    named = set(re.findall(r"\b[a-z_]+\b", header))
    assert set(contract.CALL_COLUMNS) <= named and set(contract.RUN_COLUMNS) <= named
    assert set(contract.ATTRIBUTE_CALL_COLUMNS) <= named


def test_the_seed_query_on_the_view_equals_per_feature(db):
    with client(db) as con:
        rows = con.execute(
            "SELECT feature, sum(cost_usd), count(*), count(DISTINCT trace_id) FROM calls GROUP BY feature"
        ).fetchall()
    view = {feature: (usd, calls, runs) for feature, usd, calls, runs in rows}
    rolled = {r["feature"]: (r["usd"], r["calls"], r["runs"]) for r in rollup("per_feature", db=db)}
    assert view == rolled
    # The gateway's call is the refund feature's, through two parents from another service.
    assert view["refund"] == (D("0.0154"), 5, 3)
    assert sum(calls for _, calls, _ in view.values()) == TOTAL_CALLS + 1


def test_the_view_is_the_relation_the_rollups_read(db):
    with client(db) as con:
        view = con.execute("SELECT * FROM calls").fetchall()
        _prepare(con)
        names = ", ".join((*contract.CALL_COLUMNS, *contract.ATTRIBUTE_CALL_COLUMNS))
        rollups = con.execute(f"SELECT {names} FROM costattr_calls(NULL, NULL, NULL, NULL, NULL)").fetchall()
    assert len(view) == TOTAL_CALLS + 1
    assert sorted(view, key=repr) == sorted(rollups, key=repr)
    gateway = [row for row in view if row[0] == trace_id(9)]
    assert [row[contract.CALL_COLUMNS.index("agent_name")] for row in gateway] == ["triage"]


def test_the_runs_view_equals_per_run(db):
    with client(db) as con:
        cur = con.execute("SELECT * FROM runs")
        names = [d[0] for d in cur.description]
        view = {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
    rolled = rollup("per_run", db=db, limit=0)
    assert len(view) == len(rolled) == 9
    for run in rolled:
        v = view[run["trace_id"]]
        assert (v["name"], v["agent_name"], v["feature"], v["start_time"], v["duration_ms"]) == (
            run["run_name"], run["agent"], run["feature"], run["start_time"], run["duration_ms"]
        )  # fmt: skip
        assert (v["calls"], v["cost_usd"]) == (run["calls"], run["usd"])
    t1 = view[trace_id(1)]
    assert (t1["service_name"], t1["unpriced_calls"], t1["end_time"]) == (
        "svc-a", 0, DAY0 + dt.timedelta(minutes=10)
    )  # fmt: skip
    assert view[trace_id(5)]["unpriced_calls"] == 2
    assert view[trace_id(6)]["service_name"] == "svc-a"  # no root: the first call's


def test_a_file_from_the_previous_version_gains_the_views(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        store.migrate(con, store.MIGRATIONS[:1])  # what the previous version created
        Writer(con).call(1, "gpt-4o-mini", 1000, 0, "0.00015", parent=None, at=DAY0, **identity("f"))
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'calls'").fetchone()[0] == 0
    store.connect(path).close()
    with client(path) as con:
        assert con.execute("SELECT feature, sum(cost_usd) FROM calls GROUP BY feature").fetchall() == [
            ("f", D("0.00015"))
        ]
        assert con.execute("SELECT name FROM costattr_migrations ORDER BY name").fetchall() == sorted(
            (m.name,) for m in store.MIGRATIONS
        )


def test_the_macros_are_the_views_with_the_marked_lines_read():
    text = contract.contract_sql()
    prelude = contract.rollup_prelude(text)
    assert "-- @rollups:" not in prelude and "CREATE OR REPLACE VIEW" not in prelude
    kept = [line for line in text.splitlines() if "-- @rollups:" not in line]
    assert [line for line in prelude.splitlines() if line in kept] == kept
    assert contract.rollup_prelude("  -- @rollups: AND x\nSELECT 1  -- @rollups: SELECT 2\n") == (
        "  AND x\nSELECT 2\n"
    )
    with pytest.raises(ValueError, match="cannot read the marked line"):
        contract.rollup_prelude("SELECT '-- @rollups: x'")


def test_the_migration_runs_the_contract_file():
    views = [m for m in store.MIGRATIONS if m.sql == contract.contract_sql()]
    assert views and views[0].name == "0002_call_views"
    digest = hashlib.sha256(contract.contract_sql().encode()).hexdigest()
    assert digest == CONTRACT_SHA256, (
        "queries/_calls.sql changed: files migrated before keep the old views. Add a migration "
        "that runs it again (store/database.py), then pin the new digest here."
    )
