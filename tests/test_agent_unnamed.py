"""An OpenInference AGENT span never named, under a caller whose identity came in Baggage:
at its end it takes what it would have inherited, so the calls under it (which take no agent
from Baggage while it may still be named) are the caller's, and nothing else changes: an
empty name is none, a version it set itself stays, its limits hold, and it is no model call
(no 'unstamped' count, the no-calls warning still said). The reviews of cf5a83c."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_store import priced_store
from test_agent_version import OI_LLM, UPSTREAM, per_agent

from otel_costattr import CostSpanProcessor

KIND = {"openinference.span.kind": "AGENT"}


@pytest.mark.parametrize(
    ("start", "later"),
    [
        ({}, {}),  # never named
        ({}, {"agent.name": ""}),  # an empty name is none, as the store reads it
        ({}, {"gen_ai.agent.name": ""}),
        ({"agent.name": ""}, {}),
        ({"gen_ai.agent.name": ""}, {}),  # at start too (the review of the fix)
        ({"gen_ai.agent.name": "", "agent.name": ""}, {}),
    ],
)
def test_the_calls_of_an_agent_never_named_are_the_callers(tmp_path, start, later):
    db = tmp_path / "s.duckdb"
    provider, _ = priced_store(db)
    oi = provider.get_tracer("openinference.instrumentation.openai_agents")
    token = context.attach(UPSTREAM)
    try:
        with oi.start_as_current_span("writer", attributes={**KIND, **start}) as writer:
            oi.start_span("response", attributes=OI_LLM).end()
            writer.set_attributes(later)
    finally:
        context.detach(token)
    provider.shutdown()
    assert per_agent(db) == [("A", "1.0", 1)]


def _provider(limits: SpanLimits | None = None, processors: int = 1):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits) if limits else TracerProvider()
    procs = [CostSpanProcessor() for _ in range(processors)]
    for proc in procs:
        provider.add_span_processor(proc)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, procs, exporter


def _unnamed_agent(provider, attributes=KIND, ctx=UPSTREAM, **set_later) -> None:
    token = context.attach(ctx)
    try:
        with provider.get_tracer("oi").start_as_current_span("writer", attributes=attributes) as span:
            span.set_attributes(set_later)
    finally:
        context.detach(token)


def test_a_version_the_agent_span_sets_itself_stays():
    provider, _, exporter = _provider()
    _unnamed_agent(provider, **{"gen_ai.agent.version": "9.9"})
    attrs = exporter.get_finished_spans()[0].attributes
    assert (attrs["gen_ai.agent.name"], attrs["gen_ai.agent.version"]) == ("A", "9.9")


def test_the_name_is_cut_at_the_value_length_limit_as_inherited_identity_is():
    provider, _, exporter = _provider(SpanLimits(max_attribute_length=5))
    ctx = baggage.set_baggage("gen_ai.agent.name", "caller-agent")
    token = context.attach(ctx)
    try:
        provider.get_tracer("plain").start_span("plain root").end()
    finally:
        context.detach(token)
    _unnamed_agent(provider, ctx=ctx)
    got = {s.name: s.attributes.get("gen_ai.agent.name") for s in exporter.get_finished_spans()}
    assert got == {"plain root": "calle", "writer": "calle"}


def test_no_room_at_the_count_limit_is_no_unstamped_call(caplog):
    provider, procs, _ = _provider(SpanLimits(max_span_attributes=3), processors=2)
    with caplog.at_level(logging.WARNING):
        _unnamed_agent(provider, attributes={**KIND, "a": 1, "b": 2})
    assert [proc.stats()["unstamped"] for proc in procs] == [0, 0]
    assert not any("no room" in r.getMessage() for r in caplog.records)


def test_the_no_model_calls_warning_is_still_said(caplog):
    provider, (proc,), _ = _provider()
    with caplog.at_level(logging.WARNING):
        _unnamed_agent(provider)
        for _ in range(1100):
            provider.get_tracer("plain").start_span("s").end()
    assert any("0 model calls" in r.getMessage() for r in caplog.records)
    assert proc.stats()["spans"] == 1101
