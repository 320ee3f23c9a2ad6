"""The rollup facts (store/aggregates.py, rollups/facts.py): per_feature, per_step, per_run and
per_agent answered from them are exactly the answers of their own files over the call contract,
whatever the workload, the order spans arrive in and the window, calls not settled yet among
them (their runs read from the contract); and when the facts do not cover the store (someone
else wrote into it) the contract answers."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal as D

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from test_rollups_workload import DAY0 as WORKLOAD_DAY0
from test_rollups_workload import Writer, build, trace_id

from otel_costattr.rollups import facts, queries
from otel_costattr.rollups.queries import rollup
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.store import aggregates, identity
from otel_costattr.store import database as store
from otel_costattr.store.exporter import DuckDBSpanExporter

DAY0 = dt.datetime(2026, 6, 1)
DAY0_NS = int(DAY0.replace(tzinfo=dt.timezone.utc).timestamp()) * 10**9
HOUR_NS = 3600 * 10**9
FAST = sorted(facts.FAST)

# One model call: its hour after DAY0 (three days: runs straddle day edges and windows), its
# model (priced, or unknown: no cost; " stream": a call that reports no usage), whether it is
# made below the sidecar's entry span (a service without the processor: no identity, no cost
# stamped), and how many spans without identity lie between (attribution walks up).
CALL = st.tuples(
    st.integers(0, 71), st.sampled_from(["acme-mini", "acme-large", "mystery-7b", "acme-mini stream"]),
    st.booleans(), st.integers(0, 2),
)  # fmt: skip
# One run: its root's feature and agent (the app's processor copies them down), its calls,
# and where a parent never exported is (a call's chain then ends unstored): nowhere, above
# the root (True), or "hop": between the root and the sidecar's entry span (a gateway that
# exported elsewhere), so the app's calls are final while the sidecar's stay pending.
RUN = st.tuples(
    st.sampled_from([None, "refund", "search"]),
    st.sampled_from([None, ("triage", "v1"), ("triage", "v2"), ("billing", None)]),
    st.lists(CALL, min_size=1, max_size=5),
    st.sampled_from([False] * 4 + [True, "hop"]),
)
# A window: its start (on an hour, or 17 minutes past) and length in hours, either open.
WINDOW = st.tuples(
    st.one_of(st.none(), st.tuples(st.integers(0, 80), st.sampled_from([0, 17]))),
    st.one_of(st.none(), st.integers(1, 50)),
).map(lambda w: _window(*w))


def _window(start, hours):
    since = None if start is None else DAY0 + dt.timedelta(hours=start[0], minutes=start[1])
    until = None if hours is None else (since or DAY0) + dt.timedelta(hours=hours)
    return since, until


def _spans(table, runs):
    """The finished SDK spans of ``runs``: service app with the cost processor, sidecar without."""
    memory = InMemorySpanExporter()
    app = TracerProvider(resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False)
    app.add_span_processor(CostSpanProcessor(table))
    app.add_span_processor(SimpleSpanProcessor(memory))
    side = TracerProvider(resource=Resource.create({"service.name": "sidecar"}), shutdown_on_exit=False)
    side.add_span_processor(SimpleSpanProcessor(memory))
    ta, ts = app.get_tracer("facts"), side.get_tracer("facts")
    tick = iter(range(1, 10**9))  # no two spans start at the same instant
    for n, (feature, agent, calls, remote) in enumerate(runs):
        first = min(c[0] for c in calls) * HOUR_NS + DAY0_NS
        attrs = {"app.feature": feature} if feature else {}
        if agent:
            attrs |= {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent[0]}
            attrs |= {"gen_ai.agent.version": agent[1]} if agent[1] else {}
        parent = None
        if remote is True:  # the run's root was exported by another process, to another store
            ctx = SpanContext(n + 1, 0xDEAD0000 + n, is_remote=True, trace_flags=TraceFlags(1))
            parent = trace.set_span_in_context(NonRecordingSpan(ctx))
        root = ta.start_span("workflow", parent, attributes=attrs, start_time=first - HOUR_NS)
        rctx = trace.set_span_in_context(root)
        for hour, model, sidecar, depth in calls:
            at = DAY0_NS + hour * HOUR_NS + next(tick) * 1000
            ctx, hops = rctx, []
            if sidecar and remote == "hop":
                tid = root.get_span_context().trace_id
                gateway = SpanContext(tid, 0xBEEF0000 + n, is_remote=True, trace_flags=TraceFlags(1))
                ctx = trace.set_span_in_context(NonRecordingSpan(gateway))
            if sidecar:
                hops.append(ts.start_span("POST /complete", ctx, SpanKind.SERVER, start_time=at))
                ctx = trace.set_span_in_context(hops[-1])
            for _ in range(depth):
                hops.append((ts if sidecar else ta).start_span("hop", ctx, start_time=at))
                ctx = trace.set_span_in_context(hops[-1])
            model, stream = model.removesuffix(" stream"), model.endswith(" stream")
            usage = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
            if not stream:
                usage |= {"gen_ai.usage.input_tokens": 100 + hour, "gen_ai.usage.output_tokens": 7 + n}
            (ts if sidecar else ta).start_span(f"chat {model}", ctx, attributes=usage, start_time=at).end(
                at + 500
            )
            for hop in reversed(hops):
                hop.end(at + 900)
        root.end(DAY0_NS + max(c[0] for c in calls) * HOUR_NS + HOUR_NS)
    return memory.get_finished_spans()


def _general(con, name, **window):
    """The rollup's own file over the contract (the fast path switched off for this call)."""
    saved = queries.fast_query
    queries.fast_query = lambda *args: None
    try:
        return rollup(name, db=con, **window)
    finally:
        queries.fast_query = saved


def _limits(name):
    return [{"limit": 3}, {"limit": 0}] if name == "per_run" else [{}]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("facts")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=st.lists(RUN, min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
    cuts=st.integers(1, 4),
    twice=st.booleans(),
    windows=st.lists(WINDOW, min_size=1, max_size=3),
)
def test_the_fast_rollups_answer_as_the_contract_does(table, workdir, runs, order, cuts, twice, windows):
    path = workdir / f"{random.getrandbits(64):x}.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        spans = list(_spans(table, runs))
        order.shuffle(spans)  # children before parents, runs in pieces across ingests
        size = -(-len(spans) // cuts)
        for start in range(0, len(spans), size):
            exporter.export(spans[start : start + size])
            if twice and start == 0:
                exporter.export(spans[:size])  # a retried export: the store keeps one copy
            assert exporter.force_flush()
    finally:
        exporter.shutdown()
    with store.connect(path) as con:
        settled_all = not con.execute("SELECT count(*) FROM costattr_fact_pending").fetchone()[0]
        assert aggregates.current(con) == settled_all
        assert aggregates.pending_traces(con) is not None  # pending calls or not, the facts answer
        _copy_is_exact(con)
        for since, until in [(None, None), *windows]:
            for name in FAST:
                for extra in _limits(name):
                    window = {"since": since, "until": until, **extra}
                    assert rollup(name, db=con, **window) == _general(con, name, **window), (name, window)
                    assert facts.fast_query(con, name, window) is not None, (name, window)
    path.unlink()


def test_the_hand_computed_workload_reads_the_same_from_the_facts(tmp_path):
    """tests/test_rollups_workload.py's runs (handoffs, a loop, an unpriced call, a cycle, a
    lone call), less the call whose parent never arrives (it keeps the facts from answering)."""
    path = build(tmp_path / "workload.duckdb")
    with store.connect(path) as con:
        con.execute("DELETE FROM spans WHERE trace_id = $t", {"t": trace_id(6)})
        assert aggregates.maintain(con) and aggregates.current(con)
        day2 = WORKLOAD_DAY0 + dt.timedelta(days=2)
        windows = [
            (None, None),
            (WORKLOAD_DAY0 + dt.timedelta(minutes=3), None),
            (day2, day2 + dt.timedelta(hours=1, minutes=5)),
        ]
        for since, until in windows:
            for name in FAST:
                for extra in _limits(name):
                    window = {"since": since, "until": until, **extra}
                    assert rollup(name, db=con, **window) == _general(con, name, **window), (name, window)
        for name in FAST:  # the same column types too (Arrow, Parquet and JSON readers see them)
            fast = rollup(name, db=con, arrow=True)
            # Nothing pending: the fast form reads the facts alone, not the contract's scans.
            assert "costattr_attributed" not in facts.fast_query(con, name, {})[0], name
            assert fast.schema == _general(con, name, arrow=True).schema, name


def _export(path, table, *batches):
    """Store ``batches`` of finished spans at ``path``, each in its own ingest."""
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for spans in batches:
            exporter.export(list(spans))
            assert exporter.force_flush()
    finally:
        exporter.shutdown()


def _same_as_the_contract(con, windows):
    for since, until in windows:
        for name in FAST:
            for extra in _limits(name) + ([{"limit": 1}] if name == "per_run" else []):
                window = {"since": since, "until": until, **extra}
                assert rollup(name, db=con, **window) == _general(con, name, **window), (name, window)
                assert facts.fast_query(con, name, window) is not None, (name, window)


# Runs of the focused tests below: the last one's calls (hours 25 and 26) find no feature or
# agent up to their root, whose parent went to another backend: they never settle.
FOCUS = [
    ("refund", ("triage", "v1"), [(2, "acme-mini", False, 0), (30, "acme-large", True, 1)], False),
    ("search", ("billing", None), [(26, "acme-mini", False, 0)], False),
    (None, None, [(25, "acme-mini", True, 1), (26, "acme-large", False, 0)], True),
]
FOCUS_WINDOWS = [
    (None, None),
    (DAY0 + dt.timedelta(hours=25, minutes=17), None),  # through the pending run
    (DAY0, DAY0 + dt.timedelta(hours=26)),
    (DAY0 + dt.timedelta(hours=26), DAY0 + dt.timedelta(hours=27)),
]


def test_a_call_that_never_settles_leaves_the_facts_answering(table, tmp_path, monkeypatch):
    """A run whose root's parent went to another backend: its sidecar call stays pending for
    good. The facts still answer all four rollups (that run from the contract), exactly."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS))
    with store.connect(path) as con:
        pending = con.execute("SELECT DISTINCT trace_id FROM costattr_fact_pending").fetchall()
        assert pending == [(f"{len(FOCUS):032x}",)]
        assert aggregates.pending_traces(con) == 1 and not aggregates.current(con)
        _copy_is_exact(con)
        _same_as_the_contract(con, FOCUS_WINDOWS)
        by_feature = {r["feature"]: (r["runs"], r["calls"]) for r in rollup("per_feature", db=con)}
        assert by_feature[None] == (1, 2)
        monkeypatch.setattr(aggregates, "MAX_PENDING_TRACES", 0)  # more runs pending than it reads
        assert facts.fast_query(con, "per_feature", {}) is None


def test_a_pending_call_moves_into_the_facts_when_its_parent_arrives(table, tmp_path):
    """The same runs, the last one's root (with feature and agent now) exported by its own
    process later: until then its sidecar call is pending and its app call, which the processor
    gave the root's identity, final (in the facts, which must not count that run twice); then
    both are in the facts."""
    runs = [*FOCUS[:-1], ("refund", ("triage", "v2"), FOCUS[-1][2], False)]
    spans = list(_spans(table, runs))
    late = [s for s in spans if s.name == "workflow" and s.attributes.get("gen_ai.agent.version") == "v2"]
    run = {"t": f"{late[0].context.trace_id:032x}"}
    path = tmp_path / "spans.duckdb"
    _export(path, table, [s for s in spans if s not in late])
    with store.connect(path) as con:
        assert aggregates.pending_traces(con) == 1
        final = "SELECT count(*) FROM costattr_fact_calls WHERE trace_id = $t"
        assert con.execute(final, run).fetchone()[0] == 1
        _copy_is_exact(con)
        _same_as_the_contract(con, FOCUS_WINDOWS)
    _export(path, table, late)
    with store.connect(path) as con:
        assert aggregates.current(con)
        assert con.execute(final, run).fetchone()[0] == 2
        assert not con.execute("SELECT count(*) FROM costattr_fact_spans").fetchone()[0]
        _same_as_the_contract(con, FOCUS_WINDOWS)


def _copy_is_exact(con):
    """The copy the fast rollups read pending runs from holds every span of those runs, as
    ``spans`` holds it now (settled identity included), and nothing else."""
    copy = "SELECT * FROM costattr_fact_spans ORDER BY span_row"
    spans = (
        "SELECT rowid AS span_row, * FROM spans"
        " WHERE trace_id IN (SELECT trace_id FROM costattr_fact_pending) ORDER BY rowid"
    )
    assert con.execute(copy).fetchall() == con.execute(spans).fetchall()


def _per_feature(con):
    return [(r["runs"], r["calls"], r["usd"]) for r in rollup("per_feature", db=con)]


def test_a_store_written_by_someone_else_answers_from_the_calls_until_the_facts_catch_up(tmp_path):
    with store.connect(tmp_path / "spans.duckdb") as con:
        w = Writer(con)
        agent = w.span(1, "agent", role="agent", at=DAY0, feature="f", agent_name="a")
        w.call(1, "gpt-4o-mini", 10, 1, "0.5", parent=agent, at=DAY0, feature="f", agent_name="a")
        assert aggregates.maintain(con) and aggregates.current(con)
        assert [r["usd"] for r in rollup("per_feature", db=con)] == [D("0.5")]
        # Another writer (an older version, any DuckDB client) appends a call of the same run.
        w.call(1, "gpt-4o-mini", 10, 1, "0.25", parent=agent, at=DAY0, feature="f", agent_name="a")
        assert not aggregates.current(con)
        assert _per_feature(con) == [(1, 2, D("0.75"))]
        assert aggregates.maintain(con) and aggregates.current(con)  # the next ingest here
        assert _per_feature(con) == [(1, 2, D("0.75"))]
        assert con.execute("SELECT calls FROM costattr_fact_run").fetchall() == [(2,)]


def test_the_migration_builds_the_facts_of_an_existing_store(tmp_path):
    path = build(tmp_path / "workload.duckdb")
    with store.connect(path) as con:  # as a store of the version before: no facts
        con.execute("DELETE FROM spans WHERE trace_id = $t", {"t": trace_id(6)})
        for table in ("calls", "feature", "agent", "run", "step", "pending"):
            con.execute(f"DROP TABLE costattr_fact_{table}")
        con.execute("DROP TABLE costattr_facts_state")
        con.execute("DROP TABLE costattr_fact_spans")
        con.execute("DROP TABLE costattr_fact_spans_state")
        con.execute(
            "DELETE FROM costattr_migrations WHERE name IN ('0010_rollup_facts', '0011_rollup_facts_spans')"
        )
        assert not aggregates.current(con)
    with store.connect(path) as con:
        assert aggregates.current(con)
        assert rollup("per_agent", db=con) == _general(con, "per_agent")
        runs = con.execute("SELECT count(*) FROM costattr_fact_run WHERE calls > 0").fetchone()[0]
        assert runs == 7  # T1-T5, T7, T8


def test_the_migration_copies_the_spans_of_the_runs_pending_in_an_existing_store(table, tmp_path):
    """A store of the version before the copy (facts kept, a run pending for good): opened
    now, it gains the copy of that run's spans, and the facts answer with it at once."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS))
    with store.connect(path) as con:
        con.execute("DROP TABLE costattr_fact_spans")
        con.execute("DROP TABLE costattr_fact_spans_state")
        con.execute("DELETE FROM costattr_migrations WHERE name = '0011_rollup_facts_spans'")
        assert aggregates.pending_traces(con) is None
    with store.connect(path) as con:
        assert aggregates.pending_traces(con) == 1
        assert con.execute("SELECT count(*) FROM costattr_fact_spans").fetchone()[0] > 1
        _copy_is_exact(con)
        _same_as_the_contract(con, FOCUS_WINDOWS)


def test_a_copy_the_facts_moved_without_is_rebuilt_by_the_next_upkeep(table, tmp_path):
    """A writer that kept the facts but not the copy (the version before it) moved the facts'
    watermark: the contract answers until the next upkeep here rebuilds the copy."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS))
    with store.connect(path) as con:
        con.execute("DELETE FROM costattr_fact_spans")  # stale, and left behind
        con.execute("UPDATE costattr_fact_spans_state SET watermark = watermark - 1")
        assert aggregates.pending_traces(con) is None
        assert facts.fast_query(con, "per_feature", {}) is None
        assert aggregates.maintain(con) and aggregates.pending_traces(con) == 1
        _copy_is_exact(con)
        _same_as_the_contract(con, FOCUS_WINDOWS)


def test_with_nothing_pending_the_upkeep_leaves_what_its_whole_file_leaves(table, tmp_path, monkeypatch):
    """With no call pending and nothing copied, the upkeep runs only _facts_spans.sql's last
    statement (the others would find nothing): the facts and the copy end as the whole file
    leaves them, from the same store."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS[:-1]))  # every call final: nothing pending
    with store.connect(path) as con:  # the rest stored without the upkeep, as another writer does
        w = Writer(con)
        agent = w.span(99, "agent", role="agent", at=DAY0, feature="f", agent_name="a")
        w.call(99, "gpt-4o-mini", 10, 1, "0.5", parent=agent, at=DAY0, feature="f", agent_name="a")
        assert aggregates.pending_traces(con) is None  # the facts lag: an upkeep has work
    twin = tmp_path / "twin.duckdb"
    twin.write_bytes(path.read_bytes())
    tables = [
        "costattr_facts_state",
        "costattr_fact_spans_state",
        "costattr_fact_spans",
        "costattr_fact_pending",
        "costattr_fact_calls",
        "costattr_fact_run",
        "costattr_fact_feature",
        "costattr_fact_agent",
        "costattr_fact_step",
    ]

    def upkeep(where):
        with store.connect(where, ingest=False) as con:
            assert aggregates.maintain(con) and aggregates.current(con)
            return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}

    short = upkeep(path)
    monkeypatch.setattr(aggregates, "_PENDING", "SELECT 0, true")  # as if something were copied
    whole = upkeep(twin)
    assert short == whole
    (kept,), (facts_state,) = short["costattr_fact_spans_state"], short["costattr_facts_state"]
    assert kept[0] == facts_state[0]  # the copy marked kept up to the facts' watermark


def test_a_run_sharing_its_key_with_a_pending_one_sends_the_rollups_to_the_contract(table, tmp_path):
    """The fast forms leave pending runs out of the per-run facts by the hash of the trace id;
    another run with the same hash (1 in 2**64) would be left out too: the contract answers."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS))
    with store.connect(path) as con:
        rollup("per_feature", db=con)  # the rollups' prelude: costattr_traces
        assert facts.fast_query(con, "per_feature", {}) is not None
        con.execute(
            "INSERT INTO costattr_fact_run (tkey, trace_id, calls)"
            " SELECT hash(trace_id), 'another run', 0 FROM costattr_fact_pending"
        )
        assert facts.fast_query(con, "per_feature", {}) is None


def _racing_store(con):
    """Run 1 final; run 2's call pending (its parent, `_RACING_PARENT`, not stored yet)."""
    w = Writer(con)
    agent = w.span(1, "agent", role="agent", at=DAY0, feature="f", agent_name="a")
    w.call(1, "gpt-4o-mini", 10, 1, "0.5", parent=agent, at=DAY0, feature="f", agent_name="a")
    w.call(2, "gpt-4o-mini", 20, 2, "0.25", parent=_RACING_PARENT, at=DAY0 + dt.timedelta(hours=1))
    identity.settle(con)
    assert aggregates.maintain(con) and aggregates.pending_traces(con) == 1


_RACING_PARENT = "00000000000000aa"


@pytest.mark.parametrize("name", FAST)
def test_an_upkeep_on_another_connection_between_check_and_query_drops_no_run(tmp_path, monkeypatch, name):
    """The exporter's ingester settles a pending run on its own connection while a rollup on
    another one has read the pending runs but not run its query yet: the rollup answers as the
    contract did before the upkeep (one state of the store), not without that run."""
    with store.connect(tmp_path / "spans.duckdb") as con, con.cursor() as ingester:
        _racing_store(con)
        before = _general(con, name)

        def upkeep_meanwhile(*args):
            fast = facts.fast_query(*args)
            Writer(ingester).span(
                2, "agent", role="agent", span_id=_RACING_PARENT, at=DAY0, feature="g", agent_name="b"
            )
            identity.settle(ingester)
            assert aggregates.maintain(ingester) and aggregates.current(ingester)
            return fast

        monkeypatch.setattr(queries, "fast_query", upkeep_meanwhile)
        assert rollup(name, db=con) == before
        monkeypatch.undo()
        assert aggregates.current(con)
        assert rollup(name, db=con) == _general(con, name) != before


def test_a_rollup_inside_the_callers_transaction_leaves_it_open(tmp_path):
    with store.connect(tmp_path / "spans.duckdb") as con:
        _racing_store(con)
        con.execute("BEGIN TRANSACTION")
        for name in FAST:
            assert rollup(name, db=con) == _general(con, name), name
            assert facts.fast_query(con, name, {}) is not None
        con.execute("ROLLBACK")  # still the caller's to end


def test_a_column_added_to_spans_leaves_the_facts_answering(table, tmp_path):
    """A later version adds a column to spans: the copy of the pending runs' spans, made with
    spans' columns, is refused until the next upkeep makes it again with the new ones."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS))
    with store.connect(path) as con:
        con.execute("ALTER TABLE spans ADD COLUMN later_column VARCHAR")
        assert aggregates.pending_traces(con) == 1
        _same_as_general(con)
        assert facts.fast_query(con, "per_feature", {}) is None  # not read with the old columns
    _export(path, table, _spans(table, [(None, None, [(40, "acme-mini", True, 1)], True)]))
    with store.connect(path) as con:
        assert aggregates.pending_traces(con) == 2
        _copy_is_exact(con)
        _same_as_the_contract(con, FOCUS_WINDOWS)


def _same_as_general(con):
    for name in FAST:
        assert rollup(name, db=con) == _general(con, name), name


def _copied(con):
    return con.execute("SELECT count(*) FROM costattr_fact_spans").fetchone()[0]


def test_past_the_cap_the_copy_is_emptied_and_made_again_below_it(table, tmp_path, monkeypatch):
    """Past `aggregates.MAX_PENDING_TRACES` runs pending the rollups read the contract: the
    copy of their spans is not kept meanwhile, and is made again once fewer are pending."""
    monkeypatch.setattr(aggregates, "MAX_PENDING_TRACES", 1)
    path = tmp_path / "spans.duckdb"
    _export(path, table, _spans(table, FOCUS))
    with store.connect(path) as con:
        assert aggregates.pending_traces(con) == 1 and _copied(con)
    # A second run pending until its root (with its identity) is stored.
    spans = _spans(table, [("refund", ("triage", "v2"), [(40, "acme-mini", True, 1)], False)])
    late = [s for s in spans if s.name == "workflow"]
    _export(path, table, [s for s in spans if s not in late])
    with store.connect(path) as con:
        assert con.execute("SELECT count(DISTINCT trace_id) FROM costattr_fact_pending").fetchone()[0] == 2
        assert not _copied(con)
        assert aggregates.pending_traces(con) is None
        _same_as_general(con)
        assert facts.fast_query(con, "per_feature", {}) is None
    _export(path, table, late)
    with store.connect(path) as con:
        assert aggregates.pending_traces(con) == 1
        _copy_is_exact(con)
        _same_as_the_contract(con, FOCUS_WINDOWS)


def _pass_tables(con):
    return con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'costattr_identity%'"
    ).fetchall()


def test_a_failed_upkeep_keeps_nothing_of_the_identity_pass(tmp_path):
    """What the identity pass read for the upkeep (TEMP tables) is dropped when it fails too."""
    with store.connect(tmp_path / "spans.duckdb") as con:
        w = Writer(con)
        w.call(2, "gpt-4o-mini", 20, 2, "0.25", parent=_RACING_PARENT, at=DAY0)
        con.execute("DROP TABLE costattr_fact_step")  # the upkeep fails
        identity.settle(con)
        assert _pass_tables(con)
        assert not aggregates.maintain(con)
        assert not _pass_tables(con)


# --- unpriced calls per agent and per step ----------------------------------------------------

_USAGE = {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}


def _unpriced_spans(table):
    """Three runs through the real SDK (the processor's duplicate check on), worked out by hand
    with the test prices (acme-large 2 in / 10 out since 2026-06-01, acme-mini 0.15 / 0.6):

      run 1  refund, triage v1, 06-01: step 0 mystery-7b (unknown model), step 1 acme-mini
             without usage, step 2 acme-large $0.003, step 3 acme-mini $0.00021 and a second
             span of that call (same response id: a duplicate, no cost, not a call)
      run 2  refund, billing (no version), 06-02: acme-large $0.003
      run 3  06-02: mystery-7b under a parent exported elsewhere: no identity, pending for good
    """
    memory = InMemorySpanExporter()
    app = TracerProvider(resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False)
    app.add_span_processor(CostSpanProcessor(table, dedupe_response_ids=True))
    app.add_span_processor(SimpleSpanProcessor(memory))
    tracer, sdk = app.get_tracer("unpriced"), app.get_tracer("sdk")
    clock = iter(range(10**9))

    def at(day, hour=10):
        return DAY0_NS + day * 24 * HOUR_NS + hour * HOUR_NS + next(clock) * 10**6

    def chat(ctx, day, model, response, usage=_USAGE, twice=False):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, **usage}
        attrs["gen_ai.response.id"] = response
        spans = [tracer.start_span(f"chat {model}", ctx, attributes=attrs, start_time=at(day))]
        if twice:  # a second instrumentation (a scope of its own) of the same API call
            spans.append(sdk.start_span(f"sdk {model}", ctx, attributes=attrs, start_time=at(day)))
        for span in spans:
            span.end(at(day))

    for day, feature, agent, version, calls in (
        (0, "refund", "triage", "v1", [("mystery-7b", "r1", _USAGE), ("acme-mini", "r2", {}),
                                       ("acme-large", "r3", _USAGE), ("acme-mini", "r4", _USAGE)]),
        (1, "refund", "billing", None, [("acme-large", "r5", _USAGE)]),
    ):  # fmt: skip
        root = tracer.start_span("workflow", attributes={"app.feature": feature}, start_time=at(day))
        who = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
        who |= {"gen_ai.agent.version": version} if version else {}
        ctx = trace.set_span_in_context(root)
        span = tracer.start_span(f"invoke_agent {agent}", ctx, attributes=who, start_time=at(day))
        for model, response, usage in calls:
            chat(trace.set_span_in_context(span), day, model, response, usage, twice=response == "r4")
        span.end(at(day))
        root.end(at(day))
    gone = SpanContext(0xFEED, 0xDEAD, is_remote=True, trace_flags=TraceFlags(1))
    chat(trace.set_span_in_context(NonRecordingSpan(gone)), 1, "mystery-7b", "r6")
    app.shutdown()
    return list(memory.get_finished_spans())


def _unpriced_store(table, path):
    spans = _unpriced_spans(table)
    _export(path, table, spans, spans)  # the export retried: each span stored once
    return path


UNPRICED_AGENTS = [  # agent, version, runs, calls, usd, unpriced_calls
    ("triage", "v1", 1, 4, D("0.00321"), 2),
    ("billing", None, 1, 1, D("0.003"), 0),
    (None, None, 1, 1, None, 1),
]
UNPRICED_STEPS = [  # agent, step, model, calls, usd, unpriced_calls
    ("billing", 0, "acme-large", 1, D("0.003"), 0),
    ("triage", 0, "mystery-7b", 1, None, 1),
    ("triage", 1, "acme-mini", 1, None, 1),
    ("triage", 2, "acme-large", 1, D("0.003"), 0),
    ("triage", 3, "acme-mini", 1, D("0.00021"), 0),
    (None, None, "mystery-7b", 1, None, 1),
]


def _unpriced_answers(con, answer=rollup):
    agents = [
        (r["agent"], r["agent_version"], r["runs"], r["calls"], r["usd"], r["unpriced_calls"])
        for r in answer("per_agent", db=con)
    ]
    steps = [
        (r["agent"], r["step"], r["model"], r["calls"], r["usd"], r["unpriced_calls"])
        for r in answer("per_step", db=con)
    ]
    return agents, steps


def _general_answer(name, db, **window):
    return _general(db, name, **window)


def test_unpriced_calls_per_agent_and_step_count_each_call_once_on_both_paths(table, tmp_path):
    """An unknown model and a call without usage are counted in their agent and step, never
    as $0; a duplicate span of a priced call (no cost) and a retried export add nothing; a run
    pending for good adds its own. The facts and the contract give the same answer."""
    with store.connect(_unpriced_store(table, tmp_path / "spans.duckdb")) as con:
        assert aggregates.pending_traces(con) == 1
        assert _unpriced_answers(con) == (UNPRICED_AGENTS, UNPRICED_STEPS)
        for name in ("per_agent", "per_step"):  # that answer was the facts'
            assert facts.fast_query(con, name, {}) is not None, name
        assert _unpriced_answers(con, _general_answer) == (UNPRICED_AGENTS, UNPRICED_STEPS)
        day1 = DAY0 + dt.timedelta(days=1)
        windows = [(None, None), (DAY0, day1), (day1, None), (DAY0 + dt.timedelta(hours=10), None)]
        _same_as_the_contract(con, windows)
        steps = rollup("agent_steps", db=con)
        assert [(r["agent"], r["step"], r["calls"], r["unpriced_calls"]) for r in steps] == [
            ("triage", 0, 1, 1), ("triage", 1, 1, 1), ("triage", 2, 1, 0), ("triage", 3, 1, 0),
            ("billing", 0, 1, 0), (None, None, 1, 1),
        ]  # fmt: skip
        daily = rollup("daily", db=con)
        assert [(r["day"], r["feature"], r["calls"], r["usd"], r["unpriced_calls"]) for r in daily] == [
            (DAY0.date(), "refund", 4, D("0.00321"), 2),
            (day1.date(), "refund", 1, D("0.003"), 0),
            (day1.date(), None, 1, None, 1),
        ]
        # as per_feature counts them
        features = [(r["feature"], r["calls"], r["unpriced_calls"]) for r in rollup("per_feature", db=con)]
        assert features == [("refund", 5, 2), (None, 1, 1)]


def _before_0014(con):
    """The facts as a version before 0014_rollup_facts_unpriced made them (so before 0015 too)."""
    con.execute("ALTER TABLE costattr_fact_step DROP COLUMN usage_calls")
    for t in ("costattr_fact_agent", "costattr_fact_step"):
        con.execute(f"ALTER TABLE {t} DROP COLUMN unpriced_calls")
    names = ["0014_rollup_facts_unpriced", "0015_rollup_facts_usage_calls"]
    con.execute("DELETE FROM costattr_migrations WHERE list_contains($names, name)", {"names": names})


def _fact_columns(con):
    return {
        t: con.execute(f"SELECT name, type FROM pragma_table_info('{t}') ORDER BY cid").fetchall()
        for t in ("costattr_fact_agent", "costattr_fact_step")
    }


def test_a_store_whose_facts_kept_no_unpriced_counts_gains_them(table, tmp_path):
    """A store of the version before 0014_rollup_facts_unpriced (the per-agent and per-step
    facts without the column, as that version made them): opened now, the migration counts
    them from the facts' calls, and the facts answer per_agent and per_step with the right
    unpriced_calls at once, then keep them as more calls arrive."""
    with store.connect(tmp_path / "new.duckdb") as con:
        fresh = _fact_columns(con)
    path = _unpriced_store(table, tmp_path / "spans.duckdb")
    with store.connect(path) as con:  # as the previous version left it
        _before_0014(con)
    with store.connect(path) as con:
        assert _fact_columns(con) == fresh  # the layout a new store has: _facts.sql fills by position
        assert aggregates.pending_traces(con) == 1
        assert _unpriced_answers(con) == (UNPRICED_AGENTS, UNPRICED_STEPS)
        for name in ("per_agent", "per_step"):  # that answer was the facts'
            assert facts.fast_query(con, name, {}) is not None, name
        _same_as_the_contract(con, [(None, None), (DAY0 + dt.timedelta(days=1), None)])
    # The next ingest adds to them: another run of triage v1, one unknown-model call.
    more = _spans(table, [("refund", ("triage", "v1"), [(5, "mystery-7b", False, 0)], False)])
    _export(path, table, more)
    with store.connect(path) as con:
        agents = _unpriced_answers(con)[0]
        assert agents[0] == ("triage", "v1", 2, 5, D("0.00321"), 3)
        _same_as_the_contract(con, [(None, None), (DAY0 + dt.timedelta(hours=3), None)])


def _handoff_spans(table):
    """One run around midnight (DAY0 + 1 day) handing off from triage v1 to its sub-agent
    billing v2: triage's unknown model at 23:59:30; billing's call without usage at 00:00:30,
    an unknown model at 00:00:45 and a priced call at 00:01 (one unpriced call and two)."""
    memory = InMemorySpanExporter()
    app = TracerProvider(resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False)
    app.add_span_processor(CostSpanProcessor(table))
    app.add_span_processor(SimpleSpanProcessor(memory))
    tracer = app.get_tracer("handoff")
    midnight = DAY0_NS + 24 * HOUR_NS

    def at(seconds: int) -> int:
        return midnight + seconds * 10**9

    def agent(ctx, name, version, start):
        who = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": name,
            "gen_ai.agent.version": version,
        }
        return tracer.start_span(f"invoke_agent {name}", ctx, attributes=who, start_time=at(start))

    def chat(ctx, model, seconds, usage=_USAGE):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, **usage}
        tracer.start_span(f"chat {model}", ctx, attributes=attrs, start_time=at(seconds)).end(at(seconds + 1))

    root = tracer.start_span("workflow", attributes={"app.feature": "refund"}, start_time=at(-120))
    triage = agent(trace.set_span_in_context(root), "triage", "v1", -110)
    chat(trace.set_span_in_context(triage), "mystery-7b", -30)
    billing = agent(trace.set_span_in_context(triage), "billing", "v2", 10)
    chat(trace.set_span_in_context(billing), "acme-mini", 30, {})
    chat(trace.set_span_in_context(billing), "mystery-7b", 45)
    chat(trace.set_span_in_context(billing), "acme-large", 60)
    for span, end in ((billing, 90), (triage, 100), (root, 110)):
        span.end(at(end))
    app.shutdown()
    return list(memory.get_finished_spans())


def _fact_rows(con):
    return {
        t: con.execute(f"SELECT * EXCLUDE (tkey) FROM {t} ORDER BY ALL").fetchall()
        if t == "costattr_fact_agent"
        else con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
        for t in ("costattr_fact_agent", "costattr_fact_step")
    }


def test_the_migration_counts_as_a_new_store_across_midnight_and_a_handoff(table, tmp_path):
    """The migration's counts per run and agent version, and per agent, step, model and UTC
    day, equal a new store's facts of the same spans: a run handing off between two agents,
    its unpriced calls on both sides of midnight."""
    spans = _handoff_spans(table)
    _export(tmp_path / "new.duckdb", table, spans)
    with store.connect(tmp_path / "new.duckdb") as con:
        fresh = _fact_rows(con)
    unpriced = {(r[1], r[2]): r[-1] for r in fresh["costattr_fact_agent"]}
    assert unpriced == {("triage", "v1"): 1, ("billing", "v2"): 2}
    assert {r[0].day for r in fresh["costattr_fact_step"]} == {1, 2}  # both UTC days
    path = tmp_path / "old.duckdb"
    _export(path, table, spans)
    with store.connect(path) as con:  # as the previous version left it
        _before_0014(con)
    with store.connect(path) as con:
        assert _fact_rows(con) == fresh
        _same_as_the_contract(con, [(None, None), (DAY0 + dt.timedelta(days=1), None)])


def _stream_spans(table):
    """triage's step 0 on acme-mini in three runs: 06-01 10:00 with 1,000 input tokens, 06-01
    12:00 a stream without its usage (stored with 0 tokens), 06-02 10:00 without usage alone."""
    memory = InMemorySpanExporter()
    app = TracerProvider(resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False)
    app.add_span_processor(CostSpanProcessor(table))
    app.add_span_processor(SimpleSpanProcessor(memory))
    tracer = app.get_tracer("streams")
    for hour, usage in ((10, _USAGE), (12, {}), (34, {})):
        at = DAY0_NS + hour * HOUR_NS
        root = tracer.start_span("workflow", attributes={"app.feature": "refund"}, start_time=at)
        who = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}
        ctx = trace.set_span_in_context(root)
        agent = tracer.start_span("invoke_agent triage", ctx, attributes=who, start_time=at)
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-mini", **usage}
        ctx = trace.set_span_in_context(agent)
        tracer.start_span("chat acme-mini", ctx, attributes=attrs, start_time=at + 1000).end(at + 2000)
        agent.end(at + 3000)
        root.end(at + 3000)
    app.shutdown()
    return list(memory.get_finished_spans())


def _average_inputs(con, answer=rollup, **window):
    per_step = [(r["step"], r["calls"], r["avg_input_tokens"]) for r in answer("per_step", db=con, **window)]
    steps = [(r["step"], r["calls"], r["avg_input_tokens"]) for r in answer("agent_steps", db=con, **window)]
    return per_step, steps


STREAM_WINDOWS = [  # the whole store, the first day, its last hours (an edge day: the facts' calls)
    ((None, None), [(0, 3, 1000)]),
    ((DAY0, DAY0 + dt.timedelta(days=1)), [(0, 2, 1000)]),
    ((DAY0 + dt.timedelta(hours=11), None), [(0, 2, None)]),
    ((DAY0 + dt.timedelta(hours=9), DAY0 + dt.timedelta(hours=11)), [(0, 1, 1000)]),
]


def test_a_call_without_usage_leaves_the_average_input_as_it_was(table, tmp_path):
    """A stream without its usage is stored with 0 input tokens: it is a call (counted, and
    unpriced), not a call that read nothing, so per_step's and agent_steps' average input leaves
    it out, on the facts and on the contract alike; a step with only such calls has no average."""
    path = tmp_path / "spans.duckdb"
    _export(path, table, _stream_spans(table))
    with store.connect(path) as con:
        assert con.execute("SELECT count(*) FROM calls WHERE input_tokens = 0").fetchone()[0] == 2
        assert facts.fast_query(con, "per_step", {}) is not None
        for (since, until), expected in STREAM_WINDOWS:
            window = {"since": since, "until": until}
            assert _average_inputs(con, **window) == (expected, expected), window
            assert _average_inputs(con, _general_answer, **window) == (expected, expected), window


def test_a_store_whose_facts_counted_calls_without_usage_averages_without_them(table, tmp_path):
    """A store of the version before 0015_rollup_facts_usage_calls (its per-step facts without
    usage_calls, as that version made them): opened now, the migration counts the calls that
    report input from the facts' calls, and the facts are those a new store keeps of the same
    spans; that version's upkeep, filling the table by position, now fails on it."""
    spans = _stream_spans(table)
    _export(tmp_path / "new.duckdb", table, spans)
    with store.connect(tmp_path / "new.duckdb") as con:
        fresh, layout = _fact_rows(con), _fact_columns(con)
    path = tmp_path / "old.duckdb"
    _export(path, table, spans)
    with store.connect(path) as con:  # as the previous version left it
        con.execute("ALTER TABLE costattr_fact_step DROP COLUMN usage_calls")
        con.execute("DELETE FROM costattr_migrations WHERE name = '0015_rollup_facts_usage_calls'")
    with store.connect(path) as con:
        assert (_fact_rows(con), _fact_columns(con)) == (fresh, layout)
        for (since, until), expected in STREAM_WINDOWS:
            assert _average_inputs(con, since=since, until=until)[0] == expected
        with pytest.raises(duckdb.BinderException):  # the previous version's INSERT: 9 values
            old_upkeep = "SELECT day, agent_name, step, model, 1, 0, 1, 0, 0 FROM costattr_fact_step"
            con.execute(f"INSERT INTO costattr_fact_step {old_upkeep}")


def test_a_store_made_before_the_facts_averages_without_calls_without_usage(table, tmp_path):
    """A store of the version before the facts (0010 and every migration of them after it run
    now, in order, over spans with calls without usage): its facts are a new store's."""
    spans = _stream_spans(table)
    _export(tmp_path / "new.duckdb", table, spans)
    with store.connect(tmp_path / "new.duckdb") as con:
        fresh = _fact_rows(con)
    path = tmp_path / "old.duckdb"
    _export(path, table, spans)
    with store.connect(path) as con:
        for name in ("calls", "feature", "agent", "run", "step", "pending", "spans"):
            con.execute(f"DROP TABLE costattr_fact_{name}")
        con.execute("DROP TABLE costattr_facts_state")
        con.execute("DROP TABLE costattr_fact_spans_state")
        facts_migrations = ("0010_rollup_facts", "0011_rollup_facts_spans", "0013_call_views_attributes")
        facts_migrations += ("0014_rollup_facts_unpriced", "0015_rollup_facts_usage_calls")
        con.execute(
            "DELETE FROM costattr_migrations WHERE list_contains($m, name)", {"m": list(facts_migrations)}
        )
    with store.connect(path) as con:
        assert _fact_rows(con) == fresh
        for (since, until), expected in STREAM_WINDOWS:
            assert _average_inputs(con, since=since, until=until)[0] == expected


def _startless_store(table, path, ingests: int):
    """Runs of triage on acme-mini received over OTLP, some with start time 0 (stored NULL:
    a NULL day in the per-step facts): 1,000 input tokens, no usage, and 3,000 on 06-01;
    the same again, as new traces, in each of ``ingests`` ingests."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    from otel_costattr.server import SpanSink

    def kv(key, value):
        return KeyValue(
            key=key, value=AnyValue(int_value=value) if type(value) is int else AnyValue(string_value=value)
        )

    sink = SpanSink(path, pricing=table, workers=0)
    sink.start()
    try:
        for n in range(ingests):
            request = ExportTraceServiceRequest()
            spans = request.resource_spans.add().scope_spans.add().spans
            for i, (start, usage) in enumerate([(0, 1000), (0, None), (DAY0_NS, 3000)]):
                trace_id, root_id = bytes([n + 1, i + 1]) * 8, bytes([n + 1, i + 1]) * 4
                root = spans.add(trace_id=trace_id, span_id=root_id, name="invoke_agent triage")
                root.start_time_unix_nano, root.end_time_unix_nano = start, DAY0_NS + 5
                root.attributes.extend(
                    [kv("gen_ai.operation.name", "invoke_agent"), kv("gen_ai.agent.name", "triage")]
                )
                call = spans.add(trace_id=trace_id, span_id=bytes([9, i + 1]) * 4, parent_span_id=root_id)
                call.name, call.start_time_unix_nano, call.end_time_unix_nano = "chat", start, DAY0_NS + 5
                attrs = [kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "acme-mini")]
                if usage is not None:
                    attrs += [kv("gen_ai.usage.input_tokens", usage), kv("gen_ai.usage.output_tokens", 10)]
                call.attributes.extend(attrs)
            sink.receive(request.SerializeToString(), "application/x-protobuf")
            assert sink.flush()
    finally:
        sink.stop()
    return path


def test_calls_without_a_start_time_are_one_per_step_row_of_the_facts(table, tmp_path):
    """A call received with start time 0 is stored without one: its per-step facts have a
    NULL day, which the upkeep now merges like any other (two ingests, one row), and which
    migration 0015 counts too (it matched days by equality, which NULL never is)."""
    fresh_path = _startless_store(table, tmp_path / "new.duckdb", ingests=2)
    with store.connect(fresh_path) as con:
        assert con.execute("SELECT count(*) FROM calls WHERE start_time IS NULL").fetchone()[0] == 4
        fresh = _fact_rows(con)
        null_days = [r for r in fresh["costattr_fact_step"] if r[0] is None]
        # calls, input tokens, input_calls, usd (priced at the prices of no date), unpriced, usage_calls
        assert [r[4:] for r in null_days] == [(4, 2000, 4, D("0.000312"), 2, 2)]
        assert _average_inputs(con)[0] == [(None, 6, 2000)] == _average_inputs(con, _general_answer)[0]
    path = _startless_store(table, tmp_path / "old.duckdb", ingests=2)
    with store.connect(path) as con:  # as the version before 0015 left it
        con.execute("ALTER TABLE costattr_fact_step DROP COLUMN usage_calls")
        con.execute("DELETE FROM costattr_migrations WHERE name = '0015_rollup_facts_usage_calls'")
    with store.connect(path) as con:
        assert _fact_rows(con) == fresh
        assert _average_inputs(con)[0] == [(None, 6, 2000)]
