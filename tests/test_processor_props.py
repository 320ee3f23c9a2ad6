"""Whatever the attributes and baggage hold, no exception escapes into user code, nothing
is counted as an internal error, and what is stamped is consistent."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import semconv
from otel_costattr.cost.engine import CostStatus
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import COST, COST_STATUS, PRICED_MODEL, ROLE_KEYS, SpanRole, span_role

OUR_KEYS = {COST, COST_STATUS, PRICED_MODEL, semconv.PRICING_VERSION}
KEYS = sorted(
    {
        *semconv.PROVIDER_KEYS,
        *semconv.MODEL_KEYS,
        *semconv.USAGE_KEYS,
        *semconv.CACHE_WRITE_1H_KEYS,
        *semconv.SERVICE_TIER_KEYS,
        *semconv.IDENTITY_KEYS,
        semconv.OPERATION,
        semconv.OPENINFERENCE_KIND,
        semconv.AGENT_STEP,
    }
)
OPERATIONS = ["chat", "invoke_agent", "execute_tool", "invoke_workflow", "embeddings", "LLM", "AGENT"]
MODELS = ["acme-large", "acme-large-20260101", "acme-think-2", "acme-mini", "gpt-9", "", " ACME-MINI "]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(OPERATIONS + MODELS + ["acme", "acme.ai", "aws.bedrock", "batch", "PRIORITY"]),
    st.binary(max_size=8),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), scalars, max_size=2),
)
noise = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), values, max_size=12)
# Mostly-valid model calls with a little noise on top, so every status shows up often.
plausible = st.fixed_dictionaries(
    {
        semconv.OPERATION: st.sampled_from(OPERATIONS),
        "gen_ai.request.model": st.sampled_from(MODELS),
        "gen_ai.usage.input_tokens": st.integers(0, 3 * 10**5),
        "gen_ai.usage.output_tokens": st.integers(0, 10**5),
    },
    optional={
        key: st.one_of(st.integers(0, 3 * 10**5), scalars)
        for key in (*semconv.CACHE_READ_KEYS, *semconv.CACHE_WRITE_KEYS, *semconv.REASONING_KEYS)
    },
)
attributes = st.one_of(
    noise, st.builds(lambda a, b: {**a, **b}, plausible, noise.map(lambda d: dict(list(d.items())[:2])))
)
baggage_items = st.dictionaries(st.sampled_from([*semconv.IDENTITY_KEYS, "other"]), values, max_size=4)


def build(table):
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = CostSpanProcessor(table)
    provider.add_span_processor(processor)
    return provider.get_tracer("props"), exporter, processor


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parent=attributes,
    child_start=attributes,
    child_later=attributes,
    grandchild=attributes,
    bag=baggage_items,
)
def test_arbitrary_attributes_never_raise(table, parent, child_start, child_later, grandchild, bag):
    tracer, exporter, processor = build(table)
    ctx = context.get_current()
    for key, value in bag.items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = context.attach(ctx)
    try:
        with tracer.start_as_current_span("parent", attributes=parent):
            with tracer.start_as_current_span("child", attributes=child_start) as child:
                for key, value in child_later.items():
                    child.set_attribute(key, value)
                tracer.start_span("grandchild", attributes=grandchild).end()
            child.end()  # a second end
    finally:
        context.detach(token)

    stats = processor.stats()
    assert stats["internal_errors"] == 0
    assert stats["unhooked"] == 0
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["grandchild", "child", "parent"]
    model_calls = 0
    for span in spans:
        attrs = span.attributes
        role = span_role({k: v for k, v in attrs.items() if k not in OUR_KEYS})
        if role is not SpanRole.MODEL_CALL:
            assert COST_STATUS not in attrs and COST not in attrs
            continue
        model_calls += 1
        status = attrs[COST_STATUS]
        event(f"status {status}")
        assert status in {s.value for s in CostStatus}
        if status == "priced":
            assert type(attrs[COST]) is float and math.isfinite(attrs[COST]) and attrs[COST] >= 0
            assert attrs[PRICED_MODEL] in {"acme-large", "acme-think", "acme-mini"}
        else:
            assert COST not in attrs and PRICED_MODEL not in attrs
    assert sum(stats[s.value] for s in CostStatus) == model_calls


@given(attributes)
def test_spans_without_role_keys_are_never_model_calls_or_agents(attrs):
    """What lets the processor skip a plain span with one set test."""
    if ROLE_KEYS.isdisjoint(attrs):
        assert span_role(attrs) is SpanRole.OTHER


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(baggage_items, min_size=1, max_size=5))
def test_public_hooks_called_directly_never_raise(table, bags):
    """The SDK is not the only caller: the public hooks survive odd spans and contexts too."""
    _, _, processor = build(table)
    odd_contexts = [None, context.Context(), trace.set_span_in_context(trace.INVALID_SPAN)]
    for bag, ctx in zip(bags, odd_contexts * 2, strict=False):
        for key, value in bag.items():
            ctx = baggage.set_baggage(key, value, ctx)
        processor.on_start(trace.INVALID_SPAN, ctx)  # type: ignore[arg-type]
        processor.on_end(trace.INVALID_SPAN)  # type: ignore[arg-type]
    assert processor.stats()["internal_errors"] == 0


def test_unhashable_operation_value(table):
    tracer, exporter, processor = build(table)
    tracer.start_span("s", attributes={semconv.OPERATION: {"a": 1}, "gen_ai.usage.input_tokens": 1}).end()
    assert processor.stats()["internal_errors"] == 0
