"""The SDK seam (sdk/seam*.py). If these fail after an OpenTelemetry SDK upgrade, the seam no
longer matches how the SDK ends spans: fix the seam before releasing, or the cost silently
stops reaching exporters."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr.sdk import seam, seam_records
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import COST, COST_STATUS, ROLE_KEYS


@pytest.fixture
def tracer():
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("seam")
    tracer.exporter = exporter  # type: ignore[attr-defined]
    tracer.provider = provider  # type: ignore[attr-defined]
    return tracer


def test_self_test_passes_on_the_installed_sdk():
    assert seam.self_test() is None, "the SDK changed: see sdk/seam.py"
    assert seam._fast, "the fast paths were switched off: see sdk/seam.py"
    assert seam.ending_works(), "_on_ending no longer usable: see sdk/seam.py"
    assert CostSpanProcessor()._hook.mode == "ending"


class Hooked(SpanProcessor):
    """The smallest processor using an EndHook, as CostSpanProcessor does."""

    def __init__(self, before_end, keys, mode):
        self.hook = seam.EndHook(before_end, keys, self, mode=mode)
        self._on_ending = self.hook.on_ending

    def on_start(self, span, parent_context=None):
        assert self.hook.ensure(span)


@pytest.mark.parametrize("mode", ["ending", "closure"])
def test_both_modes_stamp_where_every_processor_sees_it(tracer, mode, caplog):
    calls = []

    def before_end(span, attrs):
        calls.append(dict(attrs))
        return {"stamped": 1.5}

    # Registered after the exporting processor: it must still see the stamp.
    tracer.provider.add_span_processor(Hooked(before_end, frozenset({"k"}), mode))
    hooked = tracer.start_span("hooked", attributes={"k": "v"})
    skipped = tracer.start_span("skipped", attributes={"other": 1})
    with caplog.at_level(logging.WARNING):
        hooked.end()
        skipped.end()
        hooked.end()  # a second end() stamps nothing and calls nothing
    assert calls == [{"k": "v"}]
    exported = {s.name: dict(s.attributes) for s in tracer.exporter.get_finished_spans()}
    assert exported == {"hooked": {"k": "v", "stamped": 1.5}, "skipped": {"other": 1}}
    assert "Setting attribute" not in caplog.text
    assert repr(hooked).startswith('_Span(name="hooked"')
    with pytest.raises(TypeError):  # still frozen for everyone else
        hooked.attributes["late"] = 1  # type: ignore[index]


@pytest.mark.parametrize("mode", ["ending", "closure"])
def test_hook_that_raises_still_ends_the_span(tracer, mode, caplog):
    def before_end(span, attrs):
        raise RuntimeError("boom")

    tracer.provider.add_span_processor(Hooked(before_end, frozenset({"k"}), mode))
    span = tracer.start_span("s", attributes={"k": 1})
    with caplog.at_level(logging.ERROR):
        span.end()
    assert not span.is_recording()
    assert "boom" in caplog.text
    assert [s.name for s in tracer.exporter.get_finished_spans()] == ["s"]


def test_ending_mode_stamps_within_the_span_limits():
    ended = []
    for limit in (4, 3):
        provider = TracerProvider(
            span_limits=SpanLimits(max_span_attributes=limit, max_attribute_length=4), shutdown_on_exit=False
        )
        exporter = InMemorySpanExporter()
        provider.add_span_processor(
            Hooked(lambda s, a: {"status": "priced", "cost": 0.5}, frozenset({"k"}), "ending")
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        provider.get_tracer("t").start_span("s", attributes={"a": 1, "k": 2}).end()
        ended += exporter.get_finished_spans()
    fitting, full = ended
    # Whole, past the length limit: a status cut to it is no status (a review: "unknow").
    assert dict(fitting.attributes) == {"a": 1, "k": 2, "status": "priced", "cost": 0.5}
    # No room for both: none is added, and no attribute of the span's own is evicted for them.
    assert dict(full.attributes) == {"a": 1, "k": 2} and full.dropped_attributes == 0
    with pytest.raises(TypeError):
        fitting.attributes["late"] = 1  # type: ignore[index]


def test_closure_removes_itself_at_end(tracer):
    span = tracer.start_span("s", attributes={"k": 1})
    hook = seam.EndHook(lambda s, a: None, frozenset(), None, mode="closure")
    assert hook.install(span)
    assert "end" in span.__dict__
    span.end()
    assert "end" not in span.__dict__  # no span -> closure -> span cycle left behind


def test_spans_that_cannot_be_hooked_are_refused(tracer):
    span = tracer.start_span("s", attributes={"k": 1})

    class Guarded(type(span)):  # e.g. a vendor span class guarding its attributes
        __slots__ = ()

        def __setattr__(self, name, value):
            if name == "end":
                raise AttributeError("read-only")
            super().__setattr__(name, value)

    span.__class__ = Guarded
    hook = seam.EndHook(lambda s, a: None, frozenset(), None, mode="closure")
    assert not hook.install(span)
    assert not hook.install(trace.INVALID_SPAN)
    assert not hook.install(object())
    assert seam.attributes_of(trace.INVALID_SPAN) == {}
    assert seam.attributes_of(object()) == {}


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be 'ending' or 'closure'"):
        seam.EndHook(lambda s, a: None, frozenset(), None, mode="subclass")


class ForwardsOnlyStartAndEnd(SpanProcessor):
    """A wrapper that does not know about _on_ending, as third-party wrappers may not."""

    def __init__(self, inner):
        self.inner = inner

    def on_start(self, span, parent_context=None):
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span):
        self.inner.on_end(span)


def chat_attrs():
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "acme-mini",
        "gen_ai.usage.input_tokens": 1000,
    }


def exporting_provider():
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def costs(exporter):
    return {s.name: s.attributes.get(COST) for s in exporter.get_finished_spans()}


def test_wrapped_processor_hooks_each_span_of_that_provider(table, caplog):
    processor = CostSpanProcessor(table)
    direct, direct_spans = exporting_provider()
    wrapped, wrapped_spans = exporting_provider()
    direct.add_span_processor(processor)
    wrapped.add_span_processor(ForwardsOnlyStartAndEnd(processor))
    with caplog.at_level(logging.WARNING, logger="otel_costattr"):
        in_flight = [wrapped.get_tracer("t").start_span(f"w{i}", attributes=chat_attrs()) for i in range(2)]
        direct.get_tracer("t").start_span("d0", attributes=chat_attrs()).end()
        for span in in_flight:
            span.end()
        wrapped.get_tracer("t").start_span("w2", attributes=chat_attrs()).end()
        direct.get_tracer("t").start_span("d1", attributes=chat_attrs()).end()
    assert costs(wrapped_spans) == {"w0": 0.00015, "w1": 0.00015, "w2": 0.00015}
    assert costs(direct_spans) == {"d0": 0.00015, "d1": 0.00015}
    assert processor.stats()["priced"] == 5 and processor.stats()["unhooked"] == 0
    assert caplog.text == ""


class ForwardsEverything(ForwardsOnlyStartAndEnd):
    def _on_ending(self, span):
        self.inner._on_ending(span)


@pytest.mark.parametrize(
    "register",
    [
        pytest.param(lambda provider, p: [provider.add_span_processor(p) for _ in range(2)], id="twice"),
        pytest.param(
            lambda provider, p: provider.add_span_processor(ForwardsEverything(p)), id="forwarding-wrapper"
        ),
        pytest.param(
            lambda provider, p: [
                provider.add_span_processor(p),
                provider.add_span_processor(CostSpanProcessor()),
            ],
            id="two-processors",
        ),
    ],
)
def test_a_span_is_priced_once_however_the_processor_is_reached(table, register):
    processor = CostSpanProcessor(table)
    provider, exporter = exporting_provider()
    register(provider, processor)
    provider.get_tracer("t").start_span("chat", attributes=chat_attrs()).end()
    (span,) = exporter.get_finished_spans()
    assert span.attributes[COST] == 0.00015 and span.attributes["costattr.pricing_version"] == table.version
    assert processor.stats()["priced"] == 1


def test_subclass_overriding_the_hooks_keeps_them(table):
    calls = []

    class Audited(CostSpanProcessor):
        def on_start(self, span, parent_context=None):
            calls.append("start")
            super().on_start(span, parent_context)

        def _on_ending(self, span):
            calls.append("ending")
            super()._on_ending(span)

    provider, exporter = exporting_provider()
    provider.add_span_processor(Audited(table))
    provider.get_tracer("t").start_span("chat", attributes=chat_attrs()).end()
    assert calls == ["start", "ending"]
    assert costs(exporter) == {"chat": 0.00015}


@pytest.mark.parametrize("mode", ["ending", "closure"])
def test_after_shutdown_nothing_is_priced_in_either_mode(table, mode):
    processor = CostSpanProcessor(table)
    processor._use_hook(seam.EndHook(processor._before_end, ROLE_KEYS, processor, mode=mode))
    provider, exporter = exporting_provider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    tracer.start_span("before", attributes=chat_attrs()).end()
    started = tracer.start_span("in flight", attributes=chat_attrs())
    processor.shutdown()
    started.end()
    tracer.start_span("after", attributes=chat_attrs()).end()
    assert costs(exporter) == {"before": 0.00015, "in flight": None, "after": None}
    # Nor is anything inherited or numbered any more.
    agent = {"gen_ai.operation.name": "invoke_agent", "app.feature": "f"}
    with tracer.start_as_current_span("agent", attributes=agent):
        tracer.start_span("late", attributes=chat_attrs()).end()
    late = next(s for s in exporter.get_finished_spans() if s.name == "late")
    assert "app.feature" not in late.attributes and "gen_ai.agent.step" not in late.attributes


def test_concurrent_multi_span_processor_passes_on_ending_on(table):
    # The SDK's other composite runs each hook on a thread pool and waits for it.
    composite = ConcurrentMultiSpanProcessor(num_threads=2)
    provider = TracerProvider(active_span_processor=composite, shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = CostSpanProcessor(table)
    provider.add_span_processor(processor)
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "acme-mini",
        "gen_ai.usage.input_tokens": 1000,
    }
    for _ in range(3):
        provider.get_tracer("t").start_span("chat", attributes=attrs).end()
    assert [s.attributes.get(COST) for s in exporter.get_finished_spans()] == [0.00015] * 3
    assert processor._hook.mode == "ending" and processor.stats()["unhooked"] == 0
    provider.shutdown()


def test_unhookable_span_counted_and_logged_once(table, caplog):
    processor = CostSpanProcessor(table)
    with caplog.at_level(logging.WARNING, logger="otel_costattr.sdk.processor"):
        processor.on_start(trace.INVALID_SPAN)  # type: ignore[arg-type]
        processor.on_start(trace.INVALID_SPAN)  # type: ignore[arg-type]
    assert processor.stats()["unhooked"] == 2
    assert processor.stats()["internal_errors"] == 0
    assert caplog.text.count("cannot hook spans") == 1


def test_parent_and_baggage_read_from_the_context(tracer):
    parent = tracer.start_span("p")
    ctx = trace.set_span_in_context(parent, baggage.set_baggage("a", "b"))
    assert seam.parent_and_baggage(ctx) == (parent, {"a": "b"})
    assert seam.parent_and_baggage(trace.set_span_in_context(trace.INVALID_SPAN)) == (
        trace.INVALID_SPAN,
        {},
    )


def test_public_fallback_gives_the_same_results(table, monkeypatch):
    monkeypatch.setattr(seam, "_fast", False)
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


def test_add_attributes_never_evicts_unless_told():
    """At the span's count limit only what fits is added (the span's own oldest attributes,
    its model among them, are never evicted for inherited identity), unless ``evict``."""
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=3), shutdown_on_exit=False)
    span = provider.get_tracer("t").start_span("s", attributes={"a": 1, "b": 2})
    seam.add_attributes(span, {"c": 3, "d": 4, "a": 5})
    assert dict(span.attributes) == {"a": 5, "b": 2, "c": 3}  # room for one new key; a replaced
    seam.add_attributes(span, {"e": [1]})  # not a plain value: through the SDK, trimmed alike
    assert dict(span.attributes) == {"a": 5, "b": 2, "c": 3}
    seam.add_attributes(span, {"e": 6}, evict=True)
    assert dict(span.attributes) == {"c": 3, "a": 5, "e": 6}  # the SDK dropped the oldest, b
    span.end()
    seam.add_attributes(span, {"d": 4})  # ended: ignored, as set_attribute does
    assert "d" not in span.attributes


def _finished_with_everything():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "s"}), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("scope", "1.0")
    with tracer.start_as_current_span("parent") as parent:
        link = Link(parent.get_span_context(), {"l": 1})
        child = tracer.start_span("child", kind=SpanKind.CLIENT, attributes={"a": (1, 2)}, links=[link])
        child.add_event("e", {"x": "y"}, timestamp=5)
        child.set_status(Status(StatusCode.ERROR, "bad"))
        child.end()
    return exporter.get_finished_spans()


def test_records_from_sdk_public_path_gives_the_same_records(monkeypatch):
    """The SDK adapter's private reads (`_attributes._dict`, `_events`...) and the public API
    it falls back to when the SDK changes read the same span the same way."""
    spans = _finished_with_everything()
    fast = seam_records.records_from_sdk(spans)
    monkeypatch.setattr(seam, "_fast", False)
    public = seam_records.records_from_sdk(spans)
    assert fast == public
    child = fast[0]
    assert (child.name, child.kind, child.status_code, child.status_message) == (
        "child",
        "CLIENT",
        "ERROR",
        "bad",
    )
    assert child.parent_span_id == fast[1].span_id
    assert child.events == (("e", 5, {"x": "y"}),)
    assert child.links == ((fast[1].trace_id, fast[1].span_id, {"l": 1}),)
    assert type(child.attributes) is dict  # the live dict, not a proxy to copy per lookup
    assert (child.service_name, child.scope_name, child.scope_version) == ("s", "scope", "1.0")


def test_records_from_sdk_skips_what_it_cannot_read(caplog):
    spans = _finished_with_everything()
    skipped = []

    def on_skip(span):
        skipped.append(span)

    got = seam_records.records_from_sdk([object(), spans[0]], on_skip)
    assert [r.name for r in got] == ["child"] and len(skipped) == 1
    with caplog.at_level(logging.ERROR, logger="otel_costattr.sdk.seam_records"):
        assert seam_records.records_from_sdk([None]) == []
    assert "could not read span" in caplog.text


@pytest.mark.parametrize("mode", ["ending", "closure"])
def test_a_failure_in_the_seam_itself_is_counted(monkeypatch, caplog, mode):
    # The hook's own failures (writing the stamp, reading the span) were logged only: the
    # processor's stats()["internal_errors"], which its doc says counts them, stayed 0.
    def broken(*args, **kwargs):
        raise RuntimeError("seam bug")

    monkeypatch.setattr(seam, "_add_values", broken)
    monkeypatch.setattr(seam, "add_attributes", broken)
    processor = CostSpanProcessor()
    if mode == "closure":
        processor._use_hook(
            seam.EndHook(
                processor._before_end,
                ROLE_KEYS,
                processor,
                mode=mode,
                failed=lambda: processor._internal_error("end"),
            )
        )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
    }
    with caplog.at_level(logging.ERROR, logger="otel_costattr"):
        provider.get_tracer("t").start_span("chat", attributes=call).end()
    assert [s.name for s in exporter.get_finished_spans()] == ["chat"]  # ended and exported anyway
    assert processor.stats()["internal_errors"] == 1
    assert "seam bug" in caplog.text
