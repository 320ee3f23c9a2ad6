"""Over-long model ids are never resolved nor cached: a span reporting one gets
invalid_usage, and no cache holds more than a fixed number of bytes."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_pricing_file import GOOD_MODEL as MODEL
from test_pricing_file import load_error, write

from otel_costattr import CostStatus, Usage, compute_cost, load_pricing
from otel_costattr.processor import CostSpanProcessor
from otel_costattr.semconv import COST, COST_STATUS

MATCH = 'match = [{ equals = "m1" }]'
USAGE = Usage(input_tokens=1_000_000, output_tokens=0)
PY311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="re learnt this syntax in 3.11")


def load(path: Path):
    return load_pricing([path], bundled=False, use_env=False)


def with_regex(pattern: str) -> str:
    return MODEL.replace('{ equals = "m1" }', f"{{ regex = '{pattern}' }}")


# --- over-long model ids are not resolved, nor cached --------------------------------------


def test_a_one_megabyte_model_id_gets_invalid_usage_on_a_real_span(tmp_path):
    table = load(write(tmp_path, MODEL.replace('{ equals = "m1" }', '{ starts_with = "m" }')))
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(CostSpanProcessor(table))
    huge = "m" * 1_000_000  # matches starts_with "m": only the length keeps it unpriced
    tracer = provider.get_tracer("test")
    for model in (huge, huge, "m" * 256):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "acme",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1_000_000,
            "gen_ai.usage.output_tokens": 0,
        }
        with tracer.start_as_current_span("chat", attributes=attrs):
            pass
    provider.shutdown()
    first, second, longest = (s.attributes for s in exporter.get_finished_spans())
    for attrs in (first, second):
        assert attrs[COST_STATUS] == "invalid_usage"
        assert COST not in attrs
    assert (longest[COST_STATUS], longest[COST]) == ("priced", 1.0)
    assert table.cached_quote((huge, "acme", None)) is None


def test_compute_cost_says_why_an_over_long_id_is_not_priced(tmp_path):
    table = load(write(tmp_path, MODEL.replace('{ equals = "m1" }', '{ starts_with = "m" }')))
    cost = compute_cost("m" * 257, USAGE, table=table)
    assert (cost.status, cost.total) == (CostStatus.INVALID_USAGE, None)
    assert cost.detail == "model id longer than 256 characters (257)"
    assert table.resolve("m" * 257) is None
    assert table.candidate_ids("m" * 257) == []
    assert compute_cost("m" * 256, USAGE, table=table).total == Decimal(1)


def test_caches_never_keep_an_over_long_key(tmp_path):
    # A span's provider and service tier are arbitrary strings too: 4096 one-megabyte keys
    # must not stay in the quote cache.
    table = load(write(tmp_path, MODEL))
    provider = "p" * 1_000
    assert compute_cost("m1", USAGE, provider=provider, table=table, start_time=0).total == Decimal(1)
    assert table.cached_quote(("m1", provider, None)) is None
    assert compute_cost("m1", USAGE, provider="acme", table=table, start_time=0).total == Decimal(1)
    assert table.cached_quote(("m1", "acme", None)) is not None


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (MATCH, 'match = [{ starts_with = "' + "m" * 257 + '" }]', "match[0].starts_with"),
        (MATCH, MATCH + '\nexamples = ["' + "m" * 257 + '"]', "examples[0]"),
    ],
)
def test_rule_values_and_examples_that_no_id_could_reach_are_refused(tmp_path, old, new, field):
    path = write(tmp_path, MODEL.replace(old, new))
    assert load_error(path) == (
        f"{path}: model 'm1': {field}: longer than 256 characters: no id that long is ever resolved"
    )


def test_an_over_long_canonical_id_is_refused(tmp_path):
    path = write(tmp_path, MODEL.replace('id = "m1"\nmatch = [{ equals = "m1" }]', f'id = "{"m" * 257}"'))
    assert load_error(path) == f"{path}: model[0].id: longer than 256 characters"
