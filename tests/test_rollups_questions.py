"""The questions users ask: cost per user / tenant / session (--group-by, --where), honest
run totals, answers that explain themselves, relative windows, trace id prefixes, Arrow.

A small workload with identity keys in each call's attributes, costs worked out by hand with
the bundled prices (USD per million tokens: gpt-4o-mini 0.15 in / 0.6 out, gpt-4o 2.5 / 10,
claude-haiku-4-5 1 / 5):

    T1 tenant acme,   user u1: gpt-4o-mini 1000/100 = $0.00021; gpt-4o-mini 2000/0 = $0.0003
    T2 tenant acme,   user u2: gpt-4o 1000/100 = 2500 + 1000 = $0.0035
    T3 tenant globex, user u3, conversation c3: claude-haiku-4-5 1000/100 = $0.0015;
                               acme-ner-7b 500/50 unpriced (550 tokens)
    T4 no identity:            gpt-4o-mini 1000/0 = $0.00015
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from test_rollups_workload import DAY0, Writer, build, trace_id

from otel_costattr.cli import main
from otel_costattr.rollups.errors import RollupError, RollupParamError
from otel_costattr.rollups.explain import explain_empty, find_trace
from otel_costattr.rollups.queries import rollup
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import IDENTITY_KEYS
from otel_costattr.store import database as store
from otel_costattr.store.exporter import DuckDBSpanExporter

D = Decimal
LONE = 0xABCDEF << 104  # trace id abcdef000...: the only one starting with a


def _attrs(**keys: str) -> str:
    return json.dumps({k.replace("_", "."): v for k, v in keys.items()})


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("questions") / "spans.duckdb"
    con = store.connect(path)
    try:
        w = Writer(con)
        t = lambda day: DAY0 + dt.timedelta(days=day)  # noqa: E731
        u1 = _attrs(user_id="u1", app_tenant="acme")
        w.call(1, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=t(0), attributes=u1, feature="chat")
        w.call(1, "gpt-4o-mini", 2000, 0, "0.0003", parent=None, at=t(0), attributes=u1, feature="chat")
        u2 = _attrs(user_id="u2", app_tenant="acme")
        w.call(2, "gpt-4o", 1000, 100, "0.0035", parent=None, at=t(1), attributes=u2, feature="chat")
        u3 = _attrs(user_id="u3", app_tenant="globex", **{"gen_ai_conversation_id": "c3"})
        for model, inp, out, usd in (
            ("claude-haiku-4-5", 1000, 100, "0.0015"),
            ("acme-ner-7b", 500, 50, None),
        ):
            w.call(3, model, inp, out, usd, parent=None, at=t(2), attributes=u3, conversation_id="c3",
                   feature="search", provider="vllm" if usd is None else None)  # fmt: skip
        w.call(4, "gpt-4o-mini", 1000, 0, "0.00015", parent=None, at=t(3))
        w.span(LONE, "a run without model calls", at=t(3))
    finally:
        con.close()
    return path


def by(rows, key="value"):
    return {row[key]: row for row in rows}


def test_cost_per_user(db):
    rows = rollup("per_group", db=db, group_by="user.id")
    assert [r["value"] for r in rows] == ["u2", "u3", "u1", None]
    users = by(rows)
    assert users["u1"] == {
        "key": "user.id", "value": "u1", "runs": 1, "calls": 2, "input_tokens": 3000,
        "output_tokens": 100, "usd": D("0.00051"), "usd_per_run": D("0.00051"),
        "unpriced_calls": 0, "unpriced_tokens": 0,
    }  # fmt: skip
    assert (users["u3"]["usd"], users["u3"]["unpriced_calls"], users["u3"]["unpriced_tokens"]) == (
        D("0.0015"), 1, 550,
    )  # fmt: skip
    assert users[None]["calls"] == 1 and users[None]["usd"] == D("0.00015")


def test_cost_per_tenant_and_session_and_column(db):
    tenants = by(rollup("per_group", db=db, group_by="app.tenant"))
    assert (tenants["acme"]["runs"], tenants["acme"]["calls"], tenants["acme"]["usd"]) == (2, 3, D("0.00401"))
    assert tenants["acme"]["usd_per_run"] == D("0.002005")
    sessions = by(rollup("per_group", db=db, group_by="gen_ai.conversation.id"))
    assert set(sessions) == {"c3", None} and sessions["c3"]["calls"] == 2
    models = by(rollup("per_group", db=db, group_by="model"))
    assert models["gpt-4o-mini"]["calls"] == 3 and models["gpt-4o-mini"]["usd"] == D("0.00066")
    assert rollup("per_group", db=db)[0]["key"] == "user.id"  # the default key


def test_where_filters_every_rollup(db):
    models = by(rollup("per_model", db=db, where={"app.tenant": "acme"}), "model")
    assert set(models) == {"gpt-4o", "gpt-4o-mini"}
    assert (models["gpt-4o-mini"]["calls"], models["gpt-4o-mini"]["usd"]) == (2, D("0.00051"))
    # a key twice: either value; two keys: both
    total = rollup("stats", db=db, where=["user.id=u1", "user.id=u3"])[0]
    assert (total["calls"], total["usd"], total["runs"]) == (4, D("0.00201"), 2)
    both = rollup("stats", db=db, where={"app.tenant": "acme", "model": "gpt-4o-mini"})[0]
    assert (both["calls"], both["usd"]) == (2, D("0.00051"))
    runs = rollup("per_run", db=db, where=[("user.id", "u2")])
    assert [r["trace_id"] for r in runs] == [trace_id(2)]
    # a plain rollup afterwards, on the same connection, sees every call again
    assert rollup("stats", db=db)[0]["calls"] == 6


def test_where_values_are_bound_and_keys_checked(db):
    assert rollup("stats", db=db, where={"user.id": "u1' OR '1'='1"})[0]["calls"] == 0
    for bad in ('user.id"]', "a b", "", "x" * 200):
        with pytest.raises(RollupParamError, match="not an attribute name"):
            rollup("per_group", db=db, group_by=bad)
        with pytest.raises(RollupParamError, match="not an attribute name"):
            rollup("stats", db=db, where={bad: "x"})
    with pytest.raises(RollupParamError, match="^top_runs: cannot group by a key: it lists runs"):
        rollup("top_runs", db=db, group_by="user.id")
    with pytest.raises(RollupParamError, match="expects KEY=VALUE"):
        rollup("stats", db=db, where=["user.id"])


def test_with_repricing_and_where_together(db):
    rows = rollup("per_model", db=db, reprice=[], where={"app.tenant": "globex"})
    assert {r["model"] for r in rows} == {"claude-haiku-4-5", "acme-ner-7b"}
    assert by(rows, "model")["claude-haiku-4-5"]["usd_repriced"] == D("0.0015")


def test_arrow_table(db):
    table = rollup("per_group", db=db, group_by="app.tenant", arrow=True)
    assert isinstance(table, pa.Table)
    assert table.column_names == list(rollup("per_group", db=db, group_by="app.tenant").columns)
    assert table.column("usd").to_pylist()[0] == D("0.00401")
    assert "usd_repriced" not in table.column_names


def test_relative_since(db):
    now = DAY0 + dt.timedelta(days=3, hours=12)
    assert rollup("stats", db=db, since="2d", now=now)[0]["calls"] == 3  # T3 (day 2) and T4
    assert rollup("stats", db=db, since="1w", until="3d", now=now)[0]["calls"] == 2  # T1 only
    assert rollup("stats", db=db, since="60h", now=now)[0]["calls"] == 4  # T2, T3, T4
    with pytest.raises(RollupParamError, match="since .* must be before until"):
        rollup("stats", db=db, since="1d", until="2d", now=now)
    with pytest.raises(RollupParamError, match="^stats: since: must be at most 36500 days ago, got 99999d$"):
        rollup("stats", db=db, since="99999d", now=now)


def test_empty_answers_say_what_the_store_holds(db):
    text = explain_empty(db, {"feature": "chta"}, where={"user.id": "u9"})
    assert text.splitlines() == [
        "the store holds 4 runs (6 model calls) from 2026-06-01 09:00 to 2026-06-04 09:00 UTC",
        "feature 'chta': closest: chat",
        "user.id = 'u9': closest: u1, u2, u3",
    ]


def test_a_trace_id_prefix(db):
    assert find_trace(db, "ABCD") == trace_id(LONE) == "abcdef" + "0" * 26
    with pytest.raises(RollupError, match="^0000 is the start of several trace ids"):
        find_trace(db, "0000")
    with pytest.raises(RollupError, match="^no trace id starts with ffff$"):
        find_trace(db, "ffff")
    with pytest.raises(RollupError, match="not a trace id or a prefix"):
        find_trace(db, "abc")


def test_the_trace_rollup_takes_a_prefix_as_the_trace_command_does(db):
    assert rollup("trace", db=db, trace_id="ABCD") == rollup("trace", db=db, trace_id=trace_id(LONE))
    assert rollup("trace", db=db, trace_id="abcd")  # not silently empty
    with pytest.raises(RollupError, match="^no trace id starts with ffff$"):
        rollup("trace", db=db, trace_id="ffff")
    with pytest.raises(RollupParamError, match="trace: trace_id: not a trace id"):
        rollup("trace", db=db, trace_id="not-hex")


# --- honest totals in run-level and tree-level answers (the shared workload) ----------------


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    return build(tmp_path_factory.mktemp("honest") / "spans.duckdb")


def test_runs_carry_their_unpriced_calls_and_tokens(workload):
    # T5: acme-ner-7b 5000 in / 50 out (unknown model) and a gpt-4o call with invalid usage
    for name in ("per_run", "top_runs"):
        runs = {r["trace_id"]: r for r in rollup(name, db=workload, limit=0)}
        assert (runs[trace_id(5)]["unpriced_calls"], runs[trace_id(5)]["unpriced_tokens"]) == (2, 5050), name
        assert (runs[trace_id(1)]["unpriced_calls"], runs[trace_id(1)]["unpriced_tokens"]) == (0, 0), name
    rows = rollup("trace", db=workload, trace_id=trace_id(5))
    root = rows[0]
    assert (root["subtree_unpriced_calls"], root["subtree_unpriced_tokens"]) == (2, 5050)
    assert root["subtree_usd"] == D("0.00015")


# --- identity_keys through the real pipeline ------------------------------------------------


def test_identity_keys_reach_the_store_from_parents_and_baggage(tmp_path):
    """user.id set on a request span, app.tenant arriving in W3C Baggage from another process:
    the processor copies both onto each model call, the exporter stores them, per-group reads
    them. gpt-4o-mini 1000 in / 100 out = $0.00021 per call."""
    path = tmp_path / "identity.duckdb"
    keys = (*IDENTITY_KEYS, "user.id", "app.tenant")
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(identity_keys=keys))
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path)))
    tracer = provider.get_tracer("test.identity")
    chat = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }  # fmt: skip
    propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    for user, tenant, calls in (("u1", "acme", 2), ("u2", "acme", 1), ("u3", "globex", 1)):
        carrier: dict[str, str] = {}
        token = context.attach(baggage.set_baggage("app.tenant", tenant))
        try:
            propagator.inject(carrier)  # the gateway process: only the tenant is known there
        finally:
            context.detach(token)
        token = context.attach(propagator.extract(carrier))
        try:  # the agent process
            with tracer.start_as_current_span("handle", attributes={"user.id": user}):
                for _ in range(calls):
                    tracer.start_span("chat gpt-4o-mini", attributes=chat).end()
        finally:
            context.detach(token)
    provider.shutdown()
    tenants = by(rollup("per_group", db=path, group_by="app.tenant"))
    assert {k: (v["calls"], v["usd"]) for k, v in tenants.items()} == {
        "acme": (3, D("0.00063")), "globex": (1, D("0.00021")),
    }  # fmt: skip
    users = by(rollup("per_group", db=path, group_by="user.id"))
    assert {k: v["calls"] for k, v in users.items()} == {"u1": 2, "u2": 1, "u3": 1}
    acme = rollup("stats", db=path, where={"app.tenant": "acme", "user.id": "u1"})[0]
    assert (acme["calls"], acme["usd"]) == (2, D("0.00042"))


# --- the command line --------------------------------------------------------------------


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_group_by_and_where(capsys, db):
    code, out, err = run(
        capsys, "rollup", "per-group", "--group-by", "app.tenant", "--db", db, "--format", "json"
    )
    assert (code, err) == (0, "")
    assert [(r["value"], r["usd_exact"]) for r in json.loads(out)] == [
        ("acme", "0.00401"), ("globex", "0.0015"), (None, "0.00015"),
    ]  # fmt: skip
    code, out, _ = run(capsys, "runs", "--where", "user.id=u2", "--db", db, "--format", "json")
    assert code == 0 and [r["trace_id"] for r in json.loads(out)] == [trace_id(2)]


GROUPING = [
    ("rollup", "per-group"),
    ("rollup", "per-feature"),
    ("compare", "--until", "2026-06-05"),  # the workload's days
    ("forecast", "--until", "2026-06-05"),
]


@pytest.mark.parametrize("command", GROUPING)
def test_cli_a_group_by_key_no_call_carries_says_so(capsys, db, command):
    # A new user's review: --group-by user_id (for user.id) gave one '-' row of every call,
    # exit 0, no hint: it read as an answer.
    code, out, err = run(capsys, *command, "--group-by", "user_id", "--db", db)
    assert code == 0 and out
    assert err == (
        "Note: no call here carries 'user_id': every row is the calls without it ('-'); keys are matched "
        "as spelled (closest: enduser.id, service, user.id)\n"
    )
    assert run(capsys, *command, "--group-by", "user.id", "--db", db)[2] == ""


def test_cli_no_group_by_note_when_calls_outside_the_answer_carry_the_key(capsys, tmp_path):
    # The review of the note: `unpriced` shows only unpriced calls; that none of them
    # carries user.id does not make user.id a typo when a priced call carries it.

    path = tmp_path / "s.duckdb"
    con = store.connect(path)
    try:
        w = Writer(con)
        u1 = json.dumps({"user.id": "u1"})
        w.call(1, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=DAY0, attributes=u1, feature="chat")
        w.call(2, "acme-ner-7b", 500, 50, None, parent=None, at=DAY0, feature="chat", provider="vllm")
    finally:
        con.close()
    code, out, err = run(capsys, "rollup", "unpriced", "--group-by", "user.id", "--db", str(path))
    assert (code, err) == (0, "") and "acme-ner-7b" in out
    err = run(capsys, "rollup", "unpriced", "--group-by", "user_id", "--db", str(path))[2]
    assert err.startswith("Note: no call here carries 'user_id'")


@pytest.mark.parametrize(
    "command", [("compare",), ("forecast",), ("rollup", "compare"), ("rollup", "forecast")]
)
def test_cli_group_by_note_reads_the_commands_own_window(capsys, tmp_path, command):
    # The review of the note's check: compare and forecast asked per-group over all history
    # before --until (their default windows are their own), found a call 60 days back that
    # carries user.id, and said nothing though none of their window's calls carries it.
    path = tmp_path / "s.duckdb"
    con = store.connect(path)
    try:
        w = Writer(con)
        old = json.dumps({"user.id": "u1"})
        at = DAY0 - dt.timedelta(days=60)
        w.call(1, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=at, attributes=old, feature="chat")
        w.call(2, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=DAY0, feature="chat")
    finally:
        con.close()
    argv = (*command, "--until", "2026-06-05", "--group-by", "user.id", "--db", str(path), "--format", "json")
    code, out, err = run(capsys, *argv)
    assert code == 0 and all(r["value"] is None for r in json.loads(out))
    assert err == (
        "Note: no call here carries 'user.id': every row is the calls without it ('-'); it is a key "
        "the rollups know, and no call of this window sets it\n"
    )


def test_cli_empty_answer_explains_itself_on_stderr(capsys, db):
    code, out, err = run(capsys, "rollup", "per-feature", "--feature", "serch", "--db", db, "--format", "csv")
    assert code == 0 and out.startswith("feature,")
    assert err == (
        "No rows: the store holds 4 runs (6 model calls) from 2026-06-01 09:00 to 2026-06-04 09:00 UTC\n"
        "feature 'serch': closest: search\n"
    )


def test_cli_reversed_window_is_an_error(capsys, db):
    code, out, err = run(
        capsys, "rollup", "stats", "--since", "2026-06-05", "--until", "2026-06-01", "--db", db
    )
    assert (code, out) == (1, "")
    assert err == "Error: stats: since (2026-06-05 00:00:00) must be before until (2026-06-01 00:00:00)\n"


def test_cli_trace_by_prefix(capsys, db):
    code, out, err = run(capsys, "trace", "abcdef", "--db", db, "--format", "json")
    assert (code, err) == (0, "") and json.loads(out)[0]["name"] == "a run without model calls"
    code, _, err = run(capsys, "trace", "0000", "--db", db)
    assert code == 1 and err.startswith("Error: 0000 is the start of several trace ids")


def test_cli_tables_show_unpriced_columns_when_a_row_has_some(capsys, db):
    _, out, _ = run(capsys, "runs", "--db", db)
    assert "unpriced_calls" in out.splitlines()[0] and "unpriced_tokens" in out.splitlines()[0]
    _, out, _ = run(capsys, "runs", "--where", "app.tenant=acme", "--db", db)
    assert "unpriced" not in out  # all priced: the columns stay in json and csv only
    _, out, _ = run(capsys, "runs", "--where", "app.tenant=acme", "--db", db, "--format", "csv")
    assert out.splitlines()[0].endswith("calls,unpriced_calls,unpriced_tokens,usd")


def test_a_hint_quotes_values_a_line_cannot_show_as_they_are():
    # A stored value with a newline made the one-line hint two, and '' was an empty entry.
    from otel_costattr.rollups.explain import near

    hint = near("zzz", ["", " lead", "a,b", "new\nline", "ok", "é"])
    assert hint == "known: '', ' lead', 'a,b', 'new[U+000A]line', ok, é"
