"""Fast paths of the row mapping against the general code they skip (real SDK spans)."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import semconv
from otel_costattr.spans import rows
from otel_costattr.spans.rows import SpanMapper

_memory = InMemorySpanExporter()
_provider = TracerProvider(shutdown_on_exit=False)
_provider.add_span_processor(SimpleSpanProcessor(_memory))
_tracer = _provider.get_tracer("test")

steps = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([2**31 - 1, 2**31, -(2**31) + 1, -(2**31), 0, True, False]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=2).map(tuple),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
@example(value="¹")  # isdigit() but not a number int() reads: it raised out of the mapper
@example(value="0\x1f")  # strip() removes \x1f, int() does not: it raised too
def test_step_column_is_what_the_general_step_rule_gives(table, value):
    _memory.clear()
    with _tracer.start_as_current_span("s", attributes={semconv.AGENT_STEP: value}):
        pass
    (span,) = _memory.get_finished_spans()
    stored = span.attributes[semconv.AGENT_STEP]
    assert SpanMapper(table).row(span)["step"] == rows._step(stored)
