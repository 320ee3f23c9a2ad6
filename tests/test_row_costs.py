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
from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.spans.cost_columns import IMPLAUSIBLE, MAX_CALL_USD, _price, model_columns

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
