"""The bounds a cost must keep: the ``cost_usd`` column's 12 decimal places and 38 digits,
and the most one model call is believed to cost. One rule for the processor's reported
costs (`cost.reported`), the store's columns (`spans.cost_columns`) and the in-process
budgets (`alerts.processor`)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

__all__ = ["MAX_CALL_USD", "plausible_usd", "quantize_usd", "stamped_usd"]

_CENT_PICO = Decimal("1e-12")
_USD_LIMIT = Decimal(10) ** 26  # DECIMAL(38, 12): 26 digits before the point
# The most one model call is believed to cost. The dearest list price is $600 per million
# tokens (o1-pro output) and context windows hold at most a few million tokens, so a real call
# costs at most a few thousand dollars; the pricing loader caps rates at $100,000 per million
# tokens, and 10M tokens (5x the largest context window) at that cap is this bound. A cost
# above it (or negative, or not a number) is stored as NULL with cost_status 'implausible', so
# it is never summed, and no sum of fewer than 10^20 calls can overflow DECIMAL(38, 12).
# queries/_calls.sql applies the same bound to files written before it existed.
MAX_CALL_USD = Decimal(1_000_000)
_QUANT = Context(prec=60, rounding=ROUND_HALF_EVEN)


def quantize_usd(value: Decimal | None) -> Decimal | None:
    """``value`` rounded (half even) to the 12 decimal places of the ``cost_usd`` column, or
    None when it does not fit DECIMAL(38, 12) (a stamped cost of 1e26 USD is not a cost)."""
    if value is None or not value.is_finite():
        return None
    try:
        rounded = value.quantize(_CENT_PICO, context=_QUANT)
    except InvalidOperation:
        return None
    return rounded if abs(rounded) < _USD_LIMIT else None


def plausible_usd(value: Decimal | None) -> Decimal | None:
    """``value`` rounded to the column's places when it is a believable cost for one model
    call (0 to `MAX_CALL_USD`), else None."""
    rounded = quantize_usd(value)
    return rounded if rounded is not None and 0 <= rounded <= MAX_CALL_USD else None


def stamped_usd(value: float) -> Decimal | None:
    """A cost stamped as a number attribute, as the exact decimal it prints as; None when it
    is not a believable cost for one call (NaN, infinite, negative, above `MAX_CALL_USD`)."""
    # An int is exact as it is (and may be too big for a float).
    return plausible_usd(Decimal(value) if isinstance(value, int) else Decimal(repr(float(value))))
