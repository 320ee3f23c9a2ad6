"""The identity pass (store/identity.py, queries/_identity.sql): the feature and agent it
settles at ingest are the ones the call contract's walk finds, whatever order spans arrive
in; a call whose ancestors are not all stored yet stays to the walk, and is settled when they
come (the late pass)."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from test_rollups_workload import DAY0, Writer, build

from otel_costattr.rollups.catalog import rollups
from otel_costattr.rollups.queries import rollup
from otel_costattr.store import database as store
from otel_costattr.store import identity
from otel_costattr.store.exporter import DuckDBSpanExporter

CALLS = "SELECT trace_id, span_id, feature, agent_name, agent_version FROM calls ORDER BY ALL"
CLEARED = (
    "UPDATE spans SET identity_settled = NULL, settled_feature = NULL, settled_agent_name = NULL,"
    " settled_agent_version = NULL"
)


def walked(con):
    """The calls as the contract's walk alone attributes them (the pass undone, then rolled back)."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(CLEARED)
        return con.execute(CALLS).fetchall()
    finally:
        con.execute("ROLLBACK")


def settled(con):
    return con.execute("SELECT count(*) FROM spans WHERE identity_settled").fetchone()[0]


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = store.connect(tmp_path_factory.mktemp("identity") / "spans.duckdb")
    yield c
    c.close()


# A span of a random trace: its parent (an earlier span, a span never stored, or none), whether
# it is a model call, and which identity attributes it carries.
SPAN = st.tuples(
    st.integers(0, 2),  # trace
    st.one_of(st.none(), st.integers(0, 11), st.just(-1)),  # parent index (-1: never stored)
    st.booleans(),  # model call
    st.sampled_from([None, "f1", "f2"]),  # feature
    st.sampled_from([None, ("a1", "v1"), ("a2", None)]),  # agent, version
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spans=st.lists(SPAN, min_size=1, max_size=12), order=st.randoms(), cuts=st.integers(1, 3))
def test_settled_identity_is_what_the_walk_finds_in_any_arrival_order(con, spans, order, cuts):
    con.execute("DELETE FROM spans")
    ids = [f"{i + 1:016x}" for i in range(len(spans))]
    rows = []
    for i, (trace, parent, is_call, feature, agent) in enumerate(spans):
        if parent is not None and parent >= 0:
            parent = parent % (i + 1) - 1  # an earlier span, or none: acyclic
            trace = spans[parent][0] if parent >= 0 else trace
        parent_id = None if parent is None else ids[parent] if parent >= 0 else "ffffffffffffffff"
        cols = {"feature": feature, "agent_name": agent and agent[0], "agent_version": agent and agent[1]}
        rows.append((trace, ids[i], parent_id, is_call, cols))
    order.shuffle(rows)
    w = Writer(con)
    size = -(-len(rows) // cuts)
    for start in range(0, len(rows), size):
        for trace, sid, parent_id, is_call, cols in rows[start : start + size]:
            role = "model_call" if is_call else "agent"
            w.span(trace, "s", parent=parent_id, role=role, at=DAY0, span_id=sid, **cols)
        identity.settle(con)
        assert con.execute(CALLS).fetchall() == walked(con)


def test_a_chain_deeper_than_the_walk_settles_as_the_walk_stops(con):
    con.execute("DELETE FROM spans")
    w = Writer(con)
    parent = w.span(1, "root", role="agent", at=DAY0, feature="deep", agent_name="a", agent_version="1")
    for _ in range(70):
        parent = w.span(1, "hop", at=DAY0, parent=parent)
    near = w.span(1, "hop", at=DAY0, parent=w.span(1, "agent", role="agent", at=DAY0, parent=parent,
                                                  feature="near", agent_name="b"))  # fmt: skip
    w.call(1, "gpt-4o-mini", 10, 1, "0.1", parent=parent, at=DAY0)
    w.call(1, "gpt-4o-mini", 10, 1, "0.1", parent=near, at=DAY0)
    assert identity.settle(con) == 2
    got = con.execute(CALLS).fetchall()
    assert got == walked(con)
    assert {r[2:] for r in got} == {(None, None, None), ("near", "b", None)}


def test_a_failed_pass_is_logged_and_leaves_the_walk(con, caplog):
    con.execute("DELETE FROM spans")
    w = Writer(con)
    w.call(1, "gpt-4o-mini", 10, 1, "0.1", parent=w.span(1, "agent", role="agent", at=DAY0, feature="f",
                                                          agent_name="a"), at=DAY0)  # fmt: skip
    con.execute("BEGIN TRANSACTION")  # settle cannot open its own: it fails, says so, rolls back
    assert identity.settle(con) == 0
    assert "identity pass failed" in caplog.text
    assert settled(con) == 0 and con.execute(CALLS).fetchall()[0][2:] == ("f", "a", None)


def test_a_call_exported_before_its_parent_is_settled_when_the_parent_comes(tmp_path):
    """Real SDK, real exporter, no processor (another service): each span is exported as it
    ends, so the call is stored before the spans that hold its identity."""
    path = tmp_path / "spans.duckdb"
    exporter = DuckDBSpanExporter(path)
    provider = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("invoke_agent triage", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage", "app.feature": "refund",
    }):  # fmt: skip
        chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}  # fmt: skip
        with (
            tracer.start_as_current_span("POST /generate"),
            tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat),
        ):
            pass
        exporter.force_flush()
        with store.connect(path) as con:
            assert settled(con) == 0  # its parents are not stored yet: left to the walk
            assert con.execute(CALLS).fetchall()[0][2:] == (None, None, None)
    provider.shutdown()
    with store.connect(path) as con:
        assert settled(con) == 1
        assert con.execute(CALLS).fetchall()[0][2:] == ("refund", "triage", None)
        assert con.execute(CALLS).fetchall() == walked(con)


def test_every_rollup_answers_the_same_with_and_without_the_pass(tmp_path):
    path = build(tmp_path / "workload.duckdb")  # settles, as ingest would
    with store.connect(path) as con:
        assert settled(con) > 0
        trace = con.execute("SELECT min(trace_id) FROM spans").fetchone()[0]
        params = {"trace": {"trace_id": trace}}

        def answers(name):  # forecast's month_elapsed is the clock's, not the data's
            rows = rollup(name, db=con, **params.get(name, {}))
            return [{k: v for k, v in row.items() if k != "month_elapsed"} for row in rows]

        fast = {name: answers(name) for name in rollups()}
        con.execute(CLEARED)
        assert settled(con) == 0
        for name in rollups():
            assert answers(name) == fast[name], name


def test_a_call_whose_parent_is_elsewhere_is_walked_again_only_when_its_trace_grows(tmp_path):
    """The late pass is bounded: a call whose parent was exported elsewhere cannot be settled,
    and is walked again only by a pass after a span of its own trace is stored."""
    with store.connect(tmp_path / "spans.duckdb") as con:
        w = Writer(con)
        w.call(1, "gpt-4o-mini", 10, 1, "0.1", parent="00000000deadbeef", at=DAY0)
        assert identity.run_pass(con) == (1, 0)  # walked, found the parent missing
        for _ in range(3):  # other traces arrive: the call is not walked again
            agent = w.span(2, "agent", role="agent", at=DAY0, feature="f", agent_name="a")
            w.call(2, "gpt-4o-mini", 10, 1, "0.1", parent=agent, at=DAY0)
            assert identity.run_pass(con) == (1, 1)  # the new call only
        assert identity.run_pass(con) == (0, 0)  # nothing new at all
        w.span(1, "gateway", at=DAY0, parent="00000000cafef00d")  # its trace grows, parent still missing
        assert identity.run_pass(con) == (1, 0)
        w.span(1, "agent", role="agent", at=DAY0, span_id="00000000deadbeef", feature="late", agent_name="b")
        assert identity.run_pass(con) == (1, 1)  # the parent came: settled
        assert con.execute(CALLS + " LIMIT 1").fetchall()[0][2:] == ("late", "b", None)
        assert con.execute(CALLS).fetchall() == walked(con)


@pytest.mark.parametrize("tools", [1, 3], ids=["two hops", "the deeper walk"])
def test_a_call_below_another_call_takes_the_agent_above_both(tmp_path, tools):
    """Real SDK, real exporter, no processor: a tool run inside a model call's span makes a
    call of its own (or a framework's generation span wraps the client's). The walk stopped at
    the model call, as at a span not stored: the inner call had no feature or agent, in every
    rollup, and never settled (two reviews). It walks through the call now, as the processor
    copies identity through it in process."""
    path = tmp_path / "spans.duckdb"
    provider = TracerProvider(resource=Resource.create({"service.name": "worker"}))
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path)))
    tracer = provider.get_tracer("tests")
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100}  # fmt: skip
    with contextlib.ExitStack() as spans:
        spans.enter_context(tracer.start_as_current_span("invoke_agent A", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "A", "app.feature": "F",
        }))  # fmt: skip
        spans.enter_context(tracer.start_as_current_span("chat gpt-4o", attributes=chat))
        for _ in range(tools):
            spans.enter_context(tracer.start_as_current_span("execute_tool research"))
        spans.enter_context(tracer.start_as_current_span("chat gpt-4o", attributes=chat))
    provider.shutdown()
    with store.connect(path) as con:
        assert [row[2:] for row in con.execute(CALLS).fetchall()] == [("F", "A", None)] * 2
        assert settled(con) == 2
        assert con.execute(CALLS).fetchall() == walked(con)
    # gpt-4o: 1000 x $2.50 + 100 x $10 a million = $0.0035 a call
    assert [(r["feature"], r["calls"], r["usd"]) for r in rollup("per-feature", db=str(path))] == [
        ("F", 2, Decimal("0.007"))
    ]
    assert [(r["agent"], r["calls"]) for r in rollup("per-agent", db=str(path))] == [("A", 2)]


@pytest.mark.parametrize("lost", [0, store.RETRY_UNSETTLED], ids=["few unsettled", "many"])
def test_a_store_upgraded_walks_its_calls_left_at_a_model_call_once_more(tmp_path, lost):
    """A store written before model calls were ancestors holds such calls unsettled, and the
    late pass would walk them only when their traces grow: the migration that brings the views
    sets the pass's watermark back, so the next pass settles them. Not when many calls are
    unsettled (parents exported elsewhere, which never settle): walking them all at once took
    1.9 GB for 1M (a review); the views walk for those calls, as before."""
    path = tmp_path / "spans.duckdb"
    with store.connect(path) as con:
        w = Writer(con)
        agent = w.span(1, "agent", role="agent", at=DAY0, feature="f", agent_name="a")
        outer = w.call(1, "gpt-4o-mini", 10, 1, "0.1", parent=agent, at=DAY0)
        w.call(1, "gpt-4o-mini", 10, 1, "0.1", parent=w.span(1, "tool", at=DAY0, parent=outer), at=DAY0)
        orphan = w.call(2, "gpt-4o-mini", 10, 1, "0.1", parent="00000000deadbeef", at=DAY0)
        con.execute(
            "INSERT INTO spans SELECT s.* FROM spans AS s, range(?) WHERE s.span_id = ?", [lost, orphan]
        )
        identity.settle(con)
        # As the version before left it: the inner call unsettled, the watermark past it.
        con.execute(CLEARED + " WHERE parent_span_id <> ?", [agent])
        con.execute("UPDATE costattr_identity_pass SET watermark = (SELECT max(rowid) FROM spans)")
        con.execute("DELETE FROM costattr_migrations WHERE name = '0016_call_views_model_ancestors'")
        assert settled(con) == 1 and identity.run_pass(con) == (0, 0)
    with store.connect(path) as con:  # upgraded
        assert identity.run_pass(con) == ((2 + lost, 1) if not lost else (0, 0))
        assert settled(con) == (2 if not lost else 1)
        # The views' answer is the new rule's either way.
        assert [r[2:] for r in con.execute(CALLS).fetchall()].count(("f", "a", None)) == 2
