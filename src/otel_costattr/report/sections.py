"""The sections of the report page, each from one or two rollups' rows (`data.Report`): a
chart where one reads better, and always the table of the same rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from html import escape
from typing import Any

from .charts import columns_stacked, hbars
from .commands import Commands
from .data import Report, change
from .tables import Link, fmt, shorten, table, value_cell

__all__ = ["NAV", "render_sections"]

NAV = (
    ("overview", "Overview"),
    ("over-time", "Over time"),
    ("features", "Features"),
    ("agents", "Agents"),
    ("steps", "Steps"),
    ("models", "Models"),
    ("top-runs", "Top runs"),
    ("tail", "Jumps and loops"),
    ("unpriced", "Unpriced"),
    ("runs", "Runs"),
)

_OVERVIEW = (
    ("usd", "Total cost"),
    ("runs", "Runs"),
    ("calls", "Model calls"),
    ("usd_per_run", "Cost per run"),
    ("unpriced_calls", "Unpriced calls"),
)


def _section(anchor: str, title: str, intro: str, *parts: str) -> str:
    return (
        f'<section id="{anchor}"><h2>{escape(title)}</h2><p class="intro">{escape(intro)}</p>'
        f"{''.join(parts)}</section>"
    )


def _money(v: Any) -> str:
    return fmt("usd", v)


def _figure(chart: str, tables: str) -> str:
    return (
        f'<figure>{chart}<details class="table-view"><summary>Table view</summary>{tables}</details></figure>'
    )


_MONEY = frozenset({"usd", "usd_per_run"})


def _compared(row: dict[str, Any], col: str) -> Any:
    """``row[col]`` as the overview compares it: the cost of a period without calls is 0 (its
    sum is NULL, as it is for calls all unpriced, which no one can compare): "new", as the
    runs and calls beside it say, not "-"."""
    if col == "usd" and row[col] is None and row["calls"] == 0:
        return 0
    return row[col]


def _change(now: dict[str, Any], prev: dict[str, Any], col: str) -> str:
    """The change card's words. A cost is the priced part of its period: where both periods
    have calls and either has unpriced ones, the change is unknown, "-", as ``compare``
    leaves it empty (an unknown taken as $0 read "-90%" for a week that cost no less: a
    review). Against a period without calls it is "new" or "-100%" all the same."""
    if col in _MONEY and now["calls"] and prev["calls"] and (now["unpriced_calls"] or prev["unpriced_calls"]):
        return "-"
    return change(_compared(now, col), _compared(prev, col))


def overview(report: Report) -> str:
    now = report.sections["overview"][0]
    prev = report.previous
    cards = []
    for col, label in _OVERVIEW:
        before = ""
        if prev is not None:
            was = value_cell("overview", 0, col, prev[col], tag="span", extra=' data-window="previous"')
            before = (
                f'<p class="before">before: {was} · <span class="change">'
                f"{escape(_change(now, prev, col))}</span></p>"
            )
        figure = value_cell("overview", 0, col, now[col], tag="p", extra=' data-window="current"')
        cards.append(f'<div class="card"><h3>{escape(label)}</h3>{figure}{before}</div>')
    note = (
        "Each figure against the period of the same length just before "
        f"({escape(report.window.previous().label())})."
        if prev is not None and report.window.previous() is not None
        else "The window is open-ended: no previous period to compare with."
    )
    return _section(
        "overview",
        "Overview",
        "What this window cost.",
        f'<div class="cards">{"".join(cards)}</div>',
        f'<p class="note">{note}</p>',
    )


def _series(cell: dict[tuple[str, str], Decimal | None]) -> list[str]:
    """Series names, the one with the largest cost on a single day first (the bottom of
    each column)."""
    seen: dict[str, None] = {}
    for _, name in sorted(cell, key=lambda at: -(cell[at] or 0)):
        seen.setdefault(name)
    return list(seen)


def _plus(held: Decimal | None, usd: Decimal | None) -> Decimal | None:
    """Two costs summed in one cell: None only when neither is priced."""
    return usd if held is None else held if usd is None else held + usd


def _cells(rows: Sequence[dict[str, Any]], key: str) -> dict[tuple[str, str], Decimal | None]:
    """Cost per (day, ``key``): the rows of one pair summed (daily_model has a row per day,
    provider and model, and one model may come from two providers); None when none of
    them is priced."""
    cell: dict[tuple[str, str], Decimal | None] = {}
    for r in rows:
        day = NO_DAY if r["day"] is None else r["day"].isoformat()  # None: started at 0 (OTLP's unknown)
        at = (day, str(r[key]) if r[key] is not None else "(none)")
        usd, held = r["usd"], cell.get(at)
        cell[at] = _plus(held, usd)
    return cell


def _every_day(days: list[str]) -> list[str]:
    """``days`` (ISO dates, in order) with the days between them that had no calls, so that a
    quiet week shows as a gap, not as nothing (a review: a week's lull drew four days in a
    row); as given when they span more than `_MAX_DAYS`. Calls with no start time (`NO_DAY`)
    come last, in a column of their own, so the columns still add up to the total."""
    if NO_DAY in days:
        return [*_every_day([d for d in days if d != NO_DAY]), NO_DAY]
    if not days:
        return days
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    span = (last - first).days + 1
    if span > _MAX_DAYS or span < len(days):
        return days
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(span)]


NO_DAY = "no start time"  # the column of calls whose span said its start time is unknown
_MAX_DAYS = 400  # a chart of more days than that shows the days with calls only

# A chart draws at most this many bars, series or per-agent charts (the tables hold at most
# MAX_ROWS rows): 10,000 features made a 6 MB report with a 220,000-pixel chart.
_MAX_BARS, _MAX_SERIES, _MAX_STEP_CHARTS = 30, 12, 10


def _rest(cell: dict[tuple[str, str], Decimal | None], series: list[str]) -> list[str]:
    """``series`` bounded to _MAX_SERIES: past it, the smaller ones summed into one, named
    for how many it holds, in ``cell`` (changed in place)."""
    if len(series) <= _MAX_SERIES:
        return series
    kept, folded = series[: _MAX_SERIES - 1], set(series[_MAX_SERIES - 1 :])
    other = f"{len(folded):,} others"
    for (day, name), usd in list(cell.items()):
        if name in folded:
            del cell[day, name]
            held = cell.get((day, other))
            cell[day, other] = _plus(held, usd)
    return [*kept, other]


def _stacked(rows: Sequence[dict[str, Any]], key: str, title: str) -> str:
    cell = _cells(rows, key)
    days = _every_day(list(dict.fromkeys(day for day, _ in cell)))
    series = _rest(cell, _series(cell))
    desc = f"Cost per day stacked by {key}: " + "; ".join(
        f"{d}: " + ", ".join(f"{shorten(s)} {_money(cell[d, s])}" for s in series if (d, s) in cell)
        for d in days
        if any((d, s) in cell for s in series)
    )
    return columns_stacked(days, series, lambda d, s: cell.get((d, s)), title=title, desc=desc, fmt=_money)


def over_time(report: Report, commands: Commands) -> str:
    by_model, by_feature = report.sections["daily_model"], report.sections["daily"]
    if not by_model:
        return _section(
            "over-time", "Cost over time", "Cost per day (UTC).", '<p class="empty">No calls.</p>'
        )
    return _section(
        "over-time",
        "Cost over time",
        "Cost per day (UTC), stacked by model, then by feature.",
        "<h3>By model</h3>",
        _figure(
            _stacked(by_model, "model", "Cost per day by model"),
            table(
                "daily_model",
                by_model,
                ("day", "provider", "model", "calls", "unpriced_calls", "usd"),
                caption="Cost per day and model",
                listing=commands.rollup("daily_model"),
            ),
        ),
        "<h3>By feature</h3>",
        _figure(
            _stacked(by_feature, "feature", "Cost per day by feature"),
            table(
                "daily",
                by_feature,
                ("day", "feature", "runs", "calls", "unpriced_calls", "usd"),
                caption="Cost per day and feature",
                listing=commands.rollup("daily"),
            ),
        ),
    )


def _bars(rows: Sequence[dict[str, Any]], labels: Sequence[str], column: str, title: str) -> str:
    values: list[Decimal | None] = [r[column] for r in rows]
    if len(values) > _MAX_BARS:  # the largest, in the rollup's order; the table lists more
        largest = sorted(sorted(range(len(values)), key=lambda i: -(values[i] or 0))[:_MAX_BARS])
        title = f"{title} (the {_MAX_BARS} largest of {len(values):,})"
        labels, values = [labels[i] for i in largest], [values[i] for i in largest]
    desc = "; ".join(f"{shorten(lab)}: {_money(v)}" for lab, v in zip(labels, values, strict=True))
    return hbars(labels, values, title=title, desc=desc, fmt=_money)


def _name(v: Any) -> str:
    return "(none)" if v is None else shorten(str(v))


def features(report: Report, commands: Commands) -> str:
    rows = report.sections["per_feature"]
    listing = commands.rollup("per_feature")
    cols = ("feature", "runs", "calls", "unpriced_calls", "usd", "usd_per_run")
    return _section(
        "features",
        "Per feature",
        "What each feature costs, and per run.",
        _figure(
            _bars(rows, [_name(r["feature"]) for r in rows], "usd", "Cost per feature"),
            table("per_feature", rows, cols, caption="Cost per feature", listing=listing),
        )
        if rows
        else table("per_feature", rows, cols, caption="", listing=listing),
    )


def agents(report: Report, commands: Commands) -> str:
    rows = report.sections["per_agent"]
    listing = commands.rollup("per_agent")
    cols = ("agent", "agent_version", "first_seen", "runs", "calls", "unpriced_calls", "usd", "usd_per_run")
    labels = [f"{_name(r['agent'])} {_name(r['agent_version'])}" for r in rows]
    return _section(
        "agents",
        "Per agent and version",
        "Did a new version cost more per run?",
        _figure(
            _bars(rows, labels, "usd_per_run", "Cost per run, per agent version"),
            table("per_agent", rows, cols, caption="Cost per agent and version", listing=listing),
        )
        if rows
        else table("per_agent", rows, cols, caption="", listing=listing),
    )


def steps(report: Report, commands: Commands) -> str:
    rows = report.sections["agent_steps"]
    cols = ("agent", "step", "calls", "avg_input_tokens", "unpriced_calls", "usd", "usd_per_call")
    charts = []
    by_agent: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        if r["step"] is not None:
            by_agent.setdefault(r["agent"], []).append(r)
    stepped = {agent: mine for agent, mine in by_agent.items() if len(mine) > 1}  # a chart each
    spent = {agent: sum((r["usd"] or 0 for r in mine), Decimal(0)) for agent, mine in stepped.items()}
    costliest = set(sorted(spent, key=lambda a: -spent[a])[:_MAX_STEP_CHARTS])
    for agent, mine in stepped.items():
        if agent in costliest:
            charts.append(
                f"<h3>{escape(_name(agent))}</h3>"
                + _bars(
                    mine,
                    [f"step {r['step']}" for r in mine],
                    "usd_per_call",
                    f"{_name(agent)}: cost per priced call by step",
                )
            )
    if len(spent) > _MAX_STEP_CHARTS and charts:
        cut = f"Charts for the {_MAX_STEP_CHARTS} costliest of {len(spent):,} agents."
        charts.append(f'<p class="note cut">{cut}</p>')
    return _section(
        "steps",
        "Per step, per agent",
        "Does a call cost more the further the agent's loop goes?",
        _figure(
            "".join(charts) or '<p class="empty">No agent ran more than one step.</p>',
            table(
                "agent_steps",
                rows,
                cols,
                caption="Per agent and step",
                listing=commands.rollup("agent_steps"),
            ),
        ),
    )


def models(report: Report, commands: Commands) -> str:
    rows = report.sections["per_model"]
    listing = commands.rollup("per_model")
    cols = (
        "provider",
        "model",
        "calls",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "unpriced_calls",
        "usd",
    )
    return _section(
        "models",
        "Per model, with token kinds",
        "Input includes cache reads and writes; output includes reasoning.",
        _figure(
            _bars(rows, [f"{_name(r['model'])}" for r in rows], "usd", "Cost per model"),
            table("per_model", rows, cols, caption="Cost and tokens per model", listing=listing),
        )
        if rows
        else table("per_model", rows, cols, caption="", listing=listing),
    )


def render_sections(report: Report, link: Link, commands: Commands) -> str:
    """Every section of the report page, in `NAV` order (the waterfalls are separate); a
    table cut short names the command among ``commands`` that lists it all."""
    s = report.sections
    run_cols = ("trace_id", "run_name", "agent", "feature", "start_time", "calls", "unpriced_calls", "usd")
    return "".join(
        (
            overview(report),
            over_time(report, commands),
            features(report, commands),
            agents(report, commands),
            steps(report, commands),
            models(report, commands),
            _section(
                "top-runs",
                "The most expensive runs",
                "Follow a run to its waterfall.",
                table(
                    "top_runs",
                    s["top_runs"],
                    run_cols,
                    caption="Most expensive runs",
                    link=link,
                    listing=commands.rollup("top_runs"),
                ),
            ),
            _section(
                "tail",
                "Step jumps and loops",
                "Where a run's context jumped, and runs that looped.",
                "<h3>Context jumps</h3>",
                table(
                    "step_jumps",
                    s["step_jumps"],
                    (
                        "trace_id",
                        "agent",
                        "feature",
                        "prev_step",
                        "after_tool",
                        "step",
                        "model",
                        "prev_input_tokens",
                        "input_tokens",
                        "ratio",
                        "usd",
                    ),
                    caption="Calls whose input jumped over the previous call's",
                    link=link,
                    listing=commands.rollup("step_jumps"),
                ),
                "<h3>Loops</h3>",
                table(
                    "loops",
                    s["loops"],
                    ("trace_id", "agent", "feature", "calls", "median_calls", "ratio", "usd"),
                    caption="Runs with far more calls than their agent's median",
                    link=link,
                    listing=commands.rollup("loops"),
                ),
            ),
            _section(
                "unpriced",
                "Unpriced calls",
                "Never counted as $0: listed with their models instead.",
                table(
                    "unpriced",
                    s["unpriced"],
                    (
                        "cost_status",
                        "provider",
                        "model",
                        "calls",
                        "runs",
                        "input_tokens",
                        "output_tokens",
                        "usd",
                        "features",
                        "last_seen",
                    ),
                    caption="Calls without a price of ours (usd: a figure their spans carried)",
                    listing=commands.rollup("unpriced"),
                ),
            ),
            _section(
                "runs",
                "Runs",
                "Newest first; follow a run to its waterfall.",
                table(
                    "runs_list",
                    s["runs_list"],
                    (
                        "trace_id",
                        "run_name",
                        "agent",
                        "feature",
                        "start_time",
                        "duration_ms",
                        "calls",
                        "unpriced_calls",
                        "usd",
                    ),
                    caption="Runs",
                    link=link,
                    filter_box=True,
                    listing=commands.rollup("runs_list"),
                    # the overview counts the runs of the same calls: how many --limit left out
                    total=s["overview"][0]["runs"],
                ),
            ),
        )
    )
