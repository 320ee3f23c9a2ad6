"""The engine's common path (cost/price_code.py) agrees with its general path, and answers
the usage shapes nearly every call reports without handing them on.

`price_call` tries the common path first; `general_price_call` is the general path alone.
Both are generated from the one billing rule, so the property below is what keeps the folded
copy honest: random usage (cached, reasoning, one-hour writes, modalities, bad values, flags),
models (known, unknown, long-context tiers, time-of-day windows), service tiers and start
times across a price change."""

from __future__ import annotations

import datetime as dt
import typing

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from otel_costattr.cost import billing, engine, price_code
from otel_costattr.cost.engine import Usage, compute_cost, general_price_call, price_call

MODELS = ["acme-large", "acme-large-20260101", "ACME-LARGE", "acme-think-2", "acme-mini", "acme-peak"]
MODELS += ["gpt-9", "", None, "m" * 300]
PROVIDERS = [None, "acme", "openai", "acme.ai"]
TIERS = [None, "batch", "flex", "priority", "Batch"]
STARTS = [
    int(dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 6, 1, 0, 15, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    dt.datetime(2026, 7, 1, 12, 0),  # not ns: the general path converts it
]
# The price change's edges (a cached period must end exactly there) and the cache's own bounds
# (a QuoteHit holds [-2**63, 2**63); beyond is priced uncached); True is an int to Python but
# not a start time (test_a_bool_is_not_a_start_time).
_CHANGE = int(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**9
STARTS += [_CHANGE - 1, _CHANGE, _CHANGE + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]

small = st.one_of(st.integers(0, 300_000), st.sampled_from([0, 1, 199_999, 200_000, 200_001]))
odd = st.sampled_from([-1, 100_000_000, 100_000_001, 1.5, True, "12"])
common_count = st.one_of(st.none(), small)
flag = st.sampled_from([None, True, False, 0, "yes"])
# Written out, not read from price_code: the test must not follow a mistake there.
USUAL = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Mostly the common shape; sometimes a one-hour write, a modality or a bad value."""
    counts = {f: draw(common_count) for f in USUAL}
    if draw(st.booleans()):
        counts["input_tokens"] = draw(small)
    for field in billing.COUNTS:  # every count the rule knows, not what price_code lists
        if field not in USUAL and draw(st.integers(0, 9)) == 0:
            counts[field] = draw(small)
    if draw(st.integers(0, 4)) == 0:  # one bad value
        counts[draw(st.sampled_from(billing.COUNTS))] = draw(odd)
    return Usage(**counts, input_includes_cache=draw(flag), output_includes_reasoning=draw(flag))


def _handed_on(*args: object) -> str:
    return "handed on"


# The same source with a general path that says so: what the common path answers itself.
common_only = price_code.compile_common(Usage._fields, engine._NAMES, _handed_on)

call = st.tuples(
    st.sampled_from(MODELS), st.sampled_from(PROVIDERS), st.sampled_from(TIERS), st.sampled_from(STARTS)
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=usages(), call=call)
def test_the_common_path_agrees_with_the_general_path(table, usage, call):
    model, provider, tier, start = call
    if type(start) is int:  # the common path answers only from the cache: fill it first
        table.quote(model, provider, tier, start)
    expected = general_price_call(table, start, model, provider, tier, usage)
    # Twice: the first call may find the quote cache cold and hand the call on.
    assert price_call(table, start, model, provider, tier, usage) == expected
    assert price_call(table, start, model, provider, tier, usage) == expected
    answered = common_only(table, start, model, provider, tier, usage)
    if answered != "handed on":
        event("the common path answered")
        assert answered == expected
    event(str(expected[0]))


COMMON = {
    "cache exclusive (raw Anthropic)": Usage(50, 300, 1000, 150, input_includes_cache=False),
    "cache inclusive": Usage(1200, 300, 1000, 150, input_includes_cache=True),
    "inferred": Usage(1200, 300, 1000),
    "reasoning": Usage(100, 500, reasoning_tokens=400),
    "input only (embeddings)": Usage(1000),
    "above the long-context tier": Usage(250_000, 1),
}


@pytest.mark.parametrize("name", COMMON)
@pytest.mark.parametrize("model", ["acme-large", "acme-think-2", "acme-peak", "gpt-9"])
@pytest.mark.parametrize("start", STARTS[:4])
def test_common_shapes_take_the_common_path(table, name, model, start):
    usage = COMMON[name]
    expected = general_price_call(table, start, model, "acme", "batch", usage)  # warms the cache
    assert common_only(table, start, model, "acme", "batch", usage) == expected


@pytest.mark.parametrize(
    "usage",
    [Usage(10, cache_write_tokens=5, cache_write_1h_tokens=1), Usage(10, audio_input_tokens=2), Usage(-1)],
)
def test_other_shapes_are_handed_on(table, usage):
    start = STARTS[0]
    general_price_call(table, start, "acme-large", None, None, usage)
    assert common_only(table, start, "acme-large", None, None, usage) == "handed on"
    assert common_only(table, start, "acme-large", None, None, Usage(10), region="eu") == "handed on"


def test_compute_cost_type_hints_resolve():
    """`compute_cost` is generated (exec): its annotations must still resolve for tools."""
    hints = typing.get_type_hints(compute_cost)
    assert hints["usage"] is Usage and hints["return"] is engine.CallCost


def test_a_bool_is_not_a_start_time(table):
    """True is the int 1 to Python: neither path may price it as 1 ns after the epoch, even with
    the cache warm for that instant. A start time of the wrong type is the caller's mistake."""
    usage = Usage(1000, 100)
    table.quote("acme-large", "acme", None, 1)
    assert price_call(table, 1, "acme-large", "acme", None, usage) == general_price_call(
        table, 1, "acme-large", "acme", None, usage
    )
    for call in (
        lambda: price_call(table, True, "acme-large", "acme", None, usage),
        lambda: general_price_call(table, True, "acme-large", "acme", None, usage),
        lambda: compute_cost("acme-large", usage, provider="acme", start_time=True, table=table),
    ):
        with pytest.raises(TypeError, match="epoch nanoseconds"):
            call()


def test_compute_cost_reads_the_same_from_either_path(table):
    usage = Usage(1200, 300, 1000, 150, reasoning_tokens=100)
    cost = compute_cost("acme-large", usage, provider="acme", start_time=STARTS[2], table=table)
    priced = general_price_call(table, STARTS[2], "acme-large", "acme", None, usage)
    assert (cost.model, cost.provider, cost.service_tier, cost.tier_above) == (
        priced[1].id,
        priced[1].provider,
        None,
        None,
    )
    assert cost.total == engine.usd(sum(priced[2]), priced[3])
    unknown = compute_cost("gpt-9", usage, table=table)
    assert (unknown.model, unknown.provider, unknown.total, unknown.total_float) == (None, None, None, None)


# compute_cost's own source with a settle that says so: what its inline common path answers.
compute_only = price_code.compile_compute(
    Usage._fields,
    {**engine._NAMES, "default_pricing": None, "CallCost": engine.CallCost, "new_object": object.__new__},
    _handed_on,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=usages(), call=call)
def test_compute_cost_builds_what_its_constructor_builds(table, usage, call):
    # compute_cost prices the common shape inline and builds the result without
    # CallCost.__init__ (speed): the same slots as CallCost(general path's answer).
    model, provider, tier, start = call
    if type(start) is int:  # the common path answers only from the cache: fill it first
        table.quote(model, provider, tier, start)
    priced = general_price_call(table, start, model, provider, tier, usage)
    cost = compute_cost(model, usage, provider=provider, start_time=start, service_tier=tier, table=table)
    assert cost.status is priced[0]
    answered = compute_only(model, usage, provider=provider, start_time=start, service_tier=tier, table=table)
    if answered != "handed on":
        event("the common path answered")
        assert priced[0] is engine.CostStatus.PRICED
    if priced[0] is not engine.CostStatus.PRICED:
        return
    built = engine.CallCost(priced, table.version, usage)
    for result in (cost, answered) if answered != "handed on" else (cost,):
        assert type(result) is engine.CallCost
        for name in engine.CallCost.__slots__:
            assert getattr(result, name) == getattr(built, name), name
        assert (result.total, result.total_float, result.parts()) == (
            built.total,
            built.total_float,
            built.parts(),
        )


@pytest.mark.parametrize("name", COMMON)
@pytest.mark.parametrize("model", ["acme-large", "acme-think-2", "acme-peak"])
@pytest.mark.parametrize("start", STARTS[:4])
def test_compute_cost_prices_common_shapes_inline(table, name, model, start):
    usage = COMMON[name]
    expected = general_price_call(table, start, model, "acme", "batch", usage)  # warms the cache
    cost = compute_only(model, usage, provider="acme", start_time=start, service_tier="batch", table=table)
    assert cost._priced == expected
