"""The ids issue 17's third round taught the table (coverage of LiteLLM's chat keys).

Each row is an id as a span (or LiteLLM's file) reports it, the provider name on the span and
the entry it must resolve to, or None where it must stay unknown; then the rates of the entries
whose prices came from LiteLLM's file (litellm 1.110.2) rather than genai-prices, and the
regional rules of `pricing/_regions.toml` that came with them. Expected values are typed in by
hand from those sources, never read back from the table.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from otel_costattr import load_pricing

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9

RESOLVES = [
    # xAI's and LiteLLM's spellings of Grok 4.20; the multi-agent model keeps its own entry.
    ("grok-4.20-reasoning", "x_ai", ("x-ai", "grok-4.20")),
    ("grok-4.20-non-reasoning-latest", None, ("x-ai", "grok-4.20")),
    ("grok-4.20-beta-0309-reasoning", "xai", ("x-ai", "grok-4.20")),
    ("grok-4.20-experimental-beta-0304-non-reasoning", "xai", ("x-ai", "grok-4.20")),
    ("grok-4.20-reasoning-gv2", "xai", ("x-ai", "grok-4.20")),
    ("grok-4.20-multi-agent-0309", "xai", ("x-ai", "grok-4.20-multi-agent-0309")),
    # Vertex AI's partner models: Grok at xAI's list price (google falls back to x-ai).
    ("xai/grok-4.7", "gcp.vertex_ai", ("x-ai", "grok-4.7")),
    ("xai/grok-4.1-fast-reasoning", "gcp.vertex_ai", ("x-ai", "grok-4-1-fast-reasoning")),
    # Vertex's Mistral models are priced otherwise than Mistral's API: not through a fallback.
    ("mistral-medium-3", "gcp.vertex_ai", None),
    ("codestral-2501", "gcp.vertex_ai", None),
    # Mistral: LiteLLM's spellings of Ministral 3 and Large 3.
    ("ministral-3-14b-2512", "mistral_ai", ("mistral", "ministral-14b-2512")),
    ("ministral-14b-latest", "mistral_ai", ("mistral", "ministral-14b-2512")),
    ("ministral-3-3b-2512", "mistral_ai", ("mistral", "ministral-3b-2512")),
    ("mistral-large-3", "mistral_ai", ("mistral", "mistral-large-2512")),
    ("voxtral-small-2507", "mistral_ai", ("mistral", "voxtral-small-24b-2507")),
    # OpenAI audio and fine-tunes; the first audio preview snapshot had other audio rates.
    ("gpt-4o-audio-preview-2024-12-17", None, ("openai", "gpt-4o-audio-preview")),
    ("gpt-4o-audio-preview", "openai", ("openai", "gpt-4o-audio-preview")),
    ("gpt-4o-audio-preview-2024-10-01", "openai", None),
    ("gpt-audio-mini-2025-12-15", None, ("openai", "gpt-audio-mini")),
    ("computer-use-preview-2025-03-11", "openai", ("openai", "computer-use")),
    ("ft:gpt-4.1-2025-04-14:acme::abc123", None, ("openai", "ft:gpt-4.1")),
    ("ft:gpt-4.1-mini-2025-04-14:acme::abc123", None, ("openai", "ft:gpt-4.1-mini")),
    ("ft:o4-mini-2025-04-16:acme::abc123", None, ("openai", "ft:o4-mini")),
    # Azure resells OpenAI's audio models at OpenAI's price (azure falls back to openai).
    ("gpt-audio", "azure.ai.openai", ("openai", "gpt-audio")),
    # Bedrock's third-party models, by id form alone (no provider on the span).
    ("minimax.minimax-m2.1", None, ("aws", "minimax.minimax-m2.1")),
    ("bedrock/minimax.minimax-m2.5", None, ("aws", "minimax.minimax-m2.5")),
    ("moonshotai.kimi-k2-thinking", None, ("aws", "moonshotai.kimi-k2-thinking")),
    ("us.deepseek.v3.2", None, ("aws", "deepseek.v3.2")),
    ("eu.deepseek.v3.2", None, ("aws", "eu.deepseek.v3.2")),  # the EU profile's own rate
    ("us-gov.nvidia.nemotron-nano-12b-v2", None, ("aws", "nvidia.nemotron-nano-12b-v2")),
    ("anthropic.claude-v2:1", None, ("aws", "anthropic.claude-v2:1")),
    ("mistral.voxtral-small-24b-2507", None, ("aws", "mistral.voxtral-small-24b-2507")),
    # Google: TTS and omni models.
    ("gemini-2.5-pro-preview-tts", "gcp.gemini", ("google", "gemini-2.5-pro-tts")),
    ("gemini-omni-flash-preview", "gcp.gemini", ("google", "gemini-omni-flash-preview")),
]


@pytest.fixture(scope="module")
def table():
    return load_pricing(use_env=False)


@pytest.mark.parametrize(
    ("model", "provider", "expected"), RESOLVES, ids=[f"{r[0]}@{r[1]}" for r in RESOLVES]
)
def test_resolves(table, model, provider, expected):
    entry = table.resolve(model, provider)
    assert (entry and (entry.provider, entry.id)) == expected


# (model, provider, region) -> rates in force, USD per million: LiteLLM 1.110.2's figures.
RATES = [
    ("minimax.minimax-m2.1", "aws.bedrock", None, {"input": "0.3", "output": "1.2"}),
    ("minimax.minimax-m2.1", "aws.bedrock", "eu-central-1", {"input": "0.36", "output": "1.44"}),
    ("minimax.minimax-m2.5", "aws.bedrock", "sa-east-1", {"input": "0.36", "output": "1.44"}),
    ("minimax.minimax-m2.5", "aws.bedrock", "us-west-2", {"input": "0.3", "output": "1.2"}),
    ("qwen.qwen3-coder-next", "aws.bedrock", "ap-northeast-1", {"input": "0.6", "output": "1.44"}),
    ("moonshotai.kimi-k2.5", "aws.bedrock", "ap-south-1", {"input": "0.72", "output": "3.6"}),
    ("moonshotai.kimi-k2.5", "aws.bedrock", "us-east-2", {"input": "0.6", "output": "3"}),
    ("us-gov.nvidia.nemotron-nano-12b-v2", None, "us-gov", {"input": "0.24", "output": "0.72"}),
    ("nvidia.nemotron-nano-12b-v2", "aws.bedrock", None, {"input": "0.2", "output": "0.6"}),
    ("eu.deepseek.v3.2", None, None, {"input": "0.74", "output": "2.22"}),
    ("deepseek.v3.2", "aws.bedrock", None, {"input": "0.62", "output": "1.85"}),
    ("ft:gpt-4.1-2025-04-14:acme::x", None, None, {"input": "3", "output": "12", "cache_read": "0.75"}),
    ("ft:gpt-4.1-nano-2025-04-14:acme::x", None, None,
     {"input": "0.2", "output": "0.8", "cache_read": "0.05"}),
    ("gpt-4o-audio-preview-2025-06-03", "openai", None,
     {"input": "2.5", "output": "10", "audio_input": "40", "audio_output": "80"}),
    ("gpt-4o-mini-audio-preview", "openai", None,
     {"input": "0.15", "output": "0.6", "audio_input": "10", "audio_output": "20"}),
    ("grok-4.20-beta-reasoning", "xai", None, {"input": "1.25", "output": "2.5", "cache_read": "0.2"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "provider", "region", "rates"), RATES, ids=[f"{r[0]}@{r[2]}" for r in RATES]
)
def test_rates(table, model, provider, region, rates):
    quote = table.quote(model, provider, None, START, region)
    assert quote is not None
    assert {k: getattr(quote.rates, k) for k in rates} == {k: D(v) for k, v in rates.items()}


@pytest.mark.parametrize(
    ("model", "tier"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", ("6.6", "24.75", "0.66")),  # in-region, +10%
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", ("6", "22.5", "0.6")),
    ],
)
def test_bedrock_sonnet_45_long_context_tier(table, model, tier):
    """LiteLLM 1.110.2's >200k rates for Sonnet 4.5 on Bedrock (genai-prices has none)."""
    quote = table.quote(model, "aws.bedrock", None, START)
    assert [(t.above, t.rates.input, t.rates.output, t.rates.cache_read) for t in quote.tiers] == [
        (200000, *map(D, tier))
    ]
