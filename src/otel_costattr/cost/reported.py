"""A cost the provider (or a gateway) reported for a call: it wins over our computed figure.

OpenRouter returns the charged cost in its usage block, gateways and some instrumentations
stamp one (OpenInference ``llm.cost.total``, OpenLIT ``gen_ai.usage.cost``, the proposed
``gen_ai.usage.cost.amount`` with ``.currency``). When a model-call span carries one in USD
and it is a believable cost for one call (`cost.bounds.stamped_usd`'s rule), the
processor stamps it as ``gen_ai.usage.cost`` with ``costattr.cost_source=provider`` and keeps
our own figure beside it in ``costattr.computed_cost``, so the ``reconcile`` rollup can show
where the two differ. Another currency is never converted: the call keeps our figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..semconv import (
    COMPUTED_COST,
    COST,
    COST_SOURCE,
    COST_SOURCE_PROVIDER,
    PROPOSED_COST_AMOUNT,
    PROPOSED_COST_CURRENCY,
    PROPOSED_COST_SOURCE,
    PROPOSED_SOURCE_LOCAL,
)
from .bounds import stamped_usd

# In order of precedence: the proposed convention, OpenInference, then a bare stamp.
# (The processor unpacks exactly three of them, for speed.)
REPORTED_COST_KEYS = (PROPOSED_COST_AMOUNT, "llm.cost.total", COST)
CURRENCY = PROPOSED_COST_CURRENCY


def reported_usd(attrs: Mapping[str, Any]) -> float | None:
    """The cost in USD the span says was charged, or None (absent, not USD, not believable)."""
    if not_usd(attrs.get(CURRENCY)):
        return None
    if attrs.get(PROPOSED_COST_SOURCE) == PROPOSED_SOURCE_LOCAL:
        return None  # someone's own estimate (ours, or another tool's): not what was charged
    for key in REPORTED_COST_KEYS:
        value = attrs.get(key)
        if value is None:
            continue
        if type(value) not in (int, float) or stamped_usd(value) is None:
            return None  # a broken figure is not silently replaced by the next spelling
        if value == 0 and key == COST and not bills_nothing(attrs):
            return None  # "no price known" (below): priced from the table, or unpriced
        return float(value)
    return None


def not_usd(currency: Any) -> bool:
    """Whether a ``gen_ai.usage.cost.currency`` value names another currency than USD. None
    and "" name none: the Collector writes a missing key as "", so ClickHouse cannot tell
    the two apart (an empty currency took a $0.30 figure there, our price here)."""
    if currency is None or currency == "":
        return False
    return type(currency) is not str or currency.strip().upper() != "USD"


def bills_nothing(attrs: Mapping[str, Any]) -> bool:
    """Whether the call's usage is there, valid, and bills no token: the only usage beside
    which a bare ``gen_ai.usage.cost`` of 0 is believed. OpenLIT writes 0 for every model
    missing from its own price list, which would otherwise price a call we know (or flag as
    unknown) at a silent $0; and beside no usage at all a 0 is anyone's figure from no tokens
    (it priced a call of unknown cost at $0 once a reported cost priced calls without usage:
    a review). A 0 the provider reported in its own spellings (``gen_ai.usage.cost.amount``,
    ``llm.cost.total``: OpenRouter's ``:free`` models) is believed, as any reported figure."""
    from ..semconv import read_call_fields  # semconv imports the cost package
    from .engine import Usage

    counts = read_call_fields(attrs)[3]
    if all(count is None for count in counts):
        return False
    usage = tuple.__new__(Usage, counts)
    return usage.problem() is None and sum(usage.billable()) == 0


def provider_cost(reported: float, computed: float | None) -> dict[str, Any]:
    """The attributes that record a provider-reported cost, our figure beside it if any."""
    out: dict[str, Any] = {COST: reported, COST_SOURCE: COST_SOURCE_PROVIDER}
    if computed is not None:
        out[COMPUTED_COST] = computed
    return out
