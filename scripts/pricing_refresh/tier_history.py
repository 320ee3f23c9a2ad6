"""Service-tier history genai-prices does not record: a batch discount dated from its launch.

genai-prices dates batch rates from the day it verified them (October 2026), so every earlier
price period has no batch tier and an earlier batch call bills at standard. Where a provider's
batch discount is a published constant since a known date (OpenAI's Batch API: 50% since
2024-04-15), ``[[tier_history]]`` in scripts/pricing_overrides.toml says so, and `backdate()`
gives every price period in force since that date the tier the verified rates imply.

Nothing is guessed: the discount is read off the model's own verified tier, key by key (a
rate the tier halves is halved; one it leaves at the standard rate, such as OpenAI's batch
cache reads, stays), and only when input and output are discounted by exactly the stated
constant and the per-key factors reproduce the verified tier exactly (long-context tiers
included). A model failing that keeps genai-prices' dates, and the refresh says why.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .convert import Model, rates, same_prices

KEYS = {"provider", "tier", "since", "discount", "source", "reason"}
TIERS = ("batch",)  # the tiers whose discount providers publish as a constant


def _factors(period: dict[str, Any], tier: dict[str, Any], discount: Decimal) -> dict[str, Decimal] | None:
    """Per rate key, the factor from the standard rate to the tier's (discount or 1), or None."""
    factors = {}
    for key, rate in rates(period).items():
        if key not in tier:
            return None
        if tier[key] == rate:
            factors[key] = Decimal(1)
        elif tier[key] == rate * discount:
            factors[key] = discount
        else:
            return None
    if factors.get("input") != discount or factors.get("output") != discount:
        return None
    return factors


def _apply(period: dict[str, Any], factors: dict[str, Decimal]) -> dict[str, Any] | None:
    """The tier ``factors`` imply for ``period`` (its long-context tiers too), or None when the
    period has a rate key the factors do not cover."""
    if set(rates(period)) != set(factors):
        return None
    out: dict[str, Any] = {k: v * factors[k] for k, v in rates(period).items()}
    if "tiers" in period:
        tiers = []
        for t in period["tiers"]:
            if set(rates(t)) != set(factors):
                return None
            tiers.append({"above": t["above"], **{k: v * factors[k] for k, v in rates(t).items()}})
        out["tiers"] = tiers
    return out


def _start(period: dict[str, Any]) -> dt.date:
    return period.get("since") or dt.date.min


def backdate(model: Model, tier: str, since: dt.date, discount: Decimal, why: str) -> str | None:
    """Give ``model`` the ``tier`` from ``since`` on; returns why not, or None when done (or
    when the model has no verified tier to read the discount from: nothing to do)."""
    verified = next((i for i, p in enumerate(model.price) if tier in p), None)
    if verified is None or _start(model.price[verified]) <= since:
        return None
    first = model.price[verified]
    factors = _factors(first, first[tier], discount)
    implied = factors and _apply(first, factors)
    if not implied or implied != first[tier]:  # Decimal equality: 1.250 == 1.25
        return f"its verified {tier} rates are not a constant {discount} discount of the standard rates"
    periods: list[dict[str, Any]] = []
    for i, period in enumerate(model.price):
        end = _start(model.price[i + 1]) if i + 1 < len(model.price) else dt.date.max
        if i >= verified or end <= since:
            periods.append(period)
            continue
        if _start(period) < since:  # in force across the launch: standard before, tier after
            periods.append(period)
            period = {**period, "since": since}
        derived = _apply(period, factors)
        if derived is None:
            return f"a price period before {first.get('since')} lists rates its verified {tier} has not"
        periods.append({**period, tier: derived})
    merged = [periods[0]]
    for period in periods[1:]:
        if same_prices(merged[-1], period):
            continue  # the verified period now only repeats the backdated one before it
        merged.append(period)
    model.price = merged
    model.backdated[since] = tier
    model.notes.append(f"{tier} from {since.isoformat()} (scripts/pricing_overrides.toml): {why}")
    return None
