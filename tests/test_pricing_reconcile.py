"""A provider-reported cost wins, ours is kept beside it, and `reconcile` shows the gap.

Real TracerProvider with the bundled table, real DuckDB file. gpt-4o-mini: $0.15 in, $0.60
out per million tokens, so 1000 in / 100 out is $0.00021 by our reckoning.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, load_pricing, rollup
from otel_costattr.semconv import COMPUTED_COST, COST, COST_SOURCE, COST_STATUS, PRICED_MODEL

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
OURS = 0.00021


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


def call(model="gpt-4o-mini", **reported):
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        **reported,
    }


def run(bundled, calls_by_trace):
    """End each trace's calls (attributes dicts) under one root span; the finished spans.
    ``bundled`` None: no processor (a service that does not stamp)."""
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    processor = None if bundled is None else CostSpanProcessor(bundled)
    if processor is not None:
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    spans = []
    for calls in calls_by_trace:
        root = tracer.start_span("run", start_time=START)
        ctx = trace.set_span_in_context(root)
        for attrs in calls:
            span = tracer.start_span("chat", context=ctx, start_time=START, attributes=attrs)
            span.end(end_time=START + 10**9)
            spans.append(span)
        root.end(end_time=START + 2 * 10**9)
        spans.append(root)
    provider.shutdown()
    return spans, processor


REPORTED = [
    # (attributes the producer set, the cost stamped, whether it is the provider's)
    ({"llm.cost.total": 0.0003}, 0.0003, True),  # OpenInference
    ({"gen_ai.usage.cost.amount": 0.0002, "gen_ai.usage.cost.currency": "USD"}, 0.0002, True),
    ({"gen_ai.usage.cost": 0.00025}, 0.00025, True),  # OpenLIT, a gateway
    (
        {"gen_ai.usage.cost.amount": 0.0002, "gen_ai.usage.cost.currency": "EUR"},
        OURS,
        False,
    ),  # never converted
    ({"llm.cost.total": -1.0}, OURS, False),  # not a believable cost
    ({"llm.cost.total": float("nan")}, OURS, False),
    ({"llm.cost.total": "0.0003"}, OURS, False),  # text: not a number
    # a bare 0 beside billed tokens: OpenLIT's figure for a model missing from its price list
    ({"gen_ai.usage.cost": 0.0}, OURS, False),
    ({"gen_ai.usage.cost": 0}, OURS, False),
    # a 0 the provider reported in its own spellings: OpenRouter's :free models
    ({"llm.cost.total": 0.0}, 0.0, True),
    ({"gen_ai.usage.cost.amount": 0, "gen_ai.usage.cost.currency": "USD"}, 0.0, True),
    # an empty currency is none (the Collector writes a missing key as "": ClickHouse agrees)
    ({"gen_ai.usage.cost.amount": 0.0002, "gen_ai.usage.cost.currency": ""}, 0.0002, True),
    ({}, OURS, False),
]


@pytest.mark.parametrize(("reported", "stamped", "is_provider"), REPORTED)
def test_the_provider_cost_wins_with_ours_beside_it(bundled, reported, stamped, is_provider):
    (span, _), processor = run(bundled, [[call(**reported)]])
    attrs = span.attributes
    assert (attrs[COST], attrs[COST_STATUS], attrs[PRICED_MODEL]) == (stamped, "priced", "gpt-4o-mini")
    if is_provider:
        assert (attrs[COST_SOURCE], attrs[COMPUTED_COST]) == ("provider", OURS)
    else:
        assert COST_SOURCE not in attrs and COMPUTED_COST not in attrs
    assert processor.stats()["priced"] == 1


def test_a_model_unknown_to_us_but_costed_by_the_provider_is_priced(bundled):
    (span, _), processor = run(bundled, [[call("acme-secret-1", **{"llm.cost.total": 0.5})]])
    attrs = span.attributes
    assert (attrs[COST], attrs[COST_STATUS], attrs[COST_SOURCE]) == (0.5, "priced", "provider")
    assert PRICED_MODEL not in attrs and COMPUTED_COST not in attrs
    assert processor.stats()["priced"] == 1 and processor.stats()["unknown_model"] == 0


def test_a_model_unknown_to_us_reported_at_0_is_flagged_never_0(bundled):
    """OpenLIT stamps 0 on every call to a model missing from its own price list: taken as
    the provider's cost, a model we do not know either was priced at a silent $0 (a review)."""
    for reported in ({"gen_ai.usage.cost": 0.0}, {"gen_ai.usage.cost": 0}):
        (span, _), processor = run(bundled, [[call("acme-secret-1", **reported)]])
        assert span.attributes[COST_STATUS] == "unknown_model"
        assert COST_SOURCE not in span.attributes
        assert processor.stats()["unknown_model"] == 1 and processor.stats()["priced"] == 0
    # The provider's own 0 stands (a second review: OpenRouter's :free models billed at list).
    (span, _), _ = run(bundled, [[call("meta-llama/llama-3.3-70b-instruct:free", **{"llm.cost.total": 0.0})]])
    assert (span.attributes[COST], span.attributes[COST_SOURCE]) == (0.0, "provider")


def test_a_call_billing_no_token_keeps_its_reported_0(bundled):
    """A cached answer the gateway charged nothing for, with no token billed: $0 stands."""
    free = {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0, "llm.cost.total": 0.0}
    (span, _), _ = run(bundled, [[call("acme-secret-1", **free)]])
    assert (span.attributes[COST], span.attributes[COST_SOURCE]) == (0.0, "provider")


def test_reconcile_lists_calls_that_differ_by_more_than_one_percent(bundled, tmp_path):
    spans, _ = run(
        bundled,
        [
            # run A: +42.86% (listed), +0.95% (not listed), our own price only (not listed)
            [call(**{"llm.cost.total": 0.0003}), call(**{"llm.cost.total": 0.000212}), call()],
            # run B: -4.76% (listed)
            [call(**{"llm.cost.total": 0.0002})],
        ],
    )
    db = tmp_path / "s.duckdb"
    store = DuckDBSpanExporter(db, pricing=bundled)
    store.export(spans)
    store.shutdown()
    rows = rollup("reconcile", db=db)
    got = [
        (r["provider_usd"], r["computed_usd"], r["usd_diff"], r["diff_pct"], r["run_provider_usd"],
         r["run_computed_usd"], r["run_diff_pct"])
        for r in rows
    ]  # fmt: skip
    assert got == [
        (D("0.0003"), D("0.00021"), D("0.00009"), 42.86, D("0.000512"), D("0.00042"), 21.9),
        (D("0.0002"), D("0.00021"), D("-0.00001"), -4.76, D("0.0002"), D("0.00021"), -4.76),
    ]
    assert len(rollup("reconcile", db=db, pct=0.5)) == 3  # a lower threshold lists the +0.95% too
    # The totals count the provider's figure: 0.0003 + 0.000212 + 0.00021 + 0.0002
    assert rollup("stats", db=db)[0]["usd"] == D("0.000922")


NO_USAGE = {k: v for k, v in call().items() if not k.startswith("gen_ai.usage.")}


@pytest.mark.parametrize(
    ("reported", "usd"),
    [
        ({"llm.cost.total": 0.0004}, D("0.0004")),
        ({"gen_ai.usage.cost.amount": 0.0004, "gen_ai.usage.cost.currency": "USD"}, D("0.0004")),
        ({"gen_ai.usage.cost": 0.0004}, D("0.0004")),  # a gateway's bare figure
        ({"llm.cost.total": 0.0}, D("0")),  # a failed call the provider charged nothing for
    ],
)
def test_a_reported_cost_without_token_counts_wins(bundled, tmp_path, reported, usd):
    """The provider's charge is known even when the span carries no token counts (a streamed
    call whose usage block the instrumentation missed): it wins, as the README says, in the
    processor and in a store fed by a service without the processor (it was no_usage, the
    cost dropped)."""
    attrs = {**NO_USAGE, **reported}
    (span, root), processor = run(bundled, [[attrs]])
    assert (span.attributes[COST], span.attributes[COST_STATUS]) == (float(usd), "priced")
    assert span.attributes[COST_SOURCE] == "provider" and COMPUTED_COST not in span.attributes
    assert processor.stats()["priced"] == 1 and processor.stats()["no_usage"] == 0
    # The same call stamped by the processor, and traced by a service without it.
    for name, row in stored_both_ways(bundled, tmp_path, attrs, [span, root]):
        assert (row["usd"], row["calls"], row["unpriced_calls"]) == (usd, 1, 0), name


def test_a_call_without_usage_or_reported_cost_stays_no_usage(bundled, tmp_path):
    (span, _), processor = run(bundled, [[NO_USAGE]])
    assert span.attributes[COST_STATUS] == "no_usage" and COST not in span.attributes
    assert processor.stats()["no_usage"] == 1


def stored_both_ways(bundled, folder, attrs, stamped):
    """(how, the stats row) of a store of the ``stamped`` spans of one call, and of one of the
    same call traced by a service without the processor."""
    for name, spans in (("stamped", stamped), ("bare", run(None, [[attrs]])[0])):
        db = folder / f"{name}-{len(list(folder.iterdir()))}.duckdb"
        store = DuckDBSpanExporter(db, pricing=bundled)
        store.export(spans)
        store.shutdown()
        yield name, rollup("stats", db=db)[0]


def test_a_bare_0_without_usage_is_no_price(bundled, tmp_path):
    """A bare gen_ai.usage.cost of 0 and no token counts: anyone's figure from no tokens
    (OpenLIT writes 0 where it cannot price). Believed, it priced a call of unknown cost at a
    silent $0, once a reported cost priced calls without usage (a review). Beside usage that
    bills nothing it stands; beside invalid usage it does not."""
    cases = (
        ({**NO_USAGE, "gen_ai.usage.cost": 0}, "no_usage"),
        ({**NO_USAGE, "gen_ai.usage.cost": 0.0, "gen_ai.request.model": "acme-secret-1"}, "no_usage"),
        ({**NO_USAGE, "gen_ai.usage.cost": 0, "gen_ai.usage.input_tokens": -3}, "invalid_usage"),
    )
    for attrs, status in cases:
        (span, root), _ = run(bundled, [[attrs]])
        assert span.attributes[COST_STATUS] == status and COST_SOURCE not in span.attributes
        for name, row in stored_both_ways(bundled, tmp_path, attrs, [span, root]):
            assert (row["usd"], row["unpriced_calls"]) == (None, 1), (name, attrs)
    zero = {
        **NO_USAGE,
        "gen_ai.usage.cost": 0,
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 0,
    }
    (span, _), _ = run(bundled, [[zero]])
    assert (span.attributes[COST], span.attributes[COST_SOURCE]) == (0.0, "provider")
