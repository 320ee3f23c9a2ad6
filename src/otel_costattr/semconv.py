"""How GenAI spans say what they are: attribute names, old and new, and reading them. Which
of them hold message content is the content rule's business (``spans/content.py``).

The GenAI conventions are still in development and producers disagree (current semconv,
older semconv, hand-written Anthropic-style names, OpenLLMetry, OpenInference). Every
spelling read lives here, once, so the processor and the exporter read spans the same way.
Constants are our own strings: the semconv package marks its GenAI constants deprecated.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .cost.engine import Usage
from .pricing.endpoints import override, served_by
from .pricing.regions import SPAN_REGION_KEYS

# What we stamp (see README: "Attributes").
COST = "gen_ai.usage.cost"
COST_STATUS = "costattr.status"
# The status of a model-call span describing an API call another span already priced (the
# same gen_ai.response.id): two instrumentations of one call. It has no cost.
DUPLICATE = "duplicate"
RESPONSE_ID = "gen_ai.response.id"
PRICING_VERSION = "costattr.pricing_version"
PRICED_MODEL = "costattr.model"
# Where the priced model came from when it is not the response model (issue 17): "request",
# an unknown newer snapshot of a known request model, priced at the request model's price.
MODEL_SOURCE = "costattr.model_source"
MODEL_SOURCE_REQUEST = "request"
# True on a call whose model name may have been cut at the span's attribute value length
# limit (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT): its status is unknown_model, and no store prices
# the cut name (gpt-4o-mini cut at 6 is gpt-4o).
MODEL_CUT = "costattr.model_cut"
# The region whose rates priced the call (pricing/_regions.toml); absent: the list price.
REGION = "costattr.region"
REQUEST_MODEL = "gen_ai.request.model"
# A cost the provider reported wins (cost/reported.py): then our own figure is kept beside it.
COST_SOURCE = "costattr.cost_source"
COST_SOURCE_PROVIDER = "provider"
COMPUTED_COST = "costattr.computed_cost"
# The proposed cost attributes (semantic-conventions-genai PR 443), written beside
# gen_ai.usage.cost when OTEL_COSTATTR_PROPOSED_COST_ATTRIBUTES is on. Source: provider | local.
PROPOSED_COST_AMOUNT = "gen_ai.usage.cost.amount"
PROPOSED_COST_CURRENCY = "gen_ai.usage.cost.currency"
PROPOSED_COST_SOURCE = "gen_ai.usage.cost.source"
PROPOSED_SOURCE_LOCAL = "local"

OPERATION = "gen_ai.operation.name"
OPENINFERENCE_KIND = "openinference.span.kind"
# OpenInference's agent spans (openinference.span.kind AGENT, e.g. its openai-agents
# instrumentation) name the agent here: the agent_name column reads it there, and only there.
OPENINFERENCE_AGENT_NAME = "agent.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
AGENT_VERSION = "gen_ai.agent.version"
AGENT_STEP = "gen_ai.agent.step"
WORKFLOW_NAME = "gen_ai.workflow.name"
CONVERSATION_ID = "gen_ai.conversation.id"
TOOL_NAME = "gen_ai.tool.name"
FEATURE = "app.feature"

# Identity a child inherits from its ancestors (and from W3C baggage) by default.
IDENTITY_KEYS = (FEATURE, AGENT_NAME, AGENT_VERSION, CONVERSATION_ID)

# OpenInference's llm.system before its llm.provider: llm.provider is the host for some of
# its instrumentations (bedrock: "aws") but the client class for others (smolagents and
# haystack write "openai" for any OpenAI-compatible endpoint, Gemini's or OpenRouter's, while
# llm.system names the model's maker): ranked first, it made such calls unknown_model (a
# review). The price of the first: a Claude call on a Bedrock profile misses Bedrock's 10%.
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.system", "llm.provider")
# The endpoint a call was sent to, which names the host that billed it where the provider
# names only the client (the OpenAI SDK against Groq, OpenRouter, Azure...): a host name
# (openai-v2 and most instrumentations), else a base URL (OpenLLMetry). See pricing/endpoints.py.
ADDRESS_KEYS = ("server.address", "gen_ai.openai.api_base")
# Response model first: it is what was billed (a dated snapshot of the requested alias).
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "embedding.model_name")
# The stored response_model, first spelling present: OpenInference names the model in
# llm.model_name, and an embedding's in embedding.model_name.
RESPONSE_MODEL_KEYS = ("gen_ai.response.model", "llm.model_name", "embedding.model_name")
INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
# pydantic-ai 1.x writes the cache, audio and reasoning counts under gen_ai.usage.details.
# (its input count includes the cache, as the conventions' does); 2.x uses the names above.
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.details.cache_read_tokens",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.details.cache_write_tokens",
)
# Anthropic's raw response field names. Spans that use them copied the raw usage, where
# input_tokens is the uncached remainder: their input is exclusive of the cache counts.
ANTHROPIC_CACHE_READ = "gen_ai.usage.cache_read_input_tokens"
ANTHROPIC_CACHE_WRITE = "gen_ai.usage.cache_creation_input_tokens"
# OpenLLMetry's mark on every model-call span it makes. Up to 0.53 it wrote the raw names
# above beside an input count with the cache summed in (its Anthropic instrumentation adds
# them; OpenAI's prompt_tokens holds them): beside this mark, the raw names' input is
# inferred, not exclusive (read as exclusive, the cache was billed twice: a review, +53%).
OPENLLMETRY_REQUEST_TYPE = "llm.request.type"
# Bedrock's usage (Converse, InvokeModel) counts inputTokens without the cache, as Anthropic's
# raw API does, and the instrumentations that name the provider so (the official botocore one
# in gen_ai.system, OpenLLMetry's bedrock one in gen_ai.provider.name) copy that count into
# the conventions' input key, the cache counts into the conventions' cache keys: beside this
# provider, that input key's count is exclusive. Read as inclusive, the cache was taken off
# it a second time (a review: a 3,000-token call writing 2,000 to the cache billed $0.015
# for $0.021). OpenInference's bedrock spans (llm.token_count.prompt) sum the cache in.
EXCLUSIVE_INPUT_PROVIDER = "aws.bedrock"
CACHE_WRITE_1H_KEYS = (
    "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",  # the anthropic SDK's own spans
)
REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
    "gen_ai.usage.details.reasoning_tokens",
)
# Per-modality parts of the input and output counts (opentelemetry-util-genai 1.3): priced at
# the model's audio and image rates where it has them. Text is what remains: never read.
# OpenInference's openai and google-genai instrumentations write theirs under
# llm.token_count.*_details (not read before: a review saw their audio billed at the text
# rate, 88% short).
AUDIO_INPUT_KEYS = (
    "gen_ai.usage.audio.input_tokens",
    "gen_ai.usage.details.input_audio_tokens",
    "llm.token_count.prompt_details.audio",
)
AUDIO_OUTPUT_KEYS = (
    "gen_ai.usage.audio.output_tokens",
    "gen_ai.usage.details.output_audio_tokens",
    "llm.token_count.completion_details.audio",
)
# The cached part of the audio input (util-genai 1.3's google-genai spans, pydantic-ai 1.x),
# within both the audio input and the cache read counts: it bills as a cache read (the table
# has no cached-audio rate), so the audio input is read without it (`_uncached_audio`);
# counted at the audio rate as well it was billed twice (a review: $0.0949 for $0.0179).
AUDIO_CACHE_READ_KEYS = (
    "gen_ai.usage.audio.cache_read.input_tokens",
    "gen_ai.usage.details.cache_audio_read_tokens",
)
IMAGE_INPUT_KEYS = ("gen_ai.usage.image.input_tokens",)
IMAGE_OUTPUT_KEYS = ("gen_ai.usage.image.output_tokens",)
# The service tier actually applied wins over the one requested.
SERVICE_TIER_KEYS = (
    "gen_ai.openai.response.service_tier",
    "openai.response.service_tier",
    "anthropic.response.service_tier",  # the anthropic SDK's own spans: standard/priority/batch
    "gen_ai.response.service_tier",
    "gen_ai.request.service_tier",
    "gen_ai.openai.request.service_tier",
    "openai.request.service_tier",
)

USAGE_KEYS = (
    *INPUT_KEYS,
    *OUTPUT_KEYS,
    *CACHE_READ_KEYS,
    *CACHE_WRITE_KEYS,
    ANTHROPIC_CACHE_READ,
    ANTHROPIC_CACHE_WRITE,
    *REASONING_KEYS,
)
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
TOOL_OPERATIONS = frozenset({"execute_tool"})
WORKFLOW_OPERATIONS = frozenset({"invoke_workflow"})

# Any of these keys makes a span worth a closer look; a span with none is not GenAI at all.
GENAI_KEYS = frozenset({OPERATION, OPENINFERENCE_KIND, "llm.model_name", *USAGE_KEYS, *IDENTITY_KEYS})


class SpanRole(str, enum.Enum):
    """What a span is, for attribution."""

    MODEL_CALL = "model_call"
    DUPLICATE_CALL = "duplicate_call"  # a model call already priced through another span
    AGENT = "agent"
    TOOL = "tool"
    WORKFLOW = "workflow"
    OTHER = "other"


# A span holding none of these is neither a model call nor an agent, tool or workflow
# (span_role -> OTHER): the cheap test that lets plain spans through untouched.
ROLE_KEYS = frozenset({OPERATION, OPENINFERENCE_KIND, "llm.model_name", *USAGE_KEYS})


# What the operation name or the OpenInference span kind says a span is, and which says
# it louder when they disagree (an agent span may also name a model: it stays an agent).
_ROLE_BY_OPERATION = {
    **dict.fromkeys(AGENT_OPERATIONS, SpanRole.AGENT),
    **dict.fromkeys(TOOL_OPERATIONS, SpanRole.TOOL),
    **dict.fromkeys(WORKFLOW_OPERATIONS, SpanRole.WORKFLOW),
    **dict.fromkeys(MODEL_OPERATIONS, SpanRole.MODEL_CALL),
}
_ROLE_BY_OPENINFERENCE_KIND = {
    "AGENT": SpanRole.AGENT,
    "TOOL": SpanRole.TOOL,
    "CHAIN": SpanRole.WORKFLOW,
    "LLM": SpanRole.MODEL_CALL,
    "EMBEDDING": SpanRole.MODEL_CALL,
}
_ROLE_PRECEDENCE = (SpanRole.AGENT, SpanRole.TOOL, SpanRole.WORKFLOW, SpanRole.MODEL_CALL)


def span_role(attrs: Mapping[str, Any]) -> SpanRole:
    """Classify a span by its attributes alone, never by its name or kind.

    Agent and workflow spans may carry the summed usage of their children (the conventions
    recommend it), so they are never model calls, whatever usage they hold.
    """
    # Table lookups rather than an if chain: this runs at the end of every GenAI span.
    op = attrs.get(OPERATION)
    role = _ROLE_BY_OPERATION.get(op) if type(op) is str else None
    kind = attrs.get(OPENINFERENCE_KIND)
    if type(kind) is str:
        by_kind = _ROLE_BY_OPENINFERENCE_KIND.get(kind)
        if role is None or (
            by_kind is not None and _ROLE_PRECEDENCE.index(by_kind) < _ROLE_PRECEDENCE.index(role)
        ):
            role = by_kind
    if role is None and ("llm.model_name" in attrs or not _USAGE_KEY_SET.isdisjoint(attrs)):
        role = SpanRole.MODEL_CALL
    if role is SpanRole.MODEL_CALL and attrs.get(COST_STATUS) == DUPLICATE:
        return SpanRole.DUPLICATE_CALL
    return SpanRole.OTHER if role is None else role


_USAGE_KEY_SET = frozenset(USAGE_KEYS)

# Every attribute read_model_call looks at -> (slot, rank): in each slot, the lowest rank
# present with a value (not None) wins.
_SLOTS = (
    ("input", INPUT_KEYS),
    ("output", OUTPUT_KEYS),
    ("cache_read", CACHE_READ_KEYS),
    ("cache_write", CACHE_WRITE_KEYS),
    ("raw_cache_read", (ANTHROPIC_CACHE_READ,)),
    ("raw_cache_write", (ANTHROPIC_CACHE_WRITE,)),
    ("cache_write_1h", CACHE_WRITE_1H_KEYS),
    ("reasoning", REASONING_KEYS),
    ("model", MODEL_KEYS),
    ("provider", PROVIDER_KEYS[:-1]),
    ("service_tier", SERVICE_TIER_KEYS),
    ("audio_input", AUDIO_INPUT_KEYS),
    ("audio_output", AUDIO_OUTPUT_KEYS),
    ("image_input", IMAGE_INPUT_KEYS),
    ("image_output", IMAGE_OUTPUT_KEYS),
    ("audio_cache_read", AUDIO_CACHE_READ_KEYS),
    ("request_type", (OPENLLMETRY_REQUEST_TYPE,)),
    # llm.provider, ranked last of PROVIDER_KEYS, read apart: beside llm.system "openai" it
    # may name the host (`endpoints.served_by`).
    ("llm_provider", PROVIDER_KEYS[-1:]),
    ("address", ADDRESS_KEYS),
)
_INDEX = {key: (slot, rank) for slot, (_, keys) in enumerate(_SLOTS) for rank, key in enumerate(keys)}
(_IN, _OUT, _READ, _WRITE, _RAW_READ, _RAW_WRITE, _WRITE_1H, _REASON, _MODEL, _PROVIDER, _TIER) = range(11)
_MODALITIES = slice(11, 15)  # audio and image, input and output: the last Usage fields
_AUDIO_IN, _AUDIO_CACHE, _SUMMED, _LLM_PROVIDER, _ADDRESS = 11, 15, 16, 17, 18
_TEXT_SLOTS = frozenset((_MODEL, _PROVIDER, _TIER, _LLM_PROVIDER, _ADDRESS))
_EMPTY_SLOTS = (None,) * len(_SLOTS)
_UNRANKED = (99,) * len(_SLOTS)


def _best_ranked(items: Iterable[tuple[str, Any]]) -> list[Any]:
    """Slot by slot, the value of the lowest-ranked spelling present and not None (nor, for
    model, provider and tier, empty: an empty response model leaves the request model)."""
    found = list(_EMPTY_SLOTS)
    ranks = list(_UNRANKED)
    index = _INDEX
    for key, value in items:
        hit = index.get(key)
        if hit is not None and value is not None:
            slot, rank = hit
            if value == "" and slot in _TEXT_SLOTS:
                continue
            if rank < ranks[slot]:
                found[slot] = value
                ranks[slot] = rank
    return found


FIELDS = tuple(name for name, _ in _SLOTS)
# Every key that can change how a span is classified or read.
CALL_KEYS = frozenset(_INDEX) | ROLE_KEYS


# What an identity key may not be: an attribute saying what a call was or cost.
CALL_KEY_REFUSED = (
    "says what a model call was or cost (usage, model, provider, host, our stamps), not who made it:"
    " a child inheriting it would be priced from its parent's"
)
_CALL_PREFIXES = ("gen_ai.usage.", "llm.token_count.", "llm.cost.", "costattr.")


def describes_a_call(name: str) -> bool:
    """Whether attribute ``name`` says what a model call was or cost: its role, model,
    provider, host, region (a regional price), usage, service tier, response id, step, a
    reported cost or one of our stamps. Never an identity key: copied onto a child, a
    parent's 50,000 input tokens were billed to its call, and its model priced a call that
    reported none (a review)."""
    return (
        name in CALL_KEYS
        or name in (RESPONSE_ID, AGENT_STEP, *SPAN_REGION_KEYS)
        or name.startswith(_CALL_PREFIXES)
    )


def spellings(keys: Iterable[str]) -> dict[str, str]:
    """For a span holding ``keys``, the attribute each field of `FIELDS` is read from (fields
    it has no key for are left out): `read_call_fields`' precedence, when no value is None."""
    winners = _best_ranked((key, key) for key in keys)
    return {name: key for name, key in zip(FIELDS, winners, strict=True) if key is not None}


# The keys a span holds, in order -> which key each slot reads (_ABSENT: none), and the slots
# where two spellings are present (a None value in the first must fall through to the next,
# which only _best_ranked does). One instrumentation sets the same keys on every call, so a
# span's shape is nearly always known: one C-level lookup per slot instead of a Python-level
# step per attribute (even with a lookup in this cache, about as fast at 10 attributes,
# twice as fast at 25). Bounded: span data can hold arbitrary keys.
_PLANS: dict[tuple[str, ...], tuple[tuple[object, ...], tuple[int, ...]]] = {}
_PLAN_LIMIT = 1024
_ABSENT = object()  # a key no Mapping of attributes holds: .get() gives None


def _plan(shape: tuple[str, ...]) -> tuple[tuple[object, ...], tuple[int, ...]]:
    # The same ranking as for values, run on the keys themselves: which spelling wins.
    keys = tuple(_ABSENT if key is None else key for key in _best_ranked(zip(shape, shape, strict=True)))
    slots = [_INDEX[key][0] for key in shape if key in _INDEX]
    contested = tuple(sorted({slot for slot in slots if slots.count(slot) > 1}))
    if len(_PLANS) >= _PLAN_LIMIT:
        _PLANS.clear()
    _PLANS[shape] = keys, contested
    return keys, contested


def _uncached_audio(found: Sequence[Any]) -> list[Any]:
    """``found`` with the audio input count less its cached part (`AUDIO_CACHE_READ_KEYS`),
    which the cache read count bills. Only when both are counts and the cached part is
    within the audio input (otherwise they are read as they came: a producer reporting the
    audio input without its cache). A cached part that is no count (text, a bool, negative)
    takes the audio input's place, so that the call is invalid_usage: ignored, the audio was
    billed twice and the call said priced (a review)."""
    found = list(found)
    audio, cached = _count(found[_AUDIO_IN]), _count(found[_AUDIO_CACHE])
    if type(cached) is not int or cached < 0:
        found[_AUDIO_IN] = cached
    elif type(audio) is int and cached <= audio:
        found[_AUDIO_IN] = audio - cached
    return found


def _count(value: Any) -> Any:
    """A token count as an int when it is one; otherwise the value as it came, so that
    `Usage.problem()` can name it (strings, bools, NaN, fractions are invalid usage)."""
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


# Keys beside which the provider a row stores may be the host that billed the call.
ENDPOINT_KEYS = frozenset((*ADDRESS_KEYS, PROVIDER_KEYS[-1]))


def stored_provider(attrs: Mapping[str, Any], provider: Any) -> Any:
    """The provider a row stores for a span whose provider attribute (first spelling not
    None) is ``provider``: the host that billed the call where the span names it apart
    (`endpoints.served_by`, as `read_call_fields` prices it), else ``provider``. A rule to
    reprice by the stored provider finds the entry the call was priced at."""
    address = next((v for k in ADDRESS_KEYS if (v := attrs.get(k)) is not None and v != ""), None)
    # The provider read_call_fields weighs: the first spelling before llm.provider, not empty.
    named = next((v for k in PROVIDER_KEYS[:-1] if (v := attrs.get(k)) is not None and v != ""), None)
    host = override(named, attrs.get(PROVIDER_KEYS[-1]), address)
    if host is not None:
        return host
    if provider == "":  # an empty spelling is none, as the price reads it (and ClickHouse's text)
        return next((v for k in PROVIDER_KEYS if (v := attrs.get(k)) is not None and v != ""), provider)
    return provider


class ModelCall(NamedTuple):
    """What a model-call span says about itself: model, provider, usage, service tier."""

    model: str | None
    provider: str | None
    usage: Usage
    service_tier: str | None


_new_tuple = tuple.__new__


def read_model_call(attrs: Mapping[str, Any]) -> ModelCall:
    """Read model, provider, usage and service tier from a span's attributes, whichever
    convention the producer followed. Never raises."""
    model, provider, tier, counts = read_call_fields(attrs)
    # tuple.__new__ is what the NamedTuple constructors call once they have filled in the
    # defaults: every field is given here, so skip their Python-level __new__.
    return _new_tuple(ModelCall, (model, provider, _new_tuple(Usage, counts), tier))


def read_call_fields(attrs: Mapping[str, Any]) -> tuple[Any, ...]:
    """`read_model_call` without the objects, for the processor's hot path: (model, provider,
    service_tier, the `Usage` fields in a plain tuple), as `cost.price_call` takes them.
    Never raises."""
    found: Sequence[Any]
    if type(attrs) is dict:  # other Mappings may answer .get() in Python: one pass is cheaper
        shape = tuple(attrs)
        try:
            keys, contested = _PLANS[shape]
        except KeyError:
            keys, contested = _plan(shape)
        found = tuple(map(attrs.get, keys))
        for slot in contested:
            if found[slot] is None or found[slot] == "":
                found = _best_ranked(attrs.items())
                break
    else:
        found = _best_ranked(attrs.items())
    read = found[_READ]
    write = found[_WRITE]
    inclusive = None
    raw_read, raw_write = found[_RAW_READ], found[_RAW_WRITE]
    if raw_read is not None or raw_write is not None:
        # Anthropic's raw field names fill each slot the conventions' names leave empty. Only
        # raw names: the span copied raw usage, whose input is exclusive (OpenLLMetry's up to
        # 0.53 summed: OPENLLMETRY_REQUEST_TYPE); a mix: inferred.
        if read is None and write is None and (found[_SUMMED] is None or found[_SUMMED] == ""):
            inclusive = False  # an empty mark is none, as ClickHouse's text reads it
        if read is None:
            read = raw_read
        if write is None:
            write = raw_write
    if (
        found[_PROVIDER] == EXCLUSIVE_INPUT_PROVIDER
        and inclusive is None
        and (read is not None or write is not None)
        and attrs.get(INPUT_KEYS[0]) is not None
    ):
        inclusive = False  # Bedrock's inputTokens, copied as it came
    inp, out, write_1h, reasoning = found[_IN], found[_OUT], found[_WRITE_1H], found[_REASON]
    if found[_AUDIO_CACHE] is not None:
        found = _uncached_audio(found)
    model, tier = found[_MODEL], found[_TIER]
    provider = served_by(found[_PROVIDER], found[_LLM_PROVIDER], found[_ADDRESS])
    # _count only changes floats: everything else is passed as it came.
    counts = (
        inp if type(inp) is not float else _count(inp),
        out if type(out) is not float else _count(out),
        read if type(read) is not float else _count(read),
        write if type(write) is not float else _count(write),
        write_1h if type(write_1h) is not float else _count(write_1h),
        reasoning if type(reasoning) is not float else _count(reasoning),
        inclusive,
        None,  # output_includes_reasoning: no convention reports it
        *(v if type(v) is not float else _count(v) for v in found[_MODALITIES]),
    )
    return (
        model if type(model) is str and model else None,
        provider if type(provider) is str and provider else None,
        tier.lower() if type(tier) is str and tier else None,
        counts,
    )
