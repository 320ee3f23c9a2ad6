"""One billing rule (cost/billing.py): the engine, the processor's compiled fast path and SQL
repricing all split tokens as `BUCKETS` says, and agree to the exact Decimal on any usage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import BillableTokens, Usage, compute_cost
from otel_costattr.cost import billing
from otel_costattr.cost.compiled import price_attributes
from otel_costattr.rollups.queries import rollup
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import CACHE_WRITE_1H_KEYS, COST
from otel_costattr.spans.rows import SpanMapper
from otel_costattr.store import database as store
from otel_costattr.store import ingest

D = Decimal
# Either side of acme-peak's time-of-day windows (01:00-04:00, 22:00-00:30 UTC).
STARTS = [int(dt.datetime(2026, 7, 1, h, tzinfo=dt.timezone.utc).timestamp()) * 10**9 for h in (2, 12, 23)]
# Two spellings of the cache counts: with the conventions' names the input includes the cache
# (inferred), with Anthropic's raw names it excludes it.
CONVENTIONS = {
    "semconv": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens"),
    "raw": ("gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cache_creation_input_tokens"),
}
count = st.one_of(st.none(), st.integers(0, 300_000), st.sampled_from([0, 1, 199_999, 200_000, 200_001]))


@st.composite
def a_call(draw):
    inp, out, read, write, reasoning = (draw(count) for _ in range(5))
    if inp is None and out is None:
        inp = draw(st.integers(0, 300_000))  # no usage at all is a status, not a cost
    write_1h = None if not write else draw(st.one_of(st.none(), st.integers(0, write)))
    return {
        "model": draw(st.sampled_from(["acme-large", "acme-think-2", "acme-mini", "acme-peak"])),
        "tier": draw(st.sampled_from([None, "batch", "Batch", "flex"])),
        "convention": draw(st.sampled_from(sorted(CONVENTIONS))),
        "counts": (inp, out, read, write, write_1h, reasoning),
        "start": draw(st.sampled_from(STARTS)),
    }


def span_attributes(call):
    inp, out, read, write, write_1h, reasoning = call["counts"]
    read_key, write_key = CONVENTIONS[call["convention"]]
    keys = {
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        read_key: read,
        write_key: write,
        CACHE_WRITE_1H_KEYS[0]: write_1h,
        "gen_ai.usage.reasoning_tokens": reasoning,
        "gen_ai.openai.response.service_tier": call["tier"],
    }
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "acme",
        "gen_ai.request.model": call["model"],
    }
    attrs.update((k, v) for k, v in keys.items() if v is not None)
    return attrs


def engine_total(table, call):
    """What the engine says, from the numbers as drawn (not through the span)."""
    inp, out, read, write, write_1h, reasoning = call["counts"]
    usage = Usage(
        inp, out, read, write, write_1h, reasoning,
        input_includes_cache=False if call["convention"] == "raw" else None,
    )  # fmt: skip
    tier = call["tier"] and call["tier"].lower()
    cost = compute_cost(call["model"], usage, provider="acme", start_time=call["start"], service_tier=tier,
                        table=table)  # fmt: skip
    assert cost.total is not None, cost
    return cost.total


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(a_call(), min_size=1, max_size=12))
def test_engine_fast_path_and_sql_agree_to_the_exact_decimal(table, calls):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    expected = {}
    for call in calls:
        attrs = span_attributes(call)
        total = engine_total(table, call)
        # The processor's fast path answers for these spans itself (None would hand them on).
        found = price_attributes(attrs, call["start"], table.cached_quote, table.quote)
        assert type(found) is tuple and found[1] == float(total), (call, found, total)
        span = tracer.start_span("chat", attributes=attrs, start_time=call["start"])
        span.end(end_time=call["start"] + 10**9)
        assert exporter.get_finished_spans()[-1].attributes[COST] == float(total)
        expected[span.get_span_context().trace_id.to_bytes(16, "big").hex()] = total
    provider.shutdown()

    con = duckdb.connect()
    try:
        store.migrate(con)
        ingest.insert_table(con, SpanMapper(table).table(exporter.get_finished_spans()))
        rows = rollup("per_run", db=con, limit=0, reprice=table)
    finally:
        con.close()
    assert {row["trace_id"]: row["usd_repriced"] for row in rows} == expected


# --- the rule itself, by hand -----------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "buckets"),
    [
        # inclusive input (inferred): 1000 - 600 read - 150 written; 1h part of the writes
        (Usage(1000, 300, 600, 150, 50, None), (250, 600, 100, 50, 300, 0)),
        # cache larger than input: exclusive (inferred), input is all uncached
        (Usage(50, 300, 1000, 150), (50, 1000, 150, 0, 300, 0)),
        # declared inclusive, yet the cache exceeds it: floored at 0
        (Usage(50, 0, 1000, 150, input_includes_cache=True), (0, 1000, 150, 0, 0, 0)),
        # declared exclusive although it would fit
        (Usage(1000, 0, 600, 0, input_includes_cache=False), (1000, 600, 0, 0, 0, 0)),
        # reasoning inside output (inferred), beside it (larger), declared beside it
        (Usage(0, 500, reasoning_tokens=400), (0, 0, 0, 0, 100, 400)),
        (Usage(0, 100, reasoning_tokens=400), (0, 0, 0, 0, 100, 400)),
        (Usage(0, 500, reasoning_tokens=400, output_includes_reasoning=False), (0, 0, 0, 0, 500, 400)),
        (Usage(0, 100, reasoning_tokens=400, output_includes_reasoning=True), (0, 0, 0, 0, 0, 400)),
        # per-modality parts come out of the input and the output they are part of (issue 17)
        (Usage(1000, 500, 600, audio_input_tokens=300, image_input_tokens=50, audio_output_tokens=200),
         (50, 600, 0, 0, 300, 0, 300, 50, 200, 0)),
        (Usage(1000, 500, 100, input_includes_cache=False, image_output_tokens=500, reasoning_tokens=100),
         (1000, 100, 0, 0, 0, 100, 0, 0, 0, 500)),
        # parts larger than what they are part of: the rest floored at 0, the parts billed in full
        (Usage(100, 0, audio_input_tokens=300), (0, 0, 0, 0, 0, 0, 300, 0, 0, 0)),
    ],
)  # fmt: skip
def test_the_buckets_by_hand(usage, buckets):
    # The six older buckets keep their places; the per-modality ones default to 0.
    assert usage.billable() == BillableTokens(*buckets)


def test_the_shapes_that_name_the_buckets_follow_the_rule():
    assert BillableTokens._fields == tuple(b.name for b in billing.BUCKETS)
    tokens = BillableTokens(1, 2, 3, 4, 5, 6)
    assert (tokens.total_input, tokens.total_output) == (10, 11)
    assert tuple(compute_cost("x", Usage(1)).parts()) == billing.PARTS
    assert sorted(billing.COUNTS + billing.FLAGS) == sorted(Usage._fields)


def test_the_sql_is_rendered_from_the_rule():
    template = "SELECT {{buckets}} FROM t WHERE {{total_input}} > 0 AND ({{usd}}) > 0"
    sql = billing.render_sql(template)
    assert "{{" not in sql
    assert "greatest(output_tokens - reasoning_tokens, 0) AS n_output" in sql
    assert "u.n_cache_write_1h * p.cache_write_1h" in sql
    with pytest.raises(ValueError, match=r"^_reprice.sql: expected \{\{usd\}\} once$"):
        billing.render_sql(template.replace("{{usd}}", "1"))
