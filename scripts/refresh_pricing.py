#!/usr/bin/env python3
"""Regenerate the bundled pricing files (pricing/*.toml) from pydantic's genai-prices.

A development tool: genai-prices is imported here and never by the package.

    pip install genai-prices==0.2.3                 # into a dev virtualenv, not the package's deps
    python scripts/refresh_pricing.py               # write pricing/*.toml, print what changed
    python scripts/refresh_pricing.py --check       # write nothing; exit 1 if the files would change
    python scripts/refresh_pricing.py --version 2026.12.01 --retrieved 2026-12-01   # new figures

Steps:
1. take the providers and models chosen in PROVIDERS below from genai-prices' bundled data;
2. convert each model to our format (pricing/README.md): match clauses become our four rule
   kinds, date-constrained prices become [[model.price]] periods (evaluated with genai-prices'
   own `get_prices`, so the history is exactly theirs), time-of-day prices become each period's
   `windows` (the ones that win over that period's price under genai-prices' "last active price
   wins", checked against `get_prices` at every window edge), batch/flex/priority variants
   become service tiers. What the format cannot say is skipped and reported, never approximated;
3. apply scripts/pricing_overrides.toml (our own additions and corrections);
4. drop a host's model when the host's `fallback` provider prices every id that model matches
   identically (checked by resolving those ids the way the loader does);
5. check the result, write the files and print the skips and the changes against the disk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import tomllib

from otel_costattr.pricing import candidate_ids

try:
    import re._parser as sre_parse  # Python 3.11+
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

try:
    import genai_prices
    from genai_prices import types as gp
    from genai_prices.data import providers as GP_PROVIDERS
except ImportError:  # pragma: no cover - a dev-time tool
    sys.exit("refresh_pricing.py needs genai-prices: pip install genai-prices==0.2.3 (dev only)")

REPO = Path(__file__).resolve().parents[1]
PRICING_DIR = REPO / "pricing"
OVERRIDES_FILE = REPO / "scripts" / "pricing_overrides.toml"
TABLE_FILE = "_table.toml"

GP_VERSION = getattr(genai_prices, "__version__", None) or "0.2.3"
VIA = f"genai-prices {GP_VERSION}"
# The wheel records no release date, so `retrieved` is the day the figures were copied from it
# (--retrieved; by default the date already in the files, so a rerun changes nothing).
RETRIEVED_NOTE = (
    f"retrieved: the day these figures were copied from {VIA} (the refresh date: the wheel does "
    "not record its release date)"
)

# ---------------------------------------------------------------------------------------------
# What we ship. `gp` is the genai-prices provider id; `models` are genai-prices model ids.
# Hosts list the first-party provider they resell at list price in `fallback`; their copies of
# those models are dropped automatically where the fallback gives the same price (step 4).


@dataclass
class ProviderConfig:
    id: str
    name: str
    otel_names: list[str]
    gp: str | None = None
    fallback: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    source: str | None = None  # default: genai-prices' first pricing URL
    comment: str = ""


CLAUDE_ON_BEDROCK = [
    "regional.anthropic.claude-3-haiku-20240307-v1:0",
    "regional.anthropic.claude-3-sonnet-20240229-v1:0",
    "regional.anthropic.claude-3-opus-20240229-v1:0",
    "regional.anthropic.claude-3-5-haiku-20241022-v1:0",
    "regional.anthropic.claude-3-5-sonnet-20240620-v1:0",
    "regional.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "regional.anthropic.claude-3-7-sonnet-20250219-v1:0",
    "regional.anthropic.claude-sonnet-4-20250514-v1:0",
    "regional.anthropic.claude-opus-4-20250514-v1:0",
    "regional.anthropic.claude-opus-4-1-20250805-v1:0",
    "regional.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "regional.anthropic.claude-haiku-4-5-20251001-v1:0",
    "regional.anthropic.claude-opus-4-5-v1:0",
    "regional.anthropic.claude-opus-4-6-v1:0",
    "regional.anthropic.claude-sonnet-4-6-v1:0",
    "regional.anthropic.claude-opus-4-7-v1:0",
    "regional.anthropic.claude-opus-4-8-v1:0",
    "regional.anthropic.claude-sonnet-5-v1:0",
    "regional.anthropic.claude-opus-5",
    "regional.anthropic.claude-sonnet-5-5",
    "regional.anthropic.claude-opus-5-5",
    "regional.anthropic.claude-haiku-5-5",
    "regional.anthropic.claude-fable-5-v1:0",
    "regional.anthropic.claude-fable-5-1-v1:0",
    "regional.anthropic.claude-fable-5-2",
    "regional.anthropic.claude-mythos-5-2",
    "global.anthropic.claude-sonnet-4-20250514-v1:0",
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    "global.anthropic.claude-opus-4-5-v1:0",
    "global.anthropic.claude-opus-4-6-v1:0",
    "global.anthropic.claude-sonnet-4-6-v1:0",
    "global.anthropic.claude-opus-4-7-v1:0",
    "global.anthropic.claude-opus-4-8-v1:0",
    "global.anthropic.claude-sonnet-5-v1:0",
    "global.anthropic.claude-opus-5",
    "global.anthropic.claude-sonnet-5-5",
    "global.anthropic.claude-opus-5-5",
    "global.anthropic.claude-haiku-5-5",
    "global.anthropic.claude-fable-5-v1:0",
    "global.anthropic.claude-fable-5-1-v1:0",
    "global.anthropic.claude-fable-5-2",
    "global.anthropic.claude-mythos-5-2",
]

# fmt: off
PROVIDERS: list[ProviderConfig] = [
    ProviderConfig(
        "openai", "OpenAI", ["openai"], gp="openai",
        models=[
            "gpt-3.5-turbo", "gpt-4", "gpt-4-turbo", "gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-mini",
            "chatgpt-4o-latest", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4.5-preview",
            "o1", "o1-mini", "o1-pro", "o3", "o3-mini", "o3-pro", "o4-mini", "codex-mini",
            "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-pro", "gpt-5.1", "gpt-5.1-codex-mini",
            "gpt-5.2", "gpt-5.2-pro", "gpt-5.3", "gpt-5.3-codex", "gpt-5.4", "gpt-5.4-mini",
            "gpt-5.4-nano", "gpt-5.4-pro", "gpt-5.5", "gpt-5.5-pro", "gpt-5.6-luna",
            "gpt-5.6-sol", "gpt-5.6-terra", "gpt-6-astra", "gpt-6-luna", "gpt-6-sol",
            "gpt-6.1-sol", "gpt-6.1-terra", "gpt-chat-latest",
            "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
        ],
    ),
    ProviderConfig(
        "anthropic", "Anthropic", ["anthropic"], gp="anthropic",
        models=[
            "claude-3-haiku", "claude-3-sonnet", "claude-3-opus-latest", "claude-3-5-haiku-latest",
            "claude-3-5-sonnet", "claude-3-7-sonnet-latest", "claude-sonnet-4-0", "claude-opus-4-0",
            "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5",
            "claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7", "claude-opus-4-8",
            "claude-sonnet-5", "claude-opus-5", "claude-sonnet-5-5", "claude-opus-5-5",
            "claude-haiku-5-5", "claude-fable-5", "claude-fable-5-1", "claude-fable-5-2",
            "claude-mythos-5-2",
        ],
    ),
    ProviderConfig(
        "google", "Google (Gemini API and Vertex AI)",
        ["gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai", "gemini", "vertex_ai", "vertexai", "google",
         "google_genai", "google.genai"],
        gp="google", fallback=["anthropic"],
        comment="Vertex AI resells Claude at Anthropic's list price (global endpoint), so Claude "
        "ids fall back to anthropic.toml; the few Claude entries left here are where genai-prices' "
        "Vertex data differs from Anthropic's (price history) or an id shape only Vertex uses. "
        "Regional Vertex endpoints carry a 10% premium that the span does not reveal.",
        models=[
            "gemini-1.5-pro", "gemini-1.5-flash", "gemini-pro-1.5", "gemini-flash-1.5",
            "gemini-flash-1.5-8b", "gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-2.5-pro",
            "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
            "gemini-3-flash-preview", "gemini-3.1-pro-preview", "gemini-3.1-flash-lite",
            "gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.6-flash", "gemini-3.7-flash",
            "gemini-3.8-flash", "gemini-4-argon", "gemini-embedding-001", "gemini-embedding-2",
            # Vertex's Claude entries: kept only where they differ from anthropic.toml (step 4).
            "claude-3-haiku", "claude-3-opus", "claude-3-5-haiku", "claude-3-5-sonnet",
            "claude-3-7-sonnet", "claude-4-sonnet", "claude-4-opus", "claude-sonnet-4-5",
            "claude-haiku-4-5", "claude-opus-4-5", "claude-opus-4-6", "claude-sonnet-4-6",
            "claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-sonnet-5-5",
            "claude-opus-5-5", "claude-haiku-5-5",
        ],
    ),
    ProviderConfig(
        "mistral", "Mistral AI", ["mistral_ai", "mistralai", "mistral"], gp="mistral",
        models=[
            "mistral-large", "mistral-large-2512", "mistral-large-4", "mistral-medium-3-1",
            "mistral-medium-3-5", "mistral-medium-latest", "mistral-small-3.2-24b-instruct",
            "mistral-small-2603", "mistral-small-latest", "ministral-3b", "ministral-8b",
            "ministral-3b-2512", "ministral-8b-2512", "ministral-14b-2512", "ministral-8b-latest",
            "magistral-medium", "magistral-small", "codestral", "codestral-2508", "devstral-small",
            "devstral-2512", "pixtral-12b", "pixtral-large", "mistral-nemo", "mistral-saba",
            "mistral-7b", "mixtral-8x7b", "mixtral-8x22b-instruct", "mistral-embed",
            "codestral-embed-2505",
        ],
    ),
    ProviderConfig(
        "x-ai", "xAI", ["x_ai", "xai", "x-ai"], gp="x-ai",
        models=[
            "grok-2-1212", "grok-2-vision-1212", "grok-3", "grok-3-fast", "grok-3-mini",
            "grok-3-mini-fast", "grok-4-0709", "grok-4-fast-reasoning", "grok-4-fast-non-reasoning",
            "grok-4-1-fast-reasoning", "grok-4-1-fast-non-reasoning", "grok-code-fast-1",
            "grok-4.20", "grok-4.20-multi-agent-0309", "grok-4.3", "grok-4.5", "grok-4.6",
            "grok-4.7", "grok-build-0.1",
        ],
    ),
    ProviderConfig(
        "deepseek", "DeepSeek", ["deepseek"], gp="deepseek",
        models=[
            "deepseek-chat", "deepseek-reasoner", "deepseek-v4-flash", "deepseek-v4-pro",
            "deepseek-flash", "deepseek-v3.1-terminus", "deepseek-v3.2", "deepseek-v3.2-exp",
        ],
    ),
    ProviderConfig(
        "cohere", "Cohere", ["cohere"], gp="cohere",
        models=[
            "command-a", "command-r-plus", "command-r", "command-r7b", "command", "command-light",
            "c4ai-aya-expanse-32b", "c4ai-aya-expanse-8b", "embed-v4.0",
        ],
    ),
    ProviderConfig(
        "moonshotai", "Moonshot AI", ["moonshot_ai", "moonshotai", "moonshot"], gp="moonshotai",
        models=[
            "kimi-k3", "kimi-k3.1-pro", "kimi-k3.1-pro-highspeed", "kimi-k2.7-code",
            "kimi-k2.7-code-highspeed", "kimi-k2.6", "kimi-k2.5", "kimi-k2-thinking",
            "kimi-k2-turbo-preview", "kimi-k2-0905-preview", "kimi-k2", "moonshot-v1-8k",
            "moonshot-v1-32k", "moonshot-v1-128k",
        ],
    ),
    ProviderConfig(
        "perplexity", "Perplexity", ["perplexity"], gp="perplexity",
        models=[
            "sonar", "sonar-pro", "sonar-reasoning", "sonar-reasoning-pro", "sonar-deep-research",
            "r1-1776", "perplexity/sonar", "pplx-embed-v1-0.6b", "pplx-embed-v1-4b",
        ],
    ),
    ProviderConfig(
        "azure", "Microsoft Azure (OpenAI and AI Foundry)",
        ["azure.ai.openai", "azure.ai.inference", "az.ai.openai", "az.ai.inference", "azure",
         "azure_openai", "azure_ai"],
        gp="azure", fallback=["openai", "anthropic", "x-ai", "deepseek", "moonshotai"],
        comment="Global deployment prices; Azure's regional deployments are often slightly "
        "higher. Deployment names are the user's own: map them with `alias_of` in a user file.",
        models=[
            "phi-3-mini-128k-instruct", "phi-3-medium-128k-instruct", "phi-3.5-mini-128k-instruct",
            "phi-4", "phi-4-mini-instruct", "phi-4-multimodal-instruct", "phi-4-reasoning-plus",
            "o1", "o1-mini", "o3-2025-04-16", "o3-mini", "o4-mini", "text-embedding-3-small",
            "text-embedding-3-large",
        ],
    ),
    ProviderConfig(
        "aws", "AWS Bedrock", ["aws.bedrock", "bedrock", "aws", "aws_bedrock", "amazon_bedrock"],
        gp="aws", fallback=["anthropic"],
        comment="Claude on Bedrock: the global cross-region profile (`global.`) and the older "
        "models cost what Anthropic charges and fall back to anthropic.toml; in-region and "
        "geographic profiles (`us.`, `eu.`, ...) of newer models carry a 10% premium and are "
        "listed here.",
        models=[
            *CLAUDE_ON_BEDROCK,
            "meta.llama3-8b-instruct-v1:0", "meta.llama3-70b-instruct-v1:0",
            "meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0",
            "meta.llama3-2-1b-instruct-v1:0", "meta.llama3-2-3b-instruct-v1:0",
            "meta.llama3-2-11b-instruct-v1:0", "meta.llama3-2-90b-instruct-v1:0",
            "meta.llama3-3-70b-instruct-v1:0", "meta.llama4-scout-17b-instruct-v1:0",
            "meta.llama4-maverick-17b-instruct-v1:0",
            "amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0",
            "amazon.nova-premier-v1:0", "global.amazon.nova-2-lite-v1:0",
            "regional.amazon.nova-2-lite-v1:0", "amazon.titan-text-express-v1",
            "amazon.titan-text-lite-v1", "amazon.titan-embed-text-v1", "amazon.titan-embed-text-v2:0",
            "mistral.mistral-7b-instruct-v0:2", "mistral.mixtral-8x7b-instruct-v0:1",
            "mistral.mistral-small-2402-v1:0", "mistral.mistral-large-2402-v1:0",
            "mistral.pixtral-large-2502-v1:0", "mistral.mistral-large-3-675b-instruct",
            "deepseek.r1-v1:0", "openai.gpt-oss-20b-1:0", "openai.gpt-oss-120b-1:0",
        ],
    ),
    ProviderConfig(
        "groq", "Groq", ["groq"], gp="groq",
        models=[
            "llama-3.1-8b-instant", "llama-3.1-70b-versatile", "llama-3.1-405b-reasoning",
            "llama-3.3-70b-versatile", "llama3-8b-8192", "llama3-70b-8192",
            "meta-llama/llama-4-scout-17b-16e-instruct",
            "meta-llama/llama-4-maverick-17b-128e-instruct", "openai/gpt-oss-20b",
            "openai/gpt-oss-120b", "moonshotai/kimi-k2-instruct", "qwen/qwen3-32b",
            "deepseek-r1-distill-llama-70b", "mixtral-8x7b-32768", "gemma2-9b-it",
        ],
    ),
    ProviderConfig(
        "together", "Together AI", ["together", "together_ai", "togetherai", "together-ai"],
        gp="together",
        models=[
            "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
            "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
            "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Meta-Llama-3.3-70B-Instruct-Turbo",
            "meta-llama/Meta-Llama-3-8B-Instruct-Turbo", "meta-llama/Meta-Llama-3-70B-Instruct-Turbo",
            "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
            "deepseek-ai/DeepSeek-V4-Pro-0813", "deepseek-ai/DeepSeek-V4.1-Flash",
            "openai/gpt-oss-120b", "moonshotai/Kimi-K3", "moonshotai/Kimi-K3.1-Pro",
            "Qwen/Qwen3.7-Max", "Qwen/Qwen3.7-Plus", "zai-org/GLM-5.3",
            "mistralai/Mixtral-8x7B-Instruct-v0.1",
        ],
    ),
    ProviderConfig(
        "openrouter", "OpenRouter", ["openrouter"],
        fallback=["openai", "anthropic", "google", "x-ai"],
        source="https://openrouter.ai/models",
        comment="No models of its own: `vendor/model` ids are normalised (see _table.toml) and "
        "priced at the vendor's list price, which OpenRouter passes through. Mistral, Cohere, "
        "DeepSeek and Moonshot are not in the fallback: some OpenRouter ids there name older "
        "versions or other hosts' prices (e.g. mistralai/mistral-medium, cohere/command-r).",
    ),
]
# fmt: on

# Search order when a span names no provider (the loader tries each provider with every
# normalised form before the next): first-party vendors first, then resellers and hosts.
PROVIDER_ORDER = [p.id for p in PROVIDERS]

# Ordered rewrites (re.sub, count=1, cumulative), tried when an id does not match as given.
NORMALIZE: list[tuple[str, str, str]] = [
    (r"^arn:aws[a-z-]*:bedrock:[^/]*/", "", "Bedrock model / inference-profile ARNs"),
    (r"^(projects/[^/]+/locations/[^/]+/)?publishers/[^/]+/models/", "",
     "Vertex AI resource names (publishers/google/models/gemini-...)"),
    (r"^[a-z_]+/(?=[a-z0-9-]+[./][a-z])", "",
     "a router prefix in front of a vendor prefix: bedrock/us.anthropic..., openrouter/openai/..."),
    (r"^(us|eu|apac|au|jp|ca|in|global|us-gov)\.", "", "Bedrock cross-region inference profiles"),
    (r"^[a-z0-9_-]+[./](?=[a-z])", "",
     "vendor prefixes: Bedrock anthropic., OpenRouter anthropic/, Gemini API models/"),
    (r"(-v\d+)?@(\d{8})$", r"-\2", "Vertex AI versions: claude-sonnet-4-5@20250929, -v2@20241022"),
    (r"-v\d+:\d+$", "", "Bedrock version suffixes: -v1:0, -v2:0"),
    (r"-(20\d\d)(0[1-9]|1[0-2])([0-3]\d)$", r"-\1-\2-\3",
     "compact snapshot dates (LiteLLM, OpenRouter): gpt-5.2-20251211 -> gpt-5.2-2025-12-11"),
]  # fmt: skip

RATE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")
GP_RATE_KEYS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_reasoning_mtok": "reasoning",
}
GP_UNIT_NOTES = {
    "web_searches_kcount": "USD per 1,000 web searches",
    "storage_searches_kcount": "USD per 1,000 file searches",
    "requests_kcount": "USD per 1,000 requests",
    "input_audio_mtok": "audio input tokens",
    "cache_audio_read_mtok": "cached audio input tokens",
    "output_audio_mtok": "audio output tokens",
    "input_image_mtok": "image input tokens",
    "cache_image_read_mtok": "cached image input tokens",
    "output_image_mtok": "image output tokens",
    "input_video_mtok": "video input tokens",
    "output_video_mtok": "video output tokens",
    "output_citation_mtok": "citation tokens",
}
SERVICE_TIERS = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}


class Unrepresentable(Exception):
    """A genai-prices model (or part of one) our format cannot say faithfully."""


# ---------------------------------------------------------------------------------------------
# Our side of the data


@dataclass(frozen=True)
class Schedule:
    rates: tuple[tuple[str, Decimal], ...]  # in RATE_KEYS order
    tiers: tuple[tuple[int, tuple[tuple[str, Decimal], ...]], ...] = ()

    def keys(self) -> set[str]:
        return {k for k, _ in self.rates}

    def without(self, key: str) -> Schedule:
        return Schedule(
            tuple(kv for kv in self.rates if kv[0] != key),
            tuple((a, tuple(kv for kv in r if kv[0] != key)) for a, r in self.tiers),
        )


DAY = 86_400


@dataclass(frozen=True)
class Window:
    """Daily UTC window [start, end) whose rates replace the base rates; start > end wraps."""

    start: dt.time  # naive, UTC
    end: dt.time
    rates: tuple[tuple[str, Decimal], ...]  # in RATE_KEYS order

    def segments(self) -> list[tuple[int, int]]:
        """The window as half-open second ranges within one day."""
        s, e = seconds(self.start), seconds(self.end)
        return [(s, e)] if s < e else [(s, DAY), (0, e)]

    def contains(self, t: dt.time) -> bool:
        return any(a <= seconds(t) < b for a, b in self.segments())

    def overlaps(self, other: Window) -> bool:
        return any(a < d and c < b for a, b in self.segments() for c, d in other.segments())

    def without(self, key: str) -> Window:
        return Window(self.start, self.end, tuple(kv for kv in self.rates if kv[0] != key))


def seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass(frozen=True)
class Period:
    since: dt.date | None
    standard: Schedule
    service_tiers: tuple[tuple[str, Schedule], ...] = ()
    windows: tuple[Window, ...] = ()  # first containing window wins

    def same_prices(self, other: Period) -> bool:
        return (
            self.standard == other.standard
            and self.service_tiers == other.service_tiers
            and self.windows == other.windows
        )


@dataclass
class Model:
    id: str
    rules: list[tuple[str, str]]
    periods: list[Period]
    name: str | None = None
    examples: list[str] = field(default_factory=list)
    deprecated: bool = False
    source: str | None = None
    retrieved: dt.date | None = None
    notes: list[str] = field(default_factory=list)  # comment lines written above the model
    dropped: list[str] = field(default_factory=list)  # parts not representable, for the summary


@dataclass
class Report:
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, reason
    dropped: dict[str, list[str]] = field(default_factory=dict)  # what -> ["provider/model"]
    deduped: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, by
    overrides: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def drop(self, what: str, where: str) -> None:
        self.dropped.setdefault(what, []).append(where)


# ---------------------------------------------------------------------------------------------
# Match clauses -> rules


def escape(text: str) -> str:
    """re.escape, minus the escapes that only make a rule harder to read (-, /, @, :)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def lower_regex(pattern: str) -> str:
    """Rules are written in lower case (ids are matched lower-cased)."""
    if pattern == pattern.lower():
        return pattern
    if re.search(r"\\[A-Z]", pattern):
        raise Unrepresentable(f"regex {pattern!r} uses an upper-case escape")
    # [tT] -> [tt] -> t
    return re.sub(r"\[([a-z0-9])\1\]", r"\1", pattern.lower())


def _top_level_alternation(pattern: str) -> bool:
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


def _group_end(pattern: str) -> int:
    """Index just past the group that opens at pattern[0]."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(pattern)


def search_to_fullmatch(pattern: str) -> str:
    """genai-prices applies regexes with re.search; ours are full matches."""
    pattern = lower_regex(pattern)
    if _top_level_alternation(pattern):
        return f".*(?:{pattern}).*"
    head = pattern.startswith("^")
    tail = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[1 if head else 0 : len(pattern) - (1 if tail else 0)]
    return ("" if head else ".*") + body + ("" if tail else ".*")


def clause_regex(clause: object) -> str:
    """A full-match regex for any genai-prices clause."""
    if isinstance(clause, gp.ClauseEquals):
        return escape(clause.equals.lower())
    if isinstance(clause, gp.ClauseStartsWith):
        return escape(clause.starts_with.lower()) + ".*"
    if isinstance(clause, gp.ClauseEndsWith):
        return ".*" + escape(clause.ends_with.lower())
    if isinstance(clause, gp.ClauseContains):
        return ".*" + escape(clause.contains.lower()) + ".*"
    if isinstance(clause, gp.ClauseRegex):
        return search_to_fullmatch(clause.regex)
    if isinstance(clause, gp.ClauseOr):
        return "(?:" + "|".join(clause_regex(c) for c in clause.or_) + ")"
    if isinstance(clause, gp.ClauseAnd):
        return and_regex(clause.and_)
    raise Unrepresentable(f"unknown match clause {clause!r}")


def and_regex(clauses: list[object]) -> str:
    """All clauses at once: one as the body, the others as lookaheads anchored at the end.

    A clause that is already a lookahead at the start (genai-prices' "not a -tts model") is
    kept as it is, which reads better than wrapping it again.
    """
    lookaheads, bodies = [], []
    for clause in clauses:
        rx = clause_regex(clause)
        end = _group_end(rx) if rx.startswith(("(?!", "(?=")) else 0
        if end and rx[end:] == ".*":
            lookaheads.append(rx[:end])
        else:
            bodies.append(rx)
    body = bodies.pop(0) if bodies else ".*"
    lookaheads += [f"(?=(?:{rx})$)" for rx in bodies]
    return "".join(lookaheads) + body


def clause_rules(clause: object) -> list[tuple[str, str]]:
    if isinstance(clause, gp.ClauseOr):
        return [rule for c in clause.or_ for rule in clause_rules(c)]
    if isinstance(clause, gp.ClauseEquals):
        return [("equals", clause.equals.lower())]
    if isinstance(clause, gp.ClauseStartsWith):
        return [("starts_with", clause.starts_with.lower())]
    if isinstance(clause, gp.ClauseEndsWith):
        return [("ends_with", clause.ends_with.lower())]
    return [("regex", clause_regex(clause))]


def rule_matches(rule: tuple[str, str], model_id: str) -> bool:
    kind, value = rule
    if kind == "equals":
        return model_id == value
    if kind == "starts_with":
        return model_id.startswith(value)
    if kind == "ends_with":
        return model_id.endswith(value)
    return re.fullmatch(value, model_id) is not None


# ---------------------------------------------------------------------------------------------
# Prices -> periods


def convert_price(price: object, where: str, report: Report, model: Model) -> Schedule:
    flat: dict[str, Decimal] = {}
    tiered: dict[str, gp.TieredPrices] = {}
    for key, value in vars(price).items():
        if value is None or key.startswith("_"):
            continue
        ours = GP_RATE_KEYS.get(key)
        if ours is None:
            note = GP_UNIT_NOTES.get(key, key)
            what = f"{key} ({note})"
            if what not in model.dropped:
                model.dropped.append(what)
                report.drop(what, where)
            continue
        (tiered if isinstance(value, gp.TieredPrices) else flat)[ours] = value
    if "input" not in flat and "input" not in tiered:
        units = ", ".join(sorted(k for k, v in vars(price).items() if v is not None)) or "none"
        raise Unrepresentable(f"no per-token input price (priced units: {units})")
    if "output" not in flat and "output" not in tiered:
        flat["output"] = Decimal(0)
        what = "no output price in source: output tokens priced at 0"
        if what not in model.dropped:
            model.dropped.append(what)
            report.drop(what, where)
    starts = {tuple(t.start for t in tp.tiers) for tp in tiered.values()}
    if len(starts) > 1:
        raise Unrepresentable(f"tiers with different thresholds per rate: {sorted(starts)}")
    base = {**flat, **{k: tp.base for k, tp in tiered.items()}}
    rates = tuple((k, Decimal(base[k])) for k in RATE_KEYS if k in base)
    tiers = []
    for i, start in enumerate(next(iter(starts)) if starts else ()):
        if start <= 0:
            raise Unrepresentable(f"tier starting at {start} tokens")
        values = {**flat, **{k: tp.tiers[i].price for k, tp in tiered.items()}}
        tiers.append((start, tuple((k, Decimal(values[k])) for k in RATE_KEYS if k in values)))
    return Schedule(rates, tuple(tiers))


def conform_variant(variant: Schedule, base: Schedule) -> Schedule:
    """A service tier repeats the base's long-context tiers (our format requires it)."""
    if not base.tiers or variant.tiers:
        if variant.tiers and [a for a, _ in variant.tiers] != [a for a, _ in base.tiers]:
            raise Unrepresentable("service tier with other long-context thresholds than the base")
        return variant
    return Schedule(variant.rates, tuple((above, variant.rates) for above, _ in base.tiers))


def convert_model(info: object, provider: ProviderConfig, report: Report) -> Model:
    where = f"{provider.id}/{info.id}"
    model = Model(id=info.id, rules=[], periods=[], name=info.name, deprecated=bool(info.deprecated))
    seen_rules = set()
    for rule in clause_rules(info.match):
        if rule[0] == "regex":
            re.compile(rule[1])
        if rule not in seen_rules:
            seen_rules.add(rule)
            model.rules.append(rule)

    conditional = [] if isinstance(info.prices, gp.ModelPrice) else list(info.prices)
    constraints = [c.constraint for c in conditional]
    constraints += [v.constraint for v in info.price_variants or []]
    dates = sorted({c.start_date for c in constraints if isinstance(c, gp.StartDateConstraint)})
    # Times of day at which genai-prices' answer can change (every edge of a time-of-day
    # constraint): its prices are constant from one edge to the next, so these samples see
    # every state of the day. Without time-of-day prices, noon stands for the whole day.
    edges = sorted({utc_time(t) for c in constraints if isinstance(c, gp.TimeOfDateConstraint)
                    for t in (c.start_time, c.end_time)})  # fmt: skip
    clock = edges or [dt.time(12)]

    for variant in info.price_variants or []:
        if variant.when in SERVICE_TIERS.values():
            continue
        if variant.when == {"service_tier": "default"} and not any(vars(variant.prices).values()):
            continue  # an explicit no-op in genai-prices
        what = "service variant " + ", ".join(f"{k}={v}" for k, v in variant.when.items())
        model.dropped.append(what)
        report.drop(what + " (our format has batch/flex/priority only)", where)

    # Evaluate genai-prices' own resolution at each date where something changes (and at each
    # time-of-day edge), so the history, the windows and which variant wins when several apply
    # are exactly theirs.
    starts: list[dt.date | None] = [None, *dates]
    periods: list[Period] = []
    for since in starts:
        day = dt.date(1990, 1, 1) if since is None else since
        at = [dt.datetime.combine(day, t, tzinfo=dt.timezone.utc) for t in clock]
        standard, windows = day_prices(info, conditional, day, where, report, model)
        for t, when in zip(clock, at, strict=True):
            theirs = convert_price(info.get_prices(when), where, report, model)
            ours = next((Schedule(w.rates) for w in windows if w.contains(t)), standard)
            if theirs != ours:
                raise Unrepresentable(
                    f"time-of-day prices that do not reduce to windows ({day}, {t.isoformat()} UTC)"
                )
        tiers = []
        for name, context in SERVICE_TIERS.items():
            pairs = [
                (convert_price(info.get_prices(when), where, report, model),
                 convert_price(info.get_prices(when, context), where, report, model))
                for when in at
            ]  # fmt: skip
            if all(variant == std for std, variant in pairs):
                continue
            if len({variant for _, variant in pairs}) > 1:
                # Our service tier replaces the windows; genai-prices' variant overrides only
                # its own keys of whichever price is in force at that time of day.
                what = f"{name} prices (they vary with the time of day)"
                model.dropped.append(what)
                report.drop(what, where)
                continue
            try:
                tiers.append((name, conform_variant(pairs[0][1], standard)))
            except Unrepresentable as e:
                what = f"{name} prices ({e})"
                model.dropped.append(what)
                report.drop(what, where)
        period = Period(since, standard, tuple(tiers), windows)
        if periods and periods[-1].same_prices(period):
            continue
        periods.append(period)
    model.periods = periods

    if info.price_comments:
        model.notes.append(f"genai-prices: {info.price_comments}")
    return model


def utc_time(value: dt.time) -> dt.time:
    """A constraint's time of day in UTC, naive (genai-prices reads naive times as UTC)."""
    if value.tzinfo is not None:
        value = dt.datetime.combine(dt.date(1970, 1, 1), value).astimezone(dt.timezone.utc).time()
    if value.microsecond:
        raise Unrepresentable(f"time-of-day price edge {value.isoformat()} (whole seconds only)")
    return value


def day_prices(
    info: object, conditional: list, day: dt.date, where: str, report: Report, model: Model
) -> tuple[Schedule, tuple[Window, ...]]:
    """The base price and time-of-day windows genai-prices applies on ``day``.

    genai-prices uses the last active ConditionalPrice (the first one when none is active). On
    one day every date constraint is either active all day or not at all, so the last of those
    active (or the first price) is the base, and each time-of-day price listed after it wins
    over it while its window is open: later ones first, as genai-prices tries them.
    """
    if not conditional:
        return convert_price(info.prices, where, report, model), ()
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc)
    fixed = [i for i, c in enumerate(conditional)
             if c.constraint is None
             or (isinstance(c.constraint, gp.StartDateConstraint) and c.constraint.active(noon))]  # fmt: skip
    first = fixed[-1] + 1 if fixed else 0
    base = convert_price(conditional[fixed[-1] if fixed else 0].prices, where, report, model)
    windows = []
    for c in reversed(conditional[first:]):
        if not isinstance(c.constraint, gp.TimeOfDateConstraint):
            continue  # a date constraint not yet in force on this day
        start, end = utc_time(c.constraint.start_time), utc_time(c.constraint.end_time)
        if start == end:
            continue  # genai-prices never finds it active
        sched = convert_price(c.prices, where, report, model)
        if sched.tiers:
            raise Unrepresentable("long-context tiers inside a time-of-day window")
        missing = sorted(base.keys() - sched.keys(), key=RATE_KEYS.index)
        if missing:
            raise Unrepresentable(f"a time-of-day window without the base's {', '.join(missing)} rate")
        windows.append(Window(start, end, sched.rates))
    # A window at the base rates changes nothing unless it hides a later one.
    windows = [w for i, w in enumerate(windows)
               if w.rates != base.rates or any(w.overlaps(x) for x in windows[i + 1 :])]  # fmt: skip
    if not any(a.overlaps(b) for i, a in enumerate(windows) for b in windows[i + 1 :]):
        windows.sort(key=lambda w: w.start)  # order only matters where windows overlap
    return base, tuple(windows)


# ---------------------------------------------------------------------------------------------
# Overrides


def apply_overrides(models: dict[str, dict[str, Model]], report: Report) -> None:
    data = tomllib.loads(OVERRIDES_FILE.read_text("utf-8"), parse_float=Decimal)
    allowed = {"provider", "id", "reason", "match", "extra_match", "examples", "name",
               "deprecated", "new", "price", "source", "retrieved"}  # fmt: skip
    unknown_top = set(data) - {"model"}
    if unknown_top:
        raise SystemExit(f"{OVERRIDES_FILE}: unknown key {sorted(unknown_top)[0]!r}")
    for i, raw in enumerate(data.get("model", [])):
        where = f"{OVERRIDES_FILE.name}: model[{i}]"
        if set(raw) - allowed:
            raise SystemExit(f"{where}: unknown key {sorted(set(raw) - allowed)[0]!r}")
        pid, mid, reason = raw.get("provider"), raw.get("id"), raw.get("reason")
        if not (pid and mid and reason):
            raise SystemExit(f"{where}: provider, id and reason are required")
        if pid not in models:
            raise SystemExit(f"{where}: unknown provider {pid!r}")
        if raw.get("new"):
            if mid in models[pid]:
                raise SystemExit(f"{where}: {pid}/{mid} already exists; drop `new`")
            for key in ("price", "source", "retrieved", "match"):
                if key not in raw:
                    raise SystemExit(f"{where}: a new model needs {key!r}")
            model = Model(id=mid, rules=[], periods=parse_periods(raw["price"], where),
                          source=raw["source"], retrieved=raw["retrieved"])  # fmt: skip
            models[pid][mid] = model
        else:
            model = models[pid].get(mid)
            if model is None:
                raise SystemExit(f"{where}: {pid}/{mid} is not generated (missing from PROVIDERS?)")
            if "price" in raw:
                if "source" not in raw or "retrieved" not in raw:
                    raise SystemExit(f"{where}: a price correction needs source and retrieved")
                model.periods = parse_periods(raw["price"], where)
                model.source, model.retrieved = raw["source"], raw["retrieved"]
        if "match" in raw:
            model.rules = [parse_rule(r, where) for r in raw["match"]]
        model.rules += [parse_rule(r, where) for r in raw.get("extra_match", [])]
        model.examples += [e.lower() for e in raw.get("examples", []) if e.lower() not in model.examples]
        if "name" in raw:
            model.name = raw["name"]
        if "deprecated" in raw:
            model.deprecated = bool(raw["deprecated"])
        note = " ".join(str(reason).split())
        model.notes.append(f"override (scripts/pricing_overrides.toml): {note}")
        report.overrides.append(f"{pid}/{mid}: {note}")


def parse_rule(raw: dict, where: str) -> tuple[str, str]:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise SystemExit(f"{where}: a match rule is a table with one key")
    ((kind, value),) = raw.items()
    if kind not in ("equals", "starts_with", "ends_with", "regex"):
        raise SystemExit(f"{where}: unknown match rule {kind!r}")
    return kind, value


def parse_periods(raw: list[dict], where: str) -> list[Period]:
    def schedule(table: dict) -> Schedule:
        rates = tuple((k, Decimal(table[k])) for k in RATE_KEYS if k in table)
        tiers = tuple(
            (t["above"], tuple((k, Decimal(t[k])) for k in RATE_KEYS if k in t))
            for t in table.get("tiers", [])
        )
        return Schedule(rates, tiers)

    periods = []
    for table in raw:
        tiers = tuple((n, schedule(table[n])) for n in SERVICE_TIERS if n in table)
        windows = tuple(
            Window(w["start"], w["end"], tuple((k, Decimal(w[k])) for k in RATE_KEYS if k in w))
            for w in table.get("windows", [])
        )
        periods.append(Period(table.get("since"), schedule(table), tiers, windows))
    if not periods:
        raise SystemExit(f"{where}: price must list at least one period")
    return periods


# ---------------------------------------------------------------------------------------------
# Resolution, as the loader does it (src/otel_costattr/pricing.py)


class Table:
    def __init__(self, models: dict[str, dict[str, Model]]) -> None:
        self.models = models
        self.fallback = {p.id: p.fallback for p in PROVIDERS}
        self.normalize = [(re.compile(p), r) for p, r, _ in NORMALIZE]

    def forms(self, model_id: str) -> list[str]:
        return candidate_ids(model_id, self.normalize)

    def hits(self, pid: str, form: str) -> list[Model]:
        return [m for m in self.models[pid].values() if any(rule_matches(r, form) for r in m.rules)]

    def match_in(self, pid: str, model_id: str) -> list[Model]:
        """Every model of one provider matching the first form that matches anything."""
        for form in self.forms(model_id):
            hits = self.hits(pid, form)
            if hits:
                return hits
        return []

    def resolve(self, model_id: str, provider: str | None) -> tuple[str, list[Model]] | None:
        order = PROVIDER_ORDER if provider is None else [provider, *self.fallback[provider]]
        for pid in order:
            hits = self.match_in(pid, model_id)
            if hits:
                return pid, hits
        return None


def sample_ids(rule: tuple[str, str], *, minimal_only: bool = False) -> list[str]:
    """Ids a rule matches, to probe for overlaps: the literal and typical decorated forms.

    For a regex, the shortest id it matches and (unless ``minimal_only``) one with every
    optional part present, e.g. ``.*gpt-4o.*`` gives ``gpt-4o`` and ``xgpt-4ox``.
    """
    kind, value = rule
    if kind == "equals":
        return [value]
    if kind == "starts_with":
        suffixes = (
            ("", "-v1:0")
            if minimal_only
            else ("", "-2025-01-01", "-20250101", "@20250101", "-v1:0", "-latest")
        )
        return [value + s for s in suffixes]
    if kind == "ends_with":
        return [value, "us." + value, "x/" + value]
    out = []
    for minimal in (True,) if minimal_only else (True, False):
        try:
            text = _sample(sre_parse.parse(value), minimal)
        except Exception:  # noqa: BLE001 - a best-effort generator
            continue
        if minimal and text.endswith("@"):
            text += "20250101"  # a Vertex AI version always follows the @
        if re.fullmatch(value, text) and text not in out:
            out.append(text)
    return out


def _sample(parsed: object, minimal: bool) -> str:
    out = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_sample_class(arg))
        elif name == "SUBPATTERN":
            out.append(_sample(arg[-1], minimal))
        elif name == "BRANCH":
            out.append(_sample(arg[1][0], minimal))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            count = low if (minimal or low > 0) else 1
            out.append(_sample(sub, minimal) * count)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            raise ValueError(name)
    return "".join(out)


def _sample_class(items: list) -> str:
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            return chr(arg)
        if name == "RANGE":
            return chr(arg[0])
        if name == "CATEGORY":
            return "1" if "DIGIT" in str(arg) else "a"
    return "q"


def probes(model: Model, *, realistic: bool = False) -> list[str]:
    """Ids to test a model's rules with. ``realistic`` keeps the examples and the shortest id
    of each rule, leaving out made-up decorations and the canonical id (genai-prices invents
    some, like ``regional.anthropic.claude-...``, that no span carries)."""
    ids = [*model.examples] if realistic else [model.id.lower(), *model.examples]
    for rule in model.rules:
        ids += sample_ids(rule, minimal_only=realistic)
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------------------------------------
# Host copies of first-party models


def comparable(periods: list[Period], host: Model) -> list[Period]:
    """Prices as the host states them: rate keys and service tiers the host's entry does not
    have are not compared (e.g. a Bedrock entry without 1-hour cache writes or batch)."""
    host_keys = set().union(*(p.standard.keys() for p in host.periods))
    host_has_tiers = any(p.service_tiers for p in host.periods)
    out: list[Period] = []
    for p in periods:
        std = p.standard
        tiers = p.service_tiers if host_has_tiers else ()
        windows = p.windows
        for key in ("cache_write_1h",):
            if key not in host_keys:
                std = std.without(key)
                tiers = tuple((n, s.without(key)) for n, s in tiers)
                windows = tuple(w.without(key) for w in windows)
        q = Period(p.since, std, tiers, windows)
        if out and out[-1].same_prices(q):
            continue
        out.append(q)
    return out


def same_prices(host: Model, other: Model) -> bool:
    a, b = comparable(host.periods, host), comparable(other.periods, host)
    if len(a) != len(b):
        return False
    return all(x.since == y.since and x.same_prices(y) for x, y in zip(a, b, strict=True))


def drop_fallback_duplicates(table: Table, report: Report) -> None:
    """Drop a host's model when, without it, every id it matched still gets the same price."""
    dropped: list[tuple[str, Model, list[str]]] = []

    def served_same(pid: str, model: Model, ids: list[str]) -> list[str] | None:
        targets = []
        for probe in ids:
            found = table.resolve(probe, pid)
            if found is None or len(found[1]) != 1 or not same_prices(model, found[1][0]):
                return None
            targets.append(f"{found[0]}/{found[1][0].id}")
        return targets

    for cfg in PROVIDERS:
        if not cfg.fallback:
            continue
        models = table.models[cfg.id]
        for mid in sorted(models):
            model = models[mid]
            own = [
                p for p in probes(model, realistic=True)
                if model in (table.resolve(p, cfg.id) or ("", []))[1]
            ]  # fmt: skip
            del models[mid]
            if not own or served_same(cfg.id, model, own) is None:
                models[mid] = model
            else:
                dropped.append((cfg.id, model, own))
    # Checked again against the final table: a later drop may have moved an earlier one's ids.
    for pid, model, own in dropped:
        targets = served_same(pid, model, own)
        if targets is None:
            report.errors.append(f"{pid}/{model.id}: dropped as a duplicate, but its ids moved")
        else:
            report.deduped.append((pid, model.id, ", ".join(sorted(set(targets)))))


# ---------------------------------------------------------------------------------------------
# Checks (the loader's rules, plus overlap probes)


def check(table: Table, report: Report) -> None:
    names: dict[str, str] = {}
    for cfg in PROVIDERS:
        for name in [cfg.id, *cfg.otel_names]:
            if names.setdefault(name, cfg.id) != cfg.id:
                report.errors.append(f"otel name {name!r} is claimed by {names[name]} and {cfg.id}")
        for fb in cfg.fallback:
            if fb not in table.models:
                report.errors.append(f"{cfg.id}: fallback {fb!r} is not a shipped provider")
    for pid, models in table.models.items():
        for model in models.values():
            where = f"{pid}/{model.id}"
            for kind, value in model.rules:
                if value != value.lower():
                    report.errors.append(f"{where}: rule {kind}={value!r} is not lower case")
                if kind == "regex":
                    try:
                        re.compile(value)
                    except re.error as e:
                        report.errors.append(f"{where}: invalid regex {value!r}: {e}")
            for example in model.examples:
                if not any(rule_matches(r, example) for r in model.rules):
                    report.errors.append(f"{where}: example {example!r} matches no rule of its model")
            check_periods(where, model, report)
            # The loader's overlap rule: equals values and examples match one model only.
            for probe in [v for k, v in model.rules if k == "equals"] + model.examples:
                others = [m.id for m in models.values() if m is not model
                          and any(rule_matches(r, probe) for r in m.rules)]  # fmt: skip
                if others:
                    report.errors.append(f"{where}: {probe!r} also matches {pid}/{others[0]}")
            # Stricter: typical ids of every rule resolve to one model of the provider.
            for probe in probes(model):
                hits = table.match_in(pid, probe)
                if len(hits) > 1:
                    ids = ", ".join(m.id for m in hits)
                    report.errors.append(f"{pid}: id {probe!r} matches several models: {ids}")
            for example in model.examples:
                found = table.resolve(example, pid)
                if not found or found[1][0] is not model:
                    report.errors.append(f"{where}: example {example!r} does not resolve to it")


def check_periods(where: str, model: Model, report: Report) -> None:
    previous = None
    for i, period in enumerate(model.periods):
        if i and period.since is None:
            report.errors.append(f"{where}: price[{i}] has no since")
        if previous and period.since and period.since <= previous:
            report.errors.append(f"{where}: price[{i}].since out of order")
        previous = period.since
        schedules = [("", period.standard), *period.service_tiers]
        base_keys = period.standard.keys()
        for name, sched in schedules:
            keys = sched.keys()
            if not {"input", "output"} <= keys:
                report.errors.append(f"{where}: price[{i}]{name} lacks input/output")
            if name and not base_keys <= keys:
                report.errors.append(f"{where}: price[{i}].{name} lacks {sorted(base_keys - keys)}")
            values = [v for _, v in sched.rates] + [v for _, r in sched.tiers for _, v in r]
            if any(v < 0 for v in values):
                report.errors.append(f"{where}: price[{i}]{name} has a negative price")
            last = 0
            for above, rates in sched.tiers:
                if above <= last or {k for k, _ in rates} < keys:
                    report.errors.append(f"{where}: price[{i}]{name} tier above={above} is malformed")
                last = above
        for j, window in enumerate(period.windows):
            keys = {k for k, _ in window.rates}
            if window.start == window.end or not ({"input", "output"} | base_keys) <= keys:
                report.errors.append(f"{where}: price[{i}].windows[{j}] is malformed")
            if any(v < 0 for _, v in window.rates):
                report.errors.append(f"{where}: price[{i}].windows[{j}] has a negative price")


def check_unshipped(table: Table, report: Report, shipped: dict[str, set[str]]) -> None:
    """A genai-prices model we do not ship must not resolve to one of ours at another price."""
    for cfg in PROVIDERS:
        if cfg.gp is None:
            continue
        for info in gp_provider(cfg.gp).models:
            if info.id in shipped[cfg.id]:
                continue
            try:
                theirs = convert_model(info, cfg, Report())
            except Unrepresentable:
                theirs = None
            rules = clause_rules(info.match)
            for probe in dict.fromkeys(p for r in rules for p in sample_ids(r)):
                if not info.is_match(probe):
                    continue
                found = table.resolve(probe, cfg.id)
                if found is None:
                    continue
                ours = found[1][0]
                if theirs is None or not same_prices(theirs, ours):
                    report.warnings.append(
                        f"{cfg.id}: {probe!r} (genai-prices {info.id!r}, not shipped) resolves to "
                        f"{found[0]}/{ours.id} at a different price"
                    )


# ---------------------------------------------------------------------------------------------
# Writing


def toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def toml_regex(text: str) -> str:
    return f"'{text}'" if "'" not in text and "\n" not in text else toml_str(text)


def num(value: Decimal) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def rates_inline(rates: tuple[tuple[str, Decimal], ...]) -> str:
    return ", ".join(f"{k} = {num(v)}" for k, v in rates)


def tiers_inline(tiers: tuple) -> str:
    return "[" + ", ".join(f"{{ above = {a}, {rates_inline(r)} }}" for a, r in tiers) + "]"


def windows_inline(window: Window) -> str:
    return (
        f"{{ start = {window.start.isoformat()}, end = {window.end.isoformat()}, "
        f"{rates_inline(window.rates)} }}"
    )


def comment(text: str, width: int = 98) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), width - 2, break_long_words=False, break_on_hyphens=False)
    return ["# " + line for line in lines]


def render_rule(rule: tuple[str, str]) -> str:
    kind, value = rule
    return f"{{ {kind} = {toml_regex(value) if kind == 'regex' else toml_str(value)} }}"


def render_model(model: Model) -> list[str]:
    out = ["", f"# {'-' * 96}"]
    for note in model.notes:
        out += comment(note)
    for what in model.dropped:
        out += comment(f"not representable, left out: {what}")
    out.append("[[model]]")
    out.append(f"id = {toml_str(model.id)}")
    if model.name:
        out.append(f"name = {toml_str(model.name)}")
    if len(model.rules) == 1:
        out.append(f"match = [{render_rule(model.rules[0])}]")
    else:
        out.append("match = [")
        out += [f"  {render_rule(r)}," for r in model.rules]
        out.append("]")
    if model.examples:
        line = "examples = [" + ", ".join(toml_str(e) for e in model.examples) + "]"
        if len(line) <= 100:
            out.append(line)
        else:
            out += ["examples = [", *(f"  {toml_str(e)}," for e in model.examples), "]"]
    if model.source:
        out.append(f"source = {toml_str(model.source)}")
    if model.retrieved:
        out.append(f"retrieved = {model.retrieved.isoformat()}")
    if model.deprecated:
        out.append("deprecated = true")
    previous: Period | None = None
    if any(p.windows for p in model.periods):
        out += comment(
            "`windows`: time-of-day prices (UTC, [start, end)); inside a window its rates replace "
            "the period's base rates. A requested service tier wins over a window."
        )
    for period in model.periods:
        out.append("")
        if previous is not None and previous.standard == period.standard:
            if previous.service_tiers == period.service_tiers:
                out += comment("Standard rates and service tiers unchanged; the windows change.")
            else:
                old = dict(previous.service_tiers)
                added = sorted(set(dict(period.service_tiers)) - set(old))
                changed = sorted(n for n, s in period.service_tiers if old.get(n, s) != s)
                what = ", ".join([*(f"adds {n}" for n in added), *(f"changes {n}" for n in changed)])
                out += comment(
                    f"Standard rates unchanged; {what or 'service tiers change'}. genai-prices "
                    "dates service-tier rates from the day it checked them; before, they bill at "
                    "standard."
                )
        out.append("[[model.price]]")
        if period.since:
            out.append(f"since = {period.since.isoformat()}")
        out += [f"{k} = {num(v)}" for k, v in period.standard.rates]
        if period.standard.tiers:
            out.append(f"tiers = {tiers_inline(period.standard.tiers)}")
        if period.windows:
            items = [windows_inline(w) for w in period.windows]
            line = "windows = [" + ", ".join(items) + "]"
            out += [line] if len(line) <= 100 else ["windows = [", *(f"  {i}," for i in items), "]"]
        long_tiers = []
        for name, sched in period.service_tiers:
            line = f"{name} = {{ {rates_inline(sched.rates)}"
            if sched.tiers:
                line += f", tiers = {tiers_inline(sched.tiers)}"
            line += " }"
            if len(line) <= 100:
                out.append(line)
            else:
                long_tiers.append((name, sched))
        for name, sched in long_tiers:  # sub-tables come after every key of the period
            out += ["", f"[model.price.{name}]", *(f"{k} = {num(v)}" for k, v in sched.rates)]
            if sched.tiers:
                out.append(f"tiers = {tiers_inline(sched.tiers)}")
        previous = period
    return out


HEADER = """\
# Generated by scripts/refresh_pricing.py from {via}; do not edit by hand.
# Corrections and additions go in scripts/pricing_overrides.toml, then regenerate:
#     python scripts/refresh_pricing.py
# Format: pricing/README.md. Prices are USD per million tokens."""


def render_provider(cfg: ProviderConfig, models: dict[str, Model], report: Report, retrieved: dt.date) -> str:
    gpp = gp_provider(cfg.gp) if cfg.gp else None
    source = cfg.source or (gpp.pricing_urls[0] if gpp and gpp.pricing_urls else None)
    out = HEADER.format(via=VIA).splitlines()
    if cfg.comment:
        out += ["#", *comment(cfg.comment)]
    if gpp is not None and gpp.price_comments:
        out += ["#", *comment(f"genai-prices: {gpp.price_comments}")]
    skipped = [f"{m} ({why})" for p, m, why in report.skipped if p == cfg.id]
    if skipped:
        out += ["#", *comment("Not shipped, the format cannot say their prices: " + "; ".join(skipped))]
    served = [f"{m} -> {by}" for p, m, by in report.deduped if p == cfg.id]
    if served:
        out += [
            "#",
            *comment(
                f"Priced through `fallback`: {VIA} lists these here too, at the same prices: "
                + "; ".join(served)
            ),
        ]
    out += [
        "",
        f"provider = {toml_str(cfg.id)}",
        f"name = {toml_str(cfg.name)}",
        "otel_names = [" + ", ".join(toml_str(n) for n in cfg.otel_names) + "]",
        "fallback = [" + ", ".join(toml_str(n) for n in cfg.fallback) + "]",
        f"source = {toml_str(source)}" if source else "",
        *comment(RETRIEVED_NOTE),
        f"retrieved = {retrieved.isoformat()}",
        f"via = {toml_str(VIA)}",
    ]
    for mid in sorted(models):
        out += render_model(models[mid])
    return "\n".join(line for line in out if line is not None) + "\n"


def render_table(version: str) -> str:
    out = [
        "# Generated by scripts/refresh_pricing.py; format: pricing/README.md.",
        "# `version` is stamped on every priced span: bump it whenever any file here changes.",
        "",
        f"version = {toml_str(version)}",
        "",
        *comment(
            "Search order when a span names no provider: the id as reported is tried against every "
            "provider in this order, then each normalised form, so first-party vendors come first "
            "among equals; a span that names its provider searches only that provider and its "
            "fallbacks."
        ),
        "providers = [",
        *[f"  {toml_str(p)}," for p in PROVIDER_ORDER],
        "]",
        "",
        "# Ordered rewrites tried when an id does not match as given: re.sub(pattern, replace, id,",
        "# count=1), cumulative. A rule that does not apply leaves the id unchanged.",
    ]
    for pattern, repl, why in NORMALIZE:
        out += ["", f"# {why}", "[[normalize]]", f"pattern = {toml_regex(pattern)}",
                f"replace = {toml_regex(repl)}"]  # fmt: skip
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Summary of changes against the disk


def describe_changes(name: str, old: str | None, new: str) -> list[str]:
    if old == new:
        return []
    if old is None:
        return [f"  {name}: new file"]
    try:
        before = tomllib.loads(old, parse_float=Decimal)
    except tomllib.TOMLDecodeError:
        return [f"  {name}: changed (the old file did not parse)"]
    after = tomllib.loads(new, parse_float=Decimal)
    if name == TABLE_FILE:
        keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        return [f"  {name}: {', '.join(keys) or 'comments'} changed"]
    old_models = {m["id"]: m for m in before.get("model", [])}
    new_models = {m["id"]: m for m in after.get("model", [])}
    lines = []
    added = sorted(set(new_models) - set(old_models))
    removed = sorted(set(old_models) - set(new_models))
    if added:
        lines.append(f"    + {len(added)} model(s): {', '.join(added)}")
    if removed:
        lines.append(f"    - {len(removed)} model(s): {', '.join(removed)}")
    for mid in sorted(set(old_models) & set(new_models)):
        a, b = old_models[mid], new_models[mid]
        fields = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if not fields:
            continue
        detail = ""
        if "price" in fields:
            detail = " (" + price_change(a["price"], b["price"]) + ")"
        lines.append(f"    ~ {mid}: {', '.join(fields)}{detail}")
    header = [k for k in sorted(set(before) | set(after)) if k != "model" and before.get(k) != after.get(k)]
    if header:
        lines.insert(0, f"    provider fields changed: {', '.join(header)}")
    return [f"  {name}: changed", *(lines or ["    (comments or layout only)"])]


# ---------------------------------------------------------------------------------------------


def price_change(before: list[dict], after: list[dict]) -> str:
    """The first differing period, as `since: input/output old -> new`."""

    def short(p: dict | None) -> str:
        return "none" if p is None else f"{num(p['input'])}/{num(p['output'])}"

    for i in range(max(len(before), len(after))):
        a = before[i] if i < len(before) else None
        b = after[i] if i < len(after) else None
        if a != b:
            since = (b or a).get("since", "first")
            more = "" if a and b and short(a) != short(b) else ", other rates, tiers or windows"
            return f"period {since}: in/out {short(a)} -> {short(b)}{more}"
    return "reordered"


def gp_provider(gid: str) -> object:
    for p in GP_PROVIDERS:
        if p.id == gid:
            return p
    raise SystemExit(f"genai-prices has no provider {gid!r}")


def build(report: Report) -> tuple[Table, dict[str, set[str]]]:
    models: dict[str, dict[str, Model]] = {}
    shipped: dict[str, set[str]] = {}
    for cfg in PROVIDERS:
        models[cfg.id] = {}
        shipped[cfg.id] = set(cfg.models)
        if cfg.gp is None:
            continue
        available = {m.id: m for m in gp_provider(cfg.gp).models}
        for mid in cfg.models:
            info = available.get(mid)
            if info is None:
                raise SystemExit(f"{cfg.id}: genai-prices {cfg.gp!r} has no model {mid!r}")
            try:
                models[cfg.id][mid] = convert_model(info, cfg, report)
            except Unrepresentable as e:
                report.skipped.append((cfg.id, mid, str(e)))
    apply_overrides(models, report)
    table = Table(models)
    drop_fallback_duplicates(table, report)
    return table, shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on changes")
    parser.add_argument("--version", help="table version to write (default: keep the current)")
    parser.add_argument(
        "--retrieved",
        type=dt.date.fromisoformat,
        help="the day the figures were taken, YYYY-MM-DD (default: keep the date in the files)",
    )
    args = parser.parse_args(argv)

    report = Report()
    table, shipped = build(report)
    check(table, report)
    check_unshipped(table, report, shipped)

    table_path = PRICING_DIR / TABLE_FILE
    current_version = None
    if table_path.exists():
        current_version = tomllib.loads(table_path.read_text("utf-8")).get("version")
    retrieved = args.retrieved or current_retrieved() or dt.date.today()
    version = args.version or current_version or retrieved.strftime("%Y.%m.%d")

    outputs = {TABLE_FILE: render_table(version)}
    for cfg in PROVIDERS:
        outputs[f"{cfg.id}.toml"] = render_provider(cfg, table.models[cfg.id], report, retrieved)
    stale = sorted(p.name for p in PRICING_DIR.glob("*.toml") if p.name not in outputs)

    changes: list[str] = []
    for name, text in outputs.items():
        path = PRICING_DIR / name
        old = path.read_text("utf-8") if path.exists() else None
        changes += describe_changes(name, old, text)
    changes += [f"  {name}: no longer generated (delete it, or add its provider)" for name in stale]

    print_summary(table, report, changes)
    if report.errors:
        print(f"\n{len(report.errors)} error(s); nothing written.")
        return 2
    if args.check:
        return 1 if changes else 0
    for name, text in outputs.items():
        (PRICING_DIR / name).write_text(text, "utf-8")
    if changes and version == current_version:
        print(f"\nNOTE: the files changed but version is still {version!r}: rerun with "
              "--version YYYY.MM.DD and update the digest pin in tests/test_pricing_data.py.")  # fmt: skip
    if changes and args.retrieved is None:
        print(f"NOTE: retrieved is still {retrieved}: pass --retrieved if the figures are new.")
    return 0


def current_retrieved() -> dt.date | None:
    """The `retrieved` date of the files on disk (they all share one)."""
    for cfg in PROVIDERS:
        path = PRICING_DIR / f"{cfg.id}.toml"
        if path.exists():
            value = tomllib.loads(path.read_text("utf-8")).get("retrieved")
            if isinstance(value, dt.date):
                return value
    return None


def describe_windows(model: Model) -> str:
    def hours(period: Period) -> str:
        spans = [f"{w.start.strftime('%H:%M')}-{w.end.strftime('%H:%M')}" for w in period.windows]
        return ", ".join(spans) or "none"

    if len(model.periods) == 1:
        return hours(model.periods[0])
    per = [(p.since.isoformat() if p.since else "first", hours(p)) for p in model.periods]
    if len({h for _, h in per}) == 1:
        return f"{per[0][1]} (in all {len(per)} price periods)"
    return "; ".join(f"{since}: {h}" for since, h in per)


def print_summary(table: Table, report: Report, changes: list[str]) -> None:
    total = sum(len(m) for m in table.models.values())
    counts = ", ".join(f"{pid} {len(m)}" for pid, m in table.models.items())
    print(f"{VIA} -> {total} models in {len(table.models)} providers ({counts})")

    def block(title: str, lines: list[str]) -> None:
        if lines:
            print(f"\n{title} ({len(lines)}):")
            for line in lines:
                print(textwrap.fill(line, 100, initial_indent="  ", subsequent_indent="      ",
                                    break_long_words=False, break_on_hyphens=False))  # fmt: skip

    block("Skipped models (not representable)", [f"{p}/{m}: {why}" for p, m, why in report.skipped])
    block(
        "Time-of-day windows (UTC), from genai-prices' TimeOfDateConstraint prices",
        [f"{pid}/{mid}: {describe_windows(model)}" for pid, models in table.models.items()
         for mid, model in sorted(models.items()) if any(p.windows for p in model.periods)],
    )  # fmt: skip
    block(
        "Parts left out of shipped models (not representable)",
        [f"{what}: {', '.join(where)}" for what, where in sorted(report.dropped.items())],
    )
    block(
        "Host copies dropped (the fallback prices them the same)",
        [f"{p}/{m} -> {by}" for p, m, by in report.deduped],
    )
    block("Overrides applied", report.overrides)
    block("Warnings", report.warnings)
    block("ERRORS", report.errors)
    print("\nChanges against the files on disk:" if changes else "\nNo changes against the disk.")
    for line in changes:
        print(line)


if __name__ == "__main__":
    sys.exit(main())
