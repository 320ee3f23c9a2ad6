"""Spans of a shape already seen (priced by the shape's stamp function, sdk/stamps.py) are
stamped exactly as the shape's first span (the general end hook), under the SDK's limits,
regional prices and bad values: the regional test fails if the stamp functions stop handing
a regionally priced entry to the general hook."""

from __future__ import annotations

import datetime as dt

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import load_pricing
from otel_costattr.sdk.processor import CostSpanProcessor

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
BED = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "aws.bedrock",
    "gen_ai.request.model": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "gen_ai.usage.input_tokens": 100_000,
    "gen_ai.usage.output_tokens": 0,
}
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
}


@pytest.fixture(scope="module")
def table():
    return load_pricing(use_env=False)


def _run(table, attrs, n=3, resource=None, limits=None):
    provider = TracerProvider(resource=Resource.create(resource or {}), span_limits=limits or SpanLimits())
    memory = InMemorySpanExporter()
    processor = CostSpanProcessor(table)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for _ in range(n):
        tracer.start_span("chat", attributes=attrs, start_time=START).end()
    assert processor._shapes, "the stamp-function table was never filled"
    return [(dict(s.attributes), s.dropped_attributes) for s in memory.get_finished_spans()]


@pytest.mark.parametrize(
    ("attrs", "resource"),
    [({**BED, "aws.region": "us-gov-west-1"}, None), (BED, {"cloud.region": "us-gov-west-1"})],
)
def test_second_span_of_a_shape_gets_the_regional_price(table, attrs, resource):
    spans = _run(table, attrs, resource=resource)
    for got, _ in spans:
        assert got["gen_ai.usage.cost"] == pytest.approx(0.36, rel=1e-12)
        assert got["costattr.region"] == "us-gov-west-1"


@pytest.mark.parametrize(
    "limits",
    [
        None,
        SpanLimits(max_attribute_length=3),
        SpanLimits(max_span_attributes=7),
        SpanLimits(max_span_attributes=9),
        SpanLimits(max_span_attributes=10),
    ],
)
@pytest.mark.parametrize(
    "attrs",
    [
        CHAT,
        {**CHAT, "gen_ai.usage.cost": 0.5},
        {**CHAT, "gen_ai.request.model": "nope"},
        {**CHAT, "gen_ai.usage.input_tokens": -1},
        {**CHAT, "gen_ai.response.model": "gpt-4o-2099-01-01"},
    ],
)
def test_seen_shape_stamps_as_the_first_span(table, attrs, limits):
    spans = _run(table, attrs, limits=limits)
    assert spans[1] == spans[0] and spans[2] == spans[0]
