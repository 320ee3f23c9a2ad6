"""The row mapper's token and cost columns (its fast path, `cost_columns.model_columns`) agree
with the public engine (`read_model_call` + `compute_cost`, the general path) on arbitrary
model-call attributes: known and unknown models, every token spelling, invalid and absurd
counts, service tiers, long-context tiers and time-of-day windows, costs above the bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_costattr import semconv
from otel_costattr.cost.bounds import MAX_CALL_USD, quantize_usd, stamped_usd
from otel_costattr.cost.engine import CostStatus
from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.spans.cost_columns import IMPLAUSIBLE, _price, model_columns
from otel_costattr.spans.encode import column_text

DATA = Path(__file__).parent / "data"
T0 = 1_782_900_000_000_000_000  # 2026-07-01
HUGE = """
provider = "huge"
name = "Huge"
source = "https://example.invalid"
retrieved = 2026-11-01

[[model]]
id = "huge-1"
match = [{ equals = "huge-1" }]

[[model.price]]
input = 99999
output = 99999
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> PriceTable:
    huge = tmp_path_factory.mktemp("huge") / "huge.toml"
    huge.write_text(HUGE)
    return load_pricing([DATA / "test_prices.toml", huge], bundled=False, use_env=False)


def columns(tokens, cost: tuple) -> tuple:
    """The token columns from the public `BillableTokens` (None: invalid usage), then ``cost``."""
    if tokens is None:
        return (None,) * 5 + cost
    return (
        tokens.total_input,
        tokens.total_output,
        tokens.cache_read,
        tokens.cache_write_5m + tokens.cache_write_1h,
        tokens.reasoning,
        *cost,
    )


def general(attrs, start, table) -> tuple:
    """The columns as the public engine prices the call (what the mapper did before it
    called the engine's arithmetic directly)."""
    priced = _price(semconv.read_model_call(attrs), start, table)  # compute_cost, as the call reads
    tokens = priced.tokens
    implausible = priced.total is not None and priced.total > MAX_CALL_USD
    cost = (
        None if implausible else priced.total,
        IMPLAUSIBLE if implausible else priced.status.value,
        "exporter",
        priced.pricing_version,
        priced.model,
    )
    return columns(tokens, cost)


counts = st.one_of(
    st.none(),
    st.integers(0, 300_000),
    st.integers(-5, 200_000_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["12", True, b"1"]),
)
texts = st.one_of(st.none(), st.sampled_from(["", 7, "ACME", "acme", "nobody"]))
models = st.one_of(
    st.none(),
    st.sampled_from(["acme-large", "acme-think", "acme-mini", "acme-peak", "huge-1", "unknown-x", ""]),
    st.just("m" * 300),
)
count_keys = st.sampled_from(
    [
        *semconv.USAGE_KEYS,
        *semconv.CACHE_WRITE_1H_KEYS,
        semconv.ANTHROPIC_CACHE_READ,
        semconv.ANTHROPIC_CACHE_WRITE,
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(count_keys, counts, max_size=6),
    st.dictionaries(st.sampled_from(semconv.MODEL_KEYS), models, max_size=2),
    st.dictionaries(st.sampled_from(semconv.PROVIDER_KEYS), texts, max_size=1),
    st.dictionaries(st.sampled_from(semconv.SERVICE_TIER_KEYS), st.sampled_from(["batch", "BATCH", "x"])),
    st.one_of(st.none(), st.integers(0, 2**62)),
)
def test_model_columns_agree_with_compute_cost(table, usage, model, provider, tier, start):
    attrs = {semconv.OPERATION: "chat", **usage, **model, **provider, **tier}
    start = T0 if start is None else start  # None means "now": both would read the clock
    assert model_columns(attrs, start, table) == general(attrs, start, table)


def test_a_cost_above_the_bound_is_implausible_either_way(table):
    attrs = {semconv.OPERATION: "chat", "gen_ai.request.model": "huge-1"}
    attrs["gen_ai.usage.input_tokens"] = 90_000_000
    columns = model_columns(attrs, T0, table)
    assert columns == general(attrs, T0, table)
    assert columns[5:7] == (None, IMPLAUSIBLE)


def general_stamped(attrs, start, table) -> tuple:
    """A stamped call's columns through the public objects (`read_model_call`, `Usage`,
    `compute_cost`): what the mapper did before it read the plain fields."""
    call = semconv.read_model_call(attrs)
    stamped = attrs[semconv.COST]
    status = column_text(attrs.get(semconv.COST_STATUS)) or "priced"
    version = column_text(attrs.get(semconv.PRICING_VERSION))
    value = stamped_usd(stamped)
    # a bare 0 is believed only beside usage that is there, valid, and bills nothing
    present = any(count is not None for count in tuple(call.usage))
    nothing = present and call.usage.problem() is None and sum(call.usage.billable()) == 0
    if semconv.COST_STATUS not in attrs and (value is None or (stamped == 0 and not nothing)):
        return general(attrs, start, table)  # another producer's figure, not believed: priced
    tokens = None
    if value is None:
        status = IMPLAUSIBLE
        if call.usage.problem() is None:
            tokens = call.usage.billable()
    elif value == 0 and status in ("unknown_model", "no_usage", "invalid_usage"):
        value = None  # a producer's 0 beside the status of a call no one priced
        if call.usage.problem() is None:
            tokens = call.usage.billable()
    elif status == "priced" and version == table.version:
        exact = _price(call, start, table)
        tokens = exact.tokens
        if exact.status is CostStatus.PRICED and exact.total_float == float(stamped):
            value = quantize_usd(exact.total)
    elif call.usage.problem() is None:
        tokens = call.usage.billable()
    cost = (value, status, "span", version, column_text(attrs.get(semconv.PRICED_MODEL)))
    return columns(tokens, cost)


stamps = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**30),
    st.sampled_from([0.0, 0.0036, 1e-13, 2e6]),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(count_keys, st.one_of(st.integers(0, 300_000), counts), max_size=6),
    st.one_of(  # a known model often, so that the engine prices the call
        st.fixed_dictionaries({"gen_ai.request.model": st.sampled_from(["acme-large", "acme-think"])}),
        st.dictionaries(st.sampled_from(semconv.MODEL_KEYS), models, max_size=2),
    ),
    st.dictionaries(st.sampled_from(semconv.SERVICE_TIER_KEYS), st.sampled_from(["batch", "x"]), max_size=1),
    stamps,
    st.sampled_from([None, "priced", "priced", "priced", "unknown_model", "", 3]),
    st.sampled_from(["same", "same", "same", None, "other", 7]),
    st.sampled_from(["engine", "engine", "off", "drawn"]),
)
def test_stamped_columns_agree_with_compute_cost(table, usage, model, tier, stamp, status, version, how):
    attrs = {semconv.OPERATION: "chat", **usage, **model, **tier}
    engine = _price(semconv.read_model_call(attrs), T0, table).total_float
    if engine is not None and how != "drawn":  # the engine's own float, or one a little off
        stamp = engine if how == "engine" else engine + 1e-6
    attrs[semconv.COST] = stamp
    if status is not None:
        attrs[semconv.COST_STATUS] = status
    if version is not None:
        attrs[semconv.PRICING_VERSION] = table.version if version == "same" else version
    assert model_columns(attrs, T0, table) == general_stamped(attrs, T0, table)
