"""What a report shows, fetched from the bundled rollups: every figure on a page is a value a
rollup returned (`otel_costattr.rollup`), never recomputed here.

`Window` is the period and filters a report covers, with the previous period of the same
length for the overview's comparison; `collect` runs the rollups of every section;
`run_detail` those of one run's waterfall.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ..rollups.errors import RollupParamError
from ..rollups.params import coerce, shown, timestamp
from ..rollups.queries import Database, rollup
from .tables import shorten

__all__ = ["Report", "RunDetail", "Window", "change", "collect", "run_detail", "window"]

_MAX_DAYS = 36_500


@dataclass(frozen=True)
class Window:
    """The period (naive UTC, ``until`` exclusive; None: open) and the filters of a report."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    service: str | None = None
    feature: str | None = None
    agent: str | None = None

    def params(self) -> dict[str, Any]:
        """The window as rollup keyword arguments."""
        values = {
            "since": self.since,
            "until": self.until,
            "service": self.service,
            "feature": self.feature,
            "agent": self.agent,
        }
        return {k: v for k, v in values.items() if v is not None}

    def previous(self) -> Window | None:
        """The period of the same length just before this one (same filters); None when this
        one is open at either end, or when that period would start before year 1."""
        if self.since is None or self.until is None:
            return None
        try:
            return replace(self, since=self.since - (self.until - self.since), until=self.since)
        except OverflowError:  # --since 1000-01-01: no period before it to compare with
            return None

    def label(self) -> str:
        """The period in words, for a page heading."""
        since = self.since.isoformat(sep=" ", timespec="minutes") if self.since else "the first span"
        until = self.until.isoformat(sep=" ", timespec="minutes") if self.until else "now"
        # As every name on a page (tables.shorten): cut, and a bidi control shown as such.
        filters = [
            f"{k} = {shorten(str(v))}" for k, v in self.params().items() if k not in ("since", "until")
        ]
        return f"{since} to {until} UTC" + (f" ({', '.join(filters)})" if filters else "")


def window(
    *,
    days: Any = None,
    since: Any = None,
    until: Any = None,
    service: str | None = None,
    feature: str | None = None,
    agent: str | None = None,
    now: dt.datetime | None = None,
) -> Window:
    """A `Window` from what a user typed (text or values): ``days`` (the last N days up to
    ``until``, else ``now``) or ``since``/``until`` (``until`` defaults to ``now`` when
    ``since`` is given), or neither (all time). Raises `RollupParamError` naming the bad
    value."""
    current = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    blank = (None, "")
    if days not in blank:
        if since not in blank:
            raise RollupParamError("report: give days or since, not both")
        n = coerce("report", "days", "DOUBLE", days)
        if not 0 < n <= _MAX_DAYS:
            raise RollupParamError(
                f"report: days: must be more than 0 and at most {_MAX_DAYS}, got {shown(days)}"
            )
        end = current if until in blank else timestamp("report", "until", until, current)
        try:
            start = end - dt.timedelta(days=n)
        except OverflowError:
            raise RollupParamError(f"report: days: reaches before year 1 from {shown(end)}") from None
    else:
        start = None if since in blank else timestamp("report", "since", since, current)
        end = None if until in blank else timestamp("report", "until", until, current)
        if start is not None and end is None:
            end = current
        if start is not None and end is not None and start >= end:
            raise RollupParamError(f"report: since ({shown(start)}) must be before until ({shown(end)})")
    return Window(start, end, service or None, feature or None, agent or None)


def change(now: Decimal | int | None, before: Decimal | int | None) -> str:
    """How ``now`` compares with ``before``, in words for the overview: ``+12%``, ``-3%``,
    ``new`` (nothing before), ``=`` or ``-`` (nothing to compare)."""
    if now is None or before is None:
        return "-"
    if before == 0:
        return "=" if now == 0 else "new"
    pct = (Decimal(now) - Decimal(before)) * 100 / Decimal(before)
    return "=" if pct == 0 else f"{pct:+.0f}%"


@dataclass
class Report:
    """The rows of every section, by rollup name, for one window (``previous``: the overview
    of the period before, or None)."""

    window: Window
    sections: dict[str, list[dict[str, Any]]]
    previous: dict[str, Any] | None
    runs: list[RunDetail] = field(default_factory=list)


@dataclass
class RunDetail:
    """One run for its waterfall: the ``trace`` rollup's rows (depth first) and the context
    jumps ``step_jumps`` found in it."""

    trace_id: str
    spans: list[dict[str, Any]]
    jumps: list[dict[str, Any]]


# (rollup, extra parameters) of each section, in page order.
SECTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("overview", {}),
    ("daily_model", {}),
    ("daily", {}),
    ("per_feature", {}),
    ("per_agent", {}),
    ("agent_steps", {}),
    ("per_model", {}),
    ("top_runs", {"limit": 10}),
    ("step_jumps", {}),
    ("loops", {}),
    ("unpriced", {}),
    ("runs_list", {"limit": 100}),
)


def collect(
    db: Database, win: Window, *, runs: int | str = 100, waterfalls: int = 10, tail: bool = True
) -> Report:
    """Run every section's rollup over ``win`` (``runs``: how many runs the runs list shows,
    newest first, 0 for all) and fetch the waterfalls of the ``waterfalls`` most expensive
    runs, plus (``tail``) those of the runs of the ``waterfalls`` largest context jumps and
    loops (a store can hold thousands of them: a page of waterfalls for each is megabytes)."""
    params = win.params()
    sections: dict[str, list[dict[str, Any]]] = {}
    for name, extra in SECTIONS:
        if name == "runs_list":
            extra = {"limit": runs}
        sections[name] = rollup(name, db=db, **params, **extra)
    prev_window = win.previous()
    previous = rollup("overview", db=db, **prev_window.params())[0] if prev_window else None
    report = Report(win, sections, previous)
    wanted = [r["trace_id"] for r in sections["top_runs"][:waterfalls]]
    if tail:
        wanted += [r["trace_id"] for r in sections["step_jumps"][:waterfalls]]
        wanted += [r["trace_id"] for r in sections["loops"][:waterfalls]]
    report.runs = [run_detail(db, t, jumps=sections["step_jumps"]) for t in dict.fromkeys(wanted)]
    return report


def run_detail(db: Database, trace_id: str, *, jumps: Iterable[dict[str, Any]] | None = None) -> RunDetail:
    """One run's waterfall rows (the ``trace`` rollup) and its context jumps: taken from
    ``jumps`` (rows of ``step_jumps`` already fetched) or, when None, from ``step_jumps`` over
    the run's own time span."""
    spans = rollup("trace", db=db, trace_id=trace_id)
    starts = [s["start_time"] for s in spans if s["start_time"] is not None]  # OTLP's 0: unknown
    if jumps is None and starts:
        last = max(starts) + dt.timedelta(microseconds=1)
        jumps = rollup("step_jumps", db=db, since=min(starts), until=last)
    mine = [j for j in jumps or () if j["trace_id"] == trace_id]
    return RunDetail(trace_id, spans, mine)
