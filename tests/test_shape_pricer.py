"""The processor's compiled fast path (cost/compiled.py) agrees with the general path
(read_call_fields + price_call) on every span it answers for, and answers for the shapes real
producers emit."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from otel_costattr import semconv
from otel_costattr.cost import compiled
from otel_costattr.cost.compiled import UNKNOWN, price_attributes, pricer_for
from otel_costattr.cost.engine import CostStatus, price_call, usd_float
from otel_costattr.semconv import SpanRole, read_call_fields, span_role

CALL_KEYS = sorted(semconv.CALL_KEYS)
OTHER_KEYS = ["gen_ai.response.id", "llm.input_messages.0.message.content", "http.route"]
MODELS = [
    "acme-large",
    "acme-large-20260101",
    "ACME-LARGE",
    "acme-think-2",
    "acme-mini",
    "acme-peak",
    "",
    "gpt-9",
]
TEXTS = ["chat", "embeddings", "invoke_agent", "execute_tool", "invoke_workflow", "frobnicate"]
TEXTS += ["LLM", "EMBEDDING", "AGENT", "TOOL", "CHAIN", "acme", "acme.ai", "openai", "batch", "BATCH", "flex"]
TEXTS += ["aws.bedrock"]  # its conventions' input count excludes the cache (semconv)
# Endpoints (server.address, a base URL) and OpenInference's llm.provider: the host that billed.
TEXTS += ["api.groq.com", "https://openrouter.ai/api/v1", "x.openai.azure.com", "groq", "example.invalid"]
# Across the fixture's price change (2026-06-01) and through acme-peak's time-of-day windows.
STARTS = [
    int(dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 6, 1, 0, 15, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
]

counts = st.one_of(
    st.integers(0, 300_000),
    st.sampled_from([0, 1, 199_999, 200_000, 200_001, 100_000_000, 100_000_001, -1]),
    st.floats(allow_nan=True),
    st.booleans(),
)
values = st.one_of(counts, st.sampled_from(MODELS + TEXTS), st.none(), st.tuples(st.integers()))
attributes = st.dictionaries(st.sampled_from(CALL_KEYS + OTHER_KEYS), values, max_size=14)


def general(table, attrs, ns):
    """What the general path says: None for a span that is not a model call."""
    if span_role(attrs) is not SpanRole.MODEL_CALL:
        return None
    model, provider, tier, usage = read_call_fields(attrs)
    status, entry, parts, scale, _, _ = price_call(table, ns, model, provider, tier, usage)
    return status if parts is None else (entry, usd_float(parts, scale))


def fast(table, attrs, ns):
    return price_attributes(attrs, ns, table.cached_quote, table.quote)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=attributes, ns=st.sampled_from(STARTS))
def test_fast_path_agrees_with_the_general_path(table, attrs, ns):
    try:
        found = fast(table, attrs, ns)
    except TypeError:  # unhashable values: the processor takes the general path
        return
    expected = general(table, attrs, ns)
    if found is None:
        return  # the general path decides: nothing claimed
    event("fast path answered")
    if found is UNKNOWN:
        assert expected is CostStatus.UNKNOWN_MODEL
    else:
        assert expected == found


SHAPES = {
    "current semconv, cache inclusive": {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "acme",
        "gen_ai.request.model": "acme-large",
        "gen_ai.response.model": "acme-large-20260101",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 150,
        "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens": 50,
    },
    "raw Anthropic names, cache exclusive": {
        "gen_ai.system": "acme",
        "gen_ai.request.model": "acme-large",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read_input_tokens": 1000,
        "gen_ai.usage.cache_creation_input_tokens": 150,
    },
    "older semconv with reasoning and a service tier": {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "acme",
        "gen_ai.request.model": "acme-think-2",
        "gen_ai.usage.prompt_tokens": 100,
        "gen_ai.usage.completion_tokens": 500,
        "gen_ai.usage.reasoning_tokens": 400,
        "gen_ai.openai.response.service_tier": "Batch",
    },
    "OpenInference": {
        "openinference.span.kind": "LLM",
        "llm.model_name": "acme-mini",
        "llm.provider": "acme",
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 10,
        "llm.input_messages.0.message.content": "hi",
    },
    "long context, above the tier": {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "acme-large",
        "gen_ai.usage.input_tokens": 250_000,
        "gen_ai.usage.output_tokens": 1,
    },
    "time-of-day prices": {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "acme-peak",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 10,
    },
}


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("ns", STARTS)
def test_what_producers_emit_takes_the_fast_path(table, name, ns):
    attrs = SHAPES[name]
    found = fast(table, attrs, ns)
    assert type(found) is tuple, found
    assert found == general(table, attrs, ns)


def test_unknown_model_and_non_calls(table):
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-9", "gen_ai.usage.input_tokens": 1}
    assert fast(table, call, STARTS[0]) is UNKNOWN
    for op in ("invoke_agent", "execute_tool", "invoke_workflow"):
        assert fast(table, {**call, "gen_ai.operation.name": op}, STARTS[0]) is None
    assert fast(table, {**call, "gen_ai.usage.input_tokens": -1}, STARTS[0]) is None  # invalid: general
    assert (
        fast(table, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-mini"}, STARTS[0]) is None
    )


def test_other_keys_do_not_multiply_compiled_functions(table):
    base = SHAPES["OpenInference"]
    pricers = {
        pricer_for({**base, **{f"llm.input_messages.{i}.message.content": "m" for i in range(n)}})
        for n in range(1, 30)
    }
    assert len(pricers) == 1


def test_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(compiled, "_LIMIT", 8)
    compiled._by_shape.clear()
    compiled._by_keys.clear()
    for n in range(20):
        pricer_for({"gen_ai.usage.input_tokens": 1, f"other.{n}": 1, CALL_KEYS[n]: 1})
    assert 0 < len(compiled._by_shape) <= 8
    assert 0 < len(compiled._by_keys) <= 8


def test_span_keys_never_reach_the_compiled_source():
    source = pricer_for(SHAPES["current semconv, cache inclusive"]).__doc__
    assert "def price(" in source and "gen_ai" not in source and "acme" not in source
