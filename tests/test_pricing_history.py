"""The price changes of issue 17, each as a dated period: old spans keep their old price.

Figures typed in by hand from the vendors' announcements (cited in
scripts/pricing_overrides.toml), never read back from the TOML.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from otel_costattr import Usage, compute_cost, load_pricing


@pytest.fixture(scope="module")
def table():
    return load_pricing(use_env=False)


def _at(day, hour=12):
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)


def _per_mtok(table, model_id, when, provider=None):
    """(input, output, cache_read) USD per million tokens a call at ``when`` pays."""
    usage = Usage(input_tokens=2_000_000, cache_read_tokens=1_000_000, output_tokens=1_000_000)
    cost = compute_cost(model_id, usage, provider=provider, start_time=when, table=table)
    return (cost.input, cost.output, cost.cache_read)


DEEPSEEK = [
    # (model, day, (input, output, cache hit)): V3's launch promotion, then its list price
    # with no discount until the off-peak one began (a review: 2025-01 priced at that scheme)
    ("deepseek-chat", dt.date(2025, 1, 5), (D("0.14"), D("0.28"), D("0.014"))),
    ("deepseek-chat", dt.date(2025, 2, 20), (D("0.27"), D("1.1"), D("0.07"))),
    ("deepseek-reasoner", dt.date(2025, 2, 20), (D("0.55"), D("2.19"), D("0.14"))),
    # peak hours (12:00 UTC) before V3.1
    ("deepseek-chat", dt.date(2025, 6, 1), (D("0.27"), D("1.1"), D("0.07"))),
    ("deepseek-reasoner", dt.date(2025, 6, 1), (D("0.55"), D("2.19"), D("0.14"))),
    # V3.1, no more off-peak discount
    ("deepseek-chat", dt.date(2025, 9, 5), (D("0.56"), D("1.68"), D("0.07"))),
    ("deepseek-reasoner", dt.date(2025, 9, 28), (D("0.56"), D("1.68"), D("0.07"))),
    # V3.2-Exp from 2025-09-29
    ("deepseek-chat", dt.date(2025, 9, 29), (D("0.28"), D("0.42"), D("0.028"))),
    ("deepseek-reasoner", dt.date(2026, 11, 20), (D("0.28"), D("0.42"), D("0.028"))),
]


@pytest.mark.parametrize(("model_id", "day", "expected"), DEEPSEEK, ids=[f"{m}@{d}" for m, d, _ in DEEPSEEK])
def test_deepseek_v3_prices_by_date(table, model_id, day, expected):
    assert _per_mtok(table, model_id, _at(day), "deepseek") == expected


def test_deepseek_off_peak_only_before_v3_1(table):
    night = _per_mtok(table, "deepseek-chat", _at(dt.date(2025, 6, 1), hour=20))
    assert night == (D("0.135"), D("0.55"), D("0.035"))
    # not before the discount began (2025-02-26)
    before = _per_mtok(table, "deepseek-chat", _at(dt.date(2025, 2, 20), hour=20))
    assert before == (D("0.27"), D("1.1"), D("0.07"))
    assert _per_mtok(table, "deepseek-reasoner", _at(dt.date(2025, 2, 20), hour=20))[0] == D("0.55")
    assert _per_mtok(table, "deepseek-chat", _at(dt.date(2025, 10, 1), hour=20)) == (
        D("0.28"),
        D("0.42"),
        D("0.028"),
    )


def test_mistral_large_latest_moves_to_large_3(table):
    latest = table.resolve("mistral-large-latest", "mistral_ai")
    before, after = latest.price_at(dt.date(2025, 12, 1)), latest.price_at(dt.date(2025, 12, 2))
    assert (before.input, before.output) == (D("2"), D("6"))
    assert (after.input, after.output, after.cache_read) == (D("0.5"), D("1.5"), D("0.05"))
    pinned = table.resolve("mistral-large-2411", "mistral_ai").price_at(dt.date(2026, 11, 1))
    assert (pinned.input, pinned.output) == (D("2"), D("6"))  # a pinned Large 2 keeps its price


@pytest.mark.parametrize(
    ("model_id", "provider"),
    [
        ("claude-sonnet-4-20250514", "anthropic"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "aws.bedrock"),
        ("global.anthropic.claude-sonnet-4-20250514-v1:0", None),
        ("anthropic.claude-sonnet-4-20250514-v1:0", None),
    ],
)
def test_sonnet_4_long_context_tier_on_the_api_and_bedrock(table, model_id, provider):
    usage = Usage(input_tokens=300_000, output_tokens=1_000)
    cost = compute_cost(model_id, usage, provider=provider, start_time=_at(dt.date(2025, 10, 1)), table=table)
    assert cost.tier_above == 200_000
    assert cost.total == D("300000") * D("6") / 10**6 + D("1000") * D("22.5") / 10**6
    small = compute_cost(model_id, Usage(input_tokens=1_000), provider=provider, table=table)
    assert small.total == D("0.003")
    early = compute_cost(model_id, usage, provider=provider, start_time=_at(dt.date(2025, 7, 1)), table=table)
    assert early.tier_above is None  # before the 1M-context beta: no request could exceed 200k


def _rate_of(tmp_path, text: str):
    """The table of a user file ``text`` and the price of a million openai input tokens of a
    model on a day under it."""
    contract = tmp_path / "contract.toml"
    contract.write_text(text)
    mine = load_pricing([contract], use_env=False)
    usage = Usage(input_tokens=1_000_000, output_tokens=0)

    def rate(model, day):
        return compute_cost(model, usage, provider="openai", start_time=_at(day), table=mine).total

    return mine, rate


def test_a_replacement_from_a_date_keeps_the_bundled_prices_before_it(tmp_path):
    # A review found a user's contract price for gpt-4o "since 2025-05-01" applied to calls of
    # 2024 too: a time before the first period got the first period.
    mine, rate = _rate_of(
        tmp_path,
        'provider = "openai"\n'
        '[[model]]\nid = "gpt-4o"\nmultiplier = 0.5\n'
        "[[model.price]]\nsince = 2025-05-01\ninput = 4\noutput = 16\n"
        '[[model]]\nid = "team-4o"\nalias_of = "gpt-4o"\nmultiplier = 0.8\n',
    )
    before, after = dt.date(2025, 4, 30), dt.date(2025, 5, 1)
    # The bundled list price (without the contract's multiplier) until the contract begins.
    assert rate("gpt-4o", before) == rate("gpt-4o-2024-08-06", before) == D("2.5")
    assert rate("gpt-4o", after) == D("2")  # $4 x 0.5
    # An alias: its target's prices in force then, then its own multiplier.
    assert (rate("team-4o", before), rate("team-4o", after)) == (D("2"), D("1.6"))
    assert [p.since for p in mine.resolve("gpt-4o", "openai").periods][-1] == after


def test_an_alias_beside_its_target_gets_the_files_multiplier_once(tmp_path):
    # A review: an alias listed in the same file as a target replaced from a date got the
    # file's multiplier on the bundled prices before it ($2.00 for a $2.50 call); the target
    # got none there, and an alias prices exactly as its target, the file's multiplier once.
    _, rate = _rate_of(
        tmp_path,
        'provider = "openai"\nmultiplier = 0.8\n'
        '[[model]]\nid = "gpt-4o"\n[[model.price]]\nsince = 2026-01-01\ninput = 2\noutput = 8\n'
        '[[model]]\nid = "prod-4o"\nalias_of = "gpt-4o"\n',
    )
    before, after = dt.date(2025, 6, 1), dt.date(2026, 1, 1)
    assert (rate("gpt-4o", before), rate("prod-4o", before)) == (D("2.5"), D("2.5"))
    assert (rate("gpt-4o", after), rate("prod-4o", after)) == (D("1.6"), D("1.6"))
