"""Shared by the report tests (no tests here): read the value cells of a report page (with an
HTML parser, or from a browser) and compare each with the rollup API's value."""

from __future__ import annotations

import datetime as dt
import html
import json
import shlex
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from otel_costattr.report.data import SECTIONS, Window
from otel_costattr.rollups.queries import rollup

# data-* attributes of a value cell, as a browser's dataset names them
KEYS = ("rollup", "row", "col", "exact", "window", "traceId")


class Cells(HTMLParser):
    """Every element carrying ``data-col``: its data attributes and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[dict[str, Any]] = []
        self._open: list[tuple[str, dict[str, Any]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-col" in a:
            cell = {k: a.get("data-" + ("trace-id" if k == "traceId" else k)) for k in KEYS}
            cell["text"] = ""
            self._open.append((tag, cell))

    def handle_data(self, data: str) -> None:
        for _, cell in self._open:
            cell["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self.cells.append(self._open.pop()[1])


def cells_of(html: str) -> list[dict[str, Any]]:
    parser = Cells()
    parser.feed(html)
    return parser.cells


def as_exact(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def check_cells(cells: list[dict[str, Any]], db: Any, win: Window, *, runs: int = 100) -> int:
    """Assert that every cell's exact value is the rollup's (same rollup, row, column, window)
    and that its text shows it; return how many cells were checked."""
    extra = dict(SECTIONS)
    extra["runs_list"] = {"limit": runs}
    cache: dict[tuple[str, str | None, str | None], list[dict[str, Any]]] = {}
    for cell in cells:
        name = cell["rollup"]
        key = (name, cell.get("window"), cell.get("traceId"))
        if key not in cache:
            if name == "trace":
                cache[key] = rollup("trace", db=db, trace_id=cell["traceId"])
            elif cell.get("window") == "previous":
                cache[key] = rollup("overview", db=db, **win.previous().params())
            else:
                cache[key] = rollup(name, db=db, **win.params(), **extra[name])
        value = cache[key][int(cell["row"])][cell["col"]]
        where = f"{name}[{cell['row']}].{cell['col']}"
        assert cell.get("exact") == as_exact(value), where
        if isinstance(value, Decimal) and "usd" in cell["col"] and "<" in cell["text"]:
            # not zero, too small to show in six places: "<$0.000001" (a saving "-<$0.000001")
            assert value and abs(value) < Decimal("0.0000005"), where
            assert cell["text"].strip() == ("-" if value < 0 else "") + "<$0.000001", where
        elif isinstance(value, Decimal) and "usd" in cell["col"]:
            shown = Decimal(cell["text"].strip().lstrip("$").replace(",", ""))
            # cents from a dollar, else six places; a half rounded up, as bills round
            places = Decimal("0.01") if abs(value) >= 1 else Decimal("0.000001")
            assert shown == value.quantize(places, ROUND_HALF_UP), where
        elif isinstance(value, int) and not isinstance(value, bool):
            assert cell["text"].strip() == f"{value:,}", where
        elif value is None:
            assert cell["text"].strip() == "-", where
        elif isinstance(value, str) and cell["col"] != "trace_id":
            assert cell["text"] == value, where
    return len(cells)


def listed_by(command: str, cwd: Path | str = ".") -> list[dict[str, Any]]:
    """The rows ``command`` (an ``otel-costattr`` command line as a page prints it,
    HTML-escaped) lists, run as printed by a POSIX shell in ``cwd``, with ``--format json``."""
    assert command.startswith("otel-costattr ")
    cli = f"{shlex.quote(sys.executable)} -m otel_costattr.cli"
    script = cli + html.unescape(command).removeprefix("otel-costattr") + " --format json"
    done = subprocess.run(["sh", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]
