"""A value as a person reads it: dollars, rates, shares, durations, dates. One rule for the
CLI's tables (`cli.output`) and the report's and dashboard's cells (`report.tables`)."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal

__all__ = ["cell", "count", "money", "rate", "visible", "visible_lines", "without_bidi"]

# Fractions of 1 shown as percentages besides the ``*_share`` columns.
_FRACTIONS = ("month_elapsed",)


def money(value: Decimal | None) -> str:
    """Dollars for one amount: six places under a dollar, else cents, a half rounded up (as
    bills round: $2.055 and $5.665 alike). An amount that is not zero but rounds to it says
    so: <$0.000001 (a call of a few tokens on a cheap model), never $0.000000."""
    if value is None:
        return "-"
    sign, amount = ("-", -value) if value < 0 else ("", value)  # -$0.05, not $-0.05
    shown = amount.quantize(_MICRO, rounding=ROUND_HALF_UP, context=_WIDE)
    if shown >= 1:  # by what it rounds to: $0.9999995 is $1.00, not $1.000000
        shown = amount.quantize(_CENT, rounding=ROUND_HALF_UP, context=_WIDE)
    if not shown:
        if amount:
            return f"{sign}<{_TINY}"  # -<$0.000001: a saving too small to show
        return "$0.000000"  # zero has no sign: not -$0.000000, nor $-0.000000 for Decimal("-0")
    return f"{sign}${shown:,}"


_MICRO, _CENT = Decimal("0.000001"), Decimal("0.01")
_TINY = "$0.000001"
_WIDE = Context(prec=80)  # any DECIMAL(38, 12) sum, and more, to the cent


def rate(value: Decimal | None) -> str:
    """A rate (USD per million tokens) as its exact plain number."""
    return "-" if value is None else f"{value.normalize():f}"


def _duration(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.1f} s"


def cell(column: str, value: object, *, is_money: bool | None = None) -> str:
    """A value as the table shows it: money as dollars (`money`), shares as percentages."""
    if value is None:
        return "-"
    if is_money is None:
        is_money = "usd" in column
    if isinstance(value, Decimal) and is_money:
        return money(value)
    if (column.endswith("_share") or column in _FRACTIONS) and isinstance(value, (float, Decimal)):
        if isinstance(value, float) and math.isfinite(value):
            # Rounded as written, not as stored: -0.7915 is -0.79149999... in binary, which
            # showed -79.1% for an exact -79.15% (a review).
            value = Decimal(repr(value))
        return f"{value:.1%}"
    if column.endswith("_ms") and isinstance(value, (int, float)):
        return _duration(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, Decimal)):
        return f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def count(n: int, noun: str) -> str:
    """``n`` things in words: 1 call, 2 calls, 1,200 models."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def visible(text: str) -> str:
    """``text`` safe for a terminal's line: a control character (a line break, an escape
    sequence, U+2028: span data comes from any OTLP client) or a bidi control (embedding,
    override, isolate, mark) is shown as its code point, [U+001B], never sent as such."""
    if text.isprintable():
        return text
    return _UNSEEN.sub(_code_point, text)


def without_bidi(text: str) -> str:
    """`visible` for a page, where line breaks and other controls are harmless and kept: only
    the bidi controls are shown as code points (an unclosed U+202E reverses what follows)."""
    return text if text.isascii() else _BIDI.sub(_code_point, text)


def _code_point(m: re.Match[str]) -> str:
    return f"[U+{ord(m.group()):04X}]"


# Embeddings, overrides, isolates, and the marks (LRM, RLM, ALM) that move what stands
# beside them as a letter of their direction would.
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
# Controls, bidi controls, and the line and paragraph separators some terminals break at.
_UNSEEN = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI_CONTROLS}]")
_BIDI = re.compile(f"[{_BIDI_CONTROLS}]")


def visible_lines(text: str) -> str:
    """`visible` line by line: a text of several lines keeps its line breaks."""
    return "\n".join(visible(line) for line in text.split("\n"))
