"""Hand-built SVG charts: stacked columns over time, horizontal bars, and a waterfall bar.

Each chart is inline SVG with ``role="img"``, a ``<title>`` and a ``<desc>`` (the text
alternative), a ``<title>`` on every mark (its exact value, shown on hover), and series told
apart by their order and a legend as well as by colour; the page puts a table view of the
same rows beside every chart. Values are scaled for drawing only: the figures shown come from
the rollup rows the caller passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

from .tables import shorten

__all__ = ["PALETTE", "columns_stacked", "hbars", "span_bar"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER = "#999999"


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    return (
        f'<p class="chart-title" aria-hidden="true">{escape(title)}</p>'
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>"
    )


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    while step > value:
        step /= 10
    for mult in (1, 2, 5, 10):
        if mult * step >= value:
            return mult * step
    return 10 * step


def _tick(value: float) -> str:
    """An axis label short enough for the chart's left margin at any scale ($2M, not the
    $2,000,000 that ran out of the picture)."""
    if value == 0:
        return "$0"
    for above, unit, suffix in ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if value >= above:
            short = f"{value / unit:,.1f}".removesuffix(".0")
            return f"${short}{suffix}"
    if value < 0.0001:  # $0.0000 for every tick of a chart of tiny costs: two digits of each
        return f"${value:.{1 - math.floor(math.log10(value))}f}"
    return f"${value:,.0f}" if value >= 10 else f"${value:,.2f}" if value >= 0.1 else f"${value:.4f}"


def columns_stacked(
    x_labels: Sequence[str],
    series: Sequence[str],
    value: Callable[[str, str], Decimal | None],
    *,
    title: str,
    desc: str,
    fmt: Callable[[Any], str],
) -> str:
    """Columns per x label (a day), each stacked from the bottom in ``series`` order (the
    legend's order); ``value(x, series)`` is a rollup's figure or None."""
    width, height, left, bottom, top = 720, 260, 64, 28, 10
    totals = [sum((value(x, s) or Decimal(0) for s in series), Decimal(0)) for x in x_labels]
    top_value = _nice_top(float(max(totals, default=Decimal(0))))
    plot_h = height - bottom - top
    slot = (width - left - 8) / max(len(x_labels), 1)
    body = [f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}"/>']
    for frac in (0, 0.5, 1):
        y = height - bottom - frac * plot_h
        body.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}"/>')
        body.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_tick(top_value * frac)}</text>"
        )
    every = max(1, len(x_labels) // 10)
    for i, x in enumerate(x_labels):
        x0 = left + i * slot + slot * 0.15
        y = float(height - bottom)
        for j, s in enumerate(series):
            v = value(x, s)
            if not v:
                continue
            h = float(v) / top_value * plot_h
            y -= h
            colour = PALETTE[j] if j < len(PALETTE) else OTHER
            body.append(
                f'<rect class="mark" x="{x0:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(f"{shorten(x)} · {shorten(s)}: {fmt(v)}")}</title></rect>'
            )
        if i % every == 0:
            body.append(
                f'<text class="tick" x="{x0 + slot * 0.35:.1f}" y="{height - 10}" '
                f'text-anchor="middle">{escape(x[5:] if len(x) == 10 else x)}</text>'
            )
    return _svg(width, height, title, desc, body) + legend(series)


def legend(series: Sequence[str]) -> str:
    """The series in stacking order (bottom first), each with its swatch."""
    items = []
    for j, s in enumerate(series):
        colour = PALETTE[j] if j < len(PALETTE) else OTHER
        items.append(
            f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" '
            f'fill="{colour}"/></svg>{j + 1}. {escape(shorten(s))}</li>'
        )
    return f'<ol class="legend" aria-label="series, bottom of each column first">{"".join(items)}</ol>'


def hbars(
    labels: Sequence[str],
    values: Sequence[Decimal | None],
    *,
    title: str,
    desc: str,
    fmt: Callable[[Any], str],
) -> str:
    """One horizontal bar per label, its value written at its end (None: no bar, "-")."""
    row_h, left, width = 22, 180, 720
    height = row_h * len(labels) + 6
    top_value = max((float(v) for v in values if v), default=0.0) or 1.0
    body = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 3 + i * row_h
        w = (float(v) / top_value) * (width - left - 110) if v and v > 0 else 0
        short = label if len(label) <= 26 else label[:25] + "…"
        body.append(
            f'<text class="label" x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>'
        )
        body.append(
            f'<rect class="mark" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{PALETTE[0]}"><title>{escape(f"{shorten(label)}: {fmt(v)}")}</title></rect>'
        )
        body.append(f'<text class="value" x="{left + w + 6:.1f}" y="{y + 15}">{escape(fmt(v))}</text>')
    return _svg(width, height, title, desc, body)


def span_bar(offset: float, length: float, role: str, label: str) -> str:
    """One span of a waterfall on the run's time axis (``offset`` and ``length`` as fractions
    of the run's duration): a ``rect.bar`` in a full-width SVG, its label as the title."""
    label = shorten(label)
    x = max(0.0, min(offset, 1.0)) * 1000
    w = max(length * 1000, 2.0)
    w = min(w, 1000 - x) if x < 998 else 2.0
    return (
        f'<svg class="track" viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="bar role-{escape(role)}" x="{x:.1f}" y="1" width="{w:.1f}" height="10">'
        f"<title>{escape(label)}</title></rect></svg>"
    )
