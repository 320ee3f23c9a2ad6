"""Pricers compiled per attribute shape: the processor's fast path from span to cost.

The general path (`semconv.read_call_fields` then `cost.price_call`) reads any Mapping in
any of five conventions, checks everything and never raises. On the processor's hot path that
generality cost as much as the rest of the processor put together, yet a given instrumentation
sets the same keys on every call. So for each set of call-relevant keys a span holds, a
function is compiled once that subscripts exactly the winning spelling of each field with
constant keys, checks the values inline, splits the tokens into billable buckets with the
absent ones folded away, and adds up the cost (the way `collections.namedtuple` and
`dataclasses` build their methods). Rate selection (price period, service tier, time-of-day
windows, long-context tiers) stays in `PriceTable.quote` and `cost.select_rates`, shared with
the general path.

`price_attributes` returns (entry, USD as a float) for a priced call, `UNKNOWN` for a
well-formed call to a model the table does not know, and
None for anything else: agent, tool and workflow spans, counts that are not ints in range, a
model, provider or tier that is not a non-empty string, no usage at all, a model id too long
to resolve (checked on a quote cache miss only). None sends the span
down the general path, which decides and names the problem, so the fast path can only agree
with it (tests/test_shape_pricer.py checks that it does, on arbitrary attributes).

Only keys from our own constants reach a compiled function, bound as names, never spliced
into its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..pricing import endpoints
from ..pricing.model import MAX_MODEL_ID, RATE_KEYS
from ..pricing.table import hit_of
from ..semconv import (
    CALL_KEYS,
    EXCLUSIVE_INPUT_PROVIDER,
    INPUT_KEYS,
    MODEL_OPERATIONS,
    OPENINFERENCE_KIND,
    OPERATION,
    USAGE_KEYS,
    spellings,
)
from . import billing
from .engine import MAX_TOKENS, CostStatus, select_rates

_USAGE = frozenset(USAGE_KEYS)

UNKNOWN = CostStatus.UNKNOWN_MODEL
Pricer = Callable[[Mapping[str, Any], int, Callable[..., Any], Callable[..., Any]], Any]

_COUNTS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning",
           "audio_input", "audio_output", "image_input", "image_output")  # fmt: skip
# Counts that are usage on their own (a 1h part or a modality alone is none).
_USAGE_COUNTS = frozenset({"input", "output", "cache_read", "cache_write", "reasoning"})
_TEXTS = ("model", "provider", "service_tier")
_MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})
_LIMIT = 1024  # span data can hold arbitrary keys: both caches are bounded
_MISS = object()  # an address endpoints.endpoint_host has not seen yet

# Two levels: the span's keys in order (one tuple, one lookup: what nearly every span hits),
# then, on a miss, the call-relevant keys alone, so spans whose other keys vary from call to
# call (numbered prompt messages) share one compiled function.
_by_shape: dict[tuple[str, ...], Pricer] = {}
_by_keys: dict[frozenset[str], Pricer] = {}


def price_attributes(
    attrs: dict[str, Any], ns: int, cached_quote: Callable[..., Any], quote: Callable[..., Any]
) -> Any:
    """Price a span from its attributes (a plain dict) and start time (epoch ns) with a
    table's ``cached_quote`` and ``quote``: see the module doc for what it returns. Raises
    KeyError, TypeError or RuntimeError if ``attrs`` changes meanwhile or holds unhashable
    values. The processor's hot path: it calls this very function."""
    pricer = _by_shape.get(tuple(attrs))
    if pricer is None:
        pricer = pricer_for(attrs)
    return pricer(attrs, ns, cached_quote, quote)


def pricer_for(attrs: Mapping[str, Any]) -> Pricer:
    """The compiled function for spans holding the keys ``attrs`` holds."""
    shape = tuple(attrs)
    pricer = _by_shape.get(shape)
    if pricer is None:
        keys = frozenset(CALL_KEYS.intersection(shape))
        pricer = _by_keys.get(keys)
        if pricer is None:
            pricer = remember(_by_keys, keys, compile_pricer(keys), _LIMIT)
        remember(_by_shape, shape, pricer, _LIMIT)
    return pricer


def remember(cache: dict[Any, Any], key: Any, value: Any, limit: int) -> Any:
    """``cache[key] = value`` in a cache of at most ``limit`` entries (emptied when full: the
    keys come from span data, arbitrary), and ``value``."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


def _never(attrs: Mapping[str, Any], ns: int, cached_quote: object, quote: object) -> None:
    """For key sets that cannot make a priceable model call by themselves."""
    return None


def compile_pricer(keys: frozenset[str]) -> Pricer:
    """Build the function for spans holding exactly these call-relevant keys."""
    parts = pricer_parts(keys)
    if parts is None:
        return _never
    names, body, total_input, total, _ = parts
    # hit[8], base_up_to: beyond it a long-context tier or a time-of-day window may apply.
    # int / int is correctly rounded: the float closest to the exact total.
    body.append(f"if {total_input} > hit[8]:")
    body.append(f"    rates = select_rates(hit[2], ns, {total_input})[0]")
    body.append("    ints = rates.ints")
    body.append(f"    return hit[3], ({total}) / rates.usd_divisor")
    body.append("ints = hit[4]")
    body.append(f"return hit[3], ({total}) / hit[6]")
    return build("price", "a, ns, cached_quote, quote", body, names, sorted(keys))  # type: ignore[return-value]


def build(
    name: str, params: str, body: list[str], names: dict[str, object], label: object
) -> Callable[..., Any]:
    """Compile ``def name(params)`` with ``body`` (lines), ``names`` as its globals."""
    source = f"def {name}({params}):\n    " + "\n    ".join(body) + "\n"
    exec(compile(source, f"<otel_costattr {name} {label}>", "exec"), names)  # noqa: S102
    function = names[name]
    function.__doc__ = source  # what it does, for anyone debugging
    return function  # type: ignore[return-value]


def pricer_parts(
    keys: frozenset[str], fail: str = "return None", unknown: str = "return UNKNOWN"
) -> tuple[dict[str, object], list[str], str, str, dict[str, str]] | None:
    """The pricer for spans holding exactly these call-relevant keys, as parts to build on:
    its globals, its body (span attributes ``a``, start time ``ns``, the table's
    ``cached_quote`` and ``quote`` bound as names or parameters) up to the quote ``hit``
    found and checked, the expressions of the input tokens total (compare with ``hit[8]``)
    and of the cost in rate units (``ints`` the rates), and what names each billable bucket
    after the body (`billing.python_assignments`: a variable, a count, or 0). ``fail`` is
    the statement for a span the general path must decide, ``unknown`` for a model the table
    does not know. None when these keys cannot make a priceable call by themselves."""
    spelled = spellings(keys)
    if "audio_cache_read" in spelled:
        return None  # the audio input less its cached part: the general path (read_call_fields)
    # Anthropic's raw field names fill each slot the conventions' names leave empty (see
    # read_call_fields); only raw names: the input excludes the cache.
    exclusive = "cache_read" not in spelled and "cache_write" not in spelled
    raw = False
    for name in ("cache_read", "cache_write"):
        if name not in spelled and f"raw_{name}" in spelled:
            spelled[name] = spelled[f"raw_{name}"]
            raw = True
    if raw and exclusive and "request_type" in spelled:
        return None  # old OpenLLMetry's mark beside raw names: read_call_fields weighs its value
    exclusive = exclusive and raw
    if "provider" not in spelled and "llm_provider" in spelled:
        spelled["provider"] = spelled.pop("llm_provider")  # the last spelling ranked, alone
    has = {name for name in _COUNTS if name in spelled}
    if not has & _USAGE_COUNTS:
        return None  # no usage (a 1h part alone is none): the general path says no_usage
    if OPERATION not in keys and OPENINFERENCE_KIND not in keys and _USAGE.isdisjoint(keys):
        return None  # span_role: with neither, only usage proper makes a model call

    names: dict[str, object] = {
        "MAX": MAX_TOKENS,
        "MAX_ID": MAX_MODEL_ID,
        "MODEL_OPS": MODEL_OPERATIONS,
        "KINDS": _MODEL_KINDS,
        "UNKNOWN": UNKNOWN,
        "select_rates": select_rates,
        "hit_of": hit_of,
        "OPENAI": endpoints.OPENAI_CLIENT,
        "LLM_HOSTS": endpoints.LLM_PROVIDER_HOSTS,
        "SEEN": endpoints.seen,
        "endpoint_host": endpoints.endpoint_host,
        "MISS": _MISS,
    }

    def bind(key: str) -> str:
        name = f"K{len(names)}"
        names[name] = key
        return name

    body = []
    # The role, as span_role decides it: any operation or OpenInference kind present must
    # say "model call"; with neither, usage makes it one.
    for key, allowed in ((OPERATION, "MODEL_OPS"), (OPENINFERENCE_KIND, "KINDS")):
        if key in keys:
            body.append(f"if a[{bind(key)}] not in {allowed}: {fail}")
    checks = []
    for name in (*_COUNTS, *_TEXTS):
        key = spelled.get(name)
        if key is None:
            if name in _TEXTS:
                body.append(f"{name} = None")
            continue
        # Counts are named as Usage names them, the names billing.BUCKETS speaks of.
        var = f"{name}_tokens" if name in _COUNTS else name
        body.append(f"{var} = a[{bind(key)}]")
        if name in _COUNTS:
            checks.append(f"type({var}) is not int or {var} < 0 or {var} > MAX")
        else:
            checks.append(f"type({var}) is not str or not {var}")
    if "address" in spelled:  # a text, or the general path reads the next spelling
        body.append(f"address = a[{bind(spelled['address'])}]")
        checks.append("type(address) is not str or not address")
    if "cache_write_1h" in has:  # Usage.problem's rule, which billing.BUCKETS relies on
        checks.append(f"cache_write_1h_tokens > {'cache_write_tokens' if 'cache_write' in has else '0'}")
    body.append("if (" + "\n        or ".join(checks) + f"):\n        {fail}")
    if (
        not exclusive
        and spelled.get("input") == INPUT_KEYS[0]
        and "provider" in spelled
        and not {"cache_read", "cache_write"}.isdisjoint(has)
    ):
        # Bedrock's input count beside cache counts excludes them (semconv.read_call_fields)
        body.append(f"if provider == {bind(EXCLUSIVE_INPUT_PROVIDER)}: {fail}")
    if "service_tier" in spelled:
        body.append("service_tier = service_tier.lower()")
    # The host that billed the call, where the span names it (endpoints.override's rule): for
    # a span naming no provider or the OpenAI client only, its address, else llm.provider.
    if "address" in spelled or "llm_provider" in spelled:
        body.append("if provider is None or provider == OPENAI:")
        body.append("    host = None")
        if "address" in spelled:
            body.append("    host = SEEN(address, MISS)")
            body.append("    if host is MISS: host = endpoint_host(address)")
        if "llm_provider" in spelled:
            body.append("    if host is None and provider == OPENAI:")
            body.append(f"        llm_provider = a[{bind(spelled['llm_provider'])}]")
            body.append("        if type(llm_provider) is str: host = LLM_HOSTS.get(llm_provider)")
        body.append("    if host is not None: provider = host")
    # PriceTable.quote, without its call when the cache answers; what is read of a quote is
    # read from the cache's plain tuple (pricing.table.QuoteHit), one instruction an item.
    body.append("hit = cached_quote((model, provider, service_tier))")
    body.append("if hit is None or ns < hit[0] or ns >= hit[1]:")
    if "model" in spelled:  # an over-long id is never cached: checked on a miss only
        body.append(f"    if len(model) > MAX_ID: {fail}")
    body.append("    hit = hit_of(quote(model, provider, service_tier, ns))")
    body.append(f"if hit[2] is None: {unknown}")

    # The billable buckets and their rates, generated from the one rule (billing.BUCKETS) with
    # the counts this shape lacks folded away; raw Anthropic names mean the input excludes the
    # cache, and no convention reports whether output includes reasoning: inferred.
    flags = {"input_includes_cache": False if exclusive else None, "output_includes_reasoning": None}
    exprs = billing.bucket_expressions(has={f"{n}_tokens" for n in has}, flags=flags)
    lines, buckets = billing.python_assignments(exprs)
    body += lines
    total_input = billing.total_input(buckets)
    # Each rate read where used: a subscript of a plain tuple costs less than unpacking ten.
    rate_of = {k: f"ints[{i}]" for i, k in enumerate(RATE_KEYS)}
    terms = [t for part in billing.cost_terms(buckets, rate_of.__getitem__).values() for t in part]
    return names, body, total_input, " + ".join(terms) or "0", buckets
