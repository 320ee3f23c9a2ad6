"""Endpoints: who served a call, read from the address it was sent to.

The OpenAI SDK talks to many hosts (Groq, DeepSeek, Together, OpenRouter, xAI, Gemini's and
Mistral's OpenAI-compatible APIs, Azure), and its instrumentations name the client, not the
host: ``gen_ai.system`` / ``llm.system`` say "openai" whatever ``base_url`` was. The endpoint
is who bills the call, and each instrumentation records it in its own way:

- ``server.address``: the host name (the official openai-v2 instrumentation and most others);
- ``gen_ai.openai.api_base``: the client's base URL (OpenLLMetry);
- OpenInference's ``llm.provider``: its OpenAI instrumentation's guess from the same host
  name, beside ``llm.system`` "openai" (`LLM_PROVIDER_HOSTS`).

`endpoint_host` maps an address to the pricing provider that bills it, or None for any
address it does not know (a company gateway, a proxy, a local server): the span's own
provider name stands then. Only a span that names no provider, or the OpenAI client, is
read so (`override`): one that names its host keeps its name. First-party API hosts are
listed, each billing at the prices of its provider file, and hosts the table has no prices
for (`forms.UNLISTED_HOSTS`), whose calls are then unknown; a proxy in front of them is not
one of them.
"""

from __future__ import annotations

import re

# Host names (lower case) of first-party APIs -> the pricing provider that bills them.
# api.moonshot.cn is left out: it bills in yuan, at other prices than moonshotai.toml's.
HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "google",
    "aiplatform.googleapis.com": "google",
    "api.mistral.ai": "mistral",
    "api.x.ai": "x-ai",
    "api.deepseek.com": "deepseek",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.moonshot.ai": "moonshotai",
    "api.perplexity.ai": "perplexity",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "openrouter.ai": "openrouter",
    # Hosts that serve other makers' models at prices of their own, which the bundled table
    # does not list (`forms.UNLISTED_HOSTS`): named, a call sent there is unknown, never the
    # maker's own API price (a review: deepseek-r1 at api.fireworks.ai priced as DeepSeek's).
    "api.fireworks.ai": "fireworks",
    "api.sambanova.ai": "sambanova",
    "api.cerebras.ai": "cerebras",
    "integrate.api.nvidia.com": "nvidia_nim",
    "api.deepinfra.com": "deepinfra",
    "api.hyperbolic.xyz": "hyperbolic",
    "api.novita.ai": "novita",
    "router.huggingface.co": "huggingface",
    "api-inference.huggingface.co": "huggingface",
    "api.replicate.com": "replicate",
    "dashscope.aliyuncs.com": "dashscope",
    "dashscope-intl.aliyuncs.com": "dashscope",
    "api.studio.nebius.ai": "nebius",
    "api.studio.nebius.com": "nebius",
    "api.siliconflow.cn": "siliconflow",
    "api.siliconflow.com": "siliconflow",
    "api.friendli.ai": "friendli",
    "api.featherless.ai": "featherless",
    "api.lambda.ai": "lambda",
    "api.lambdalabs.com": "lambda",
    "inference.baseten.co": "baseten",
}
# Hosts per customer resource (Azure) or per region (Vertex AI's "us-east5-aiplatform"),
# matched on a label boundary: ``x.openai.azure.com``, never ``xopenai.azure.com``.
SUFFIXES = (
    (".openai.azure.com", "azure"),
    (".services.ai.azure.com", "azure"),
    (".cognitiveservices.azure.com", "azure"),
    ("-aiplatform.googleapis.com", "google"),
    # watsonx.ai per region; Databricks and Snowflake per workspace or account: unlisted hosts
    (".ml.cloud.ibm.com", "ibm.watsonx.ai"),
    (".cloud.databricks.com", "databricks"),
    (".azuredatabricks.net", "databricks"),
    (".gcp.databricks.com", "databricks"),
    (".snowflakecomputing.com", "snowflake"),
)
# Bedrock's runtime endpoints (regional, FIPS, China); other amazonaws.com hosts (SageMaker
# endpoints: a model the user hosts) are not Bedrock's list prices.
BEDROCK = re.compile(r"bedrock-runtime(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")
BEDROCK_HOST = "aws"
# OpenInference's llm.provider values that name a first-party host its OpenAI
# instrumentation found in the client's base URL, each a provider name the bundled table knows.
# Only beside llm.system "openai" (the client): smolagents and haystack write llm.provider
# "openai" beside the maker's llm.system for any OpenAI-compatible server.
# Each value is the pricing provider's id, as an address gives it: one host, one name.
LLM_PROVIDER_HOSTS = {
    "azure": "azure", "anthropic": "anthropic", "cohere": "cohere", "mistralai": "mistral",
    "google": "google", "aws": "aws", "xai": "x-ai", "deepseek": "deepseek", "groq": "groq",
    "perplexity": "perplexity", "together": "together",
}  # fmt: skip
OPENAI_CLIENT = "openai"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MAX_ADDRESS = 2048  # longer values are no address: ignored
_seen: dict[str, str | None] = {}  # address -> host: one lookup per call on the hot paths
_SEEN_LIMIT = 1024  # span data can hold arbitrary values: bounded
seen = _seen.get  # for hot paths: seen(address, default)


def host_name(address: str) -> str:
    """The host name in ``address`` (a host name or a URL), lower case: what follows a
    scheme, before any path, query, fragment or port, after any user info. Written as
    string steps that ClickHouse's prelude repeats (clickhouse/prelude.py: `_host_name`).
    Only ASCII is lower-cased, as ClickHouse's lower(): no listed host has other letters, and
    Python's lower() made the Kelvin sign (U+212A) a "k"."""
    text = address.translate(_ASCII_LOWER)
    scheme = text.find("://")
    if scheme >= 0:
        text = text[scheme + 3 :]
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1]
    return text.split(":", 1)[0].rstrip(".")


def _lookup(address: str) -> str | None:
    if len(address) > MAX_ADDRESS:
        return None
    host = host_name(address)
    found = HOSTS.get(host)
    if found is not None:
        return found
    for suffix, pid in SUFFIXES:
        if host.endswith(suffix) and len(host) > len(suffix):
            return pid
    return BEDROCK_HOST if BEDROCK.fullmatch(host) else None


def endpoint_host(address: object) -> str | None:
    """The pricing provider that bills calls sent to ``address`` (`HOSTS`, `SUFFIXES`,
    `BEDROCK`), or None: not a string, or not a first-party API host. Cached."""
    if type(address) is not str:
        return None
    try:
        return _seen[address]
    except KeyError:
        pass
    host = _lookup(address)
    if len(_seen) >= _SEEN_LIMIT:
        _seen.clear()
    _seen[address] = host
    return host


def override(provider: object, llm_provider: object, address: object) -> str | None:
    """The host that billed a call (a pricing provider id), where the span names no provider
    or only the OpenAI client: the host its ``address`` names, else OpenInference's
    ``llm_provider`` beside the client (`LLM_PROVIDER_HOSTS`). None otherwise: a span that
    names its host (gcp.vertex_ai, aws.bedrock) keeps its own name."""
    if provider is not None and provider != "" and provider != OPENAI_CLIENT:
        return None
    host = endpoint_host(address)
    if host is None and provider == OPENAI_CLIENT and type(llm_provider) is str:
        host = LLM_PROVIDER_HOSTS.get(llm_provider)
    return host


def served_by(provider: object, llm_provider: object, address: object) -> object:
    """The provider a call is priced and stored under: `override`'s host, else ``provider``
    (``llm_provider`` when there is none: the last spelling ranked). Values pass as they
    came, for the caller to check."""
    host = override(provider, llm_provider, address)
    if host is not None:
        return host
    return llm_provider if provider is None or provider == "" else provider
