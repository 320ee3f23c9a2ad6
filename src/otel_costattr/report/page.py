"""The page shell and the static report: one self-contained HTML file.

The style sheet (``assets/report.css``) and the script (``assets/report.js``: sorting and
filtering tables) are inlined and allowed by their hashes in the page's
Content-Security-Policy, which forbids everything else (``default-src 'none'``): a page that
tried to load anything would be blocked by the browser and say so in its console, so nothing
leaves the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import stat
from functools import lru_cache
from html import escape
from importlib import resources
from pathlib import Path

from ..rollups.queries import Database
from ..version import __version__
from .commands import Commands, store_name
from .data import Report, Window, collect
from .sections import NAV, render_sections
from .tables import Link
from .waterfall import waterfall

__all__ = ["ReportError", "csp", "css", "js", "nav_links", "page", "render_report", "write_report"]


# Spans drawn per waterfall in the file (the page stays small enough to mail: ~1.3 KB a span);
# the live page draws up to waterfall's default.
FILE_MAX_SPANS = 500


@lru_cache(maxsize=1)
def css() -> str:
    """The report's style sheet, as shipped in the package."""
    return (resources.files(__package__) / "assets" / "report.css").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def js() -> str:
    """The report's script (sorting and filtering tables), as shipped in the package."""
    return (resources.files(__package__) / "assets" / "report.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def csp() -> str:
    """The Content-Security-Policy of every page: the inline style sheet (by its hash) and
    nothing else: no script, no font, no image, no connection, no form sent elsewhere."""
    style, script = (_digest(text) for text in (css(), js()))
    return (
        f"default-src 'none'; style-src 'sha256-{style}'; script-src 'sha256-{script}'; "
        "form-action 'self'; base-uri 'none'"
    )


def _digest(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def page(title: str, body: str, *, nav: str = "", subtitle: str = "") -> str:
    """A complete HTML document around ``body``."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp())}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="otel-costattr {escape(__version__)}">'
        f"<title>{escape(title)}</title><style>{css()}</style></head>"
        f"<body><header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"{nav}<main>{body}</main><script>{js()}</script></body></html>\n"
    )


def nav_links(extra: str = "", *, prefix: str = "") -> str:
    """The section links (``prefix``: where the overview page is, for pages other than it)."""
    links = "".join(f'<a href="{prefix}#{anchor}">{escape(label)}</a>' for anchor, label in NAV)
    return f'<nav aria-label="sections">{links}{extra}</nav>'


def render_report(
    report: Report,
    *,
    link: Link,
    commands: Commands,
    title: str = "Where the money goes",
    before: str = "",
    nav_extra: str = "",
    generated: dt.datetime | None = None,
) -> str:
    """The report page: every section, then the waterfalls carried in ``report.runs``; what
    it cuts short, it names the command among ``commands`` for."""
    when = (generated or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    body = before + render_sections(report, link, commands)
    if report.runs:
        jumps, loops = (escape(commands.rollup(name)) for name in ("step_jumps", "loops"))
        body += (
            '<section id="waterfalls"><h2>Run waterfalls</h2><p class="intro">The most expensive runs, '
            f"and the runs of the largest context jumps and loops, a few of each (<code>{jumps}</code> "
            f"and <code>{loops}</code> list every one).</p>"
            + "".join(
                waterfall(r, commands.trace(r.trace_id), heading_level=3, max_spans=FILE_MAX_SPANS)
                for r in report.runs
            )
            + "</section>"
        )
    subtitle = f"{report.window.label()} · generated {when} by otel-costattr {__version__}"
    return page(title, body, nav=nav_links(nav_extra), subtitle=subtitle)


def write_report(
    db: Database,
    out: str | os.PathLike[str],
    win: Window | None = None,
    *,
    runs: int | str = 100,
    waterfalls: int = 10,
) -> Path:
    """Write the self-contained report of ``db`` over ``win`` (default: all time) to ``out``
    and return its path. A file (through any symbolic link: the link stays, its target gets
    the report) is written beside, then renamed into place, keeping its permissions; a pipe,
    FIFO, terminal or device is written into (renamed over, /dev/null became a file: a
    review)."""
    report = collect(db, win or Window(), runs=runs, waterfalls=waterfalls)
    shown = {r.trace_id for r in report.runs}
    commands = Commands(store_name(db), report.window)
    html = render_report(report, link=lambda t: f"#run-{t}" if t in shown else None, commands=commands)
    target = Path(out).expanduser()
    try:
        _write_in_place(target, html)
    except OSError as e:
        raise ReportError(f"cannot write the report to {target}: {e.strerror or e}") from e
    return target.absolute()


def _write_in_place(path: Path, text: str) -> None:
    """``text`` into ``path``: a regular file (or none yet) whole or not at all, the file a
    link names included, other files (pipes, devices) streamed."""
    try:
        mode = os.stat(path).st_mode  # through links
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    path = Path(os.path.realpath(path))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


class ReportError(Exception):
    """The report cannot be written where it was asked to."""
