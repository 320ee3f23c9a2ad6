"""Checks of the bundled pricing data (pricing/*.toml) through the public API.

The expected prices are typed in by hand from the vendors' published figures as genai-prices
0.2.3 records them, never read back from the TOML: a refresh that changes one of them has to
change this file too, on purpose. Regenerate the data with `python scripts/refresh_pricing.py`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from pathlib import Path

import pytest

from otel_costattr import Usage, compute_cost, load_pricing

# Every released table version and the digest of its files. A released table never changes
# silently: change a pricing file, bump `version` in pricing/_table.toml, add the new pin.
PINNED_DIGESTS = {
    "2026.11.22": "sha256:e5975d2f81c2334e0b72c50012d6780210c03ca12cae8a02dc6083d7fa6a421c",
    "2026.12.02": "sha256:51c9595da0fab57daf9dc171e6259e96b39d2ffc3902a3708ac527a72ee70fe0",
    # + pricing/_regions.toml (Bedrock GovCloud, Vertex regional endpoints), audio and image
    # rates from genai-prices 0.2.3 (Gemini, Phi-4 multimodal): issue 17
    "2026.12.02.1": "sha256:b1f51a792df26a88d8f96557b381336aa5e9e600be7910567b47844bea8da42a",
    # + coverage of LiteLLM's chat keys (79.7%): audio, TTS and omni models from genai-prices,
    # id spellings, Bedrock and OpenAI fine-tune rates from LiteLLM 1.110.2, Bedrock regional
    # rules; Vertex AI's Grok through xAI: issue 17, round 3
    "2026.12.02.2": "sha256:d014d7b1eafaf493690f327bacf6cf412812d5974a5a342e551fc4b863cdf767",
    # + batch rates dated from the batch APIs' launches (OpenAI, Anthropic, Gemini API): issue 17
    "2026.12.02.3": "sha256:09632adc667ee8ccb5f1cd5ef1689824a3f58a23c68c29318bc80bfded62a291",
    # + Claude Sonnet 4.5's >200k tier on Bedrock (LiteLLM 1.110.2): issue 17
    "2026.12.02.4": "sha256:c70d60625de1bb41887c2e5eb8bbe291056d68c39635af872baf2cb592bd261b",
    # + o3's cached rate before its 2025-06-10 cut; Gemini 1.5 Flash and Pro before their
    # 2024 cuts, and Pro's cached rate (a pricing review, 2026-12-05)
    "2026.12.05": "sha256:fa3d6329f4b130aac852b1a2238169cb50dcfc43ca5f78519dc3e9c85a268d93",
    # + fine-tuned GPT-4o and GPT-4o mini's cached rates since 2024-10-01
    "2026.12.05.2": "sha256:a291076ed6619448fcd1ab585855deaa7e2354c3cfd5ae51e288e41a1fc4fb6e",
    # + the legacy completions models: gpt-3.5-turbo-instruct, davinci-002, babbage-002
    "2026.12.06": "sha256:981447e3064f29d292418ad5c7d521680d490739ed8a0641449dda8db6fc3cd4",
    # + Azure's name for it, gpt-35-turbo-instruct
    "2026.12.06.2": "sha256:70e340b027a232e59fa7925ed785e87d099a13a1035c3e7a6132ead09343435c",
    "2026.12.06.3": "sha256:b0d57b920863854cff1875358c6cb02ceae4faf1449c4c6ceb09126d98b74cf5",
    "2026.12.06.4": "sha256:82fa5bb5a1df1390c960a1e6f58ae72ccbe8f0125e198f059f9ba9e3e9c94c4c",
    "2026.12.06.5": "sha256:edb9f9a76c34ff634114b98c4ef4a493a9aea974b061fb1f5f3363dea4a57a59",
}

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def table():
    return load_pricing(use_env=False)


def test_released_version_is_pinned(table):
    assert table.version in PINNED_DIGESTS, "new table version: add its digest to PINNED_DIGESTS"
    assert table.digest == PINNED_DIGESTS[table.version], (
        "the bundled pricing files changed without a version bump"
    )


# --- resolving the ids spans carry ------------------------------------------------------------

BEDROCK_SONNET_45_REGIONAL = ("aws", "regional.anthropic.claude-sonnet-4-5-20250929-v1:0")
BEDROCK_HAIKU_45_GLOBAL = ("aws", "global.anthropic.claude-haiku-4-5-20251001-v1:0")
BEDROCK_LLAMA_31_70B = ("aws", "meta.llama3-1-70b-instruct-v1:0")

RESOLVE_CASES = [
    # (model id as a span reports it, provider name on the span, (provider, canonical id))
    # dated snapshots and aliases
    ("gpt-4o", None, ("openai", "gpt-4o")),
    ("gpt-4o-2024-08-06", None, ("openai", "gpt-4o")),
    ("gpt-4o-2024-11-20", "openai", ("openai", "gpt-4o")),
    ("gpt-4o-2024-05-13", None, ("openai", "gpt-4o-2024-05-13")),  # its own, higher price
    ("GPT-4o-Mini", None, ("openai", "gpt-4o-mini")),
    ("gpt-4o-mini-2024-07-18", None, ("openai", "gpt-4o-mini")),
    ("gpt-5.2-20251211", None, ("openai", "gpt-5.2")),  # compact date, as LiteLLM reports it
    ("claude-3-5-sonnet-20240620", None, ("anthropic", "claude-3-5-sonnet")),
    ("claude-3-5-sonnet-latest", "anthropic", ("anthropic", "claude-3-5-sonnet")),
    ("claude-3-5-haiku-20241022", None, ("anthropic", "claude-3-5-haiku-latest")),
    ("claude-3-opus-20240229", None, ("anthropic", "claude-3-opus-latest")),
    ("claude-sonnet-4-5-20250929", None, ("anthropic", "claude-sonnet-4-5")),
    ("claude-sonnet-4-6", None, ("anthropic", "claude-sonnet-4-6")),
    ("claude-haiku-4-5", "anthropic", ("anthropic", "claude-haiku-4-5")),
    ("claude-haiku-4-5-20251001", None, ("anthropic", "claude-haiku-4-5")),
    # AWS Bedrock: on-demand ids, cross-region profiles, ARNs, router prefixes
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "aws.bedrock", ("anthropic", "claude-3-5-sonnet")),
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", None, ("anthropic", "claude-3-5-sonnet")),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", BEDROCK_SONNET_45_REGIONAL),
    ("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", BEDROCK_SONNET_45_REGIONAL),
    ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "aws.bedrock", BEDROCK_HAIKU_45_GLOBAL),
    ("anthropic.claude-3-opus-20240229-v1:0", "aws.bedrock",
     ("aws", "regional.anthropic.claude-3-opus-20240229-v1:0")),  # no prompt caching on Bedrock
    ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
     "aws.bedrock", ("anthropic", "claude-3-5-sonnet")),
    ("meta.llama3-1-70b-instruct-v1:0", "aws.bedrock", BEDROCK_LLAMA_31_70B),
    ("meta.llama3-1-70b-instruct-v1:0", None, BEDROCK_LLAMA_31_70B),
    ("us.meta.llama3-1-70b-instruct-v1:0", "bedrock", BEDROCK_LLAMA_31_70B),  # old gen_ai.system
    # Vertex AI and the Gemini API
    ("claude-sonnet-4-5@20250929", "gcp.vertex_ai", ("anthropic", "claude-sonnet-4-5")),
    ("claude-3-5-sonnet-v2@20241022", "vertex_ai", ("anthropic", "claude-3-5-sonnet")),
    ("publishers/google/models/gemini-2.5-flash", "gcp.vertex_ai", ("google", "gemini-2.5-flash")),
    ("models/gemini-1.5-pro-002", None, ("google", "gemini-1.5-pro")),
    ("gemini-1.5-flash-002", "gcp.gemini", ("google", "gemini-1.5-flash")),
    ("gemini-1.5-flash-8b", "gemini", ("google", "gemini-flash-1.5-8b")),  # not 1.5 Flash's rate
    # OpenRouter: vendor/model ids at the vendor's list price
    ("anthropic/claude-3.5-sonnet", "openrouter", ("anthropic", "claude-3-5-sonnet")),
    ("openai/gpt-4o-mini", "openrouter", ("openai", "gpt-4o-mini")),
    ("google/gemini-2.5-pro", "openrouter", ("google", "gemini-2.5-pro")),
    # Azure: OpenAI models at OpenAI's price, Azure's own models
    ("gpt-4o-2024-11-20", "azure.ai.openai", ("openai", "gpt-4o")),
    ("gpt-4o", "az.ai.inference", ("openai", "gpt-4o")),
    ("phi-4", "azure.ai.inference", ("azure", "phi-4")),
    # the other first-party vendors and open-model hosts
    ("mistral-large-latest", "mistral_ai", ("mistral", "mistral-large-latest")),  # moved to Large 3
    ("mistral-large-2411", "mistralai", ("mistral", "mistral-large")),
    ("grok-4", "x_ai", ("x-ai", "grok-4-0709")),
    ("grok-4", "xai", ("x-ai", "grok-4-0709")),
    ("command-r-plus-08-2024", "cohere", ("cohere", "command-r-plus")),
    ("deepseek-v3.2", "deepseek", ("deepseek", "deepseek-v3.2")),
    ("deepseek-chat", "deepseek", ("deepseek", "deepseek-chat")),  # peak / off-peak windows
    ("deepseek-chat", None, ("deepseek", "deepseek-chat")),
    ("deepseek-v4-flash", "deepseek", ("deepseek", "deepseek-v4-flash")),
    ("deepseek-v4-flash", None, ("deepseek", "deepseek-v4-flash")),
    ("deepseek-r1-0528", "deepseek", ("deepseek", "deepseek-reasoner")),
    ("deepseek-r1-distill-llama-70b", None, ("groq", "deepseek-r1-distill-llama-70b")),  # not R1
    ("kimi-k3", "moonshot_ai", ("moonshotai", "kimi-k3")),
    ("sonar-pro", "perplexity", ("perplexity", "sonar-pro")),
    ("llama-3.1-70b-versatile", "groq", ("groq", "llama-3.1-70b-versatile")),
    ("openai/gpt-oss-120b", "groq", ("groq", "openai/gpt-oss-120b")),  # Groq's price, not OpenAI's
    ("meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo", "together",
     ("together", "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo")),
    # fine-tunes at OpenAI's fine-tuned rates (not the base model's)
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "openai", ("openai", "ft:gpt-4o-mini")),
    # unknown: unpriced, never guessed
    ("gpt-99", None, None),
    ("my-finetune", None, None),
    ("", None, None),

    ("gemini-2.5-pro-tts", None, ("google", "gemini-2.5-pro-tts")),  # its own TTS rates, not 2.5 Pro
    ("meta.llama3-1-405b-instruct-v1:0", "aws.bedrock", None),  # never another host's rate
]  # fmt: skip


@pytest.mark.parametrize(
    ("model_id", "provider", "expected"),
    RESOLVE_CASES,
    ids=[f"{m or '<empty>'}@{p}" for m, p, _ in RESOLVE_CASES],
)
def test_resolve(table, model_id, provider, expected):
    entry = table.resolve(model_id, provider=provider)
    if expected is None:
        assert entry is None, f"{model_id!r} should be unknown, got {entry!r}"
    else:
        assert entry is not None, f"{model_id!r} ({provider}) did not resolve"
        assert (entry.provider, entry.id) == expected


# --- list prices of the models users asked for by name ----------------------------------------

# (id, provider, when, (input, output, cache_read, cache_write, cache_write_1h)) in USD per
# million tokens; None: not priced separately. From the vendor pages genai-prices cites:
# openai.com/api/pricing, anthropic.com/pricing, ai.google.dev/gemini-api/docs/pricing,
# aws.amazon.com/bedrock/pricing, console.groq.com, together.ai/pricing, mistral.ai/pricing.
LIST_PRICES = [
    ("gpt-4o", None, NOW, (D("2.5"), D("10"), D("1.25"), None, None)),
    ("gpt-4o-2024-05-13", None, NOW, (D("5"), D("15"), None, None, None)),
    ("gpt-4o-mini", None, NOW, (D("0.15"), D("0.6"), D("0.075"), None, None)),
    ("claude-3-5-sonnet-20241022", None, NOW, (D("3"), D("15"), D("0.3"), D("3.75"), D("6"))),
    ("claude-3-5-haiku-20241022", None, NOW, (D("0.8"), D("4"), D("0.08"), D("1"), D("1.6"))),
    ("claude-3-opus-20240229", None, NOW, (D("15"), D("75"), D("1.5"), D("18.75"), D("30"))),
    ("claude-sonnet-4-6", None, NOW, (D("3"), D("15"), D("0.3"), D("3.75"), D("6"))),
    ("claude-haiku-4-5", None, NOW, (D("1"), D("5"), D("0.1"), D("1.25"), D("2"))),
    ("gemini-1.5-pro", None, NOW, (D("1.25"), D("5"), D("0.3125"), None, None)),
    ("gemini-1.5-flash", None, NOW, (D("0.075"), D("0.3"), D("0.01875"), None, None)),
    # Prices before a cut: a call is priced as it was billed that day.
    ("gemini-1.5-pro", None, dt.datetime(2024, 9, 30, 23, 59, tzinfo=dt.timezone.utc),
     (D("3.5"), D("10.5"), D("0.875"), None, None)),
    ("gemini-1.5-pro-002", None, dt.datetime(2024, 10, 1, tzinfo=dt.timezone.utc),
     (D("1.25"), D("5"), D("0.3125"), None, None)),
    ("gemini-1.5-flash-001", None, dt.datetime(2024, 8, 11, 23, 59, tzinfo=dt.timezone.utc),
     (D("0.35"), D("1.05"), D("0.0875"), None, None)),
    ("gemini-1.5-flash", None, dt.datetime(2024, 8, 12, tzinfo=dt.timezone.utc),
     (D("0.075"), D("0.3"), D("0.01875"), None, None)),
    ("o3-2025-04-16", None, dt.datetime(2025, 6, 9, 23, 59, tzinfo=dt.timezone.utc),
     (D("10"), D("40"), D("2.5"), None, None)),
    ("o3", None, dt.datetime(2025, 6, 10, tzinfo=dt.timezone.utc), (D("2"), D("8"), D("0.5"), None, None)),
    # Fine-tuned GPT-4o and GPT-4o mini: cached input at half of input since prompt caching's
    # launch (openai.com/index/api-prompt-caching, 2024-10-01), none before.
    ("ft:gpt-4o-2024-08-06:acme::abc123", None, NOW, (D("3.75"), D("15"), D("1.875"), None, None)),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None, NOW, (D("0.3"), D("1.2"), D("0.15"), None, None)),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None, dt.datetime(2024, 9, 30, 23, 59, tzinfo=dt.timezone.utc),
     (D("0.3"), D("1.2"), None, None, None)),
    # The completions API's models (genai-prices 0.2.3; OpenAI's legacy models table).
    ("gpt-3.5-turbo-instruct", "openai", NOW, (D("1.5"), D("2"), None, None, None)),
    ("gpt-3.5-turbo-instruct-0914", None, NOW, (D("1.5"), D("2"), None, None, None)),
    ("gpt-35-turbo-instruct", "azure", NOW, (D("1.5"), D("2"), None, None, None)),
    ("davinci-002", None, NOW, (D("2"), D("2"), None, None, None)),
    ("babbage-002", "openai", NOW, (D("0.4"), D("0.4"), None, None, None)),
    ("mistral-large-latest", "mistral_ai", NOW, (D("0.5"), D("1.5"), D("0.05"), None, None)),
    ("mistral-large-2411", "mistral_ai", NOW, (D("2"), D("6"), None, None, None)),
    ("meta.llama3-1-70b-instruct-v1:0", "aws.bedrock", NOW, (D("0.72"), D("0.72"), None, None, None)),
    ("llama-3.1-70b-versatile", "groq", NOW, (D("0.59"), D("0.79"), None, None, None)),
    ("llama-3.1-405b-reasoning", "groq", NOW, (D("0.59"), D("0.79"), None, None, None)),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "together", NOW,
     (D("0.88"), D("0.88"), None, None, None)),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo", "together", NOW,
     (D("3.5"), D("3.5"), None, None, None)),
    # Bedrock's in-region and US/EU profiles of newer Claude models cost 10% more ...
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", NOW,
     (D("3.3"), D("16.5"), D("0.33"), D("4.125"), D("6.6"))),
    # ... the global profile costs what Anthropic charges.
    ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "aws.bedrock", NOW,
     (D("1"), D("5"), D("0.1"), D("1.25"), D("2"))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model_id", "provider", "when", "expected"),
    LIST_PRICES,
    ids=[f"{m}@{p}" for m, p, _, _ in LIST_PRICES],
)
def test_list_price(table, model_id, provider, when, expected):
    entry = table.resolve(model_id, provider=provider)
    assert entry is not None, model_id
    period = entry.price_at(when)
    got = (period.input, period.output, period.cache_read, period.cache_write, period.cache_write_1h)
    assert got == expected
    assert all(v is None or isinstance(v, D) for v in got)
    assert period.reasoning is None  # none of these prices reasoning apart from output


def _rates(r):
    return (r.input, r.output, r.cache_read, r.cache_write, r.cache_write_1h)


def test_long_context_tiers(table):
    """Above the threshold every token of the request pays the tier rate."""
    pro = table.resolve("gemini-1.5-pro").price_at(NOW).standard
    assert [(t.above, _rates(t.rates)) for t in pro.tiers] == [
        (128000, (D("2.5"), D("10"), D("0.625"), None, None))
    ]
    before_cut = table.resolve("gemini-1.5-pro").price_at(dt.datetime(2024, 9, 1, tzinfo=dt.timezone.utc))
    assert [(t.above, _rates(t.rates)) for t in before_cut.standard.tiers] == [
        (128000, (D("7"), D("21"), D("1.75"), None, None))
    ]
    flash = table.resolve("gemini-1.5-flash").price_at(NOW).standard
    assert [(t.above, _rates(t.rates)) for t in flash.tiers] == [
        (128000, (D("0.15"), D("0.6"), D("0.0375"), None, None))
    ]


def test_price_history(table):
    """Claude Sonnet 4.6 had a >200k tier until Anthropic dropped it on 2026-03-13."""
    entry = table.resolve("claude-sonnet-4-6")
    before = entry.price_at(dt.datetime(2026, 3, 12, 23, 59, tzinfo=dt.timezone.utc))
    after = entry.price_at(dt.datetime(2026, 3, 13, 0, 0, tzinfo=dt.timezone.utc))
    assert _rates(before.standard.rates) == _rates(after.standard.rates)
    assert [(t.above, _rates(t.rates)) for t in before.standard.tiers] == [
        (200000, (D("6"), D("22.5"), D("0.6"), D("7.5"), D("12")))
    ]
    assert after.standard.tiers == ()


def test_batch_rates(table):
    """Claude Haiku 4.5's batch rates are half the standard ones, from the launch of Anthropic's
    Message Batches API (2024-10-08; genai-prices dates them from its 2026-10-14 check);
    earlier batch calls are priced at the standard rates (tests/test_pricing_tier_history.py)."""
    entry = table.resolve("claude-haiku-4-5")
    now = entry.price_at(NOW).service_tiers["batch"]
    assert _rates(now.rates) == (D("0.5"), D("2.5"), D("0.05"), D("0.625"), D("1"))
    assert entry.price_at(dt.date(2026, 6, 1)).service_tiers["batch"] == now
    assert "batch" not in entry.price_at(dt.date(2024, 10, 7)).service_tiers


def _per_mtok(table, model_id, when):
    """(input, output, cache_read) USD per million tokens a call at ``when`` pays."""
    usage = Usage(input_tokens=2_000_000, cache_read_tokens=1_000_000, output_tokens=1_000_000)
    cost = compute_cost(model_id, usage, provider="deepseek", start_time=when, table=table)
    assert cost.model == model_id
    return (cost.input, cost.output, cost.cache_read)


def _utc(hour, minute=0, second=0, day=None):
    """A UTC time of day on ``day`` (default: NOW's date, in the current price period)."""
    day = NOW.date() if day is None else day
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=dt.timezone.utc)


# DeepSeek's time-of-day prices, as genai-prices 0.2.3 records them (api-docs.deepseek.com).
# deepseek-chat's peak/off-peak prices ended with V3.1 (2025-09-05): see test_stale_prices_*.
EARLY_2025 = dt.date(2025, 6, 1)
DEEPSEEK_CHAT_PEAK = (D("0.27"), D("1.1"), D("0.07"))  # UTC 00:30-16:30
DEEPSEEK_CHAT_OFF_PEAK = (D("0.135"), D("0.55"), D("0.035"))
DEEPSEEK_V4_FLASH_PEAK = (D("0.3"), D("1.2"), D("0.006"))  # UTC 01:00-04:00 and 06:00-10:00
DEEPSEEK_V4_FLASH_OFF_PEAK = (D("0.15"), D("0.6"), D("0.003"))  # V4.1 Flash, from 2026-09-10

DEEPSEEK_TIME_OF_DAY = [
    ("deepseek-chat", _utc(12, day=EARLY_2025), DEEPSEEK_CHAT_PEAK),
    ("deepseek-chat", _utc(20, day=EARLY_2025), DEEPSEEK_CHAT_OFF_PEAK),
    ("deepseek-chat", _utc(0, 30, day=EARLY_2025), DEEPSEEK_CHAT_PEAK),  # the window opens at 00:30 ...
    ("deepseek-chat", _utc(0, 29, 59, day=EARLY_2025), DEEPSEEK_CHAT_OFF_PEAK),
    ("deepseek-chat", _utc(16, 30, day=EARLY_2025), DEEPSEEK_CHAT_OFF_PEAK),  # ... and closes at 16:30
    ("deepseek-chat", _utc(16, 29, 59, day=EARLY_2025), DEEPSEEK_CHAT_PEAK),
    ("deepseek-v4-flash", _utc(2), DEEPSEEK_V4_FLASH_PEAK),
    ("deepseek-v4-flash", _utc(12), DEEPSEEK_V4_FLASH_OFF_PEAK),
    ("deepseek-v4-flash", _utc(7, 30), DEEPSEEK_V4_FLASH_PEAK),  # the second peak window
    ("deepseek-v4-flash", _utc(4), DEEPSEEK_V4_FLASH_OFF_PEAK),
    ("deepseek-v4-flash", _utc(3, 59, 59), DEEPSEEK_V4_FLASH_PEAK),
    ("deepseek-v4-flash", _utc(10), DEEPSEEK_V4_FLASH_OFF_PEAK),
    # Before 2026-09-10 the off-peak rate was V4 Flash's. Before 2026-08-17 the rate was flat:
    # genai-prices put its peak windows on that period too (it cannot date a window), so a
    # call at 02:00 UTC in August paid the peak rate (a review); our override dates them.
    ("deepseek-v4-flash", _utc(12, day=dt.date(2026, 9, 1)), (D("0.22"), D("0.66"), D("0.007"))),
    ("deepseek-v4-flash", _utc(2, day=dt.date(2026, 9, 1)), DEEPSEEK_V4_FLASH_PEAK),
    ("deepseek-v4-flash", _utc(12, day=dt.date(2026, 8, 1)), (D("0.14"), D("0.28"), D("0.0028"))),
    ("deepseek-v4-flash", _utc(2, day=dt.date(2026, 8, 1)), (D("0.14"), D("0.28"), D("0.0028"))),
    ("deepseek-v4-pro", _utc(2, day=dt.date(2026, 8, 1)), (D("0.435"), D("0.87"), D("0.003625"))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model_id", "when", "expected"),
    DEEPSEEK_TIME_OF_DAY,
    ids=[f"{m}@{w:%Y-%m-%dT%H:%M:%S}" for m, w, _ in DEEPSEEK_TIME_OF_DAY],
)
def test_deepseek_peak_and_off_peak(table, model_id, when, expected):
    assert _per_mtok(table, model_id, when) == expected


def test_gpt_4o_snapshot_keeps_its_own_price(table):
    may = table.resolve("gpt-4o-2024-05-13").price_at(NOW)
    aug = table.resolve("gpt-4o-2024-08-06").price_at(NOW)
    assert (may.input, may.output) == (D("5"), D("15"))
    assert (aug.input, aug.output) == (D("2.5"), D("10"))


# --- coverage and provenance -------------------------------------------------------------------

# The models users asked for by name, as a span would report them.
USER_NAMED = {
    "GPT-4o": ("gpt-4o", None),
    "GPT-4o mini": ("gpt-4o-mini", None),
    "Claude 3.5 Sonnet": ("claude-3-5-sonnet-20241022", None),
    "Claude 3.5 Haiku": ("claude-3-5-haiku-20241022", None),
    "Claude 3 Opus": ("claude-3-opus-20240229", None),
    "Gemini 1.5 Pro": ("gemini-1.5-pro", None),
    "Gemini 1.5 Flash": ("gemini-1.5-flash", None),
    "Llama 3.1 70B (Bedrock)": ("meta.llama3-1-70b-instruct-v1:0", "aws.bedrock"),
    "Llama 3.1 70B (Groq)": ("llama-3.1-70b-versatile", "groq"),
    "Llama 3.1 70B (Together)": ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "together"),
    "Llama 3.1 405B (Groq)": ("llama-3.1-405b-reasoning", "groq"),
    "Llama 3.1 405B (Together)": ("meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo", "together"),
    "Mistral Large": ("mistral-large-latest", "mistral_ai"),
    "claude-sonnet-4-6": ("claude-sonnet-4-6", None),
    "claude-haiku-4-5": ("claude-haiku-4-5", None),
}


def test_coverage(table):
    models = list(table.models())
    assert len(models) >= 100
    providers_with_models = {m.provider for m in models}
    assert len(providers_with_models) >= 10
    assert set(table.providers) >= {
        "openai", "anthropic", "google", "mistral", "deepseek", "x-ai", "cohere", "aws",
        "azure", "groq", "together", "openrouter",
    }  # fmt: skip
    missing = [name for name, (mid, p) in USER_NAMED.items() if table.resolve(mid, p) is None]
    assert not missing


def test_the_readme_gives_the_bundled_version_and_counts(table):
    """Docs that cannot go stale: the Pricing section's version, model and provider counts."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"has a version \(`([^`]+)`\).*?It prices (\d+) models from (\d+) providers", readme, re.S
    )
    assert found, "README: the Pricing section's version and counts moved"
    models = list(table.models())
    counts = (table.version, str(len(models)), str(len({m.provider for m in models})))
    assert found.groups() == counts


def test_every_model_has_source_and_retrieved(table):
    for entry in table.models():
        assert entry.source and entry.source.startswith("https://"), entry.id
        assert isinstance(entry.retrieved, dt.date), entry.id
        assert entry.retrieved <= dt.date(2026, 12, 6), entry.id
        assert entry.periods, entry.id


def test_prices_are_sane(table):
    """No negative rate; history oldest first; a tier never undercuts the rate below it."""
    for entry in table.models():
        since = [p.since for p in entry.periods]
        assert since[0] is None or len(since) == 1, entry.id
        assert since[1:] == sorted(since[1:]), entry.id
        for period in entry.periods:
            for schedule in [period.standard, *period.service_tiers.values()]:
                for value in _rates(schedule.rates):
                    assert value is None or value >= 0, entry.id
                for tier in schedule.tiers:
                    assert tier.rates.input >= schedule.rates.input, entry.id


# OTel `gen_ai.provider.name` values (and older `gen_ai.system` spellings) -> pricing provider.
OTEL_PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "moonshot_ai": "moonshotai",
    "openrouter": "openrouter",
    "ibm.watsonx.ai": None,  # not shipped: such spans search every provider
}


@pytest.mark.parametrize(("name", "expected"), sorted(OTEL_PROVIDER_NAMES.items()))
def test_otel_provider_names(table, name, expected):
    assert table.provider_id(name) == expected


@pytest.mark.parametrize(
    ("model", "provider", "usage", "expected"),
    [
        # Azure AI Foundry's own prices, not the maker's (DeepSeek-R1 was $0.28 / $0.42)
        ("DeepSeek-R1", "azure.ai.inference", Usage(1_000_000, 1_000_000), D("6.75")),
        ("grok-3-mini", "azure.ai.inference", Usage(1_000_000, 1_000_000), D("1.52")),
        ("kimi-k2-thinking", "azure", Usage(1_000_000, 1_000_000), D("3.1")),
        # a DeepSeek model Azure does not list: unknown there, never the maker's price
        ("deepseek-chat", "azure", Usage(1_000_000, 1_000_000), None),
        ("gpt-4o", "azure", Usage(1_000_000, 1_000_000), D("12.5")),  # Azure OpenAI: OpenAI's
        # Gemini 3.8 Flash's -cyber variant is its own model, a -lite unknown
        ("gemini-3.8-flash-cyber", None, Usage(1_000_000, 1_000_000), D("9")),
        ("gemini-3.8-flash", None, Usage(1_000_000, 1_000_000), D("4.5")),
        ("gemini-3.8-flash-lite", None, Usage(1_000_000, 1_000_000), None),
        # Claude Opus 4.1 on Vertex: one-hour cache writes at twice the input rate
        ("claude-opus-4-1@20250805", "gcp.vertex_ai", Usage(0, 0, 0, 1_000_000, 1_000_000), D("30")),
    ],
)
def test_review_price_corrections(table, model, provider, usage, expected):
    cost = compute_cost(model, usage, provider=provider, table=table)
    assert (cost.total if cost.status == "priced" else None) == expected, cost


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [
        ("gemini-flash-latest", None, D("0.45")),  # kept by the rule that left -cyber out
        ("gemini-flash-latest", "google", D("0.45")),
        # an OpenAI-compatible client's vendor/model id names no host beside its provider:
        # Groq answers with qwen/qwen3-32b too (never OpenRouter's price for it)
        ("qwen/qwen3-32b", "openai", None),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic", D("1.98")),  # Bedrock's 10%
        ("claude-sonnet-4-5@20250929", "anthropic", D("1.8")),
    ],
)
def test_host_forms_beside_a_provider(table, model, provider, expected):
    cost = compute_cost(model, Usage(100_000, 100_000), provider=provider, table=table)
    assert (cost.total if cost.status == "priced" else None) == expected, cost
