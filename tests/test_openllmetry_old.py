"""OpenLLMetry up to 0.53 wrote Anthropic's raw cache names (gen_ai.usage.cache_read_input_tokens,
cache_creation_input_tokens) beside an input count that includes the cache: its Anthropic
instrumentation sums them, OpenAI's prompt_tokens holds them. Spans with the raw names alone
are read as exclusive (hand-written code copying the raw usage); beside OpenLLMetry's mark
(llm.request.type, on every model call it traces) the input is inferred instead. Read as
exclusive, the cache was billed twice (a review: +53%, +63%). Real TracerProvider, both the
processor and the DuckDB store alone, and the ClickHouse prelude in chDB."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from test_pricing_modality import _both_paths

from otel_costattr import load_pricing
from otel_costattr.semconv import read_model_call

SONNET = {  # opentelemetry-instrumentation-anthropic 0.53.4: 50 + 1,000 read + 150 written
    "llm.request.type": "chat",
    "gen_ai.system": "Anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 1_200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read_input_tokens": 1_000,
    "gen_ai.usage.cache_creation_input_tokens": 150,
    "llm.usage.total_tokens": 1_500,
}
SONNET_USD = (50 * 3 + 1_000 * D("0.3") + 150 * D("3.75") + 300 * 15) / D(10**6)
MINI = {  # opentelemetry-instrumentation-openai 0.53.4: prompt_tokens 1,200 with 1,000 cached
    "llm.request.type": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.prompt_tokens": 1_200,
    "gen_ai.usage.completion_tokens": 300,
    "gen_ai.usage.cache_read_input_tokens": 1_000,
}
MINI_USD = (200 * D("0.15") + 1_000 * D("0.075") + 300 * D("0.6")) / D(10**6)


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


@pytest.mark.parametrize(
    ("attrs", "expected"), [(SONNET, SONNET_USD), (MINI, MINI_USD)], ids=["anthropic", "openai"]
)
def test_old_openllmetry_spans_bill_the_cache_once(bundled, tmp_path, attrs, expected):
    stamped, stored = _both_paths(bundled, tmp_path, attrs)
    assert stamped == [pytest.approx(float(expected), rel=1e-12)] * 3
    assert stored == [expected] * 3


def test_hand_written_raw_usage_stays_exclusive(bundled, tmp_path):
    """The tutorial pattern: Anthropic's raw usage copied as it comes, input the uncached rest."""
    raw = {k: v for k, v in SONNET.items() if k not in ("llm.request.type", "llm.usage.total_tokens")}
    raw["gen_ai.usage.input_tokens"] = 50
    assert read_model_call(raw).usage.input_includes_cache is False
    assert read_model_call(SONNET).usage.input_includes_cache is None
    stamped, stored = _both_paths(bundled, tmp_path, raw)
    assert stamped == [pytest.approx(float(SONNET_USD), rel=1e-12)] * 3
    assert stored == [SONNET_USD] * 3


@pytest.mark.chdb
def test_clickhouse_prices_them_alike(tmp_path, chdb_dir):
    """The same spans from a service without the processor, laid out as the Collector writes
    them: ClickHouse's prelude bills the cache once too. In the session's one chDB folder
    (chDB runs one engine a process), a database of its own."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_costattr import DuckDBSpanExporter, rollup
    from otel_costattr.clickhouse import parse_target
    from otel_costattr.clickhouse.client import connect
    from otel_costattr.clickhouse.collector import create_table_sql, insert_records
    from otel_costattr.sdk.seam_records import records_from_sdk

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.anthropic")
    for attrs in (SONNET, MINI):
        tracer.start_span("chat", attributes=attrs).end()
    # the mark empty is no mark, on both stores (DuckDB's read and ClickHouse's text alike)
    empty = {**SONNET, "llm.request.type": "", "gen_ai.request.model": "claude-haiku-4-5"}
    empty["gen_ai.usage.input_tokens"] = 50  # exclusive: 50 uncached
    tracer.start_span("chat", attributes=empty).end()
    # cached audio and pydantic-ai 1.x's details: numbers as the Collector's text, priced alike
    audio = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "gemini-2.5-flash",
        "gen_ai.usage.input_tokens": 100_000,
        "gen_ai.usage.output_tokens": 1_000,
        "gen_ai.usage.details.cache_read_tokens": 80_000,
        "gen_ai.usage.details.input_audio_tokens": 90_000,
        "gen_ai.usage.details.cache_audio_read_tokens": 80_000,
    }
    tracer.start_span("chat", attributes=audio).end()
    duck = tmp_path / "d.duckdb"
    store = DuckDBSpanExporter(duck)
    store.export(memory.get_finished_spans())
    store.shutdown()
    url = f"chdb://{chdb_dir}?database=openllmetry_old"
    client = connect(parse_target(url), create=True)
    client.command(create_table_sql())
    insert_records(client, records_from_sdk(memory.get_finished_spans()))
    rows = rollup("per_model", url, days=3650)
    haiku = (50 * 1 + 1_000 * D("0.1") + 150 * D("1.25") + 300 * 5) / D(10**6)
    gemini = (D(10_000) * D("0.3") + 10_000 * 1 + 80_000 * D("0.03") + 1_000 * D("2.5")) / 10**6
    assert sorted((r["model"], r["usd"]) for r in rows) == [
        ("claude-haiku-4-5", haiku),
        ("claude-sonnet-4-5", SONNET_USD),
        ("gemini-2.5-flash", gemini),
        ("gpt-4o-mini", MINI_USD),
    ]
    in_duckdb = rollup("per_model", duck, days=3650)
    assert sorted((r["model"], r["usd"]) for r in in_duckdb) == sorted((r["model"], r["usd"]) for r in rows)
