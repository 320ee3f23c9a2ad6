"""Defects a review found in the JSON API of ``serve``, on a store the real SDK wrote (the cost
processor and the DuckDB exporter): a run with no priced call costs null, not $0; every money
column has its ``_exact`` string, null or not, as the CLI's json has; never NaN or Infinity; a
trace id prefix looked up in a store another process holds is 503, as a full id is; a query
parameter an answer does not take is a 400 naming it, never silently dropped."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from sdk_store import gpt4o_chat, priced_store
from serverutil import serving
from test_store import hold

from otel_costattr.cli import main

pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
from otel_costattr.server.api import encode  # noqa: E402

UNPRICED = "abcd" + "0" * 27 + "1"  # its one call is a model no price file knows
PRICED = "abcd" + "0" * 27 + "2"  # a gpt-4o call
NO_CALLS = "bcde" + "0" * 27 + "3"  # a span, no model call


class _Ids(RandomIdGenerator):
    """The trace ids above, in order."""

    def __init__(self) -> None:
        self._next = iter((UNPRICED, PRICED, NO_CALLS))

    def generate_trace_id(self) -> int:
        return int(next(self._next), 16)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = tmp_path_factory.mktemp("api-review") / "s.duckdb"
    provider, tracer = priced_store(db, _Ids())
    for model in ("my-finetune-unknown", "gpt-4o"):
        agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", "app.feature": model}
        with tracer.start_as_current_span("invoke_agent a", attributes=agent):
            call = {**gpt4o_chat(input_tokens=1000, output_tokens=100), "gen_ai.request.model": model}
            with tracer.start_as_current_span(f"chat {model}", attributes=call):
                pass
    with tracer.start_as_current_span("housekeeping"):
        pass
    provider.shutdown()
    return db


@pytest.fixture(scope="module")
def srv(store):
    with serving(store) as running:
        yield running


def test_a_run_with_no_priced_call_costs_null_not_zero(srv):
    listed = {r["trace_id"]: r for r in srv.get_json("/api/v1/runs")["runs"]}
    assert (listed[UNPRICED]["cost_usd"], listed[UNPRICED]["cost_usd_exact"]) == (None, None)
    tree = srv.get_json(f"/api/v1/runs/{UNPRICED}")
    assert (tree["usd"], tree["usd_exact"]) == (None, None)
    assert tree["spans"][0]["subtree_usd"] is None
    # a trace without a model call has no priced call either
    assert (srv.get_json(f"/api/v1/runs/{NO_CALLS}")["usd_exact"]) is None
    # gpt-4o at $2.50 / $10 per million: 1000 in + 100 out
    assert srv.get_json(f"/api/v1/runs/{PRICED}")["usd_exact"] == "0.0035"


@pytest.mark.parametrize(
    ("name", "query", "options"),
    [
        ("per-feature", "", []),  # usd_per_run: null for the unpriced model's feature
        ("per-group", "?group_by=model", ["--group-by", "model"]),
        ("agent-steps", "", []),  # usd_per_call
        ("per-run", "", []),
        ("per-agent", "", []),  # with per-step and daily, unpriced_calls: a count, no _exact
        ("per-step", "", []),
        ("daily", "", []),
    ],
)
def test_rows_have_the_keys_and_values_of_the_cli_json(srv, store, capsys, name, query, options):
    assert main(["rollup", name, *options, "--db", str(store), "--format", "json"]) in (0, None)
    cli = json.loads(capsys.readouterr().out)
    api = srv.get_json(f"/api/v1/rollups/{name}{query}")["rows"]
    assert api == cli
    assert len({tuple(row) for row in api}) == 1  # every row the same keys


@pytest.mark.parametrize("name", ["per-agent", "per-step", "agent-steps", "daily"])
def test_the_agents_unknown_model_is_counted_not_priced(srv, name):
    """Agent a's two calls: gpt-4o priced, the unknown model in unpriced_calls (a count: no
    ``_exact`` string beside it), never as $0 in usd."""
    rows = srv.get_json(f"/api/v1/rollups/{name}")["rows"]
    assert sum(r["unpriced_calls"] for r in rows) == 1
    assert all(type(r["unpriced_calls"]) is int and "unpriced_calls_exact" not in r for r in rows)
    assert sum(Decimal(r["usd_exact"]) for r in rows if r["usd_exact"] is not None) == Decimal("0.0035")


def test_the_unpriced_feature_has_a_null_exact_usd_per_run(srv):
    rows = {r["feature"]: r for r in srv.get_json("/api/v1/rollups/per-feature")["rows"]}
    unpriced = rows["my-finetune-unknown"]
    assert (unpriced["usd_per_run"], unpriced["usd_per_run_exact"]) == (None, None)
    assert rows["gpt-4o"]["usd_per_run_exact"] == "0.0035"


def test_nan_and_infinity_are_null():
    row = {
        "usd": Decimal("NaN"),
        "cost_usd": Decimal("-Infinity"),
        "avg_call_ms": float("inf"),
        "usd_share": float("nan"),
        "ratio": Decimal("Infinity"),
        "calls": 3,
    }
    out = encode(row)
    assert out == {
        "usd": None,
        "usd_exact": None,
        "cost_usd": None,
        "cost_usd_exact": None,
        "avg_call_ms": None,
        "usd_share": None,  # a fraction, not an amount: no _exact
        "ratio": None,
        "calls": 3,
    }
    json.dumps(out, allow_nan=False)


def test_a_prefix_lookup_in_a_locked_store_is_503_as_a_full_id_is(srv, store):
    with hold(store) as holder:  # another process holds the write lock (the reads retry 10 s)
        try:
            status, headers, body = srv.request("GET", f"/api/v1/runs/{NO_CALLS[:6]}")
        finally:
            holder.communicate("\n", timeout=30)
    assert (status, {k.lower(): v for k, v in headers.items()}.get("retry-after")) == (503, "1"), body
    assert json.loads(body)["detail"].startswith("the store is not available: ")
    assert srv.get_json(f"/api/v1/runs/{NO_CALLS[:6]}")["trace_id"] == NO_CALLS  # once let go


WINDOW = "days, since, until, service, feature, agent"


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/v1/stats?where=app.tenant%3Dacme", f"stats: unknown parameter 'where' (valid: {WINDOW})"),
        ("/api/v1/stats?feture=refund", "stats: unknown parameter 'feture'"),
        ("/api/v1/runs?group_by=x", f"runs: unknown parameter 'group_by' (valid: {WINDOW}, limit, cursor)"),
        ("/api/v1/runs?where=user.id%3Dnobody", "runs: unknown parameter 'where'"),
        (f"/api/v1/runs/{PRICED}?days=1", "run: unknown parameter 'days' (valid: none)"),
        ("/api/v1/rollups?colour=red", "list_rollups: unknown parameter 'colour'"),
        ("/api/v1/rollups/per-feature?colour=red", "per-feature: unknown parameter 'colour' (valid: days,"),
    ],
)
def test_an_unknown_query_parameter_is_400_naming_it(srv, path, detail):
    status, _, body = srv.request("GET", path)
    assert status == 400 and json.loads(body)["detail"].startswith(detail), (status, body)


def test_known_parameters_token_and_health_pass(srv):
    assert srv.get_json("/api/v1/stats?feature=gpt-4o")["usd_exact"] == "0.0035"
    assert srv.get_json("/api/v1/runs?feature=gpt-4o&limit=5")["runs"][0]["trace_id"] == PRICED
    assert srv.get_json("/api/v1/rollups/per-group?group_by=model&where=model%3Dgpt-4o")["rows"]
    # ?token= is the server's (a browser's way in), never an answer's: let through
    assert srv.get_json("/api/v1/stats?token=abc")["runs"] == 2
    assert srv.get_json("/api/v1/rollups/per-feature?token=abc")["rows"]
    assert srv.get_json("/healthz?probe=1")["status"] == "ok"  # not an /api/v1 answer


def test_a_bearer_with_the_token_in_the_address_too_still_reads(tmp_path):
    token = "a-token-of-24-characters"
    bearer = {"Authorization": f"Bearer {token}"}
    with serving(tmp_path / "s.duckdb", token=token) as running:
        assert running.get_json(f"/api/v1/stats?days=1&token={token}", headers=bearer)["calls"] == 0
        assert running.get_json(f"/api/v1/rollups/overview?token={token}", headers=bearer)["rows"]
