"""HTML tables of rollup rows: every value cell carries the rollup, row and column it came
from and its exact value (``data-rollup``, ``data-row``, ``data-col``, ``data-exact``), so a
reader (or a test) can check the page against the rollup API; the text is the CLI's own
formatting (`display.cell`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from html import escape
from typing import Any

from ..display import cell as cli_cell
from ..display import money, without_bidi

__all__ = ["MAX_ROWS", "Link", "exact", "fmt", "table", "value_cell"]

Link = Callable[[str], "str | None"]

# Rows a table shows: the tail's lists (jumps, loops) can hold thousands in a large store.
MAX_ROWS = 200

# Column headings in words; others are shown with "_" as a space.
HEADINGS = {
    "usd": "cost",
    "duration_ms": "duration",
    "usd_per_run": "cost per run",
    "usd_per_call": "cost per priced call",
    "subtree_usd": "subtree cost",
    "unpriced_calls": "unpriced calls",
    "trace_id": "run (trace id)",
    "agent_version": "version",
    "avg_input_tokens": "avg input tokens",
    "prev_input_tokens": "input before",
    "jump_tokens": "jump (tokens)",
}


def fmt(column: str, value: Any) -> str:
    """A value as the page shows it: as the CLI shows it (money as `display.money`: six
    places under a dollar, else cents; the rest as `display.cell`), text cut to
    `MAX_TEXT` characters (`shorten`)."""
    if isinstance(value, Decimal) and "usd" in column:
        return money(value)
    return shorten(cli_cell(column, value))


# A name shown at most this long (its cell's data-exact keeps it whole): one feature id of a
# megabyte, copied into a chart's legend, its titles and every table, made a 75 MB report.
MAX_TEXT = 200


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` as shown: at most ``limit`` characters, an ellipsis ending a cut one. A bidi
    embedding, override or isolate control is shown as its code point ([U+202E]): left in, an
    unclosed one reverses the page's text after it (a run id in a heading read backwards)."""
    text = without_bidi(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def attribute(text: str) -> str:
    """``text`` escaped for an attribute's value or a cell's text so that a browser reads it
    back whole: a carriage return as a character reference (written raw, the parser folds
    \r\n to \n)."""
    return escape(text).replace("\r", "&#13;")


def exact(value: Any) -> str | None:
    """The exact value for ``data-exact``: decimals and integers as written, times in ISO,
    text as it is."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return None


def value_cell(rollup: str, row: int, column: str, value: Any, *, tag: str = "td", extra: str = "") -> str:
    """One cell with its provenance and exact value."""
    ex = exact(value)
    numeric = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    attrs = f' data-rollup="{rollup}" data-row="{row}" data-col="{escape(column)}"'
    if ex is not None:
        attrs += f' data-exact="{attribute(ex)}"'
    cls = ' class="num"' if numeric or value is None else ""
    return f"<{tag}{cls}{attrs}{extra}>{attribute(fmt(column, value))}</{tag}>"


def heading(column: str) -> str:
    return HEADINGS.get(column, column.replace("_", " "))


def table(
    rollup: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    caption: str,
    link: Link | None = None,
    empty: str = "No rows in this window.",
    max_rows: int = MAX_ROWS,
    filter_box: bool = False,
    listing: str,
    total: int | None = None,
) -> str:
    """A table of ``rows`` (a rollup's, in its order) showing ``columns``, the first
    ``max_rows`` of them; trace ids link to their run when ``link`` knows a page for it.
    When it shows fewer than ``total`` (the rows the rollup has without its limit; None:
    ``rows`` are all of them) it says how many of how many, and that ``listing``, a command
    line (`commands.Commands`), lists them all. The page's script sorts it by any column
    and, with ``filter_box``, filters its rows by text (`assets/report.js`)."""
    if not rows:
        return f'<p class="empty" data-rollup="{rollup}" data-rows="0">{escape(empty)}</p>'
    total = len(rows) if total is None else max(total, len(rows))
    rows = rows[:max_rows]
    cut = ""
    if len(rows) < total:
        cut = (
            f'<p class="note cut">The first {len(rows):,} of {total:,} rows '
            f"(<code>{escape(listing)}</code> lists them all).</p>"
        )
    head = "".join(f'<th scope="col">{escape(heading(c))}</th>' for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for c in columns:
            v = row.get(c)
            if c == "trace_id" and isinstance(v, str):
                href = link(v) if link else None
                text = f'<a href="{escape(href)}">{escape(v[:16])}…</a>' if href else escape(v[:16]) + "…"
                cells.append(
                    f'<td class="id" data-rollup="{rollup}" data-row="{i}" data-col="trace_id" '
                    f'data-exact="{escape(v)}" title="{escape(v)}">{text}</td>'
                )
            else:
                cells.append(value_cell(rollup, i, c, v))
        body.append(f"<tr>{''.join(cells)}</tr>")
    box = ""
    if filter_box:
        box = (
            f'<input type="search" class="filter" data-filter="table-{rollup}" hidden '
            f'placeholder="filter rows" aria-label="filter the rows of {escape(caption)}">'
        )
    return (
        f'{box}<div class="scroll"><table id="table-{rollup}" data-sortable '
        f'data-rollup="{rollup}" data-rows="{len(rows)}">'
        f"<caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{cut}"
    )
