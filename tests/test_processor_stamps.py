"""The stamp functions compiled per shape (sdk/stamps.py) stamp what the processor's general
end hook stamps, on arbitrary attributes, and the seam calls them for the spans of a shape
seen before."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_shape_pricer import MODELS, OTHER_KEYS, STARTS, values

from otel_costattr import semconv
from otel_costattr.cost.reported import REPORTED_COST_KEYS
from otel_costattr.sdk import seam
from otel_costattr.sdk.calls import Steps
from otel_costattr.sdk.processor import _AGENT, CostSpanProcessor
from otel_costattr.sdk.stamps import STAMP_KEYS

KEYS = sorted(STAMP_KEYS | set(REPORTED_COST_KEYS)) + OTHER_KEYS
noise = st.dictionaries(st.sampled_from(KEYS), st.one_of(values, st.floats(0, 5)), max_size=14)
# Mostly well-formed calls, so the compiled functions' priced case is drawn often.
tokens = st.one_of(st.integers(0, 300_000), st.sampled_from([0, 199_999, 200_000, 200_001]))
plausible = st.fixed_dictionaries(
    {
        semconv.OPERATION: st.sampled_from(["chat", "embeddings", "text_completion", "invoke_agent"]),
        "gen_ai.request.model": st.sampled_from(MODELS),
        "gen_ai.usage.input_tokens": tokens,
        "gen_ai.usage.output_tokens": tokens,
    },
    optional={
        "gen_ai.provider.name": st.sampled_from(["acme", "acme.ai", "openai"]),
        "gen_ai.response.model": st.sampled_from(MODELS),
        "gen_ai.openai.response.service_tier": st.sampled_from(["batch", "Flex", "default"]),
        **{
            key: tokens
            for key in (*semconv.CACHE_READ_KEYS, *semconv.CACHE_WRITE_KEYS, *semconv.REASONING_KEYS)
        },
    },
)
attributes = st.one_of(
    noise, st.builds(lambda a, b: {**a, **b}, plausible, noise.map(lambda d: dict(list(d.items())[:2])))
)
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
}


def span_at(ns: int, in_agent: bool):
    """A real SDK span started at ``ns``, not ended, inside an agent (its step counter) or not."""
    tracer = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False).get_tracer("t")
    span = tracer.start_span("call", start_time=ns)
    if in_agent:
        setattr(span, _AGENT, Steps(3))
    return span


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=attributes, ns=st.sampled_from(STARTS), in_agent=st.booleans())
def test_stamp_functions_agree_with_the_general_hook(table, attrs, ns, in_agent):
    processor = CostSpanProcessor(table)
    processor._learn(attrs)
    stamp = processor._shapes[tuple(attrs)]
    event("compiled" if stamp.__name__ == "stamp" else stamp.__name__)
    fast_span, general_span = span_at(ns, in_agent), span_at(ns, in_agent)
    fast, general = dict(attrs), dict(attrs)  # as the span holds them, then stamped
    returned = stamp(fast_span, fast, ns)  # may write into the attributes itself
    fast.update(returned or {})
    fast_stats = processor.stats()
    general.update(processor._before_end(general_span, general) or {})  # as on a new shape
    assert list(fast.items()) == list(general.items())
    assert processor.stats() == {name: 2 * count for name, count in fast_stats.items()}
    assert fast_stats["internal_errors"] == 0
    if returned is None and fast.get(semconv.COST_STATUS) == "priced":
        event("priced by the compiled function")


def traced(table, limits: SpanLimits | None = None, **options):
    """A provider with our processor (``options``) and an in-memory exporter after it:
    (processor, exporter, tracer)."""
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False, span_limits=limits)
    exporter = InMemorySpanExporter()
    processor = CostSpanProcessor(table, **options)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return processor, exporter, provider.get_tracer("t")


def test_spans_of_a_seen_shape_go_to_its_stamp_function(table):
    processor, exporter, tracer = traced(table)
    calls = []
    with tracer.start_as_current_span("agent", attributes={"gen_ai.operation.name": "invoke_agent"}):
        for _ in range(3):
            span = tracer.start_span("chat")
            span.set_attributes(CHAT)  # not a model call at start: numbered at end
            span.end()
            calls.append(dict(exporter.get_finished_spans()[-1].attributes))
        shape = tuple(dict(trace.get_current_span().attributes))  # the agent span's shape
    stamp = processor._shapes[tuple(CHAT)]
    assert stamp.__name__ == "stamp" and "SLOW" in stamp.__doc__
    assert f"span.{seam.MARKER}" in stamp.__doc__  # the marker as the seam spells it
    assert processor._shapes[shape] == processor._stamp  # an agent span: the general hook
    assert [c[semconv.AGENT_STEP] for c in calls] == [0, 1, 2]
    assert {c[semconv.COST] for c in calls} == {calls[0][semconv.COST]}
    assert processor.stats()["priced"] == 3


def test_a_span_at_its_attribute_limit_takes_the_general_hook(table):
    limits = SpanLimits(max_span_attributes=len(CHAT) + 4)  # no room for a step as well
    processor, exporter, tracer = traced(table, limits)
    for _ in range(2):
        tracer.start_span("chat", attributes=CHAT).end()
    assert tuple(CHAT) in processor._shapes
    first, second = (dict(s.attributes) for s in exporter.get_finished_spans())
    assert first == second and first[semconv.COST_STATUS] == "priced"


def test_shapes_and_stamp_functions_are_bounded(table, monkeypatch):
    monkeypatch.setattr("otel_costattr.sdk.processor._SHAPES_KEPT", 8)
    processor = CostSpanProcessor(table)
    keys = sorted(semconv.ROLE_KEYS)
    for n in range(20):
        processor._learn({**CHAT, f"other.{n}": 1, keys[n % len(keys)]: 1})
    assert 0 < len(processor._shapes) <= 8
    assert 0 < len(processor._stamps) <= 8


def test_no_stamp_functions_where_every_span_needs_the_general_hook(table):
    assert CostSpanProcessor(table, proposed_cost_attributes=True)._shapes is None
    assert CostSpanProcessor(table)._shapes is not None  # the duplicate check has its own


@pytest.mark.parametrize("dedupe", [True, False])
def test_a_stamp_function_prices_a_response_id_once_a_trace(table, dedupe):
    """Two instrumentations of one API call (one response id, overlapping spans) in a trace,
    a shape seen before: the later span is a duplicate, through the shape's stamp function
    too; a later call of the trace reusing the id, and another trace's, are calls of their
    own."""
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    processor = CostSpanProcessor(table, dedupe_response_ids=dedupe)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer, sdk = provider.get_tracer("framework"), provider.get_tracer("sdk")
    call = {**CHAT, semconv.RESPONSE_ID: "msg_1"}
    with sdk.start_as_current_span("warm", attributes={**call, semconv.RESPONSE_ID: "msg_0"}):
        pass  # the shape is learnt: the spans below take its stamp function
    assert processor._shapes
    with tracer.start_as_current_span("run"):
        with (
            tracer.start_as_current_span("framework call", attributes=call),
            sdk.start_as_current_span("sdk call", attributes=call),
        ):
            pass
        with sdk.start_as_current_span("next call", attributes=call):  # a server reusing ids
            pass
    with tracer.start_as_current_span("other run"), sdk.start_as_current_span("sdk call", attributes=call):
        pass
    statuses = [s.attributes.get(semconv.COST_STATUS) for s in exporter.get_finished_spans()]
    statuses = [s for s in statuses if s]
    expected = ["priced", "priced", "duplicate", "priced", "priced"] if dedupe else ["priced"] * 5
    assert statuses == expected
    costs = [s.attributes.get(semconv.COST) for s in exporter.get_finished_spans()]
    assert sum(c is not None for c in costs) == expected.count("priced")


def test_after_shutdown_a_seen_shape_is_not_stamped(table):
    processor, exporter, tracer = traced(table)
    tracer.start_span("chat", attributes=CHAT).end()
    processor.shutdown()
    tracer.start_span("chat", attributes=CHAT).end()
    first, second = (dict(s.attributes) for s in exporter.get_finished_spans())
    assert first[semconv.COST_STATUS] == "priced" and second == CHAT


def test_a_model_name_cut_at_the_value_length_limit_is_priced_by_no_one(tmp_path):
    """Under OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT the SDK cuts the model's name before the
    processor reads it: gpt-4o-mini at 6 is gpt-4o, and was priced as it ($0.35 for a $0.021
    call), the processor's own status cut to "unknow" (a review). The call is unknown_model,
    marked, its stamp whole, and the store prices the cut name no more than the processor."""
    from otel_costattr import DuckDBSpanExporter, load_pricing

    bundled = load_pricing(use_env=False)
    exporter = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=bundled)
    processor, memory, tracer = traced(bundled, SpanLimits(max_span_attribute_length=6))
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
    call.update({"gen_ai.usage.input_tokens": 100_000, "gen_ai.usage.output_tokens": 10_000})
    for _ in range(3):  # a shape seen before too
        tracer.start_span("chat", attributes=call).end()
    spans = memory.get_finished_spans()
    for span in spans:
        assert span.attributes["gen_ai.request.model"] == "gpt-4o"  # as the SDK cut it
        assert span.attributes[semconv.COST_STATUS] == "unknown_model"
        assert span.attributes[semconv.MODEL_CUT] is True and semconv.COST not in span.attributes
    assert processor.stats()["unknown_model"] == 3 and processor.stats()["priced"] == 0
    exporter.export(spans)
    exporter.shutdown()
    import duckdb

    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT cost_usd, cost_status, input_tokens FROM spans").fetchall()
    assert rows == [(None, "unknown_model", 100_000)] * 3


def test_a_cut_model_name_leaves_every_other_rule_as_it_was():
    """A second review of the cut-name check, which first ran before every other rule: a
    response model cut with the request model whole is priced by the request model; a cost
    the provider reported stands; agent and tool spans naming a long model get no stamp (nor
    a step); identity a child inherits is still cut at the limit, as its own would be."""
    from opentelemetry import baggage, context

    from otel_costattr import load_pricing

    bundled = load_pricing(use_env=False)
    processor, memory, tracer = traced(bundled, SpanLimits(max_span_attribute_length=16))
    usage = {"gen_ai.usage.input_tokens": 100_000, "gen_ai.usage.output_tokens": 10_000}
    chat = {"gen_ai.operation.name": "chat", **usage}
    agent = tracer.start_span("agent", attributes={"gen_ai.operation.name": "invoke_agent"})
    with trace.use_span(agent, end_on_exit=True):
        tracer.start_span(
            "snapshot",
            attributes={
                **chat,
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            },
        ).end()
        reported = {"gen_ai.usage.cost.amount": 0.0123, "gen_ai.usage.cost.currency": "USD"}
        tracer.start_span(
            "reported", attributes={**chat, "gen_ai.request.model": "anthropic/claude-3.5-sonnet", **reported}
        ).end()
        tool = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.request.model": "anthropic.claude-3-5-sonnet",
        }
        tracer.start_span("tool", attributes=tool).end()
        token = context.attach(baggage.set_baggage("app.feature", "checkout-recommendations-v2"))
        try:
            tracer.start_span("inherits", attributes={**chat, "gen_ai.request.model": "gpt-4o"}).end()
        finally:
            context.detach(token)
    got = {s.name: s.attributes for s in memory.get_finished_spans()}
    snapshot = got["snapshot"]
    assert (snapshot[semconv.COST], snapshot["costattr.model_source"]) == (0.021, "request")
    assert (got["reported"][semconv.COST], got["reported"]["costattr.cost_source"]) == (0.0123, "provider")
    assert semconv.COST_STATUS not in got["tool"] and semconv.AGENT_STEP not in got["tool"]
    assert got["inherits"]["app.feature"] == "checkout-recomme"
    assert [got[n][semconv.AGENT_STEP] for n in ("snapshot", "reported", "inherits")] == [0, 1, 2]
    assert processor.stats()["unknown_model"] == 0
