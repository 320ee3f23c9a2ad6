"""Per-modality tokens priced at their own rates (issue 17).

opentelemetry-util-genai 1.3 reports the audio and image parts of a call's input and output
(``gen_ai.usage.{audio,image}.{input,output}_tokens``); they are parts of the input and output
counts, billed at the model's audio and image rates where the table has them, through the one
billing rule (`cost.billing.BUCKETS`). Real TracerProvider.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import duckdb
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, Usage, compute_cost, load_pricing
from otel_costattr.cost.compiled import price_attributes
from otel_costattr.pricing.model import PricingError
from otel_costattr.semconv import COST, read_model_call

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


def test_audio_input_pays_the_audio_rate(bundled):
    # Gemini 2.5 Flash: text input 0.3, audio input 1, output 2.5 per million.
    usage = Usage(1_000_000, 100_000, audio_input_tokens=400_000)
    cost = compute_cost("gemini-2.5-flash", usage, start_time=START, table=bundled)
    assert cost.total == D("0.18") + D("0.4") + D("0.25")
    assert cost.input == D("0.58")  # the audio part is input money
    assert cost.tokens.audio_input == 400_000 and cost.tokens.uncached_input == 600_000
    assert cost.tokens.total_input == 1_000_000
    # Batch has its own audio rate (0.5).
    batch = compute_cost("gemini-2.5-flash", usage, start_time=START, service_tier="batch", table=bundled)
    assert batch.total == D("0.09") + D("0.2") + D("0.125")


def test_a_model_without_a_modality_rate_bills_it_as_text(bundled):
    plain = compute_cost("gpt-4o", Usage(1000, 100), table=bundled)
    parts = compute_cost(
        "gpt-4o", Usage(1000, 100, 0, None, None, None, None, None, 300, 50, 200, 10), table=bundled
    )
    assert parts.total == plain.total


CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "gcp.gemini",
    "gen_ai.request.model": "gemini-2.5-flash",
    "gen_ai.usage.input_tokens": 1_000_000,
    "gen_ai.usage.output_tokens": 100_000,
    "gen_ai.usage.audio.input_tokens": 400_000,
    "gen_ai.usage.text.input_tokens": 600_000,  # the remainder: read by nobody
}


def test_the_processor_and_both_paths_agree(bundled):
    expected = compute_cost("gemini-2.5-flash", read_model_call(CALL).usage, start_time=START, table=bundled)
    found = price_attributes(dict(CALL), START, bundled.cached_quote, bundled.quote)
    assert type(found) is tuple and found[1] == float(expected.total)
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(CostSpanProcessor(bundled))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("chat", attributes=CALL, start_time=START).end()
    assert memory.get_finished_spans()[0].attributes[COST] == pytest.approx(0.83, rel=1e-12)


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        ({"audio_input_tokens": -1}, "audio_input_tokens is negative: -1"),
        ({"image_output_tokens": "5"}, "image_output_tokens is not an integer: '5'"),
    ],
)
def test_bad_modality_counts_are_invalid_usage(counts, problem):
    usage = Usage(10, 10, **counts)
    assert usage.problem() == problem
    assert compute_cost("gpt-4o", usage).detail == problem


def test_a_price_file_names_a_tier_lacking_the_modality_rate(tmp_path):
    path = tmp_path / "acme.toml"
    path.write_text(
        'provider = "acme"\n[[model]]\nid = "m"\nmatch = [{ equals = "m" }]\n[[model.price]]\n'
        "input = 1\noutput = 2\naudio_input = 5\ntiers = [{ above = 10, input = 2, output = 3 }]\n"
    )
    with pytest.raises(PricingError, match=r"acme.toml.*'m'.*audio_input"):
        load_pricing([path], use_env=False, bundled=False)


def _both_paths(bundled, tmp_path, attrs: dict, spans: int = 3) -> tuple[list, list]:
    """The costs the processor stamps on ``spans`` spans of ``attrs`` (the first takes the
    general hook, the next ones the shape's stamp function), and the costs the DuckDB store
    gives the same spans exported without the processor."""
    memory = InMemorySpanExporter()
    stamped = TracerProvider()
    stamped.add_span_processor(CostSpanProcessor(bundled))
    stamped.add_span_processor(SimpleSpanProcessor(memory))
    tmp_path.mkdir(exist_ok=True)
    db = tmp_path / "alone.duckdb"
    alone = TracerProvider()
    alone.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(db, pricing=bundled)))
    for provider in (stamped, alone):
        for _ in range(spans):
            provider.get_tracer("t").start_span("chat", attributes=attrs, start_time=START).end()
    stamped.shutdown()
    alone.shutdown()
    with duckdb.connect(str(db), read_only=True) as con:
        stored = [row[0] for row in con.execute("SELECT cost_usd FROM spans").fetchall()]
    return [s.attributes[COST] for s in memory.get_finished_spans()], stored


# A Gemini call with audio, most of it cached, as the google-genai instrumentation reports
# it with opentelemetry-util-genai 1.3: the audio input and the cache read both include the
# cached audio (gen_ai.usage.audio.cache_read.input_tokens).
CACHED_AUDIO = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "gcp.gemini",
    "gen_ai.request.model": "gemini-2.5-flash",
    "gen_ai.usage.input_tokens": 100_000,
    "gen_ai.usage.output_tokens": 1_000,
    "gen_ai.usage.cache_read.input_tokens": 80_000,
    "gen_ai.usage.audio.input_tokens": 90_000,
    "gen_ai.usage.audio.cache_read.input_tokens": 80_000,
}
# 10k text at 0.3, 10k uncached audio at 1, 80k cached at the cache read rate 0.03 (the table
# has no cached-audio rate), 1k output at 2.5, per million. Billed twice it was $0.0949.
CACHED_AUDIO_USD = (D(10_000) * D("0.3") + 10_000 * 1 + 80_000 * D("0.03") + 1_000 * D("2.5")) / 10**6


def test_cached_audio_bills_once_on_every_path(bundled, tmp_path):
    assert D("0.0179") == CACHED_AUDIO_USD
    stamped, stored = _both_paths(bundled, tmp_path, CACHED_AUDIO)
    assert stamped == [pytest.approx(float(CACHED_AUDIO_USD), rel=1e-12)] * 3
    assert stored == [CACHED_AUDIO_USD] * 3


def test_cached_audio_of_a_long_prompt_stays_under_its_tier(bundled, tmp_path):
    """Gemini 2.5 Pro, 150k input (120k audio, 100k of it cached): under the 200k tier. The
    audio counted twice made 220k and priced it at the long-context rates ($0.34)."""
    attrs = {**CACHED_AUDIO, "gen_ai.request.model": "gemini-2.5-pro", "gen_ai.usage.input_tokens": 150_000}
    attrs["gen_ai.usage.cache_read.input_tokens"] = 100_000
    attrs["gen_ai.usage.audio.input_tokens"] = 120_000
    attrs["gen_ai.usage.audio.cache_read.input_tokens"] = 100_000
    expected = (50_000 * D("1.25") + 100_000 * D("0.125") + 1_000 * 10) / 10**6
    stamped, stored = _both_paths(bundled, tmp_path, attrs)
    assert stamped == [pytest.approx(float(expected), rel=1e-12)] * 3
    assert stored == [expected] * 3


def test_pydantic_ai_1x_details_are_read(bundled, tmp_path):
    """pydantic-ai 1.x reports the cache and audio parts under gen_ai.usage.details.*, its
    input including the cache: Claude Sonnet 4.5, 1,200 in (1,000 read, 150 written), 300
    out; and a Gemini call with cached audio. Unread, every cached token paid the input rate."""
    claude = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 1_200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.details.cache_read_tokens": 1_000,
        "gen_ai.usage.details.cache_write_tokens": 150,
    }
    expected = (50 * 3 + 1_000 * D("0.3") + 150 * D("3.75") + 300 * 15) / D(10**6)
    stamped, stored = _both_paths(bundled, tmp_path, claude)
    assert stamped == [pytest.approx(float(expected), rel=1e-12)] * 3
    assert stored == [expected] * 3
    gemini = {k: v for k, v in CACHED_AUDIO.items() if ".audio." not in k and "cache_read" not in k}
    gemini["gen_ai.usage.details.cache_read_tokens"] = 80_000
    gemini["gen_ai.usage.details.input_audio_tokens"] = 90_000
    gemini["gen_ai.usage.details.cache_audio_read_tokens"] = 80_000
    stamped, stored = _both_paths(bundled, tmp_path / "g", gemini)
    assert stamped == [pytest.approx(float(CACHED_AUDIO_USD), rel=1e-12)] * 3
    assert stored == [CACHED_AUDIO_USD] * 3


def test_cached_audio_beyond_the_audio_input_is_read_as_it_came(bundled):
    """A producer that reports the audio input without its cached part: a cached part
    larger than the audio input is not taken off it (nor made negative)."""
    attrs = {**CACHED_AUDIO, "gen_ai.usage.audio.input_tokens": 10_000}
    assert read_model_call(attrs).usage.audio_input_tokens == 10_000
    assert read_model_call(CACHED_AUDIO).usage.audio_input_tokens == 10_000  # 90k less 80k cached


def test_openinference_bedrock_prices_at_the_host(bundled, tmp_path):
    """openinference-instrumentation-bedrock sets llm.provider "aws" (the host) and
    llm.system "anthropic" (the maker), which ranks first: Bedrock's 10% regional premium on
    a us. profile was missed ($0.0045 for $0.00495: a review). A Bedrock id names its host
    even beside a provider it resells: Anthropic's API never answers with one."""
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.provider": "aws",
        "llm.system": "anthropic",
        "llm.model_name": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "llm.token_count.prompt": 1_000,
        "llm.token_count.completion": 100,
    }
    expected = (1_000 * D("3.3") + 100 * D("16.5")) / 10**6
    stamped, stored = _both_paths(bundled, tmp_path, attrs)
    assert stamped == [pytest.approx(float(expected), rel=1e-12)] * 3
    assert stored == [expected] * 3


def test_openinference_client_named_provider_does_not_hide_the_maker(bundled, tmp_path):
    """smolagents and haystack write llm.provider "openai" for any OpenAI-compatible client,
    Gemini's endpoint included, and llm.system from the model's name: ranked before it,
    llm.provider made such calls unknown_model (a review of the change that ranked it so)."""
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "vertexai",
        "llm.model_name": "gemini-2.0-flash",
        "llm.token_count.prompt": 1_000,
        "llm.token_count.completion": 100,
    }
    assert read_model_call(attrs).provider == "vertexai"
    expected = (1_000 * D("0.1") + 100 * D("0.4")) / 10**6
    stamped, stored = _both_paths(bundled, tmp_path, attrs)
    assert stamped == [pytest.approx(float(expected), rel=1e-12)] * 3
    assert stored == [expected] * 3


@pytest.mark.parametrize("cached", ["80000", True, -5])
def test_a_cached_audio_part_that_is_no_count_is_invalid_usage(bundled, cached):
    """Ignored, it left the audio billed twice, the call said priced ($0.0949 for $0.0179)."""
    attrs = {**CACHED_AUDIO, "gen_ai.usage.audio.cache_read.input_tokens": cached}
    usage = read_model_call(attrs).usage
    assert usage.problem() is not None
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(CostSpanProcessor(bundled))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("chat", attributes=attrs, start_time=START).end()
    (span,) = memory.get_finished_spans()
    assert span.attributes["costattr.status"] == "invalid_usage" and COST not in span.attributes
