"""Repricing on ClickHouse (``--reprice``, ``whatif``, the dashboard's ``/whatif``) against the
DuckDB store, on the workload of tests/test_clickhouse.py plus calls whose price depends on
more than their model: a service tier, 1-hour cache writes, a long-context input, a later
price period, and a call of a service without the processor (priced at read time there).

The calls are selected in ClickHouse and repriced by the DuckDB SQL in memory
(`otel_costattr.clickhouse.local`); every answer must be the DuckDB store's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import clickhouse_workload
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context
from test_clickhouse import NOW, ROLLUPS, assert_agree

from otel_costattr.cli import main
from otel_costattr.pricing.table import PriceTable, default_pricing
from otel_costattr.rollups.catalog import query
from otel_costattr.rollups.errors import RollupError
from otel_costattr.rollups.queries import rollup
from otel_costattr.rollups.whatif import whatif
from otel_costattr.sdk.processor import CostSpanProcessor

pytestmark = pytest.mark.chdb

OCT = 1_792_224_000 * 10**9  # 2026-10-18T08:00:00Z: after gpt-4o's 2026-10-12 price period


def _priced_by_more_than_the_model(table: PriceTable) -> list[Any]:
    """One run (feature "tiers") whose calls' prices hang on attributes and time."""
    memory = InMemorySpanExporter()
    app = TracerProvider(resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False)
    app.add_span_processor(CostSpanProcessor(table))
    app.add_span_processor(SimpleSpanProcessor(memory))
    side = TracerProvider(resource=Resource.create({"service.name": "sidecar"}), shutdown_on_exit=False)
    side.add_span_processor(SimpleSpanProcessor(memory))
    t = OCT
    root = app.get_tracer("t").start_span("workflow", attributes={"app.feature": "tiers"}, start_time=t)
    ctx = set_span_in_context(root)
    calls = [
        (app, "openai", "gpt-4o", {"gen_ai.openai.response.service_tier": "priority"}),
        (app, "openai", "gpt-4o-mini", {"gen_ai.response.service_tier": "batch"}),
        (app, "anthropic", "claude-sonnet-4-5", {"gen_ai.usage.input_tokens": 250_000}),  # > 200k tier
        (app, "anthropic", "claude-sonnet-4-5", {
            "gen_ai.usage.cache_creation_input_tokens": 3000,
            "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens": 2000,
        }),
        (app, "anthropic", "claude-sonnet-4-5", {"anthropic.response.service_tier": "batch"}),
        (side, "openai", "gpt-4o", {"openai.response.service_tier": "priority"}),  # priced at read time
    ]  # fmt: skip
    for i, (provider_, provider, model, extra) in enumerate(calls):
        attrs = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 4000 + i, "gen_ai.usage.output_tokens": 700, **extra,
        }  # fmt: skip
        t += 10**9
        span = provider_.get_tracer("t").start_span(
            f"chat {model}", ctx, SpanKind.CLIENT, attributes=attrs, start_time=t
        )
        span.end(end_time=t + 5 * 10**8)
    root.end(end_time=t + 10**9)
    app.shutdown()
    side.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture(scope="module")
def stores(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(the DuckDB file, the chDB URL) holding the same spans (a database of their own)."""
    table = default_pricing()
    spans = clickhouse_workload.spans(table) + _priced_by_more_than_the_model(table)
    duck = str(tmp_path_factory.mktemp("duck") / "spans.duckdb")
    url = f"chdb://{chdb_dir}?database=repricing"
    clickhouse_workload.load(spans, duck, url)
    return duck, url


REPRICED = [name for name in ROLLUPS if "usd_repriced" in query(name).sql]


@pytest.mark.parametrize("name", REPRICED)
def test_every_repriced_rollup_agrees_with_duckdb(stores: tuple[str, str], name: str) -> None:
    duck, url = stores
    table = default_pricing()
    expected = rollup(name, duck, now=NOW, reprice=table)
    assert "usd_repriced" in "".join(expected.columns), name
    assert_agree(expected, rollup(name, url, now=NOW, reprice=table))


def test_the_tiers_are_repriced_as_they_were_priced(stores: tuple[str, str]) -> None:
    """Repriced with the table that stamped them, the run above costs what it was stamped
    (and priced at read time, for the sidecar's call): each call at its service tier,
    long-context tier and 1-hour cache rate, so ClickHouse handed repricing the attributes
    it reads (at standard rates the sum differs)."""
    _, url = stores
    runs = rollup("per_run", url, reprice=default_pricing(), limit=0)
    run = [r for r in runs if r["feature"] == "tiers"]
    assert len(run) == 1 and run[0]["calls"] == 6 and run[0]["unpriced_calls"] == 0
    assert run[0]["usd_repriced"] == run[0]["usd"]


@pytest.mark.parametrize(
    "params",
    [
        {"model": "gpt-4o-mini"},
        {"model": "claude-haiku-4-5", "from_model": "claude-sonnet-4-5", "limit": 0},
        {"model": "claude-sonnet-4-5", "from_model": "gpt-4o", "feature": "tiers"},
        {"model": "gpt-4o", "agent": "triage", "step": 0},
        {"model": "gpt-4o-mini", "where": ["user.id=u1"], "since": "2026-06-02", "until": "2026-06-04"},
        {"model": "gpt-4o-mini", "service": "sidecar", "limit": 3},
    ],
)
def test_whatif_agrees_with_duckdb(stores: tuple[str, str], params: dict[str, Any]) -> None:
    duck, url = stores
    expected, got = whatif(duck, **params), whatif(url, **params)
    assert expected.rows and expected.rows[0]["selected_calls"] > 0
    assert_agree(expected.rows, got.rows)
    assert_agree(expected.unpriceable, got.unpriceable)
    assert (got.target, got.selection) == (expected.target, expected.selection)


def test_cli_whatif_and_reprice_on_clickhouse(stores: tuple[str, str], capsys: Any) -> None:
    duck, url = stores
    outputs = []
    for db in (duck, url):
        assert main(["whatif", "--model", "gpt-4o-mini", "--db", db, "--format", "json"]) == 0
        assert main(["rollup", "per-feature", "--reprice", "--db", db, "--format", "json"]) == 0
        outputs.append(capsys.readouterr())
    assert outputs[0] == outputs[1]
    assert "usd_repriced" in outputs[1].out and "whatif_usd" in outputs[1].out


def test_empty_refused_and_missing(stores: tuple[str, str]) -> None:
    """A window without calls answers as DuckDB does; trace --reprice and a missing table are
    one line each."""
    duck, url = stores
    nothing = {"model": "gpt-4o-mini", "since": "2030-01-01"}
    assert_agree(whatif(duck, **nothing).rows, whatif(url, **nothing).rows)
    (total,) = whatif(duck, **nothing).rows  # counts 0, not null; money unknown
    counts = ("runs", "calls", "selected_calls", "unpriceable_calls", "unpriced_calls")
    assert [total[k] for k in counts] == [0] * 5
    assert total["actual_usd"] is None and total["whatif_usd"] is None
    assert rollup("per_run", url, since="2030-01-01", reprice=default_pricing()) == []
    run = rollup("per_run", url, limit=1)[0]["trace_id"]
    with pytest.raises(RollupError, match="trace --reprice is not available on ClickHouse"):
        rollup("trace", url, trace_id=run, reprice=default_pricing())
    assert rollup("trace", url, trace_id=run)  # without --reprice it answers
    with pytest.raises(RollupError, match=r"no table \w+\.nope"):  # one line, as every rollup there
        whatif(url + "&table=nope", "gpt-4o-mini")


def test_whatif_page_on_clickhouse_is_the_duckdb_answer(stores: tuple[str, str]) -> None:
    """serve --db chdb://...: /whatif's every figure is the DuckDB store's whatif."""
    pytest.importorskip("starlette", reason="starlette is in the [server] extra")
    from report_check import cells_of
    from starlette.applications import Starlette
    from test_report_live import Served, get
    from test_report_whatif import _check

    from otel_costattr.report.whatif_page import COLUMNS, routes

    duck, url = stores
    served = Served(Starlette(routes=routes(url)))
    try:
        page = "/whatif?model=gpt-4o-mini&since=2026-06-01&until=2026-06-05&limit=5"
        status, html, _ = get(served.url + page)
    finally:
        served.stop()
    assert status == 200, html
    since, until = dt.datetime(2026, 6, 1), dt.datetime(2026, 6, 5)
    answer = whatif(duck, "gpt-4o-mini", since=since, until=until, limit=5)
    assert answer.rows[0]["whatif_usd"] != answer.rows[0]["actual_usd"]
    assert _check(cells_of(html), answer) == len(answer.rows) * len(COLUMNS)
