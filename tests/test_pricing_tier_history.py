"""Batch rates dated from the batch APIs' launches, not from genai-prices' verification day.

The refresh (scripts/pricing_refresh/tier_history.py) gives every price period since a
provider's batch launch the batch tier its verified rates imply; a call before the launch
bills at standard, one after at the batch rate, one before genai-prices' verification day
(October 2026) too. Launch days, from the providers' announcements: OpenAI's Batch API
2024-04-15, Anthropic's Message Batches API 2024-10-08, the Gemini API's Batch Mode 2025-07-07.
Expected rates are typed in by hand (half the list price), never read back from the table.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from otel_costattr import load_pricing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from pricing_refresh.convert import Model  # noqa: E402
from pricing_refresh.tier_history import backdate  # noqa: E402


def _ns(day: str) -> int:
    return int(dt.datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp()) * 10**9


@pytest.fixture(scope="module")
def table():
    return load_pricing(use_env=False)


# (model, provider, day of the call, tier applied, input rate, output rate, cache-read rate)
CALLS = [
    # OpenAI: cached input keeps the standard rate under batch (as verified in 2026).
    ("gpt-4o", "openai", "2024-04-14", None, "2.5", "10", "1.25"),
    ("gpt-4o", "openai", "2024-04-15", "batch", "1.25", "5", "1.25"),
    ("gpt-4o-mini", "openai", "2025-06-01", "batch", "0.075", "0.3", "0.075"),
    # Anthropic: every rate halved, the long-context tier too.
    ("claude-sonnet-4-5", "anthropic", "2024-10-07", None, "3", "15", "0.3"),
    ("claude-sonnet-4-5-20250929", "anthropic", "2025-11-01", "batch", "1.5", "7.5", "0.15"),
    ("claude-haiku-4-5-20251001", "anthropic", "2025-11-01", "batch", "0.5", "2.5", "0.05"),
    # No verified batch rate to read the discount from (genai-prices has none): standard.
    ("claude-3-5-haiku-20241022", "anthropic", "2025-01-10", None, "0.8", "4", "0.08"),
    # Gemini API Batch Mode: context caching stays at the standard rate (as verified).
    ("gemini-2.5-flash", "gcp.gemini", "2025-07-06", None, "0.3", "2.5", "0.03"),
    ("gemini-2.5-flash", "gcp.gemini", "2025-07-07", "batch", "0.15", "1.25", "0.03"),
]


@pytest.mark.parametrize(("model", "provider", "day", "applied", "rin", "rout", "rcache"), CALLS)
def test_batch_before_and_after_the_launch(table, model, provider, day, applied, rin, rout, rcache):
    quote = table.quote(model, provider, "batch", _ns(day))
    assert quote is not None
    assert quote.service_tier == applied
    assert (quote.rates.input, quote.rates.output, quote.rates.cache_read) == (D(rin), D(rout), D(rcache))


def test_long_context_tier_is_halved_too(table):
    quote = table.quote("claude-sonnet-4-5", "anthropic", "batch", _ns("2025-11-01"))
    assert quote.service_tier == "batch"
    assert [(t.above, t.rates.input, t.rates.output) for t in quote.tiers] == [(200000, D(3), D("11.25"))]


def test_a_standard_call_is_unchanged(table):
    quote = table.quote("gpt-4o", "openai", None, _ns("2025-01-01"))
    assert (quote.service_tier, quote.rates.input, quote.rates.output) == (None, D("2.5"), D(10))


# --- the refresh step on hand-made models -------------------------------------------------------

LAUNCH = dt.date(2024, 4, 15)


def _model(*price: dict) -> Model:
    return Model("m", [{"equals": "m"}], list(price))


def test_backdate_splits_the_period_in_force_at_the_launch_and_merges_the_verified_one():
    model = _model(
        {"input": D(2), "output": D(8), "cache_read": D("0.5")},
        {"since": dt.date(2025, 1, 1), "input": D(1), "output": D(4), "cache_read": D("0.25")},
        {"since": dt.date(2026, 10, 14), "input": D(1), "output": D(4), "cache_read": D("0.25"),
         "batch": {"input": D("0.5"), "output": D(2), "cache_read": D("0.25")}},
    )  # fmt: skip
    assert backdate(model, "batch", LAUNCH, D("0.5"), "why") is None
    assert model.price == [
        {"input": D(2), "output": D(8), "cache_read": D("0.5")},
        {"since": LAUNCH, "input": D(2), "output": D(8), "cache_read": D("0.5"),
         "batch": {"input": D(1), "output": D(4), "cache_read": D("0.5")}},  # cache reads: not discounted
        {"since": dt.date(2025, 1, 1), "input": D(1), "output": D(4), "cache_read": D("0.25"),
         "batch": {"input": D("0.5"), "output": D(2), "cache_read": D("0.25")}},
    ]  # fmt: skip
    assert model.backdated == {LAUNCH: "batch"}


def test_backdate_leaves_a_tier_that_is_not_the_constant_discount():
    verified = {"since": dt.date(2026, 10, 14), "input": D(1), "output": D(4),
                "batch": {"input": D("0.6"), "output": D(2)}}  # fmt: skip
    model = _model({"input": D(1), "output": D(4)}, verified)
    before = [dict(p) for p in model.price]
    assert "not a constant 0.5 discount" in backdate(model, "batch", LAUNCH, D("0.5"), "why")
    assert model.price == before


def test_backdate_leaves_a_model_whose_older_period_has_other_rates():
    verified = {"since": dt.date(2026, 10, 14), "input": D(1), "output": D(4),
                "batch": {"input": D("0.5"), "output": D(2)}}  # fmt: skip
    model = _model({"input": D(1), "output": D(4), "reasoning": D(4)}, verified)
    assert "lists rates its verified batch has not" in backdate(model, "batch", LAUNCH, D("0.5"), "why")


def test_backdate_does_nothing_without_a_verified_tier_or_when_it_is_older():
    model = _model({"input": D(1), "output": D(4)})
    assert backdate(model, "batch", LAUNCH, D("0.5"), "why") is None
    assert model.price == [{"input": D(1), "output": D(4)}]
    old = _model({"since": dt.date(2024, 1, 1), "input": D(1), "output": D(4),
                  "batch": {"input": D("0.5"), "output": D(2)}})  # fmt: skip
    assert backdate(old, "batch", LAUNCH, D("0.5"), "why") is None
    assert len(old.price) == 1 and not old.backdated


BAD_HISTORY = [
    ('provider = "nope"', "tier_history[0].provider: 'nope' is not a listed provider"),
    ('tier = "flex"', "tier_history[0].tier: must be one of batch"),
    ('since = "2024-04-15"', "tier_history[0].since: must be a TOML date"),
    ("discount = 1.5", "tier_history[0].discount: must be a number between 0 and 1"),
    ("extra = 1", "tier_history[0].extra: unknown key"),
]


@pytest.mark.parametrize(("line", "message"), BAD_HISTORY)
def test_a_bad_tier_history_entry_is_one_line_naming_entry_and_field(tmp_path, line, message):
    from pricing_refresh import RefreshError
    from pricing_refresh.config import load_config

    entry = {"provider": '"p"', "tier": '"batch"', "since": "2024-04-15", "discount": "0.5",
             "source": '"https://example.com"', "reason": '"r"'}  # fmt: skip
    key = line.split(" = ")[0]
    entry[key] = line.split(" = ", 1)[1]
    body = "\n".join(f"{k} = {v}" for k, v in entry.items())
    path = tmp_path / "overrides.toml"
    path.write_text(f'[[provider]]\nid = "p"\nname = "P"\notel_names = []\n\n[[tier_history]]\n{body}\n')
    with pytest.raises(RefreshError) as e:
        load_config(path)
    assert str(e.value).startswith(f"overrides.toml: {message}")
