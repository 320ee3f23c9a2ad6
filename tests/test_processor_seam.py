"""The SDK seam (_sdk_seam.py). If these fail after an OpenTelemetry SDK upgrade, the seam no
longer matches how the SDK ends spans: fix the seam before releasing, or the cost silently
stops reaching exporters."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import _sdk_seam
from otel_costattr.processor import CostSpanProcessor
from otel_costattr.semconv import COST, COST_STATUS


@pytest.fixture
def tracer():
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("seam")
    tracer.exporter = exporter  # type: ignore[attr-defined]
    return tracer


def test_self_test_passes_on_the_installed_sdk():
    assert _sdk_seam.self_test() is None, "the SDK changed: see _sdk_seam.py"
    assert _sdk_seam._fast, "the fast paths were switched off: see _sdk_seam.py"


@pytest.mark.parametrize("way", ["closure", "subclass"])
def test_both_ways_stamp_before_the_span_freezes(tracer, way, caplog):
    calls = []

    def before_end(span, attrs):
        calls.append(dict(attrs))
        _sdk_seam.add_attributes(span, {"stamped": 1.5})

    hook = _sdk_seam.EndHook(before_end, frozenset({"k"}), prefer=way)
    hooked = tracer.start_span("hooked", attributes={"k": "v"})
    skipped = tracer.start_span("skipped", attributes={"other": 1})
    assert hook.install(hooked) and hook.install(skipped)
    with caplog.at_level(logging.WARNING):
        hooked.end()
        skipped.end()
        hooked.end()  # a second end() stamps nothing and calls nothing
    assert calls == [{"k": "v"}]
    exported = {s.name: dict(s.attributes) for s in tracer.exporter.get_finished_spans()}
    assert exported == {"hooked": {"k": "v", "stamped": 1.5}, "skipped": {"other": 1}}
    assert "Setting attribute" not in caplog.text
    assert repr(hooked).startswith('_Span(name="hooked"')


def test_hook_that_raises_still_ends_the_span(tracer, caplog):
    def before_end(span, attrs):
        raise RuntimeError("boom")

    hook = _sdk_seam.EndHook(before_end, frozenset({"k"}))
    span = tracer.start_span("s", attributes={"k": 1})
    hook.install(span)
    with caplog.at_level(logging.ERROR):
        span.end()
    assert not span.is_recording()
    assert "boom" in caplog.text


def test_closure_removes_itself_at_end(tracer):
    span = tracer.start_span("s", attributes={"k": 1})
    hook = _sdk_seam.EndHook(lambda s, a: None, frozenset())
    assert hook.install(span)
    assert "end" in span.__dict__
    span.end()
    assert "end" not in span.__dict__  # no span -> closure -> span cycle left behind


def test_span_refusing_instance_attributes_falls_back_to_the_subclass(tracer):
    span = tracer.start_span("s", attributes={"k": 1})

    class Guarded(type(span)):  # e.g. a vendor span class guarding its attributes
        __slots__ = ()

        def __setattr__(self, name, value):
            if name == "end":
                raise AttributeError("read-only")
            super().__setattr__(name, value)

    span.__class__ = Guarded
    hook = _sdk_seam.EndHook(lambda s, a: _sdk_seam.add_attributes(s, {"stamped": True}), frozenset({"k"}))
    assert hook.install(span)
    assert isinstance(span, Guarded) and type(span) is not Guarded
    span.end()
    assert tracer.exporter.get_finished_spans()[0].attributes["stamped"] is True


def test_non_sdk_spans_are_not_hooked():
    hook = _sdk_seam.EndHook(lambda s, a: None, frozenset())
    assert not hook.install(trace.INVALID_SPAN)
    assert not hook.install(object())
    assert _sdk_seam.attributes_of(trace.INVALID_SPAN) == {}
    assert _sdk_seam.attributes_of(object()) == {}


def test_unhookable_span_counted_and_logged_once(table, caplog):
    processor = CostSpanProcessor(table)
    with caplog.at_level(logging.WARNING, logger="otel_costattr.processor"):
        processor.on_start(trace.INVALID_SPAN)  # type: ignore[arg-type]
        processor.on_start(trace.INVALID_SPAN)  # type: ignore[arg-type]
    assert processor.stats()["unhooked"] == 2
    assert processor.stats()["internal_errors"] == 0
    assert caplog.text.count("cannot hook spans") == 1


def test_parent_and_baggage_read_from_the_context(tracer):
    parent = tracer.start_span("p")
    ctx = trace.set_span_in_context(parent, baggage.set_baggage("a", "b"))
    assert _sdk_seam.parent_and_baggage(ctx) == (parent, {"a": "b"})
    assert _sdk_seam.parent_and_baggage(trace.set_span_in_context(trace.INVALID_SPAN)) == (
        trace.INVALID_SPAN,
        {},
    )


def test_public_fallback_gives_the_same_results(table, monkeypatch):
    monkeypatch.setattr(_sdk_seam, "_fast", False)
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    ctx = baggage.set_baggage("app.feature", "f")
    with tracer.start_as_current_span(
        "agent", context=ctx, attributes={"gen_ai.operation.name": "invoke_agent"}
    ):
        tracer.start_span(
            "chat",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "acme-mini",
                "gen_ai.usage.input_tokens": 1000,
            },
        ).end()
    chat = exporter.get_finished_spans()[0]
    assert chat.attributes[COST] == 0.00015
    assert chat.attributes[COST_STATUS] == "priced"
    assert chat.attributes["app.feature"] == "f"
    assert chat.attributes["gen_ai.agent.step"] == 0


def test_add_attributes_defers_to_the_sdk_at_its_limits():
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=2), shutdown_on_exit=False)
    span = provider.get_tracer("t").start_span("s", attributes={"a": 1, "b": 2})
    _sdk_seam.add_attributes(span, {"c": 3})
    assert dict(span.attributes) == {"b": 2, "c": 3}  # the SDK dropped the oldest
    span.end()
    _sdk_seam.add_attributes(span, {"d": 4})  # ended: ignored, as set_attribute does
    assert "d" not in span.attributes
