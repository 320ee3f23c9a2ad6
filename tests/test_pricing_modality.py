"""Per-modality tokens priced at their own rates (issue 17).

opentelemetry-util-genai 1.3 reports the audio and image parts of a call's input and output
(``gen_ai.usage.{audio,image}.{input,output}_tokens``); they are parts of the input and output
counts, billed at the model's audio and image rates where the table has them, through the one
billing rule (`cost.billing.BUCKETS`). Real TracerProvider.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, Usage, compute_cost, load_pricing
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
