"""CostSpanProcessor on a real TracerProvider: what it stamps, on which spans, for whom."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import weakref
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_costattr import DuckDBSpanExporter, rollup
from otel_costattr.cost.engine import CostStatus
from otel_costattr.pricing.table import load_pricing
from otel_costattr.sdk import processor as processor_module
from otel_costattr.sdk.processor import STAT_NAMES, CostSpanProcessor
from otel_costattr.semconv import AGENT_STEP, COST, COST_STATUS, PRICED_MODEL, PRICING_VERSION

REPO = Path(__file__).resolve().parents[1]


def ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9


# acme-large is $3 in / $15 out / $0.30 cache read / $3.75 cache write until 2026-06-01,
# then $2 / $10 / $0.20 / $2.50 (tests/data/test_prices.toml).
BEFORE = ns(dt.date(2026, 3, 1))
AFTER = ns(dt.date(2026, 7, 1))

AGENT = {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "support-bot",
    "gen_ai.agent.version": "3",
    "app.feature": "refunds",
}


def chat(model: str = "acme-large", **usage: int) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "acme",
        "gen_ai.request.model": model,
        **{f"gen_ai.usage.{k}": v for k, v in usage.items()},
    }


def usd(text: str) -> float:
    """The float an exact USD amount becomes on the span."""
    return float(Decimal(text))


# --- the seed pattern -------------------------------------------------------------------


def anthropic_usage(span, usage: dict) -> None:
    """The common hand-written pattern: copy the raw Anthropic response usage onto the span
    (input_tokens is the uncached remainder; the cache counts come on top)."""
    span.set_attribute("gen_ai.usage.input_tokens", usage["input_tokens"])
    span.set_attribute("gen_ai.usage.output_tokens", usage["output_tokens"])
    span.set_attribute("gen_ai.usage.cache_read_input_tokens", usage["cache_read_input_tokens"])
    span.set_attribute("gen_ai.usage.cache_creation_input_tokens", usage["cache_creation_input_tokens"])


def test_seed_pattern_is_priced_exactly(pipeline):
    tracer = pipeline.tracer
    responses = [
        {"input_tokens": 2048, "output_tokens": 512, "cache_read_input_tokens": 0,
         "cache_creation_input_tokens": 8313},
        {"input_tokens": 3, "output_tokens": 245, "cache_read_input_tokens": 8313,
         "cache_creation_input_tokens": 0},
    ]  # fmt: skip
    with tracer.start_as_current_span("invoke_agent support-bot", attributes=AGENT, start_time=BEFORE):
        for step, usage in enumerate(responses):
            with tracer.start_as_current_span("chat acme-large", start_time=BEFORE) as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.provider.name", "acme")
                span.set_attribute("gen_ai.request.model", "acme-large")
                span.set_attribute(AGENT_STEP, step)
                anthropic_usage(span, usage)
            with tracer.start_as_current_span(
                "execute_tool lookup_order",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "x"},
            ):
                pass

    calls = pipeline.spans("chat acme-large")
    # 2048*3 + 8313*3.75 + 512*15 = 44997.75 and 3*3 + 8313*0.3 + 245*15 = 6177.9 per Mtok
    assert [c.attributes[COST] for c in calls] == [usd("0.04499775"), usd("0.0061779")]
    for call, step in zip(calls, (0, 1), strict=True):
        attrs = call.attributes
        assert attrs[COST_STATUS] == "priced"
        assert attrs[PRICED_MODEL] == "acme-large"
        assert attrs[PRICING_VERSION] == pipeline.processor.pricing.version
        assert attrs[AGENT_STEP] == step  # the user's own step is kept
        assert attrs["app.feature"] == "refunds"
        assert attrs["gen_ai.agent.name"] == "support-bot"
        assert attrs["gen_ai.agent.version"] == "3"
    for tool in pipeline.spans("execute_tool lookup_order"):
        assert COST not in tool.attributes and COST_STATUS not in tool.attributes
        assert tool.attributes["app.feature"] == "refunds"
    (agent,) = pipeline.spans("invoke_agent support-bot")
    assert COST not in agent.attributes and COST_STATUS not in agent.attributes
    assert pipeline.processor.stats()["priced"] == 2


def test_inclusive_and_exclusive_cache_usage_cost_the_same(pipeline):
    tracer = pipeline.tracer
    exclusive = {  # Anthropic's raw field names: input is the uncached remainder
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.cache_read_input_tokens": 1000,
        "gen_ai.usage.cache_creation_input_tokens": 150,
        "gen_ai.usage.output_tokens": 300,
    }
    inclusive = {  # OTel conventions: input includes the cached tokens
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 150,
        "gen_ai.usage.output_tokens": 300,
    }
    for name, usage in (("exclusive", exclusive), ("inclusive", inclusive)):
        tracer.start_span(name, attributes={**chat(), **usage}, start_time=BEFORE).end()
    costs = {s.name: s.attributes[COST] for s in pipeline.spans()}
    # 50*3 + 1000*0.3 + 150*3.75 + 300*15 = 5512.5 per Mtok
    assert costs == {"exclusive": usd("0.0055125"), "inclusive": usd("0.0055125")}


def test_price_in_force_at_span_start(pipeline):
    for name, start in (("before", BEFORE), ("after", AFTER)):
        pipeline.tracer.start_span(
            name, attributes=chat(input_tokens=1000, output_tokens=100), start_time=start
        ).end()
    costs = {s.name: s.attributes[COST] for s in pipeline.spans()}
    assert costs == {"before": usd("0.0045"), "after": usd("0.003")}


def test_response_model_wins_and_provider_names_map(pipeline):
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "acme.ai",  # an older spelling, mapped by the table's otel_names
        "gen_ai.request.model": "acme-mini",
        "gen_ai.response.model": "acme-large-20260101",  # what was billed
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 0,
    }
    pipeline.tracer.start_span("chat", attributes=attrs, start_time=BEFORE).end()
    (span,) = pipeline.spans()
    assert span.attributes[PRICED_MODEL] == "acme-large"
    assert span.attributes[COST] == usd("0.003")


def test_openinference_span_recognised_by_attributes(pipeline):
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.system": "acme",
        "llm.model_name": "acme-mini",
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 1000,
    }
    pipeline.tracer.start_span("ChatCompletion", attributes=attrs).end()
    (span,) = pipeline.spans()
    assert span.attributes[COST] == usd("0.00075")


def test_attributes_set_after_start_are_priced(pipeline):
    with pipeline.tracer.start_as_current_span("anthropic.chat") as span:  # any name
        for key, value in chat("acme-mini", input_tokens=2000, output_tokens=1000).items():
            span.set_attribute(key, value)
    assert pipeline.spans()[0].attributes[COST] == usd("0.0009")


def test_unknown_model_gets_a_status_and_no_cost(pipeline):
    pipeline.tracer.start_span("chat", attributes=chat("gpt-9", input_tokens=10)).end()
    pipeline.tracer.start_span("chat", attributes={"gen_ai.usage.input_tokens": 10}).end()
    for span in pipeline.spans():
        assert span.attributes[COST_STATUS] == "unknown_model"
        assert span.attributes[PRICING_VERSION] == pipeline.processor.pricing.version
        assert COST not in span.attributes and PRICED_MODEL not in span.attributes
    assert pipeline.processor.stats()["unknown_model"] == 2


@pytest.mark.parametrize(
    ("usage", "status"),
    [
        ({}, "no_usage"),
        ({"gen_ai.usage.input_tokens": "120"}, "invalid_usage"),
        ({"gen_ai.usage.input_tokens": -1}, "invalid_usage"),
        ({"gen_ai.usage.input_tokens": float("nan")}, "invalid_usage"),
        ({"gen_ai.usage.input_tokens": True}, "invalid_usage"),
        ({"gen_ai.usage.input_tokens": 10**30}, "invalid_usage"),
        ({"gen_ai.usage.input_tokens": 12.0}, "priced"),
    ],
)
def test_status_for_bad_or_missing_usage(pipeline, usage, status):
    pipeline.tracer.start_span("chat", attributes={**chat(), **usage}).end()
    (span,) = pipeline.spans()
    assert span.attributes[COST_STATUS] == status
    assert (COST in span.attributes) is (status == "priced")
    assert pipeline.processor.stats()[status] == 1


@pytest.mark.parametrize("operation", ["invoke_agent", "create_agent", "invoke_workflow"])
def test_agent_and_workflow_usage_is_never_priced(pipeline, operation):
    attrs = {**chat(input_tokens=5000, output_tokens=5000), "gen_ai.operation.name": operation}
    pipeline.tracer.start_span(operation, attributes=attrs).end()
    (span,) = pipeline.spans()
    assert COST not in span.attributes and COST_STATUS not in span.attributes
    stats = pipeline.processor.stats()
    assert stats.pop("spans") == 1 and sum(stats.values()) == 0  # ended, but not a model call


def test_plain_spans_are_untouched(pipeline):
    attrs = {"http.request.method": "GET", "gen_ai.request.model": "acme-large"}
    pipeline.tracer.start_span("GET /", attributes=attrs).end()
    assert dict(pipeline.spans()[0].attributes) == attrs


class OnlyStartAndEnd(SpanProcessor):
    """Wraps a processor without forwarding _on_ending: its end hook is then a closure."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner

    def on_start(self, span, parent_context=None) -> None:
        self.inner.on_start(span, parent_context)

    def on_end(self, span) -> None:
        self.inner.on_end(span)


@pytest.mark.parametrize("wrapped", [False, True], ids=["ending-hook", "closure"])
def test_user_attribute_limits_are_respected(table, tmp_path, wrapped):
    """Within the count limit the stamp goes in, whole (a status cut to the length limit,
    "unknow", is no status: a review);
    past it the stamp is left out, counted: the SDK would have evicted the span's oldest
    attributes for it, its model and usage (a review found such a call stored as an
    'other' span, counted nowhere), or its feature."""
    from opentelemetry.sdk.trace import SpanLimits

    spans = {}
    for limit in (10, 6):
        provider = TracerProvider(
            span_limits=SpanLimits(max_span_attributes=limit, max_span_attribute_length=12),
            shutdown_on_exit=False,
        )
        exporter = InMemorySpanExporter()
        processor = CostSpanProcessor(table)
        provider.add_span_processor(OnlyStartAndEnd(processor) if wrapped else processor)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        provider.get_tracer("t").start_span("chat", attributes=chat(input_tokens=1)).end()
        (spans[limit],) = exporter.get_finished_spans()
        assert processor.stats()["unstamped"] == (limit == 6)
    stamped, unstamped = spans[10].attributes, spans[6].attributes
    assert stamped[COST] == usd("0.000002")
    assert stamped[PRICING_VERSION] == table.version and len(table.version) > 12  # whole
    assert dict(unstamped) == chat(input_tokens=1)  # its own attributes, whole
    # A store that prices what comes unstamped still counts the call, at its price.
    store = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=table)
    store.export([spans[6]])
    store.shutdown()
    (row,) = rollup("stats", db=tmp_path / "s.duckdb", since="2000-01-01")[:1]
    assert (row["calls"], row["usd"]) == (1, Decimal("0.000002"))


def test_a_call_started_at_its_limit_keeps_its_model(table, tmp_path):
    """A model call started with as many attributes as its limit allows, under an agent with
    a feature: the identity and step the processor copies at start would make the SDK evict
    the span's oldest attributes, its operation, provider and model (a review: a priced call
    stored as unknown_model). Nothing is added that does not fit; the store still gives the
    call its feature, from the agent above it, and its price."""
    from opentelemetry.sdk.trace import SpanLimits

    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=8), shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    processor = CostSpanProcessor(table)
    store = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=table)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(store))
    tracer = provider.get_tracer("t")
    attrs = chat(input_tokens=1000, output_tokens=100)
    attrs.update({f"app.extra.{i}": i for i in range(8 - len(attrs))})
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", "app.feature": "f"}
    with tracer.start_as_current_span("agent", attributes=agent):
        tracer.start_span("chat", attributes=attrs).end()
    provider.shutdown()
    call = next(s for s in memory.get_finished_spans() if s.name == "chat")
    assert dict(call.attributes) == attrs and call.dropped_attributes == 0
    assert processor.stats()["unstamped"] == 1
    (row,) = rollup("per_feature", db=tmp_path / "s.duckdb", since="2000-01-01")
    assert (row["feature"], row["calls"], row["usd"]) == ("f", 1, Decimal("0.003"))  # 1000 * 3 + 100 * 15


# --- every processor and exporter sees the cost -------------------------------------------


class Snapshot(SpanProcessor):
    """Copies what on_end sees, as any later processor or exporter would."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.seen.append(dict(span.attributes))


def test_cost_visible_whatever_the_registration_order(table):
    provider = TracerProvider(shutdown_on_exit=False)
    before, after = Snapshot(), Snapshot()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(before)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(after)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("chat", attributes=chat("acme-mini", input_tokens=1000)):
        pass
    expected = usd("0.00015")
    assert before.seen[0][COST] == expected
    assert after.seen[0][COST] == expected
    assert exporter.get_finished_spans()[0].attributes[COST] == expected


# --- identity -------------------------------------------------------------------------------


def test_identity_inherited_from_ancestors_unless_set(pipeline):
    tracer = pipeline.tracer
    with (
        tracer.start_as_current_span("invoke_agent", attributes=AGENT),
        tracer.start_as_current_span("retrieve", attributes={"http.route": "/x"}),
        tracer.start_as_current_span("chat", attributes={**chat(), "app.feature": "appeals"}) as inner,
    ):
        inner.set_attribute("gen_ai.agent.name", "its-own")  # set after start: still wins
    spans = {s.name: s.attributes for s in pipeline.spans()}
    assert spans["retrieve"]["app.feature"] == "refunds"  # plain spans inherit too
    assert spans["chat"]["app.feature"] == "appeals"
    assert spans["chat"]["gen_ai.agent.name"] == "its-own"
    assert spans["chat"]["gen_ai.agent.version"] == "3"  # through the plain span between
    assert "gen_ai.conversation.id" not in spans["chat"]


def test_identity_keys_are_configurable(table):
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(CostSpanProcessor(table, identity_keys=["tenant.id"]))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root", attributes={"tenant.id": "t1", "app.feature": "f"}):
        tracer.start_span("child").end()
    child = next(s for s in exporter.get_finished_spans() if s.name == "child")
    assert dict(child.attributes) == {"tenant.id": "t1"}


def test_identity_crosses_processes_in_w3c_baggage(pipeline):
    propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    carrier: dict[str, str] = {}
    # Process A: a request for feature "search" in conversation c-42 calls process B.
    ctx = baggage.set_baggage("app.feature", "search")
    ctx = baggage.set_baggage("gen_ai.conversation.id", "c-42", ctx)
    ctx = baggage.set_baggage("unrelated", "x", ctx)
    token = context.attach(ctx)
    try:
        with pipeline.tracer.start_as_current_span("client"):
            propagator.inject(carrier)
    finally:
        context.detach(token)
    assert "app.feature=search" in carrier["baggage"]
    pipeline.exporter.clear()
    # Process B: the server span and its children carry the identity.
    remote = propagator.extract(carrier)
    token = context.attach(remote)
    try:
        with pipeline.tracer.start_as_current_span("server", attributes={"app.feature": "search-v2"}):
            pipeline.tracer.start_span("chat", attributes=chat(input_tokens=1)).end()
    finally:
        context.detach(token)
    spans = {s.name: s.attributes for s in pipeline.spans()}
    assert spans["server"]["app.feature"] == "search-v2"  # its own value wins
    assert spans["server"]["gen_ai.conversation.id"] == "c-42"
    assert spans["chat"]["app.feature"] == "search-v2"  # the parent span before baggage
    assert spans["chat"]["gen_ai.conversation.id"] == "c-42"
    assert "unrelated" not in spans["chat"]


def test_non_text_baggage_is_ignored(pipeline):
    ctx = baggage.set_baggage("app.feature", {"not": "text"})
    ctx = baggage.set_baggage("gen_ai.agent.name", "", ctx)
    pipeline.tracer.start_span("s", context=ctx).end()
    assert dict(pipeline.spans()[0].attributes) == {}


def test_baggage_can_be_switched_off(table):
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(CostSpanProcessor(table, use_baggage=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s", context=baggage.set_baggage("app.feature", "f")).end()
    assert dict(exporter.get_finished_spans()[0].attributes) == {}


# --- steps ----------------------------------------------------------------------------------


def test_steps_count_model_calls_of_the_nearest_agent(pipeline):
    tracer = pipeline.tracer

    def call(name: str) -> None:
        with tracer.start_as_current_span(name) as span:  # attributes only after start
            span.set_attributes(chat("acme-mini", input_tokens=1))

    with tracer.start_as_current_span("outer", attributes=AGENT):
        call("o0")
        with tracer.start_as_current_span("tool", attributes={"gen_ai.operation.name": "execute_tool"}):
            call("o1")  # a tool span between: still the outer agent's call
        with tracer.start_as_current_span("inner", attributes={**AGENT, "gen_ai.agent.name": "sub"}):
            call("i0")
            call("i1")
        call("o2")
    call("outside")  # no agent: no step
    steps = {s.name: s.attributes.get(AGENT_STEP) for s in pipeline.spans()}
    assert steps == {
        "o0": 0, "o1": 1, "i0": 0, "i1": 1, "o2": 2, "outside": None,
        "tool": None, "inner": None, "outer": None,
    }  # fmt: skip


def test_agent_recognised_after_its_start(pipeline):
    tracer = pipeline.tracer
    with tracer.start_as_current_span("agent") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        for _ in range(2):
            tracer.start_span("chat", attributes=chat(input_tokens=1)).end()
    assert [s.attributes.get(AGENT_STEP) for s in pipeline.spans("chat")] == [0, 1]


def test_concurrent_calls_numbered_in_the_order_they_were_made(pipeline):
    tracer = pipeline.tracer

    async def call(i: int) -> None:
        with tracer.start_as_current_span(f"chat {i}", attributes=chat(input_tokens=1)):
            await asyncio.sleep(0.001 * (5 - i))  # the first call made ends last

    async def agent(name: str) -> None:
        with tracer.start_as_current_span(name, attributes={**AGENT, "gen_ai.agent.name": name}):
            await asyncio.gather(*(call(i) for i in range(5)))
            with tracer.start_as_current_span("chat last") as span:
                span.set_attributes(chat(input_tokens=1))

    async def main() -> None:
        await asyncio.gather(agent("a"), agent("b"))

    asyncio.run(main())
    for name in ("a", "b"):
        steps = {
            s.name: s.attributes[AGENT_STEP]
            for s in pipeline.spans()
            if s.attributes.get("gen_ai.agent.name") == name and s.name.startswith("chat")
        }
        assert steps == {**{f"chat {i}": i for i in range(5)}, "chat last": 5}


def test_agent_state_released_when_the_agent_ends(pipeline):
    tracer = pipeline.tracer
    gc.collect()
    gc.disable()
    try:
        agent = tracer.start_span("agent", attributes=AGENT)
        ctx = trace.set_span_in_context(agent)
        child = tracer.start_span("chat", context=ctx, attributes=chat(input_tokens=1))
        state = weakref.ref(child._costattr_agent)  # internal: the agent's step counter
        child.end()
        agent.end()
        assert agent._costattr_steps is None  # released by the agent itself
        spans = weakref.ref(agent), weakref.ref(child)
        del agent, child, ctx
        assert state() is None
        assert spans[0]() is None and spans[1]() is None
    finally:
        gc.enable()


# --- lifetime, errors, API ------------------------------------------------------------------


def test_ended_spans_are_freed_without_the_cycle_collector(pipeline):
    tracer = pipeline.tracer
    gc.collect()
    gc.disable()
    try:
        refs = []
        with tracer.start_as_current_span("invoke_agent", attributes=AGENT) as agent:
            refs.append(weakref.ref(agent))
            for attrs in (chat(input_tokens=1), {"http.route": "/"}):
                with tracer.start_as_current_span("child", attributes=attrs) as span:
                    refs.append(weakref.ref(span))
                span.end()  # a second end() is harmless
            plain = tracer.start_span("plain")
            refs.append(weakref.ref(plain))
            plain.end()
        del agent, span, plain
        assert [r() for r in refs] == [None] * len(refs)
    finally:
        gc.enable()


def test_two_spans_of_one_api_call_are_priced_once(deduping, table, tmp_path):
    # Two instrumentations of one call (the anthropic SDK's own span and OpenLLMetry's):
    # siblings with the same response id. The first to end is priced, the other is not.
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": "msg_01"}
    sdk_tracer = deduping.provider.get_tracer("com.anthropic.sdk.python")
    outer_tracer = deduping.provider.get_tracer("opentelemetry.instrumentation.anthropic")
    with deduping.tracer.start_as_current_span("agent", attributes=AGENT):
        sdk = sdk_tracer.start_span("anthropic.messages.create", attributes=call, start_time=AFTER)
        outer = outer_tracer.start_span("anthropic.chat", attributes=call, start_time=AFTER)
        sdk.end()
        outer.end()
        other = {**call, "gen_ai.response.id": "msg_02"}
        deduping.tracer.start_span("next call", attributes=other, start_time=AFTER).end()
    kept, duplicate, following = (
        deduping.spans(n)[0].attributes for n in ("anthropic.messages.create", "anthropic.chat", "next call")
    )
    assert (kept[COST], kept[COST_STATUS]) == (0.003, "priced")
    assert COST not in duplicate and duplicate[COST_STATUS] == "duplicate"
    assert following[COST] == 0.003
    assert deduping.processor.stats()["priced"] == 2 and deduping.processor.stats()["duplicate"] == 1
    # In the store the duplicate is not a model call: no tokens, no cost, in no rollup.
    store = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=table)
    store.export(deduping.spans())
    store.shutdown()
    assert rollup("stats", db=tmp_path / "s.duckdb")[0]["calls"] == 2
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT name, span_role, cost_usd, input_tokens FROM spans WHERE name = 'anthropic.chat'"
        ).fetchall()
    assert rows == [("anthropic.chat", "duplicate_call", None, None)]


def test_duplicates_need_one_trace_and_a_priced_first(deduping):
    usage = chat(input_tokens=1000, output_tokens=100)
    no_usage = chat()

    def end(name, attrs, rid, context=None):
        span = deduping.tracer.start_span(
            name, context=context, attributes={**attrs, "gen_ai.response.id": rid}
        )
        span.end()
        return span

    # A server reusing short ids (Ollama: chatcmpl-<0..998>): separate traces, separate calls.
    end("call a", usage, "chatcmpl-7")
    end("call b", usage, "chatcmpl-7")
    # Three spans of one call (they overlap), three instrumentations: a span without usage
    # ending first claims nothing, the span with usage is still priced; one without usage
    # ending after the priced one is its duplicate.
    run = trace.set_span_in_context(deduping.tracer.start_span("run"))
    spans = [
        deduping.provider.get_tracer(name).start_span(
            name, context=run, attributes={**attrs, "gen_ai.response.id": "msg_1"}
        )
        for name, attrs in (("empty first", no_usage), ("priced", usage), ("empty after", no_usage))
    ]
    for span in spans:
        span.end()
    status = {s.name: s.attributes[COST_STATUS] for s in deduping.spans()}
    assert status == {
        "call a": "priced",
        "call b": "priced",
        "empty first": "no_usage",
        "priced": "priced",
        "empty after": "duplicate",
    }


def test_a_duplicate_takes_no_step_number(deduping):
    call = chat(input_tokens=1000, output_tokens=100)
    with deduping.tracer.start_as_current_span("agent", attributes=AGENT):
        # msg_0 twice, from two instrumentations: overlapping
        spans = [deduping.provider.get_tracer(s).start_span("chat") for s in ("sdk", "framework", "sdk")]
        for span, rid in zip(spans, ("msg_0", "msg_0", "msg_1"), strict=True):
            span.set_attributes({**call, "gen_ai.response.id": rid})  # a call only once the
            span.end()  # response is in: numbered at end
    steps = [(s.attributes[COST_STATUS], s.attributes.get(AGENT_STEP)) for s in deduping.spans("chat")]
    assert steps == [("priced", 0), ("duplicate", None), ("priced", 1)]


def test_both_spans_of_a_call_numbered_at_start_share_its_step(deduping):
    """OpenLLMetry beside the anthropic SDK's own tracing: both spans say at start that they
    are a model call, so both are numbered at start. OpenLLMetry's starts first and names its
    model just after; the SDK's starts inside it and ends first (priced). Each call is one
    step: the priced spans 0, 1, 2, not 1, 3, 5."""
    provider = deduping.provider
    outer_tracer = provider.get_tracer("opentelemetry.instrumentation.anthropic")
    sdk_tracer = provider.get_tracer("com.anthropic.sdk.python")
    call = chat(input_tokens=1000, output_tokens=100)
    start = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme"}
    with deduping.tracer.start_as_current_span("agent", attributes=AGENT):
        for i in range(3):
            outer = outer_tracer.start_span("anthropic.chat", attributes=start)
            outer.set_attribute("gen_ai.request.model", "acme-large")  # after its start
            sdk = sdk_tracer.start_span("anthropic.messages.create", attributes=chat())
            for span in (sdk, outer):
                span.set_attributes({**call, "gen_ai.response.id": f"msg_{i}"})
                span.end()
    steps = [(s.name, s.attributes.get(COST_STATUS), s.attributes.get(AGENT_STEP)) for s in deduping.spans()]
    priced = [step for _, status, step in steps if status == "priced"]
    assert priced == [0, 1, 2]
    assert deduping.processor.stats()["duplicate"] == 3


def test_calls_made_at_once_pair_in_the_order_they_were_made(deduping):
    """A review: with two calls under way at once (both instrumentations' spans open), the
    second instrumentation's span of call A paired with call B's, the last numbered: A was
    reported at B's step and step 0 left empty."""
    provider = deduping.provider
    outer_tracer, sdk_tracer = provider.get_tracer("openllmetry"), provider.get_tracer("sdk")
    call = chat(input_tokens=1000, output_tokens=100)
    with deduping.tracer.start_as_current_span("agent", attributes=AGENT):
        outer = [outer_tracer.start_span(f"outer {c}", attributes=chat()) for c in "ab"]
        sdk = [sdk_tracer.start_span(f"sdk {c}", attributes=chat()) for c in "ab"]
        for i in range(2):
            for span in (sdk[i], outer[i]):
                span.set_attributes({**call, "gen_ai.response.id": f"msg_{i}"})
                span.end()
    steps = {s.name: s.attributes.get(AGENT_STEP) for s in deduping.spans() if s.name != "agent"}
    assert steps == {"outer a": 0, "outer b": 1, "sdk a": 0, "sdk b": 1}


def test_a_call_inside_a_call_shares_its_step(deduping):
    # A framework's span around the SDK's: the inner one ends first and is priced.
    call = {**chat(input_tokens=1000, output_tokens=100)}
    with deduping.tracer.start_as_current_span("agent", attributes=AGENT):
        for i in range(2):
            framework = deduping.provider.get_tracer("framework")
            with framework.start_as_current_span("framework llm", attributes=chat()) as outer:
                sdk = deduping.provider.get_tracer("sdk")
                with sdk.start_as_current_span("sdk chat", attributes=chat()) as inner:
                    inner.set_attributes({**call, "gen_ai.response.id": f"msg_{i}"})
                outer.set_attributes({**call, "gen_ai.response.id": f"msg_{i}"})
    assert [s.attributes.get(AGENT_STEP) for s in deduping.spans("sdk chat")] == [0, 1]
    assert [s.attributes[COST_STATUS] for s in deduping.spans("framework llm")] == ["duplicate"] * 2


def test_calls_that_only_look_alike_take_steps_of_their_own(deduping, table):
    provider = deduping.provider
    one, other = provider.get_tracer("one"), provider.get_tracer("other")
    with deduping.tracer.start_as_current_span("agent", attributes=AGENT):
        # One instrumentation, two calls at once to one model: two steps.
        a = one.start_span("a", attributes=chat())
        b = one.start_span("b", attributes=chat())
        # Another instrumentation, at once, another model: a step of its own.
        c = other.start_span("c", attributes=chat("acme-small"))
        for span in (a, b, c):
            span.end()
        # Another instrumentation, the same model, once the last call has ended.
        d = other.start_span("d", attributes=chat())
        d.end()
        # A pair, then a third span from the first instrumentation: a call of its own.
        e = one.start_span("e", attributes=chat())
        f = other.start_span("f", attributes=chat())
        g = one.start_span("g", attributes=chat())
        for span in (e, f, g):
            span.end()
    steps = {s.name: s.attributes.get(AGENT_STEP) for s in deduping.spans() if s.name != "agent"}
    assert steps == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4, "f": 4, "g": 5}
    # Without the duplicate check every span is a call of its own.
    plain = CostSpanProcessor(table, dedupe_response_ids=False)
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(plain)
    with provider.get_tracer("t").start_as_current_span("agent", attributes=AGENT):
        e = provider.get_tracer("one").start_span("e", attributes=chat())
        f = provider.get_tracer("other").start_span("f", attributes=chat())
        e.end()
        f.end()
    provider.shutdown()
    assert [s.attributes.get(AGENT_STEP) for s in exporter.get_finished_spans()[:2]] == [0, 1]


def test_pairs_are_never_split_by_forgetting_old_ids(deduping, monkeypatch):
    first_spans = deduping.processor._first_spans
    monkeypatch.setattr(first_spans, "kept", 4)
    monkeypatch.setattr(first_spans, "limit", 8)
    call = chat(input_tokens=1000, output_tokens=100)
    run = trace.set_span_in_context(deduping.tracer.start_span("run"))
    for i in range(20):
        attrs = {**call, "gen_ai.response.id": f"msg_{i}"}
        pair = [
            deduping.provider.get_tracer(scope).start_span("chat", context=run, attributes=attrs)
            for scope in ("sdk", "framework")
        ]
        for span in pair:  # two spans of one call: they overlap
            span.end()
    assert deduping.processor.stats()["priced"] == 20 and deduping.processor.stats()["duplicate"] == 20
    assert len(first_spans.claims) <= 9


def test_one_response_id_in_two_traces_is_two_calls(pipeline):
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": "msg_01"}
    for _ in range(2):  # two root spans: two traces
        pipeline.tracer.start_span("chat", attributes=call).end()
    assert [s.attributes[COST_STATUS] for s in pipeline.spans()] == ["priced", "priced"]


def test_duplicates_are_looked_for_by_default(pipeline):
    """Two instrumentations of one call in one trace (Traceloop.init() with OpenLLMetry's
    openai-agents and openai instrumentations): priced once without asking."""
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": "msg_01"}
    with pipeline.tracer.start_as_current_span("run"):
        pair = [pipeline.provider.get_tracer(scope).start_span("chat", attributes=call) for scope in "ab"]
        for span in pair:  # siblings covering one request: their times overlap
            span.end()
    assert [s.attributes[COST_STATUS] for s in pipeline.spans("chat")] == ["priced", "duplicate"]


def test_calls_one_after_another_reusing_an_id_are_each_priced(pipeline):
    """Ollama's OpenAI endpoint draws ids from chatcmpl-0..998, a proxy or a fake may send one
    constant id: an agent's calls in one trace, one after the other, are calls of their own."""
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": "chatcmpl-7"}
    with pipeline.tracer.start_as_current_span("run"):
        for _ in range(3):
            pipeline.tracer.start_span("chat", attributes=call).end()
    assert [s.attributes[COST_STATUS] for s in pipeline.spans("chat")] == ["priced"] * 3


@pytest.mark.parametrize("warm", [False, True], ids=["general path", "stamp function"])
def test_a_call_in_another_trace_reusing_the_id_does_not_hide_a_duplicate(pipeline, warm):
    """Ollama's ids again: another run's call drew the same id and ended between the two spans
    of this run's call. Both runs' calls are priced once, whichever ended last."""
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": "chatcmpl-7"}
    if warm:  # the shape's stamp function prices the spans below
        pipeline.tracer.start_span("warm", attributes={**call, "gen_ai.response.id": "msg_0"}).end()
    tracer = pipeline.tracer
    run_a = trace.set_span_in_context(tracer.start_span("run a"))
    run_b = trace.set_span_in_context(tracer.start_span("run b"))
    framework_tracer = pipeline.provider.get_tracer("framework")
    sdk_tracer = pipeline.provider.get_tracer("sdk")
    framework = framework_tracer.start_span("chat", context=run_a, attributes=call)
    sdk = sdk_tracer.start_span("chat", context=run_a, attributes=call)
    other = sdk_tracer.start_span("chat", context=run_b, attributes=call)
    other_twin = framework_tracer.start_span("chat", context=run_b, attributes=call)
    for span in (sdk, other, framework, other_twin):
        span.end()
    statuses = [s.attributes[COST_STATUS] for s in pipeline.spans("chat")]
    assert statuses == ["priced", "priced", "duplicate", "duplicate"]


@pytest.mark.parametrize("rid", ["", 7, ("msg",)])
def test_only_a_non_empty_text_response_id_makes_a_duplicate(deduping, rid):
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": rid}
    for _ in range(2):
        deduping.tracer.start_span("chat", attributes=call, start_time=AFTER).end()
    assert [s.attributes[COST_STATUS] for s in deduping.spans()] == ["priced", "priced"]


def test_second_end_stamps_nothing_more(pipeline, caplog):
    span = pipeline.tracer.start_span("chat", attributes=chat(input_tokens=1))
    span.end()
    with caplog.at_level(logging.WARNING):
        span.end()
    assert pipeline.processor.stats()["priced"] == 1
    assert "Setting attribute on ended span" not in caplog.text


def test_internal_errors_are_logged_counted_and_never_raised(pipeline, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("pricing bug")

    monkeypatch.setattr(processor_module, "price_call", broken)
    monkeypatch.setattr(processor_module, "price_attributes", broken)
    monkeypatch.setattr(processor_module, "span_role", broken)
    with (
        caplog.at_level(logging.ERROR, logger="otel_costattr.sdk.processor"),
        pipeline.tracer.start_as_current_span("agent", attributes=AGENT),
    ):
        pipeline.tracer.start_span("chat", attributes=chat(input_tokens=1)).end()
    assert [s.name for s in pipeline.spans()] == ["chat", "agent"]  # still exported
    assert pipeline.processor.stats()["internal_errors"] == 3  # child start, both ends
    assert "pricing bug" in caplog.text


def test_stats_start_at_zero_and_name_every_status():
    assert set(STAT_NAMES) >= {s.value for s in CostStatus} | {"internal_errors", "unhooked"}


def test_stats_snapshot(pipeline):
    stats = pipeline.processor.stats()
    assert stats == dict.fromkeys(STAT_NAMES, 0)
    stats["priced"] = 99
    assert pipeline.processor.stats()["priced"] == 0


def test_shutdown_and_force_flush_follow_the_sdk(pipeline):
    processor = pipeline.processor
    assert processor.force_flush() is True
    assert processor.force_flush(timeout_millis=1) is True
    assert processor.shutdown() is None
    pipeline.tracer.start_span("chat", attributes=chat(input_tokens=1)).end()
    assert COST not in pipeline.spans()[0].attributes  # no longer hooks new spans


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pricing": "pricing.toml"}, "pricing must be a PriceTable"),
        ({"identity_keys": "app.feature"}, "not a string"),
        ({"identity_keys": ["app.feature", ""]}, "not an attribute name"),
        ({"identity_keys": [3]}, "not an attribute name"),
        # A review: a parent's usage or model copied onto its calls billed them for it.
        ({"identity_keys": ["user.id", "gen_ai.usage.input_tokens"]}, "says what a model call was"),
        ({"identity_keys": ["gen_ai.response.model"]}, "says what a model call was"),
        ({"identity_keys": ["llm.token_count.prompt"]}, "says what a model call was"),
        ({"identity_keys": ["gen_ai.provider.name"]}, "says what a model call was"),
        ({"identity_keys": ["server.address"]}, "says what a model call was"),
        ({"identity_keys": ["gen_ai.usage.cost"]}, "says what a model call was"),
        ({"identity_keys": ["costattr.cost_source"]}, "says what a model call was"),
        ({"identity_keys": ["gen_ai.response.id"]}, "says what a model call was"),
        ({"identity_keys": ["cloud.region"]}, "says what a model call was"),  # a regional price
    ],
)
def test_bad_arguments_raise_value_error(table, kwargs, message):
    kwargs.setdefault("pricing", table)
    with pytest.raises(ValueError, match=message):
        CostSpanProcessor(**kwargs)


@pytest.mark.skipif(not (REPO / "pricing" / "_table.toml").exists(), reason="bundled pricing not written yet")
def test_bundled_claude_price():
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(CostSpanProcessor(load_pricing(use_env=False)))
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.cache_read_input_tokens": 1000,
        "gen_ai.usage.cache_creation_input_tokens": 150,
        "gen_ai.usage.output_tokens": 300,
    }
    provider.get_tracer("t").start_span("chat", attributes=attrs).end()
    (span,) = exporter.get_finished_spans()
    # 50*3 + 1000*0.30 + 150*3.75 + 300*15 = 5512.5 per Mtok
    assert span.attributes[COST] == usd("0.0055125")
    assert span.attributes[PRICED_MODEL].startswith("claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("key", "value", "tier_total"),
    [
        ("anthropic.response.service_tier", "batch", "0.00275625"),  # half of 0.0055125
        ("openai.response.service_tier", "BATCH", "0.00275625"),
        ("gen_ai.request.service_tier", "standard", "0.0055125"),
        ("anthropic.response.service_tier", "priority", "0.0055125"),  # not priced apart: standard
    ],
)
def test_service_tier_attributes_select_the_price(pipeline, key, value, tier_total):
    attrs = chat(input_tokens=1200, output_tokens=300)
    attrs.update(
        {"gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.cache_creation.input_tokens": 150}
    )
    attrs[key] = value
    pipeline.tracer.start_span("chat", attributes=attrs, start_time=0).end()
    (span,) = pipeline.spans("chat")
    assert span.attributes[COST] == float(Decimal(tier_total))


def test_a_duplicate_at_its_attribute_limit_still_says_so(table, tmp_path):
    """A review of the rule that leaves out a stamp with no room: OpenLLMetry's span of a call
    the SDK's span priced, full of captured messages, went unstamped, and the store (which
    knows a duplicate by its status alone) priced it again: two calls, twice the cost. A
    duplicate's status is written all the same, the SDK evicting the oldest attribute."""
    from opentelemetry.sdk.trace import SpanLimits

    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=16), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    processor = CostSpanProcessor(table)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = {**chat(input_tokens=1000, output_tokens=100), "gen_ai.response.id": "msg_1"}
    with provider.get_tracer("app").start_as_current_span("agent", attributes=AGENT):
        outer = provider.get_tracer("openllmetry").start_span("anthropic.chat", attributes=call)
        inner = provider.get_tracer("sdk").start_span("anthropic.messages.create", attributes=call)
        inner.end()
        outer.set_attributes({f"gen_ai.prompt.{i}.content": "x" for i in range(16 - len(outer.attributes))})
        outer.end()
    kept = {s.name: s for s in exporter.get_finished_spans()}
    assert kept["anthropic.chat"].attributes[COST_STATUS] == "duplicate"
    assert processor.stats()["unstamped"] == 0
    store = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=table)
    store.export(list(kept.values()))
    store.shutdown()
    (row,) = rollup("stats", db=tmp_path / "s.duckdb", since="2000-01-01")[:1]
    assert row["calls"] == 1
