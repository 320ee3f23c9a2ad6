"""``--group-by KEY`` on every rollup (rollups/dimensions.py `render_group`).

The definition, checked as a property of each rollup that takes it: the rows with value v
are exactly the rollup's answer over the calls whose KEY is v, i.e. what ``--where KEY=v``
answers, with ``key`` and ``value`` in front. Then figures by hand on the workload of
test_rollups_questions (identity keys in the call attributes), and the refusals.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from decimal import Decimal

import pytest
from test_rollups_workload import DAY0, Writer, build

from otel_costattr.cli import main
from otel_costattr.rollups.catalog import query, rollups
from otel_costattr.rollups.errors import RollupParamError
from otel_costattr.rollups.queries import rollup
from otel_costattr.store import database as store

D = Decimal
GROUPED = [n for n in rollups() if query(n).groups]
KEYS = ("model", "agent", "app.tenant")


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """The shared workload, plus calls for reconcile and approximations and a tenant on some."""
    path = build(tmp_path_factory.mktemp("group_by") / "spans.duckdb")
    con = store.connect(path)
    try:
        w = Writer(con)
        at = DAY0 + dt.timedelta(days=9)
        for n, (tenant, extra) in enumerate(
            (
                ("acme", {"costattr.cost_source": "provider", "costattr.computed_cost": "0.001"}),
                ("globex", {"costattr.cost_source": "provider", "costattr.computed_cost": "0.003"}),
                ("acme", {"costattr.model_source": "request"}),
            )
        ):
            attributes = json.dumps({"app.tenant": tenant, **extra})
            w.call(20 + n, "gpt-4o", 1000, 100, "0.002", parent=None, at=at, attributes=attributes,
                   span_id=f"{0xF00 + n:016x}", feature="refund")  # fmt: skip
    finally:
        con.close()
    return path


def _block(rows, value):
    return Counter(
        tuple(sorted((k, repr(v)) for k, v in row.items() if k not in ("key", "value")))
        for row in rows
        if row["value"] == value
    )


@pytest.fixture(scope="module")
def workload_con(workload):
    con = store.connect(workload, read_only=True)
    yield con
    con.close()


@pytest.mark.parametrize("name", GROUPED)
def test_each_value_is_the_rollup_where_key_is_that_value(workload_con, name):
    workload = workload_con
    seen = 0
    for key in KEYS:
        grouped = rollup(name, db=workload, group_by=key)
        assert list(grouped.columns[:2]) == ["key", "value"]
        assert all(row["key"] == key for row in grouped)
        plain = rollup(name, db=workload)
        assert list(grouped.columns[2:]) == list(plain.columns)
        values = {row["value"] for row in grouped}
        for value in values - {None}:
            filtered = rollup(name, db=workload, where={key: value})
            assert _block(grouped, value) == _block([{**r, "value": value} for r in filtered], value), (
                key,
                value,
            )
            seen += len(filtered)
    assert seen, f"{name}: the workload gives this rollup no rows to compare"


def test_overview_per_value_adds_up_to_the_whole(workload):
    total = rollup("overview", db=workload)[0]
    parts = rollup("overview", db=workload, group_by="service")
    assert [r["value"] for r in parts] == ["svc-a", "svc-b"]  # value order
    assert sum(r["calls"] for r in parts) == total["calls"]
    assert sum(r["usd"] for r in parts) == total["usd"]


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    """T1 acme/u1 chat: gpt-4o-mini 1000/100 $0.00021 and 2000/0 $0.0003; T2 acme/u2 chat:
    gpt-4o 1000/100 $0.0035; T3 globex/u3 search: claude-haiku-4-5 1000/100 $0.0015 and
    acme-ner-7b 500/50 unpriced; T4 no identity, no feature: gpt-4o-mini 1000/0 $0.00015."""
    path = tmp_path_factory.mktemp("tenants") / "spans.duckdb"
    con = store.connect(path)
    try:
        w = Writer(con)
        u1 = json.dumps({"user.id": "u1", "app.tenant": "acme"})
        u2 = json.dumps({"user.id": "u2", "app.tenant": "acme"})
        u3 = json.dumps({"user.id": "u3", "app.tenant": "globex"})
        w.call(1, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=DAY0, attributes=u1, feature="chat")
        w.call(1, "gpt-4o-mini", 2000, 0, "0.0003", parent=None, at=DAY0, attributes=u1, feature="chat")
        w.call(2, "gpt-4o", 1000, 100, "0.0035", parent=None, at=DAY0, attributes=u2, feature="chat")
        w.call(3, "claude-haiku-4-5", 1000, 100, "0.0015", parent=None, at=DAY0, attributes=u3,
               feature="search")  # fmt: skip
        w.call(3, "acme-ner-7b", 500, 50, None, parent=None, at=DAY0, attributes=u3, feature="search",
               provider="vllm")  # fmt: skip
        w.call(4, "gpt-4o-mini", 1000, 0, "0.00015", parent=None, at=DAY0)
    finally:
        con.close()
    return path


def test_per_feature_per_tenant_by_hand(tenants):
    rows = rollup("per_feature", db=tenants, group_by="app.tenant")
    assert [(r["key"], r["value"], r["feature"]) for r in rows] == [
        ("app.tenant", "acme", "chat"), ("app.tenant", "globex", "search"), ("app.tenant", None, None),
    ]  # fmt: skip
    acme, globex, none = rows
    assert (acme["runs"], acme["calls"], acme["input_tokens"], acme["output_tokens"]) == (2, 3, 4000, 200)
    assert (acme["usd"], acme["usd_per_run"], acme["unpriced_calls"]) == (D("0.00401"), D("0.002005"), 0)
    assert (globex["runs"], globex["calls"], globex["usd"]) == (1, 2, D("0.0015"))
    assert globex["unpriced_calls"] == 1
    assert (none["calls"], none["usd"]) == (1, D("0.00015"))


def test_per_model_per_user_and_stats_per_tenant_by_hand(tenants):
    rows = rollup("per_model", db=tenants, group_by="user.id")
    assert [(r["value"], r["model"], r["calls"], r["usd"]) for r in rows] == [
        ("u1", "gpt-4o-mini", 2, D("0.00051")),
        ("u2", "gpt-4o", 1, D("0.0035")),
        ("u3", "claude-haiku-4-5", 1, D("0.0015")),
        ("u3", "acme-ner-7b", 1, None),
        (None, "gpt-4o-mini", 1, D("0.00015")),
    ]
    stats = [r for r in rollup("stats", db=tenants, group_by="app.tenant") if r["value"] == "acme"]
    # the total row of the value first (model NULL), then its models; shares within acme
    assert [(r["model"], r["runs"], r["calls"], r["usd"]) for r in stats] == [
        (None, 2, 3, D("0.00401")),
        ("gpt-4o", 1, 1, D("0.0035")),
        ("gpt-4o-mini", 1, 2, D("0.00051")),
    ]
    assert [r["usd_share"] for r in stats] == pytest.approx([1.0, 0.0035 / 0.00401, 0.00051 / 0.00401])


def test_group_by_with_where_and_repricing(tenants):
    rows = rollup("per_model", db=tenants, group_by="user.id", where={"app.tenant": "acme"}, reprice=[])
    assert [(r["value"], r["model"], r["usd"], r["usd_repriced"]) for r in rows] == [
        ("u1", "gpt-4o-mini", D("0.00051"), D("0.00051")),
        ("u2", "gpt-4o", D("0.0035"), D("0.0035")),
    ]
    # the connection is plain again afterwards: no key/value columns, every call
    assert "value" not in rollup("per_model", db=tenants).columns


def test_run_lists_and_trace_refuse_with_the_reason(tenants):
    for name in ("per_run", "top_runs", "runs_list"):
        with pytest.raises(
            RollupParamError, match=f"^{name}: cannot group by a key: it lists runs, one row each"
        ):
            rollup(name, db=tenants, group_by="user.id")
    with pytest.raises(RollupParamError, match="^trace: cannot group by a key: it shows one run's tree"):
        rollup("trace", db=tenants, group_by="user.id", trace_id="0" * 32)
    with pytest.raises(RollupParamError, match="not an attribute name"):
        rollup("per_model", db=tenants, group_by='user.id"]')


def test_every_rollup_decides(tenants):
    """A rollup either groups (placeholders or its own group_by) or says why not."""
    for name in rollups():
        q = query(name)
        assert q.groups or q.nogroup or "group_by" in q.accepts(), name
    assert {n for n in rollups() if not query(n).groups and query(n).nogroup} == {
        "per_run", "top_runs", "runs_list", "trace",
    }  # fmt: skip


def test_cli_group_by_on_per_feature(capsys, tenants):
    code = main(
        ["rollup", "per-feature", "--group-by", "app.tenant", "--db", str(tenants), "--format", "json"]
    )
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert [(r["value"], r["feature"], r["usd_exact"]) for r in json.loads(out)] == [
        ("acme", "chat", "0.00401"), ("globex", "search", "0.0015"), (None, None, "0.00015"),
    ]  # fmt: skip
    code = main(["rollup", "per-run", "--group-by", "user.id", "--db", str(tenants)])
    assert code == 1
    assert capsys.readouterr().err.startswith("Error: per-run: cannot group by a key: it lists runs")


def test_where_takes_at_most_sixteen_different_keys(workload_con):
    """Each key is one more nested test of every call: 50 keys passed DuckDB's "Max
    expression depth" error through as the 400's text, 40 took 1.4 s of CPU (a review)."""
    from otel_costattr.rollups.dimensions import MAX_WHERE_KEYS
    from otel_costattr.rollups.queries import rollup

    keys = {f"k{n}": "v" for n in range(MAX_WHERE_KEYS)}
    assert rollup("per_feature", db=workload_con, where=keys) == []  # no call has them
    more = [*(f"{k}={v}" for k, v in keys.items()), "k99=v", "k0=w"]
    with pytest.raises(RollupParamError, match="per_feature: where: at most 16 different keys, got more"):
        rollup("per_feature", db=workload_con, where=more)
    # a key's values are not capped: one IN list
    assert rollup("per_feature", db=workload_con, where=[f"user.id=u{n}" for n in range(100)]) == []
