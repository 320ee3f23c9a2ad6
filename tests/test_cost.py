"""The cost engine, against a frozen fixture table whose arithmetic can be checked by hand."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

import pytest

from otel_costattr import CostStatus, Usage, compute_cost, load_pricing

FIXTURE = Path(__file__).parent / "data" / "test_prices.toml"
BEFORE_CHANGE = dt.date(2026, 5, 31)  # acme-large: $3 / $15, cache read $0.30, write $3.75
AFTER_CHANGE = dt.date(2026, 6, 1)  # acme-large: $2 / $10, cache read $0.20, write $2.50


@pytest.fixture(scope="module")
def table():
    return load_pricing([FIXTURE], bundled=False, use_env=False)


def cost(table, model, usage, **kw):
    kw.setdefault("start_time", BEFORE_CHANGE)
    return compute_cost(model, usage, table=table, **kw)


def test_inclusive_and_exclusive_cache_usage_cost_the_same(table):
    # Anthropic raw usage: input 50 uncached, 1000 read, 150 written, 300 out.
    exclusive = Usage(input_tokens=50, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150)
    # The same call reported by the conventions: input counts the cache tokens too.
    inclusive = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150)
    expected = Decimal("0.0055125")  # (50*3 + 1000*0.3 + 150*3.75 + 300*15) / 1e6
    a, b = cost(table, "acme-large", exclusive), cost(table, "acme-large", inclusive)
    assert a.status is CostStatus.PRICED and b.status is CostStatus.PRICED
    assert a.total == b.total == expected
    assert a.parts() == {
        "input": Decimal("0.00015"),
        "cache_read": Decimal("0.0003"),
        "cache_write": Decimal("0.0005625"),
        "output": Decimal("0.0045"),
        "reasoning": Decimal("0"),
    }
    assert sum(a.parts().values()) == a.total


def test_exclusive_input_larger_than_cache_needs_the_explicit_flag(table):
    # 5000 uncached + 1000 read looks inclusive to inference; the flag says what it is.
    usage = Usage(input_tokens=5000, output_tokens=0, cache_read_tokens=1000, input_includes_cache=False)
    assert cost(table, "acme-large", usage).total == Decimal("0.0153")  # 5000*3 + 1000*0.3
    inferred = Usage(input_tokens=5000, output_tokens=0, cache_read_tokens=1000)
    assert cost(table, "acme-large", inferred).total == Decimal("0.0123")  # 4000*3 + 1000*0.3


def test_cached_tokens_are_never_priced_at_the_input_rate_too(table):
    usage = Usage(input_tokens=1000, output_tokens=0, cache_read_tokens=1000)
    assert cost(table, "acme-large", usage).total == Decimal("0.0003")


def test_one_hour_cache_writes_use_their_own_rate(table):
    usage = Usage(input_tokens=0, output_tokens=0, cache_write_tokens=1000, cache_write_1h_tokens=400)
    assert cost(table, "acme-large", usage).total == Decimal("0.00465")  # 600*3.75 + 400*6


def test_reasoning_priced_apart_when_the_model_has_a_rate(table):
    usage = Usage(input_tokens=1000, output_tokens=300, reasoning_tokens=200)
    c = cost(table, "acme-think", usage)
    assert c.output == Decimal("0.00044")  # 100 visible * 4.4
    assert c.reasoning == Decimal("0.00176")  # 200 * 8.8
    assert c.total == Decimal("0.0033")  # + 1000 * 1.1


def test_reasoning_is_output_when_the_model_has_no_rate(table):
    with_reasoning = cost(table, "acme-large", Usage(input_tokens=0, output_tokens=300, reasoning_tokens=200))
    without = cost(table, "acme-large", Usage(input_tokens=0, output_tokens=300))
    assert with_reasoning.total == without.total == Decimal("0.0045")


def test_reasoning_reported_apart_from_output_is_added_not_subtracted(table):
    # Gemini-style: 100 visible output, 200 thoughts reported separately.
    c = cost(table, "acme-think", Usage(input_tokens=0, output_tokens=100, reasoning_tokens=200))
    assert c.total == Decimal("0.00220")  # 100*4.4 + 200*8.8


def test_long_context_tier_applies_to_every_token_above_the_threshold(table):
    at = Usage(input_tokens=200_000, output_tokens=1000)
    above = Usage(input_tokens=200_001, output_tokens=1000)
    assert cost(table, "acme-large", at).total == Decimal("0.615")  # 200000*3 + 1000*15
    assert cost(table, "acme-large", above).total == Decimal("1.222506")  # 200001*6 + 1000*22.5
    assert cost(table, "acme-large", above).tier_above == 200_000


def test_tier_threshold_counts_cached_input(table):
    usage = Usage(input_tokens=10_000, output_tokens=0, cache_read_tokens=195_000, input_includes_cache=False)
    c = cost(table, "acme-large", usage)
    assert c.tier_above == 200_000
    assert c.total == Decimal("0.177")  # 10000*6 + 195000*0.6


def test_batch_price(table):
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150)
    c = cost(table, "acme-large", usage, service_tier="batch")
    assert c.service_tier == "batch"
    assert c.total == Decimal("0.00275625")  # exactly half of 0.0055125


def test_unpriced_service_tier_falls_back_to_standard(table):
    usage = Usage(input_tokens=1000, output_tokens=0)
    c = cost(table, "acme-large", usage, service_tier="flex")
    assert c.service_tier is None and c.total == Decimal("0.003")


def test_price_change_between_two_dates(table):
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150)
    assert cost(table, "acme-large", usage, start_time=BEFORE_CHANGE).total == Decimal("0.0055125")
    assert cost(table, "acme-large", usage, start_time=AFTER_CHANGE).total == Decimal("0.003675")
    # OTel start times are epoch nanoseconds; the day boundary is UTC midnight.
    midnight = int(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    assert cost(table, "acme-large", usage, start_time=midnight - 1).total == Decimal("0.0055125")
    assert cost(table, "acme-large", usage, start_time=midnight).total == Decimal("0.003675")
    # Quotes are cached per price period: going back and forth must not reuse the wrong one.
    for when, total in [(midnight, "0.0018375"), (midnight - 1, "0.00275625"), (midnight, "0.0018375")]:
        assert cost(table, "acme-large", usage, start_time=when, service_tier="batch").total == Decimal(total)


def test_snapshot_ids_resolve_to_the_canonical_model(table):
    c = cost(table, "ACME-LARGE-20260101", Usage(input_tokens=1, output_tokens=1))
    assert (c.model, c.provider) == ("acme-large", "acme")
    assert c.pricing_version == table.version


@pytest.mark.parametrize(
    ("usage", "detail"),
    [
        (Usage(input_tokens=-1, output_tokens=3), "input_tokens is negative: -1"),
        (Usage(input_tokens=True, output_tokens=3), "input_tokens is not an integer: True"),
        (Usage(input_tokens=math.nan), "input_tokens is not an integer: nan"),
        (Usage(output_tokens="300"), "output_tokens is not an integer: '300'"),
        (Usage(output_tokens=1.5), "output_tokens is not an integer: 1.5"),
        (Usage(cache_read_tokens=10**12), "cache_read_tokens is absurd: 1000000000000"),
        (
            Usage(cache_write_tokens=10, cache_write_1h_tokens=11),
            "cache_write_1h_tokens exceeds cache_write_tokens",
        ),
    ],
)
def test_invalid_usage_is_a_status_not_an_exception(table, usage, detail):
    c = cost(table, "acme-large", usage)
    assert c.status is CostStatus.INVALID_USAGE
    assert c.detail == detail
    assert c.total is None and c.total_float is None


def test_no_usage(table):
    c = cost(table, "acme-large", Usage())
    assert c.status is CostStatus.NO_USAGE and c.total is None


def test_zero_tokens_cost_zero_not_nothing(table):
    c = cost(table, "acme-large", Usage(input_tokens=0, output_tokens=0))
    assert c.status is CostStatus.PRICED and c.total == 0


@pytest.mark.parametrize("model", ["gpt-99", "", None])
def test_unknown_model_is_flagged_never_zero(table, model):
    c = cost(table, model, Usage(input_tokens=10, output_tokens=10))
    assert c.status is CostStatus.UNKNOWN_MODEL
    assert c.total is None
    assert c.tokens is not None and c.tokens.total_input == 10


def test_unknown_provider_hint_searches_everything_known_hint_restricts(table):
    usage = Usage(input_tokens=10, output_tokens=10)
    assert cost(table, "acme-mini", usage, provider="somewhere.else").status is CostStatus.PRICED
    assert cost(table, "acme-mini", usage, provider="acme.ai").provider == "acme"


def test_total_float_is_the_attribute_boundary(table):
    c = cost(table, "acme-large", Usage(input_tokens=1200, output_tokens=300))
    assert isinstance(c.total_float, float)
    assert c.total_float == float(c.total)


def test_user_context_precision_cannot_round_the_result(table):
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 3
        c = cost(table, "acme-large", Usage(input_tokens=1_234_567, output_tokens=7_654_321))
        assert c.total == Decimal("179.6296245")  # 1234567*6 + 7654321*22.5 (above 200k)


def test_billable_buckets_are_disjoint():
    b = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150,
              cache_write_1h_tokens=50, reasoning_tokens=200).billable()  # fmt: skip
    assert tuple(b) == (50, 1000, 100, 50, 100, 200, 0, 0, 0, 0)  # no per-modality parts
    assert b.total_input == 1200 and b.total_output == 300


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (0, 59, Decimal("0.000003")),  # outside both windows: base $1 / $2
        (1, 0, Decimal("0.000006")),  # 01:00 opens the first window: $2 / $4
        (3, 59, Decimal("0.000006")),
        (4, 0, Decimal("0.000003")),  # end is exclusive
        (23, 0, Decimal("0.000009")),  # second window wraps midnight: $3 / $6
        (0, 15, Decimal("0.000009")),
        (0, 30, Decimal("0.000003")),
    ],
)
def test_time_of_day_windows(table, hour, minute, expected):
    when = dt.datetime(2026, 7, 1, hour, minute, tzinfo=dt.timezone.utc)
    c = cost(table, "acme-peak", Usage(input_tokens=1, output_tokens=1), start_time=when)
    assert c.total == expected
