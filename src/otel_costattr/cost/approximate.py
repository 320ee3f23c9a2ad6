"""Pricing a call whose response model the table does not know yet (issue 17).

A provider serving a newer snapshot (``gpt-4o-mini-2025-01-01`` for a request of
``gpt-4o-mini``) would make the call ``unknown_model`` and its cost would vanish from every
total until the table is updated. When the response model is the request model plus a date or
version suffix and the request model is known (`PriceTable.approximate`), the call is priced
at the request model's price and marked ``costattr.model_source=request``, so the
``approximations`` rollup can list it for audit. The processor calls this only for calls the
table could not price, never on its hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..pricing.entry import ModelEntry
from ..pricing.table import PriceTable
from ..semconv import REQUEST_MODEL, read_call_fields
from .engine import price_call, usd_float


def price_at_request_model(
    table: PriceTable, start_time: int, attrs: Mapping[str, Any]
) -> tuple[ModelEntry, float] | None:
    """(entry, USD float) for an unknown snapshot of a known request model, else None."""
    model, provider, tier, usage = read_call_fields(attrs)
    request = table.approximate(model, attrs.get(REQUEST_MODEL), provider)
    if request is None:
        return None
    _, entry, parts, scale, _, _ = price_call(table, start_time, request, provider, tier, usage)
    if parts is None or entry is None:
        return None
    return entry, usd_float(parts, scale)
