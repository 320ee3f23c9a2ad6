"""Other tools' price files, read to audit ours: ``otel-costattr pricing diff OTHER.json``.

Two formats: LiteLLM's ``model_prices_and_context_window.json`` (one object per key, USD per
token, ``litellm_provider``, ``mode``) and genai-prices' ``data.json`` (a list of providers,
each with ``models`` priced in USD per million tokens, ``prices`` either one set or a list of
conditional sets). Each chat model becomes a `ForeignPrice`: the id a span would report, the
provider name a span would carry, and its base rates per million tokens as exact decimals.
`compare()` resolves each through a `PriceTable` as a span would be and says whether the rates
agree; `coverage()` counts, per provider, how many resolve at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

from .model import PricingError
from .table import PriceTable

_LITELLM_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
}
_GENAI_FIELDS = {"input": "input_mtok", "output": "output_mtok", "cache_read": "cache_read_mtok",
                 "cache_write": "cache_write_mtok"}  # fmt: skip
# LiteLLM provider -> the provider name a span carries (gen_ai.provider.name).
LITELLM_PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai",
    "vertex_ai-anthropic_models": "gcp.vertex_ai", "vertex_ai-language-models": "gcp.vertex_ai",
    "vertex_ai-mistral_models": "gcp.vertex_ai", "vertex_ai-deepseek_models": "gcp.vertex_ai",
    "vertex_ai-llama_models": "gcp.vertex_ai", "bedrock": "aws.bedrock", "bedrock_converse": "aws.bedrock",
    "azure": "azure.ai.openai", "azure_ai": "azure.ai.inference", "mistral": "mistral_ai", "xai": "x_ai",
    "deepseek": "deepseek", "groq": "groq", "together_ai": "together", "openrouter": "openrouter",
    "cohere_chat": "cohere", "cohere": "cohere", "perplexity": "perplexity", "moonshot": "moonshot_ai",
}  # fmt: skip
# The providers the audit of issue 17 called major: coverage is reported for these.
MAJOR = ("openai", "anthropic", "google", "aws", "azure", "mistral", "x-ai", "deepseek", "groq",
         "together", "openrouter", "cohere", "perplexity", "moonshotai")  # fmt: skip
_AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d/")
_MILLION = Decimal(10) ** 6


class ForeignPrice(NamedTuple):
    """One model of another tool's file: its key there, the provider name and model id a span
    would carry, and its base rates in USD per million tokens (absent ones left out)."""

    key: str
    provider: str
    model: str
    rates: dict[str, Decimal]


def _decimal(value: object, scale: Decimal = Decimal(1)) -> Decimal | None:
    if isinstance(value, Mapping):  # genai-prices tiered price: the base rate
        value = value.get("base")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value)) * scale
    except InvalidOperation:
        return None
    return number.normalize() if number.is_finite() and number >= 0 else None


def _litellm(path: str, data: Mapping[str, Any]) -> list[ForeignPrice]:
    found = []
    for key, spec in data.items():
        if not isinstance(spec, Mapping) or spec.get("mode") != "chat":
            continue
        source = spec.get("litellm_provider")
        if not isinstance(source, str):
            continue
        model = key
        head, _, rest = key.partition("/")
        if rest and (head == source or head in LITELLM_PROVIDERS or head.split("-")[0] in LITELLM_PROVIDERS):
            model = _AWS_REGION.sub("", rest)
        fields = _LITELLM_FIELDS.items()
        rates = {k: v for k, f in fields if (v := _decimal(spec.get(f), _MILLION)) is not None}
        if "input" in rates and "output" in rates:
            found.append(ForeignPrice(key, LITELLM_PROVIDERS.get(source, source), model, rates))
    return found


def _genai_prices(path: str, data: list[Any]) -> list[ForeignPrice]:
    found = []
    for provider in data:
        if not isinstance(provider, Mapping) or not isinstance(provider.get("id"), str):
            raise PricingError(f"{path}: not a genai-prices data.json (a provider without an id)")
        for model in provider.get("models") or ():
            prices = model.get("prices") if isinstance(model, Mapping) else None
            if isinstance(prices, list):  # conditional prices: the last (newest) set
                prices = prices[-1].get("prices") if prices and isinstance(prices[-1], Mapping) else None
            if not isinstance(prices, Mapping) or not isinstance(model.get("id"), str):
                continue
            rates = {k: v for k, f in _GENAI_FIELDS.items() if (v := _decimal(prices.get(f))) is not None}
            if "input" in rates and "output" in rates:
                key = f"{provider['id']}/{model['id']}"
                found.append(ForeignPrice(key, provider["id"], model["id"], rates))
    return found


def read_foreign(path: str | Path) -> tuple[str, list[ForeignPrice]]:
    """The format (``litellm`` or ``genai-prices``) and the chat models of a file."""
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as e:
        raise PricingError(f"{path}: cannot read: {e.strerror or e}") from e
    except ValueError as e:
        raise PricingError(f"{path}: not JSON: {e}") from e
    except RecursionError as e:  # json recurses per nesting level: [[[[...]]]]
        raise PricingError(f"{path}: not JSON: nested too deeply") from e
    if isinstance(data, Mapping):
        return "litellm", _litellm(str(path), data)
    if isinstance(data, list):
        return "genai-prices", _genai_prices(str(path), data)
    raise PricingError(f"{path}: neither a LiteLLM price map (an object) nor genai-prices data.json (a list)")


class Difference(NamedTuple):
    """One model of the other file: where it resolves here, and each rate that differs as
    (field, ours, theirs); status is ``same``, ``differs``, ``unknown`` or ``other-provider``.
    ``ours`` is our table's own rate, None where it has none (a cache rate we do not list:
    such tokens are billed at the input rate, which is what was compared with theirs)."""

    foreign: ForeignPrice
    entry: str | None
    status: str
    fields: tuple[tuple[str, Decimal | None, Decimal], ...]


def compare(table: PriceTable, prices: Iterable[ForeignPrice], when: object = None) -> list[Difference]:
    """Each foreign model resolved as a span naming its provider would be, rates compared
    with ours in force at ``when`` (None: now). A provider the table does not know is
    ``other-provider``: resolving it would only search every provider."""
    out = []
    for price in prices:
        if table.provider_id(price.provider) is None:
            out.append(Difference(price, None, "other-provider", ()))
            continue
        entry = table.resolve(price.model, price.provider)
        if entry is None:
            out.append(Difference(price, None, "unknown", ()))
            continue
        ours = entry.price_at(when).standard.rates
        read, write = ours.cache_read, ours.cache_write  # absent: billed at the input rate
        effective = {"input": ours.input, "output": ours.output,
                     "cache_read": ours.input if read is None else read,
                     "cache_write": ours.input if write is None else write}  # fmt: skip
        fields = tuple(
            (name, getattr(ours, name), theirs)
            for name, theirs in price.rates.items()
            if effective[name] is None or effective[name].compare(theirs) != 0
        )
        out.append(Difference(price, f"{entry.provider}/{entry.id}", "differs" if fields else "same", fields))
    return out


def coverage(table: PriceTable, diffs: Iterable[Difference]) -> dict[str, tuple[int, int]]:
    """Per pricing provider of `MAJOR`: (models of the other file, how many resolve here)."""
    counts: dict[str, list[int]] = {}
    for d in diffs:
        pid = table.provider_id(d.foreign.provider)
        if pid in MAJOR:
            c = counts.setdefault(pid, [0, 0])
            c[0] += 1
            c[1] += d.status in ("same", "differs")
    return {pid: (n, ok) for pid, (n, ok) in sorted(counts.items())}
