"""What the processor says besides the cost (issue 17): the proposed cost attributes behind a
setting, and a count of spans that makes "spans but no model call" visible. Real
TracerProvider."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, load_pricing, settings
from otel_costattr.semconv import (
    COMPUTED_COST,
    COST,
    PROPOSED_COST_AMOUNT,
    PROPOSED_COST_CURRENCY,
    PROPOSED_COST_SOURCE,
)

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


def _run(processor, *spans):
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for attrs in spans:
        tracer.start_span("s", attributes=attrs).end()
    return [dict(s.attributes) for s in memory.get_finished_spans()]


def test_proposed_attributes_are_off_by_default(bundled, monkeypatch):
    monkeypatch.delenv(settings.PROPOSED_COST_ATTRIBUTES, raising=False)
    (attrs,) = _run(CostSpanProcessor(bundled), CHAT)
    assert COST in attrs and PROPOSED_COST_AMOUNT not in attrs


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_proposed_attributes_say_local(bundled, monkeypatch, how):
    if how == "environment":
        monkeypatch.setenv(settings.PROPOSED_COST_ATTRIBUTES, "true")
        processor = CostSpanProcessor(bundled)
    else:
        processor = CostSpanProcessor(bundled, proposed_cost_attributes=True)
    (attrs,) = _run(processor, CHAT, {"http.method": "GET"})[:1]
    assert attrs[PROPOSED_COST_AMOUNT] == attrs[COST] == pytest.approx(0.0035)
    assert attrs[PROPOSED_COST_CURRENCY] == "USD" and attrs[PROPOSED_COST_SOURCE] == "local"


def test_proposed_attributes_say_provider_when_the_provider_cost_won(bundled):
    reported = {**CHAT, "llm.cost.total": 0.004}
    (attrs,) = _run(CostSpanProcessor(bundled, proposed_cost_attributes=True), reported)
    assert attrs[COST] == attrs[PROPOSED_COST_AMOUNT] == 0.004
    assert attrs[PROPOSED_COST_SOURCE] == "provider" and attrs[COMPUTED_COST] == pytest.approx(0.0035)


def test_a_local_estimate_is_not_a_provider_cost(bundled):
    # Another tool's estimate (or ours, seen again downstream) never wins over our price.
    estimate = {**CHAT, PROPOSED_COST_AMOUNT: 9.0, PROPOSED_COST_SOURCE: "local"}
    (attrs,) = _run(CostSpanProcessor(bundled), estimate)
    assert attrs[COST] == pytest.approx(0.0035) and COMPUTED_COST not in attrs


def test_a_bad_setting_fails_at_construction(bundled, monkeypatch):
    monkeypatch.setenv(settings.PROPOSED_COST_ATTRIBUTES, "maybe")
    with pytest.raises(ValueError, match="OTEL_COSTATTR_PROPOSED_COST_ATTRIBUTES='maybe'"):
        CostSpanProcessor(bundled)


def test_spans_are_counted_and_no_model_call_is_said_once(bundled, caplog, monkeypatch):
    monkeypatch.setattr("otel_costattr.sdk.processor._NO_CALLS_AFTER", 5)
    processor = CostSpanProcessor(bundled)
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.processor"):
        _run(processor, *([{"http.method": "GET"}] * 12))
    assert processor.stats()["spans"] == 12 and processor.stats()["priced"] == 0
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["otel-costattr: 5 spans ended, 0 model calls: is a GenAI instrumentation "
                        "loaded? (counted in stats()['spans'])"]  # fmt: skip


def test_no_warning_once_a_model_call_was_seen(bundled, caplog, monkeypatch):
    monkeypatch.setattr("otel_costattr.sdk.processor._NO_CALLS_AFTER", 5)
    processor = CostSpanProcessor(bundled)
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.processor"):
        _run(processor, CHAT, *([{"http.method": "GET"}] * 8))
    assert processor.stats()["spans"] == 9 and processor.stats()["priced"] == 1
    assert not caplog.records
    assert "on_end" in vars(processor)  # nothing left to check: counted in C from the first call


def test_spans_are_counted_exactly_after_the_check(bundled, monkeypatch):
    # Past the no-model-call check the SDK's on_end call counts in C (a partial of next):
    # every span is still counted, and a subclass's own on_end is never replaced.
    monkeypatch.setattr("otel_costattr.sdk.processor._NO_CALLS_AFTER", 3)
    processor = CostSpanProcessor(bundled)
    _run(processor, *([{"http.method": "GET"}] * 7))
    assert "on_end" in vars(processor) and processor.stats()["spans"] == 7
    _run(processor, CHAT, {"http.method": "GET"})
    assert processor.stats()["spans"] == 9 and processor.stats()["priced"] == 1

    ended = []

    class Watching(CostSpanProcessor):
        def on_end(self, span):
            ended.append(span.name)
            super().on_end(span)

    watching = Watching(bundled)
    _run(watching, *([{"http.method": "GET"}] * 5))
    assert len(ended) == 5 and watching.stats()["spans"] == 5 and "on_end" not in vars(watching)
