"""Span -> row, with spans from a real TracerProvider (and the real cost processor)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_costattr import semconv
from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.spans import content
from otel_costattr.spans.rows import COLUMN_NAMES, SCHEMA, SpanMapper, rows_to_table, span_to_row

T0 = 1_782_900_000_000_000_000  # 2026-07-01, inside the test table's second price period
BULK = """
provider = "bulk"
name = "Bulk"
source = "https://example.invalid"
retrieved = 2026-11-01

[[model]]
id = "bulk-1"
match = [{ equals = "bulk-1" }]

[[model.price]]
input = 1234.567891
output = 0
"""


def finished(attrs=None, *, name="chat acme-large", priced_by=None, **span_kw):
    """One finished span; ``priced_by``: a table for a CostSpanProcessor on the provider."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "svc", "deployment.environment": "test"}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if priced_by is not None:
        provider.add_span_processor(CostSpanProcessor(priced_by))
    tracer = provider.get_tracer("test.scope", "2.1")
    span = tracer.start_span(name, attributes=attrs, start_time=T0, **span_kw)
    span.end(end_time=T0 + 2_500_000)
    provider.shutdown()
    (done,) = memory.get_finished_spans()
    return done


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.response.model": "acme-large-20260101",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
}


def test_span_fields_become_typed_columns(table):
    span = finished(CHAT, kind=SpanKind.CLIENT)
    row = SpanMapper(table).row(span)
    assert row["trace_id"] == format(span.context.trace_id, "032x")
    assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
    assert row["parent_span_id"] is None
    assert row["name"] == "chat acme-large"
    assert row["kind"] == "CLIENT"
    assert row["start_time"] == datetime(2026, 7, 1, 10, 0)
    assert row["end_time"] == datetime(2026, 7, 1, 10, 0, 0, 2500)
    assert row["duration_ms"] == 2.5
    assert (row["status_code"], row["status_message"]) == ("UNSET", None)
    assert row["service_name"] == "svc"
    assert (row["scope_name"], row["scope_version"]) == ("test.scope", "2.1")
    assert row["span_role"] == "model_call"
    assert (row["operation"], row["provider"]) == ("chat", "acme")
    assert (row["request_model"], row["response_model"]) == ("acme-large", "acme-large-20260101")
    assert json.loads(row["resource"])["deployment.environment"] == "test"
    assert json.loads(row["attributes"]) == CHAT
    assert row["events"] == "[]" and row["links"] == "[]"


def test_parent_status_events_and_links(table):
    parent = finished({"gen_ai.operation.name": "invoke_agent"}, name="invoke_agent")
    link = Link(parent.context, {"why": "follows"})
    span = finished({"x": 1}, name="work", links=[link])
    # a child through the context API, with status and an event
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root, tracer.start_as_current_span("child") as child:
        child.add_event("retry", {"attempt": 2}, timestamp=T0)
        child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    rows = {r["name"]: r for r in (SpanMapper(table).row(s) for s in memory.get_finished_spans())}
    assert rows["child"]["parent_span_id"] == format(root.get_span_context().span_id, "016x")
    assert (rows["child"]["status_code"], rows["child"]["status_message"]) == ("ERROR", "boom")
    assert json.loads(rows["child"]["events"]) == [
        {"name": "retry", "time_unix_nano": T0, "attributes": {"attempt": 2}}
    ]
    assert rows["child"]["span_role"] == "other"
    linked = SpanMapper(table).row(span)
    assert json.loads(linked["links"]) == [
        {
            "trace_id": format(parent.context.trace_id, "032x"),
            "span_id": format(parent.context.span_id, "016x"),
            "attributes": {"why": "follows"},
        }
    ]


@pytest.mark.parametrize(
    ("attrs", "tokens"),
    [
        # conventions / OpenAI: input includes the cache reads
        (CHAT, (1200, 300, 1000, 0, 0)),
        # Anthropic's raw fields copied by hand: input is the uncached remainder
        (
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "acme-large",
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cache_read_input_tokens": 1000,
                "gen_ai.usage.cache_creation_input_tokens": 150,
            },
            (1200, 300, 1000, 150, 0),
        ),
        # OpenInference, reasoning included in the completion count
        (
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "acme-think-1",
                "llm.token_count.prompt": 1200,
                "llm.token_count.completion": 300,
                "llm.token_count.prompt_details.cache_read": 1000,
                "llm.token_count.completion_details.reasoning": 200,
            },
            (1200, 300, 1000, 0, 200),
        ),
    ],
)
def test_tokens_are_normalised_like_the_cost_engine(table, attrs, tokens):
    row = SpanMapper(table).row(finished(attrs))
    got = tuple(
        row[c]
        for c in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        )
    )
    assert got == tokens


def test_a_span_without_cost_is_priced_at_export(table):
    row = SpanMapper(table).row(finished(CHAT))
    # 200 uncached x 2 + 1000 cache reads x 0.2 + 300 output x 10, per million tokens
    assert row["cost_usd"] == Decimal("0.003600000000")
    assert row["cost_status"] == "priced"
    assert row["cost_source"] == "exporter"
    assert row["pricing_version"] == table.version
    assert row["priced_model"] == "acme-large"


_MIXED = {  # the cache read by the conventions' name, the write by Anthropic's raw one
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_creation_input_tokens": 150,
    "gen_ai.usage.output_tokens": 300,
}


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        # 50 uncached x 2 + 1000 reads x 0.2 + 150 writes x 2.5 + 300 output x 10, per Mtok
        ({**_MIXED, "gen_ai.usage.input_tokens": 1200}, "0.003675"),  # input inclusive
        ({**_MIXED, "gen_ai.usage.input_tokens": 50}, "0.003675"),  # input exclusive
        # an empty response model leaves the request model: 1000 x 2 + 100 x 10
        ({**CHAT, "gen_ai.response.model": "", "gen_ai.usage.cache_read.input_tokens": 0,
          "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}, "0.003"),
    ],
    ids=["mixed-inclusive", "mixed-exclusive", "empty-response-model"],
)  # fmt: skip
def test_every_path_prices_mixed_spellings_and_an_empty_model_alike(table, attrs, expected):
    # The processor's stamp, the exporter's row and its batch table agree with the hand figure.
    stamped = finished(attrs, priced_by=table).attributes
    assert stamped[semconv.COST] == float(Decimal(expected)), stamped.get(semconv.COST_STATUS)
    span = finished(attrs)
    row = SpanMapper(table).row(span)
    assert row["cost_usd"] == Decimal(expected), row["cost_status"]
    batch = SpanMapper(table).table([span] * 70)  # enough of one shape to be compiled
    assert set(batch.column("cost_usd").to_pylist()) == {Decimal(expected)}


_CALL_1000_100 = {**CHAT, "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.input_tokens": 1000,
                  "gen_ai.usage.output_tokens": 100}  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected", "status"),
    [
        # our price: 1000 x 2 + 100 x 10 per Mtok = $0.003; the provider's figure wins
        ({"gen_ai.usage.cost.amount": 0.0042, "gen_ai.usage.cost.currency": "USD"}, "0.0042", "priced"),
        ({"llm.cost.total": 0.0042}, "0.0042", "priced"),
        ({"llm.cost.total": 0.0042, "gen_ai.request.model": "acme-secret",
          "gen_ai.response.model": "acme-secret"}, "0.0042", "priced"),  # unknown to us, not to them
        ({"gen_ai.usage.cost.amount": 0.0042, "gen_ai.usage.cost.currency": "EUR"}, "0.003", "priced"),
        ({"gen_ai.usage.cost.amount": 0.0042, "gen_ai.usage.cost.source": "local"}, "0.003", "priced"),
        ({"llm.cost.total": -1.0}, "0.003", "priced"),  # not believable: ours
        # a bare gen_ai.usage.cost (not our stamp) beside them comes last, as in the processor
        ({"llm.cost.total": 0.0042, "gen_ai.usage.cost": 0.0099}, "0.0042", "priced"),
        ({"gen_ai.usage.cost.amount": 0.0042, "gen_ai.usage.cost": 0.0099}, "0.0042", "priced"),
        # neither we nor the provider priced it: the bare figure stands (the processor leaves it)
        ({"gen_ai.request.model": "acme-secret", "gen_ai.response.model": "acme-secret",
          "gen_ai.usage.cost": 7.0, "llm.cost.total": -3.0}, "7", "unknown_model"),
        # a bare figure in another currency is never taken for USD: ours, or none
        ({"gen_ai.usage.cost": 0.0099, "gen_ai.usage.cost.currency": "EUR"}, "0.003", "priced"),
        ({"gen_ai.request.model": "acme-secret", "gen_ai.response.model": "acme-secret",
          "gen_ai.usage.cost": 0.0099, "gen_ai.usage.cost.currency": "EUR"}, None, "unknown_model"),
        # someone's own estimate is no provider's charge: ours
        ({"gen_ai.usage.cost": 0.0099, "gen_ai.usage.cost.source": "local"}, "0.003", "priced"),
    ],
    ids=["proposed", "openinference", "unknown-model", "other-currency", "an-estimate", "negative",
         "total-and-bare", "amount-and-bare", "unknown-broken-and-bare", "bare-in-euros",
         "unknown-bare-in-euros", "bare-estimate"],
)  # fmt: skip
def test_a_cost_the_provider_reported_wins_with_or_without_the_processor(table, extra, expected, status):
    # It was honoured only where the processor ran: the exporter (or serve, for OTLP from
    # another language) stored our own price instead, or unknown_model.
    attrs = {**_CALL_1000_100, **extra}
    want = None if expected is None else Decimal(expected)
    processed = finished(attrs, priced_by=table)  # the processor ran, then the exporter
    span = finished(attrs)  # the exporter alone (or serve, or ClickHouse's pricing)
    for case in (processed, span):
        row = SpanMapper(table).row(case)
        assert (row["cost_usd"], row["cost_status"]) == (want, status), case is span
        batch = SpanMapper(table).table([case] * 70)  # enough of one shape to be compiled
        money = ("cost_usd", "cost_status", "cost_source", "priced_model")
        assert set(zip(*(batch.column(c).to_pylist() for c in money), strict=True)) == {
            tuple(row[c] for c in money)  # the batch as the row, to its source and model
        }


def test_reasoning_is_priced_at_its_own_rate(table):
    think = SpanMapper(table).row(
        finished(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "acme-think-2",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.cache_read.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.reasoning_tokens": 200,
            }
        )
    )
    assert think["cost_usd"] == Decimal("0.002695")  # 220 + 275 + 440 + 1760 per million


@pytest.fixture(scope="module")
def bulk(tmp_path_factory) -> PriceTable:
    path = tmp_path_factory.mktemp("prices") / "bulk.toml"
    path.write_text(BULK)
    return load_pricing([path], bundled=False, use_env=False)


BIG = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "bulk-1",
       "gen_ai.usage.input_tokens": 99_999_999, "gen_ai.usage.output_tokens": 0}  # fmt: skip


def test_stamped_cost_from_the_same_table_is_stored_exactly(bulk):
    span = finished(BIG, priced_by=bulk)
    assert span.attributes[semconv.COST] == 123456.78786543211  # a float loses the last digits
    row = SpanMapper(bulk).row(span)
    assert row["cost_usd"] == Decimal("123456.787865432109")
    assert (row["cost_source"], row["cost_status"]) == ("span", "priced")
    assert (row["pricing_version"], row["priced_model"]) == (bulk.version, "bulk-1")


def test_stamped_cost_from_another_table_is_kept_as_stamped(bulk, table):
    row = SpanMapper(table).row(finished(BIG, priced_by=bulk))
    assert row["cost_usd"] == Decimal("123456.787865432110")  # Decimal(str(float))
    assert (row["cost_source"], row["pricing_version"]) == ("span", bulk.version)
    assert row["input_tokens"] == 99_999_999


def test_a_stamp_the_engine_disagrees_with_is_kept(table):
    stamped = {**CHAT, semconv.COST: 0.5, semconv.COST_STATUS: "priced",
               semconv.PRICING_VERSION: table.version, semconv.PRICED_MODEL: "x"}  # fmt: skip
    row = SpanMapper(table).row(finished(stamped))
    assert (row["cost_usd"], row["cost_source"], row["priced_model"]) == (
        Decimal("0.5"),
        "span",
        "x",
    )
    assert row["input_tokens"] == 1200


def test_a_stamped_cost_too_big_for_the_column_is_left_out(table):
    stamped = {**CHAT, semconv.COST: 1e26, semconv.COST_STATUS: "priced"}
    mapper = SpanMapper(table)
    span = finished(stamped)
    assert mapper.row(span)["cost_usd"] is None
    assert mapper.table([span]).column("cost_usd").to_pylist() == [None]


def test_unknown_model_keeps_tokens_and_no_cost(table):
    row = SpanMapper(table).row(finished({**CHAT, "gen_ai.request.model": "nobody-knows",
                                          "gen_ai.response.model": "nobody-knows"}))  # fmt: skip
    assert row["cost_usd"] is None
    assert row["cost_status"] == "unknown_model"
    assert row["input_tokens"] == 1200


def test_invalid_usage_has_no_tokens_and_says_why(table):
    row = SpanMapper(table).row(finished({**CHAT, "gen_ai.usage.input_tokens": -5}))
    assert row["input_tokens"] is None and row["cost_usd"] is None
    assert row["cost_status"] == "invalid_usage"


def test_a_model_call_without_usage_reads_as_the_engine_reads_it(table):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-large"}
    row = SpanMapper(table).row(finished(attrs))
    assert row["span_role"] == "model_call"
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (0, 0, 0)
    assert (row["cost_usd"], row["cost_status"], row["cost_source"]) == (None, "no_usage", "exporter")


def test_agent_spans_keep_summed_usage_in_json_only(table):
    agent = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "planner",
        "gen_ai.agent.id": "agt-1",
        "gen_ai.agent.version": "3",
        "gen_ai.usage.input_tokens": 5000,
        "gen_ai.usage.output_tokens": 900,
        semconv.COST: 1.25,
    }
    row = SpanMapper(table).row(finished(agent, name="invoke_agent planner"))
    assert row["span_role"] == "agent"
    for column in ("input_tokens", "output_tokens", "cost_usd", "cost_status", "cost_source"):
        assert row[column] is None
    assert json.loads(row["attributes"])["gen_ai.usage.input_tokens"] == 5000
    assert (row["agent_name"], row["agent_id"], row["agent_version"]) == ("planner", "agt-1", "3")


def test_identity_columns(table):
    attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "app.feature": "support",
        "gen_ai.agent.step": 4.0,
        "gen_ai.conversation.id": "c-9",
        "gen_ai.workflow.name": "triage",
    }
    row = SpanMapper(table).row(finished(attrs))
    assert row["span_role"] == "tool"
    assert (row["tool_name"], row["feature"], row["step"]) == ("search", "support", 4)
    assert (row["conversation_id"], row["workflow_name"]) == ("c-9", "triage")
    assert SpanMapper(table).row(finished({"gen_ai.agent.step": "7"}))["step"] == 7
    assert SpanMapper(table).row(finished({"gen_ai.agent.step": "x"}))["step"] is None
    assert SpanMapper(table).row(finished({"app.feature": 12}))["feature"] == "12"


CONTENT = {
    "gen_ai.input.messages": '[{"role": "user", "content": "my card is 4111..."}]',
    "gen_ai.output.messages": "[]",
    "gen_ai.system_instructions": "be nice",
    "input.value": "prompt",
    "output.value": "completion",
    "llm.input_messages.0.message.content": "hello",
    "llm.output_messages.0.message.content": "hi",
}


def test_message_content_is_dropped_unless_asked_for(table):
    span = finished({**CHAT, **CONTENT})
    kept = json.loads(SpanMapper(table).row(span)["attributes"])
    assert kept == {**CHAT, "costattr.content_dropped": len(CONTENT)}
    full = json.loads(SpanMapper(table, capture_content=True).row(span)["attributes"])
    assert full == {**CHAT, **CONTENT}


def test_content_in_event_attributes_is_dropped_too(table):
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("chat", attributes=CHAT) as span:
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "secret", "n": 1}, timestamp=T0)
    provider.shutdown()
    (done,) = memory.get_finished_spans()
    (event,) = json.loads(span_to_row(done, pricing=table)["events"])
    # A GenAI event keeps only keys known to be safe: "n" could be message text too.
    assert event == {"name": "gen_ai.content.prompt", "time_unix_nano": T0, "attributes": {}}


def test_table_has_the_schema_and_the_rows(table):
    spans = [finished(CHAT), finished({"x": 1}, name="other")]
    mapper = SpanMapper(table)
    arrow = mapper.table(spans)
    assert arrow.schema == SCHEMA
    assert arrow.column_names == list(COLUMN_NAMES)
    assert arrow.to_pylist() == [mapper.row(s) for s in spans]
    assert rows_to_table([]).num_rows == 0


def test_costs_finer_than_the_column_are_rounded_half_even(tmp_path):
    prices = tmp_path / "fine.toml"
    prices.write_text(BULK.replace("bulk", "fine").replace("1234.567891", "0.00000125"))
    fine = load_pricing([prices], bundled=False, use_env=False)
    attrs = {**BIG, "gen_ai.request.model": "fine-1", "gen_ai.usage.input_tokens": 3}
    span = finished(attrs)
    mapper = SpanMapper(fine)
    # 3 tokens x $0.00000125 per million = 3.75e-12 USD -> 4e-12 (half even)
    assert mapper.row(span)["cost_usd"] == Decimal("0.000000000004")
    assert mapper.table([span]).column("cost_usd").to_pylist() == [Decimal("0.000000000004")]


def test_a_span_that_cannot_be_mapped_is_skipped_counted_and_logged(table, caplog):
    mapper = SpanMapper(table)
    rows = mapper.rows([object(), finished(CHAT)])
    assert len(rows) == 1
    assert mapper.errors == 1
    assert any("could not map span" in r.getMessage() for r in caplog.records)


# -- property: any attributes map to a row whose JSON holds them ------------------------

_memory = InMemorySpanExporter()
_provider = TracerProvider(shutdown_on_exit=False)
_provider.add_span_processor(SimpleSpanProcessor(_memory))
_tracer = _provider.get_tracer("prop")

scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.one_of(
    scalars,
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3).map(tuple),
)
keys = st.one_of(
    st.sampled_from(
        [
            *semconv.USAGE_KEYS,
            *semconv.MODEL_KEYS,
            *semconv.PROVIDER_KEYS,
            semconv.OPERATION,
            semconv.AGENT_STEP,
            semconv.FEATURE,
            semconv.COST,
            semconv.COST_STATUS,
            semconv.PRICING_VERSION,
            "gen_ai.input.messages",
            "llm.input_messages.1.x",
        ]  # fmt: skip
    ),
    st.text(min_size=1, max_size=12),
)


def _same(a, b) -> bool:
    if isinstance(a, float) and not math.isfinite(a):
        return b == str(a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=8), st.booleans())
def test_any_attributes_map_to_valid_json_without_content(table_for_props, attrs, capture):
    _memory.clear()
    with _tracer.start_as_current_span("s", attributes=attrs):
        pass
    (span,) = _memory.get_finished_spans()
    row = SpanMapper(table_for_props, capture_content=capture).row(span)
    stored = json.loads(row["attributes"])
    for key, value in span.attributes.items():
        if content.is_content(key, value) and not capture:
            assert key not in stored
        else:
            assert _same(value, stored[key])
    assert row["span_role"] == semconv.span_role(span.attributes).value
    if row["span_role"] != "model_call":
        assert row["cost_usd"] is None and row["input_tokens"] is None
    assert rows_to_table([tuple(row.values())]).num_rows == 1


@pytest.fixture(scope="module")
def table_for_props() -> PriceTable:
    return load_pricing([Path(__file__).parent / "data" / "test_prices.toml"], bundled=False,
                        use_env=False)  # fmt: skip
