"""The column-by-column batch mapping (`spans/batch.py`, what `SpanMapper.table` runs) gives
the very table the general row path gives (`rows_to_table(SpanMapper.rows(...))`) on random
batches: spans of a few attribute shapes interleaved, hostile values (empty and non-text
text, floats and out-of-range steps, None values as OTLP may carry), content to leave out,
events, links, error descriptions, stamped and unstamped model calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_costattr import semconv
from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.spans import batch
from otel_costattr.spans.record import SpanRecord, make_record
from otel_costattr.spans.rows import SpanMapper, rows_to_table

DATA = Path(__file__).parent / "data"
T0 = 1_782_900_000_000_000_000


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_pricing([DATA / "test_prices.toml"], bundled=False, use_env=False)


KEYS = (
    semconv.OPERATION,
    semconv.OPENINFERENCE_KIND,
    semconv.COST_STATUS,
    *semconv.PROVIDER_KEYS[:2],
    *semconv.PROVIDER_KEYS[-1:],  # llm.provider: the host beside the OpenAI client
    *semconv.ADDRESS_KEYS,  # the endpoint, which names the host that billed
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    semconv.ANTHROPIC_CACHE_READ,
    semconv.AGENT_STEP,
    semconv.AGENT_NAME,
    semconv.AGENT_ID,
    semconv.FEATURE,
    semconv.TOOL_NAME,
    semconv.CONVERSATION_ID,
    semconv.WORKFLOW_NAME,
    semconv.COST,
    semconv.PRICING_VERSION,
    "error.type",
    "gen_ai.prompt",  # content
    "gen_ai.request.temperature",  # kept only as a number
    "app.tenant",
)
OPERATIONS = ("chat", "invoke_agent", "execute_tool", "embeddings", "invoke_workflow", "other")
values = st.one_of(
    st.sampled_from(["", "acme-large", "acme-large-20260101", "acme", "LLM", "AGENT", "duplicate", "x"]),
    st.sampled_from(["openai", "groq", "api.groq.com", "https://x.openai.azure.com/v1", "example.invalid"]),
    st.sampled_from(OPERATIONS),
    st.integers(-5, 5000),
    st.sampled_from([2**31, -(2**31), 2**31 - 1, 10**20]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.tuples(st.sampled_from(["a", ""])),
)
# Mostly well-formed spans, so that the usual fast cases are tried as often as the odd ones.
typical = {
    semconv.OPERATION: st.sampled_from(OPERATIONS),
    "gen_ai.request.model": st.sampled_from(["acme-large", "acme-think", "nope"]),
    "gen_ai.usage.input_tokens": st.integers(0, 300_000),
    "gen_ai.usage.output_tokens": st.integers(0, 5000),
    semconv.AGENT_STEP: st.integers(0, 40),
}
shapes = st.lists(st.sampled_from(KEYS), unique=True, max_size=10)
events = st.lists(
    st.tuples(
        st.sampled_from(["exception", "gen_ai.choice", "retry"]),
        st.just(T0),
        st.dictionaries(st.sampled_from(["exception.type", "exception.message", "n", "content"]), values),
    ),
    max_size=2,
).map(tuple)
links = st.lists(
    st.tuples(st.just("ab" * 16), st.just("cd" * 8), st.dictionaries(st.sampled_from(KEYS), values)),
    max_size=1,
).map(tuple)


@st.composite
def span_batch(draw) -> list[SpanRecord]:
    out = []
    resource = {"service.name": "svc"}
    for shape in draw(st.lists(shapes, min_size=1, max_size=3)):
        for _ in range(draw(st.integers(0, 20))):
            attrs = {k: draw(typical[k] if k in typical and draw(st.booleans()) else values) for k in shape}
            start = draw(st.one_of(st.just(T0), st.integers(0, 2**62), st.none()))
            n = len(out)
            out.append(
                make_record(
                    (
                        f"{n:032x}",
                        f"{n:016x}",
                        None if n % 3 == 0 else f"{n - 1:016x}",
                        start,
                        None if start is None else max(0, start + draw(st.integers(-(10**6), 10**9))),
                        "span",
                        "CLIENT",
                        draw(st.sampled_from(["UNSET", "ERROR"])),
                        draw(st.sampled_from([None, None, "Boom: secret output"])),
                        resource,
                        "svc",
                        "scope",
                        None,
                        attrs,
                        draw(st.one_of(st.just(()), events)),
                        draw(st.one_of(st.just(()), links)),
                    )
                )
            )
    return draw(st.permutations(out))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_batch(), st.booleans())
def test_batch_table_is_the_row_path_table(table, records, capture):
    assert_batch_is_row_path(table, records, capture)


def assert_batch_is_row_path(table, records, capture):
    """``SpanMapper.table`` equals the row path's table for ``records``, counts included."""
    general, columns = SpanMapper(table, capture_content=capture), SpanMapper(table, capture_content=capture)
    expected = rows_to_table(general.rows(records))
    got = columns.table(records)
    assert got.to_pylist() == expected.to_pylist()
    assert got.equals(expected)
    assert (columns.content_dropped, columns.errors) == (general.content_dropped, general.errors)
    return got


def _chat_records(n: int, resources: tuple[dict, ...] = ({},), tokens: bool = True) -> list[SpanRecord]:
    """``n`` chat records of one shape, their resources taken in turn from ``resources``."""
    return [
        make_record(
            (
                f"{i:032x}",
                f"{i:016x}",
                None,
                T0,
                T0 + 5,
                "chat",
                "CLIENT",
                "UNSET",
                None,
                resources[i % len(resources)],
                None,
                None,
                None,
                {
                    semconv.OPERATION: "chat",
                    "gen_ai.request.model": "acme-large",
                    **({"gen_ai.usage.input_tokens": i} if tokens else {}),
                },
                (),
                (),
            )
        )  # fmt: skip
        for i in range(n)
    ]


def test_the_column_path_runs_on_a_batch_of_one_shape(table, monkeypatch):
    """The property above would pass if every batch fell back to the row path: this one must
    not."""
    records = _chat_records(40)
    monkeypatch.setattr(SpanMapper, "rows", None)  # the fallback would call it
    monkeypatch.setattr(SpanMapper, "_values", None)
    got = SpanMapper(table).table(records)
    assert got.column("input_tokens").to_pylist() == list(range(40))
    assert set(got.column("cost_status").to_pylist()) == {"priced"}
    assert batch.MIN_SHAPE <= 40


# One column's values, all of one type, as a shape's column may hold them (and the odd ones
# the template must refuse: None, arrays, non-finite floats, a bool among ints).
column_values = st.one_of(
    st.lists(st.text(), min_size=1, max_size=6),
    st.lists(st.integers(-(2**70), 2**70), min_size=1, max_size=6),
    st.lists(st.floats(), min_size=1, max_size=6),
    st.lists(st.booleans(), min_size=1, max_size=6),
    st.lists(
        st.one_of(st.integers(), st.booleans(), st.none(), st.tuples(st.text())), min_size=1, max_size=6
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(), column_values), max_size=6, unique_by=lambda kv: kv[0]))
def test_a_shapes_attributes_json_is_to_json_of_each_span(columns):
    """The template path writes exactly what `encode.to_json` writes for each span, keys with
    quotes, percent signs and any text included, or declines."""
    from otel_costattr.spans.encode import to_json

    m = min((len(c) for _, c in columns), default=3)
    shape = tuple(key for key, _ in columns)
    values = [c[:m] for _, c in columns]
    spans = [dict(zip(shape, row, strict=True)) for row in zip(*values, strict=True)] if shape else [{}] * m
    got = batch._shape_json(shape, values, m)
    if got is not None:
        assert got == [to_json(a) for a in spans]


def test_the_template_path_runs_on_text_numbers_and_flags(monkeypatch):
    """The property above would pass if the template always declined: on columns of one
    scalar type each, finite floats among them, it must answer."""
    shape = ("a", 'q"%s', "ü", "n", "f", "b")
    values = [["x", "é\n"], ["%d", "\\"], ["", "☃"], [1, 10**20], [0.1, -0.0], [True, False]]
    got = batch._shape_json(shape, values, 2)
    assert got == [
        '{"a":"x","q\\"%s":"%d","ü":"","n":1,"f":0.1,"b":true}',
        '{"a":"é\\n","q\\"%s":"\\\\","ü":"☃","n":100000000000000000000,"f":-0.0,"b":false}',
    ]


def test_spans_of_two_resources_in_one_batch_each_keep_their_own(table):
    """The resource's JSON is made once a batch only when every span shares one resource."""
    resources = ({"service.name": "a"}, {"service.name": "b", "gen_ai.prompt": "secret"})
    records = _chat_records(20, resources, tokens=False)
    got = SpanMapper(table).table(records)
    assert got.equals(rows_to_table(SpanMapper(table).rows(records)))
    assert got.column("resource").to_pylist()[:2] == ['{"service.name":"a"}', '{"service.name":"b"}']


def test_a_nan_beside_bytes_maps_and_logs_no_content(table, caplog):
    # OTLP allows a double NaN and a bytes value in one resource: the JSON encoder's retry
    # for the NaN raised on the bytes, so every span of that resource was "could not be
    # mapped" (rejected with a 200) and the log line held the whole record, prompts and all.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from otel_costattr.spans.otlp import records_from_otlp

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    odd = (("x.nan", "double_value", float("nan")), ("x.blob", "bytes_value", b"\x00\xff"))
    for key, field, value in odd:
        kv = rs.resource.attributes.add()
        kv.key = key
        setattr(kv.value, field, value)
    spans = rs.scope_spans.add().spans
    for i in range(3):
        span = spans.add(trace_id=bytes([1] * 16), span_id=bytes([i + 1] * 8), name="chat")
        kv = span.attributes.add()
        kv.key = "gen_ai.input.messages"
        kv.value.string_value = "MY SECRET PROMPT"
        kv = span.attributes.add()
        kv.key = "x.inf"
        kv.value.array_value.values.add(double_value=float("inf"))
        kv.value.array_value.values.add(bytes_value=b"\x01")
    records, rejected, _ = records_from_otlp(request)
    assert rejected == 0 and len(records) == 3
    mapper = SpanMapper(table)
    got = mapper.table(records)
    assert got.num_rows == 3 and mapper.errors == 0
    resource = got.column("resource").to_pylist()[0]
    assert '"x.nan":"nan"' in resource and "x.blob" in resource
    assert "MY SECRET PROMPT" not in caplog.text


def test_a_span_that_cannot_be_mapped_is_logged_by_its_ids_only(table, caplog):
    # The log line held repr(record): every attribute, prompts among them, content capture
    # off or not.
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

        __repr__ = __str__

    attrs = {"gen_ai.input.messages": "MY SECRET PROMPT", "x.odd": Unprintable()}
    ids = ("ab" * 16, "cd" * 8, None)
    record = SpanRecord(*ids, 1, 2, "chat", "INTERNAL", "UNSET", None, {}, None, None, None, attrs, (), ())
    mapper = SpanMapper(table)
    assert mapper.table([record]).num_rows == 0 and mapper.errors == 1
    assert f"could not map span {'cd' * 8} of trace {'ab' * 16}; skipped" in caplog.text
    assert "MY SECRET PROMPT" not in caplog.text


def test_a_skipped_sdk_span_or_row_is_named_by_its_ids():
    # The SDK's spans keep their ids on their context, and the batch's row-by-row fallback
    # names a row in text: both were logged as "trace ?, span ?".
    from opentelemetry.sdk.trace import TracerProvider

    from otel_costattr.spans.rows import _naming

    span = TracerProvider().get_tracer("t").start_span("x", attributes={"gen_ai.input.messages": "secret"})
    span.end()
    context = span.get_span_context()
    assert _naming(span) == f"span {context.span_id:016x} of trace {context.trace_id:032x}"
    assert _naming("span 'cd' of trace 'ab'") == "span 'cd' of trace 'ab'"
