"""The one output layer of the CLI: ``--format table|json|csv|parquet`` and ``--out FILE``.

A data command returns a `Table` (rows under named columns) or a `Record` (one object with a
text rendering of its own); `output` renders it. One rule per format:

- table: money as dollars by one rule for every amount (`money`: six places under a dollar,
  else cents), shares as percentages, ``*_ms`` as durations under a header without ``_ms``;
  numbers right-aligned and never cut; to fit the terminal, a number column headed wider than
  its values takes its header on two lines, then the widest text columns are cut with an
  ellipsis (``$COLUMNS`` when set, even piped; else the terminal's width when stdout
  is one; piped output is then never cut). Columns counting unpriced calls or tokens
  (`UNPRICED`) are left out when zero in every row, in every command alike. A tree
  (``trace``) shows what every span shares (the run's start, and its agent and feature when
  all spans have the same) once, on a line above the tree.
- json: timestamps in ISO 8601 with their time zone (stored times are UTC: ``+00:00``); money
  as a JSON number plus ``<column>_exact``, the exact decimal as a string.
- csv: a header row always, even for no rows; money as exact decimal strings.
- parquet: written with pyarrow to ``--out`` (required); money as decimals, times as UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import math
import os
import shutil
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

import click

from ..display import cell, visible, visible_lines
from ..rollups.catalog import is_money_column
from .options import check_out

FORMATS = ("table", "json", "csv", "parquet")
EXACT_SUFFIX = "_exact"
_ELLIPSIS = "…"
_MIN_TEXT_WIDTH = 8  # a text column is never cut narrower than this
# Counts of what a usd column leaves out: in a table only when some row has one.
UNPRICED = (
    "unpriced_calls", "unpriced_tokens", "subtree_unpriced_calls", "subtree_unpriced_tokens",
    "previous_unpriced_calls",  # compare's period before
    "unpriced_calls_repriced",  # --reprice: calls the prices given could not price
    "previous_unpriced_calls_repriced", "subtree_unpriced_calls_repriced",
)  # fmt: skip
# A tree's columns that the line above it says once (when every span has the same value), and
# those its table leaves out so that it reads at 100 columns (json, csv, parquet keep them all):
# the tree draws the parent links and the order, the name says the span's role.
_TREE_ONCE = ("agent", "feature")
# The subtree's unpriced counts: cost_status marks each unpriced call, the line counts them.
_TREE_HIDE = ("depth", "span_id", "parent_span_id", "span_role", "start_time", "step", "subtree_calls",
              "subtree_unpriced_calls", "subtree_unpriced_tokens")  # fmt: skip


class CLIError(click.ClickException):
    """A failure: printed as ``Error: <message>`` on stderr with exit code 1."""

    exit_code = 1


@dataclass
class Table:
    """Rows under named columns (the names come from the query, so they exist with no rows).

    ``money``: the columns holding USD (default: names containing ``usd``). ``cells``: how
    the table format shows a column, when not by the general rule. ``hide``: columns the table
    format leaves out. ``sparse``: columns it leaves out when every row has None or false.
    ``tree``: rows are spans depth first with ``depth``; the ``name`` column is drawn as a
    tree, under a line saying what all spans share. ``title``: a line above the table
    (table format only).
    """

    columns: Sequence[str]
    rows: Sequence[Mapping[str, Any]]
    money: Sequence[str] | None = None
    cells: Mapping[str, Callable[[Any], str]] = field(default_factory=dict)
    hide: Sequence[str] = ()
    sparse: Sequence[str] = ()
    tree: bool = False
    title: str | None = None
    # The columns' SQL types when the query said them (DuckDB's names: `rollups.queries.Rows`):
    # Parquet writes them, so files of one rollup share a schema whatever their rows hold.
    types: Mapping[str, str] = field(default_factory=dict)

    def money_columns(self) -> set[str]:
        """The columns that hold USD."""
        if self.money is not None:
            return set(self.money)
        return {c for c in self.columns if is_money_column(c)}


@dataclass
class Record:
    """One object (``price``, ``store status``): ``text`` is its table format; json gives
    ``data`` as an object, csv and parquet as one row (nested values as JSON text), or, with
    ``rows``, that table's rows (``alerts check``: a row per alert state).
    ``exit_code``: the command's exit status once it is written (``store status --check``)."""

    data: Mapping[str, Any]
    text: str
    money: Sequence[str] = ()
    exit_code: int = 0
    rows: Table | None = None


def output(fn: Callable[..., Table | Record]) -> Callable[..., None]:
    """Add ``--format`` and ``--out`` to a command returning a `Table` or a `Record`."""

    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json (money as numbers plus exact strings), csv or parquet for tools",
    )
    @click.option(
        "--out",
        default=None,
        metavar="FILE",
        callback=check_out,
        help="write to FILE instead of stdout (required for parquet)",
    )
    @click.option("--json", "as_json", is_flag=True, hidden=True, help="the same as --format json")
    @functools.wraps(fn)
    def wrapper(*args: Any, fmt: str, out: str | None, as_json: bool, **kwargs: Any) -> None:
        if as_json:  # what gh, llm and others take: not in the help, but never a "did you mean"
            if fmt not in ("table", "json"):
                raise click.BadOptionUsage("json", f"--json is --format json: not with --format {fmt}")
            fmt = "json"
        if fmt == "parquet" and not out:
            raise click.BadOptionUsage("out", "--format parquet writes a file: give --out FILE")
        result = fn(*args, **kwargs)
        emit(result, fmt, out)
        if isinstance(result, Record) and result.exit_code:
            click.get_current_context().exit(result.exit_code)

    return wrapper


def emit(result: Table | Record, fmt: str, out: str | None = None) -> None:
    """Render ``result`` in ``fmt`` to ``out`` (a path) or stdout; a write that fails anyway
    (disk full, a path that changed since `check_out`) is one ``Error:`` line naming it."""
    if out is None:
        buffer = io.StringIO()
        _render(result, fmt, buffer, width=terminal_width())
        # Data as it is: click strips ANSI escapes from what goes to a pipe, which would change
        # a CSV cell (two features merged into one); tables are already made visible.
        click.echo(buffer.getvalue(), nl=False, color=True if fmt == "csv" else None)
        return
    try:
        if fmt == "parquet":
            from .parquet import write_parquet  # pyarrow is loaded only when asked for

            write_parquet(result, out)
            return
        with open(out, "w", encoding="utf-8", newline="") as f:
            _render(result, fmt, f, width=None)
    except OSError as e:
        raise CLIError(f"cannot write --out {out}: {e.strerror or e}") from e


def _render(result: Table | Record, fmt: str, stream: TextIO, *, width: int | None) -> None:
    if fmt == "json":
        if isinstance(result, Record):
            data: object = json_object(result.data, set(result.money))
        else:
            money = result.money_columns()
            data = [json_object({c: r[c] for c in result.columns}, money) for r in result.rows]
        stream.write(json.dumps(data, indent=2) + "\n")
    elif fmt == "csv":
        columns, rows = flat(result)
        writer = csv.writer(stream, lineterminator="\n")
        # Python 3.11's writer quotes a cell holding its line terminator, not a lone "\r",
        # which every reader takes for a line break (a review: one feature read as two rows):
        # such a row is written with every cell quoted.
        quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for cells in [columns, *([csv_cell(r[c]) for c in columns] for r in rows)]:
            # the columns even with no rows: a reader still learns them
            cr = any(type(cell) is str and "\r" in cell for cell in cells)
            (quoted if cr else writer).writerow(cells)
    elif isinstance(result, Record):  # line by line: an error's text or a name, never raw
        text = visible_lines(result.text)
        stream.write(text + ("" if text.endswith("\n") else "\n"))
    else:
        if result.title:
            stream.write(visible(result.title) + "\n")
        if result.tree and result.rows:
            stream.write(visible(tree_header(result.rows)) + "\n")
        stream.write("\n".join(table_lines(result, width=width)) + "\n")


# --- values --------------------------------------------------------------------------------


def exact(value: Decimal | None) -> str | None:
    """A decimal as its exact plain string (``0.000285``), None as None."""
    return None if value is None else f"{value.normalize():f}"


def iso(value: dt.date) -> str:
    """ISO 8601; a stored time is naive UTC, so it is given ``+00:00``."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


# What a spreadsheet opening a CSV file takes for the start of a formula (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: `plain`, booleans as JSON writes them, and text a span set (a
    feature, a user id) that a spreadsheet would run as a formula (``=HYPERLINK(...)``) led
    by a single quote, as spreadsheets themselves mark text. Numbers are never changed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return plain(value)


def plain(value: Any) -> Any:
    """A value as csv carries it: exact decimal strings, ISO times with their zone."""
    if isinstance(value, Decimal):
        return exact(value)
    if isinstance(value, dt.date):
        return iso(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=plain)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # an empty cell, as for null
    return value


def json_object(row: Mapping[str, Any], money: set[str]) -> dict[str, Any]:
    """One row as JSON carries it: numbers as numbers, and each money column followed by
    ``<column>_exact``, its exact decimal string (a float cannot hold every amount)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            out[key] = _finite(float(value))
        elif isinstance(value, float):
            out[key] = _finite(value)
        elif isinstance(value, dt.date):
            out[key] = iso(value)
        else:
            out[key] = value
        if key in money:
            out[key + EXACT_SUFFIX] = exact(value) if isinstance(value, Decimal) else value
    return out


def _finite(value: float) -> float | None:
    """JSON has no NaN or Infinity (a share of $0, a jump from 0 tokens): null, as the HTTP
    API writes them, so strict parsers (jq, json.loads(parse_constant=...)) read the output."""
    return value if math.isfinite(value) else None


def flat(result: Table | Record) -> tuple[list[str], list[Mapping[str, Any]]]:
    """The columns and rows of ``result`` (a `Record` is one row, or its ``rows``)."""
    if isinstance(result, Record):
        if result.rows is not None:
            return flat(result.rows)
        return list(result.data), [result.data]
    return list(result.columns), list(result.rows)


# --- table ---------------------------------------------------------------------------------


def terminal_width() -> int | None:
    """The width to fit: ``$COLUMNS``, else the terminal's; None (never cut) when piped."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdecimal() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, (int, float, Decimal)) and not isinstance(value, bool))


def _blank(value: object) -> bool:
    return value is None or value is False  # not `in (None, False)`: Decimal(0) == False


def _columns(text: str) -> int:
    """The terminal columns ``text`` takes: two for a wide or fullwidth character (CJK, a
    fullwidth form), none for a combining one, else one (a review: a feature named in
    Chinese shifted every column after it)."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, its last one an ellipsis when cut."""
    if _columns(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = _columns(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + _ELLIPSIS


def _pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (on the left when ``right``)."""
    room = " " * max(0, width - _columns(text))
    return room + text if right else text + room


def table_lines(table: Table, *, width: int | None = None) -> list[str]:
    """The table format's lines, fitted to ``width`` when given (see the module docstring)."""
    rows = table.rows
    if not rows:
        return ["(no rows)"]
    columns = [
        c
        for c in table.columns
        if c not in table.hide
        and not (c in table.sparse and all(_blank(r[c]) for r in rows))
        and not (c in UNPRICED and not any(r[c] for r in rows))
    ]
    if table.tree:
        columns = [c for c in columns if c not in _TREE_HIDE and c not in _tree_said(rows)]
    money_cols = table.money_columns()

    def show(c: str, value: object) -> str:
        if c in table.cells:
            return visible(table.cells[c](value))
        return visible(cell(c, value, is_money=c in money_cols))

    cells = [[show(c, r[c]) for c in columns] for r in rows]
    if table.tree:  # indent each span name under its parent
        name = columns.index("name")
        for line, prefix in zip(cells, tree_prefixes(rows), strict=True):
            line[name] = prefix + line[name]
    numeric = [all(_is_number(r[c]) for r in rows) for c in columns]
    headers = [_header(c, table, rows) for c in columns]
    values = [max(_columns(line[i]) for line in cells) for i in range(len(columns))]
    widths = [max(_columns(h), v) for h, v in zip(headers, values, strict=True)]
    above = [""] * len(columns)  # a header's first line, when it takes two
    if width is not None:
        _fold_headers(headers, above, widths, values, numeric, width)
        _fit(widths, numeric, width)

    def fmt(line: Sequence[str]) -> str:
        out = (
            _pad(text, w, right=True) if num else _pad(_clip(text, w), w)
            for text, w, num in zip(line, widths, numeric, strict=True)
        )
        return "  ".join(out).rstrip()

    return [*([fmt(above)] if any(above) else []), fmt(headers), *(fmt(line) for line in cells)]


def _fold_headers(
    headers: list[str], above: list[str], widths: list[int], values: list[int], numeric: list[bool],
    limit: int,
) -> None:  # fmt: skip
    """Before any text is cut: a number column headed wider than its values (``unpriced_tokens``
    over ``83,080``) takes its header on two lines, split at an underscore, the widest
    saving first, until the table fits ``limit``."""
    total = sum(widths) + 2 * (len(widths) - 1)
    splits = {}
    for i, header in enumerate(headers):
        cuts = [j for j, ch in enumerate(header) if ch == "_"]
        if numeric[i] and cuts and len(header) > values[i]:
            j = min(cuts, key=lambda j: max(j, len(header) - j - 1))
            splits[i] = (header[:j], header[j + 1 :])
    for i in sorted(splits, key=lambda i: widths[i] - max(values[i], *map(len, splits[i])), reverse=True):
        if total <= limit:
            return
        top, bottom = splits[i]
        narrower = max(values[i], len(top), len(bottom))
        total -= widths[i] - narrower
        widths[i], above[i], headers[i] = narrower, top, bottom


def _header(column: str, table: Table, rows: Sequence[Mapping[str, Any]]) -> str:
    """A column's table header: ``duration_ms`` shown as durations is headed ``duration``."""
    if column.endswith("_ms") and column not in table.cells and all(_is_number(r[column]) for r in rows):
        return column.removesuffix("_ms")
    return column


def _distinct(rows: Sequence[Mapping[str, Any]], column: str) -> set[object]:
    return {r[column] for r in rows if r[column] is not None}


def _tree_said(rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """The tree's columns its header line stands for: agent and feature when every span has
    the same; cost_status when every call is priced; model when each call's name (``chat
    gpt-4o``, as the GenAI conventions name a call) already ends with its model."""
    first = rows[0]
    said = {c for c in _TREE_ONCE if c in first and len(_distinct(rows, c)) <= 1}
    if "cost_status" in first and _distinct(rows, "cost_status") <= {"priced"}:
        said.add("cost_status")
    if "model" in first and all(
        r["model"] is None or str(r.get("name")).endswith(f" {r['model']}") for r in rows
    ):
        said.add("model")
    return said


def tree_header(rows: Sequence[Mapping[str, Any]]) -> str:
    """The line above a tree: the run's start, the agent and feature when every span that
    has one has the same (else they stay columns), and whether every call is priced."""
    first, said = rows[0], _tree_said(rows)
    starts = [r["start_time"] for r in rows if r.get("start_time") is not None]
    parts = [f"started {cell('start_time', min(starts))} UTC"] if starts else []
    parts += [f"{c} {v}" for c in _TREE_ONCE if c in said for v in _distinct(rows, c)]
    if "cost_status" in said:
        calls = sum(r["cost_status"] is not None for r in rows)
        parts.append(f"{calls} model call{'s' * (calls != 1)}, every one priced")
    elif "cost_status" in first:
        calls = sum(r["cost_status"] is not None for r in rows)
        unpriced = [r for r in rows if r["cost_status"] not in (None, "priced")]
        tokens = sum((r.get("input_tokens") or 0) + (r.get("output_tokens") or 0) for r in unpriced)
        parts.append(f"{calls} model calls, {len(unpriced)} unpriced ({tokens:,} tokens, not in usd)")
    return "  ".join(parts)


def _fit(widths: list[int], numeric: list[bool], limit: int) -> None:
    """Narrow the widest text columns, one character at a time, until the table fits
    ``limit`` or every text column is at its minimum; numbers keep their width."""
    total = sum(widths) + 2 * (len(widths) - 1)
    while total > limit:
        text = [i for i, num in enumerate(numeric) if not num and widths[i] > _MIN_TEXT_WIDTH]
        if not text:
            return
        widest = max(text, key=lambda i: widths[i])
        widths[widest] -= 1
        total -= 1


def tree_prefixes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Box-drawing prefixes for rows in depth-first order with a ``depth`` column."""
    depths = [r["depth"] for r in rows]
    last = []
    for i, d in enumerate(depths):
        nxt = next((depths[j] for j in range(i + 1, len(depths)) if depths[j] <= d), None)
        last.append(nxt != d)
    prefixes: list[str] = []
    open_levels: list[bool] = []
    for i, d in enumerate(depths):
        del open_levels[d:]
        guide = "".join("   " if done else "│  " for done in open_levels[1:])
        prefixes.append("" if d == 0 else guide + ("└─ " if last[i] else "├─ "))
        open_levels.append(last[i])
    return prefixes
