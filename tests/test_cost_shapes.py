"""The token and cost columns compiled per attribute shape (`spans/cost_shapes.py`) are
`cost_columns.model_columns`' on every span they answer for, and they answer for the common
cases: a priced call, an unknown model, a processor's stamp from this very table. Random
attributes in every token convention (cached and reasoning counts, Anthropic's raw names,
OpenInference's), bad types and absurd counts, tiers and time-of-day windows, the price
change, stamps from other tables and other statuses, regional prices. Then whole batches:
`SpanMapper.table` (which calls them) against the general row path, content rule included."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_mapping_batch import assert_batch_is_row_path

from otel_costattr import load_pricing as load_bundled
from otel_costattr import semconv
from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.spans import cost_shapes
from otel_costattr.spans.cost_columns import model_columns
from otel_costattr.spans.cost_shapes import shape_columns
from otel_costattr.spans.record import SpanRecord, make_record
from otel_costattr.spans.rows import SpanMapper, rows_to_table

DATA = Path(__file__).parent / "data"
# Across the fixture's price change (2026-06-01) and through acme-peak's time-of-day windows.
STARTS = [
    int(dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 6, 1, 0, 15, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
    int(dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9,
]
T0 = STARTS[3]


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_pricing([DATA / "test_prices.toml"], bundled=False, use_env=False)


def fast(table: PriceTable, attrs: dict, ns: int):
    function = shape_columns(tuple(attrs))
    if function is None:
        return None
    return function(attrs, ns, table.cached_quote, table.quote, table.regional_entries, table.version)


# The keys of each field, every convention (semconv's spellings, several at once contested).
COUNT_KEYS = sorted(
    {
        *semconv.USAGE_KEYS,
        *semconv.CACHE_WRITE_1H_KEYS,
        semconv.ANTHROPIC_CACHE_READ,
        semconv.ANTHROPIC_CACHE_WRITE,
        *semconv.AUDIO_INPUT_KEYS,
        *semconv.IMAGE_OUTPUT_KEYS,
    }
)
counts = st.one_of(
    st.integers(0, 300_000),
    st.integers(0, 300_000),
    st.sampled_from([0, 199_999, 200_000, 200_001, 100_000_000, 100_000_001, -1, 2**70]),
    st.floats(allow_nan=True),
    st.sampled_from(["12", True, None, ("a",)]),
)
models = st.one_of(
    st.sampled_from(["acme-large", "acme-large-20260101", "acme-think", "acme-mini", "acme-peak"]),
    st.sampled_from(["unknown-x", "ACME-LARGE", "", "m" * 300, None, 7, ("a",)]),
)
texts = st.sampled_from(["acme", "ACME", "acme.ai", "aws.bedrock", "batch", "BATCH", "flex", "", None, 7])
operations = st.sampled_from(["chat", "chat", "embeddings", "text_completion", "execute_tool", "", None])
kinds = st.sampled_from(["LLM", "EMBEDDING", "TOOL", None])
statuses = st.sampled_from(["priced", "priced", "priced", "unknown_model", "", 3, None])
versions = st.sampled_from(["same", "same", "same", "other", "", 7, None])
priced_models = st.sampled_from(["acme-large", "", None, 3])


@st.composite
def call_attributes(draw, table: PriceTable) -> dict:
    """Model-call attributes: a few fields in a few spellings, values well formed in half the
    draws (odd ones in the rest); a processor's stamp often, and then often the engine's own
    float for the call."""
    clean = draw(st.booleans())

    def value(odd, good):
        return draw(good if clean else st.one_of(good, odd))

    attrs: dict = {}
    if draw(st.integers(0, 5)):
        attrs[semconv.OPERATION] = value(operations, st.sampled_from(["chat", "embeddings"]))
    if not draw(st.integers(0, 4)):
        attrs[semconv.OPENINFERENCE_KIND] = value(kinds, st.just("LLM"))
    for key in draw(st.lists(st.sampled_from(semconv.MODEL_KEYS), min_size=1, max_size=2, unique=True)):
        attrs[key] = value(models, st.sampled_from(["acme-large", "acme-think", "acme-peak", "unknown-x"]))
    for key in draw(st.lists(st.sampled_from(semconv.PROVIDER_KEYS), max_size=2, unique=True)):
        attrs[key] = value(texts, st.just("acme"))
    if not draw(st.integers(0, 3)):
        attrs[draw(st.sampled_from(semconv.SERVICE_TIER_KEYS))] = value(
            texts, st.sampled_from(["batch", "BATCH"])
        )
    for key in draw(st.lists(st.sampled_from(COUNT_KEYS), min_size=1, max_size=5, unique=True)):
        attrs[key] = value(counts, st.integers(0, 150_000))
    if draw(st.booleans()):  # the application's own and content keys: no part of the call
        attrs["gen_ai.prompt"] = "secret"
        attrs["app.tenant"] = draw(st.sampled_from(["t1", 3]))
    if draw(st.booleans()):
        how = draw(st.sampled_from(["engine", "engine", "off", "drawn"]))
        stamp = draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**30)))
        if how != "drawn":
            unstamped = model_columns(attrs, T0, table)[5]  # the exporter's own price, exact
            if unstamped is not None:
                stamp = float(unstamped) if how == "engine" else float(unstamped) + 1e-6
        attrs[semconv.COST] = stamp
        status = value(statuses, st.just("priced"))
        if status is not None:
            attrs[semconv.COST_STATUS] = status
        version = value(versions, st.just("same"))
        if version is not None:
            attrs[semconv.PRICING_VERSION] = table.version if version == "same" else version
        priced_model = draw(priced_models)
        if priced_model is not None:
            attrs[semconv.PRICED_MODEL] = priced_model
    order = draw(st.permutations(list(attrs)))
    return {key: attrs[key] for key in order}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), ns=st.sampled_from(STARTS))
def test_the_shape_function_is_model_columns_where_it_answers(table, data, ns):
    attrs = data.draw(call_attributes(table))
    got = fast(table, attrs, ns)
    if got is None:
        return  # model_columns decides
    event(f"answered: {got[6]} from {got[7]}")
    assert got == model_columns(attrs, ns, table)


CHAT = {
    semconv.OPERATION: "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.prompt": "secret",
}


def test_it_answers_for_the_common_cases(table):
    """The property above would pass if the functions never answered: here they must."""
    priced = fast(table, CHAT, T0)
    assert priced is not None and priced[6:8] == ("priced", "exporter")
    unknown = fast(table, {**CHAT, "gen_ai.request.model": "unknown-x"}, T0)
    assert unknown is not None and unknown[6:8] == ("unknown_model", "exporter")
    stamp = {
        **CHAT,
        semconv.COST: float(priced[5]),
        semconv.COST_STATUS: "priced",
        semconv.PRICING_VERSION: table.version,
        semconv.PRICED_MODEL: "acme-large",
    }
    stamped = fast(table, stamp, T0)
    assert stamped is not None and stamped[6:8] == ("priced", "span")
    assert stamped == model_columns(stamp, T0, table)
    for attrs in (CHAT, {**CHAT, "gen_ai.request.model": "unknown-x"}, stamp):
        assert fast(table, attrs, T0) == model_columns(attrs, T0, table)


def test_cases_left_to_model_columns(table):
    """What the functions must not answer: a bad count, a long-context tier, a stamp the
    engine does not reproduce or from another table, an int stamp."""
    assert fast(table, {**CHAT, "gen_ai.usage.input_tokens": 1.0}, T0) is None
    assert fast(table, {**CHAT, "gen_ai.usage.input_tokens": 250_000}, T0) is None
    stamp = {**CHAT, semconv.COST: 0.5, semconv.PRICING_VERSION: table.version}
    assert fast(table, stamp, T0) is None
    assert fast(table, {**stamp, semconv.COST: 1}, T0) is None
    assert shape_columns(tuple({**CHAT, semconv.COST: 0.5})) is None  # no version: not this table's


REGIONAL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "aws.bedrock",
    "gen_ai.request.model": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "gen_ai.usage.input_tokens": 100_000,
    "gen_ai.usage.output_tokens": 0,
}


@pytest.mark.parametrize(
    ("attrs", "resource"),
    [({**REGIONAL, "aws.region": "us-gov-west-1"}, {}), (REGIONAL, {"cloud.region": "us-gov-west-1"})],
)
def test_a_regionally_priced_entry_goes_to_model_columns(attrs, resource):
    """The bundled table prices Bedrock in GovCloud otherwise: the function declines any
    entry some region prices, and the batch's column is the regional price."""
    bundled = load_bundled(use_env=False)
    assert fast(bundled, attrs, T0) is None
    records = [_record(i, attrs, resource=resource) for i in range(16)]
    got = SpanMapper(bundled).table(records)
    assert got.equals(rows_to_table(SpanMapper(bundled).rows(records)))
    assert set(got.column("cost_usd").to_pylist()) == {model_columns(attrs, T0, bundled, resource)[5]}
    assert float(got.column("cost_usd")[0].as_py()) == pytest.approx(0.36, rel=1e-12)


def _record(i: int, attrs: dict, start: int | None = T0, resource: dict | None = None) -> SpanRecord:
    return make_record(
        (f"{i:032x}", f"{i:016x}", None, start, None if start is None else start + 5, "chat", "CLIENT",
         "UNSET", None, {} if resource is None else resource, "svc", "scope", None, attrs, (), ())
    )  # fmt: skip


def _well_formed(key: str, table: PriceTable):
    """A value of ``key`` the shape functions can take, for spans whose draw lacked the key."""
    if key in COUNT_KEYS:
        return 100
    return {
        semconv.OPERATION: "chat",
        semconv.OPENINFERENCE_KIND: "LLM",
        semconv.COST: 0.00125,
        semconv.COST_STATUS: "priced",
        semconv.PRICING_VERSION: table.version,
        semconv.PRICED_MODEL: "acme-large",
        **dict.fromkeys(semconv.MODEL_KEYS, "acme-large"),
        **dict.fromkeys(semconv.PROVIDER_KEYS, "acme"),
        **dict.fromkeys(semconv.SERVICE_TIER_KEYS, "batch"),
    }.get(key, "x")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), capture=st.booleans())
def test_a_batch_of_call_shapes_is_the_row_path_table(table, data, capture):
    """Whole batches (`SpanMapper.table`, through the shape functions) against the general
    row path: a few shapes of 8 or more spans (the column path's minimum), values drawn per
    span, some without a start time; the content rule as the mapper is told."""
    records = []
    for _ in range(data.draw(st.integers(1, 3))):
        keys = tuple(data.draw(call_attributes(table)))
        for _ in range(data.draw(st.integers(8, 14))):
            values = data.draw(call_attributes(table))
            attrs = {key: values[key] if key in values else _well_formed(key, table) for key in keys}
            start = data.draw(st.one_of(st.sampled_from(STARTS), st.none()))
            records.append(_record(len(records), attrs, start))
    records = data.draw(st.permutations(records))
    got = assert_batch_is_row_path(table, records, capture)
    if not capture:
        assert "secret" not in str(got.to_pylist())


def test_the_caches_are_bounded(monkeypatch):
    monkeypatch.setattr(cost_shapes, "_LIMIT", 2)
    monkeypatch.setattr(cost_shapes, "_by_shape", {})
    monkeypatch.setattr(cost_shapes, "_by_keys", {})
    for n in range(5):
        shape_columns(tuple(CHAT) + (f"app.{n}",))
        assert len(cost_shapes._by_shape) <= 2


def test_a_key_set_in_a_small_group_is_compiled_the_second_time(monkeypatch):
    monkeypatch.setattr(cost_shapes, "_by_shape", {})
    monkeypatch.setattr(cost_shapes, "_by_keys", {})
    monkeypatch.setattr(cost_shapes, "_seen", set())
    small = cost_shapes.COMPILE_AT - 1
    assert shape_columns(tuple(CHAT), small) is None  # once, a few calls: the general path
    assert shape_columns(tuple(CHAT), small) is not None  # asked again: compiled
    other = (*CHAT, "app.x")
    assert shape_columns(other, small) is not None  # the same money keys: already compiled
    cache_keys = (*CHAT, semconv.ANTHROPIC_CACHE_READ)
    assert shape_columns(cache_keys, cost_shapes.COMPILE_AT) is not None  # a big group: at once
