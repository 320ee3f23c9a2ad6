"""One run as a waterfall: every span of the ``trace`` rollup as a row, depth first, indented
by its depth, with its own cost, its subtree's cost and a bar on the run's time axis; tool
spans sit between the calls they separate, and a call whose input jumped (``step_jumps``) is
marked in words and in colour."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from .charts import span_bar
from .data import RunDetail
from .tables import fmt, shorten, value_cell

__all__ = ["MAX_INDENT", "waterfall"]

MAX_INDENT = 12  # deeper spans are drawn at this indent, their depth written out


def _end(span: dict[str, Any]) -> dt.datetime:
    return span["start_time"] + dt.timedelta(milliseconds=span["duration_ms"] or 0)


def waterfall(run: RunDetail, listing: str, *, heading_level: int = 2, max_spans: int = 5000) -> str:
    """The run's waterfall as a table (one ``rect.bar`` per span, the first ``max_spans`` in
    depth-first order, saying so when there are more, and that ``listing``, a command line
    (`commands.Commands.trace`), lists them all), with its jumps marked."""
    spans = run.spans
    h = f"h{heading_level}"
    rid = escape(run.trace_id)
    if not spans:
        return (
            f'<section id="run-{rid}"><{h}>Run {rid}</{h}>'
            '<p class="empty">No spans stored for this run.</p></section>'
        )
    # A span received with start time 0 (OTLP: unknown) is stored without one: listed, with
    # no place on the time axis.
    known = [s for s in spans if s["start_time"] is not None]
    start = min((s["start_time"] for s in known), default=None)
    total_ms = max(((_end(s) - start).total_seconds() * 1000 for s in known), default=0.0) or 1.0
    jumps = {j["span_id"]: j for j in run.jumps}
    of_run = f' data-trace-id="{rid}"'
    rows = []
    for i, s in enumerate(spans[:max_spans]):
        placed = start is not None and s["start_time"] is not None
        offset_ms = (s["start_time"] - start).total_seconds() * 1000 if placed else 0.0
        role = s["span_role"] or "other"
        depth = s["depth"]
        name = escape(shorten(s["name"] or ""))
        if depth > MAX_INDENT:
            name = f'<span class="deep">[depth {depth}]</span> {name}'
        jump = jumps.get(s["span_id"])
        note = ""
        if jump:
            after = f" after {escape(shorten(jump['after_tool']))}" if jump["after_tool"] else ""
            note = (
                f'<span class="jump-note">▲ context jump ×{escape(fmt("ratio", jump["ratio"]))}: '
                f"{escape(fmt('input_tokens', jump['prev_input_tokens']))} → "
                f"{escape(fmt('input_tokens', jump['input_tokens']))} input tokens{after}</span>"
            )
        lasts = fmt("duration_ms", s["duration_ms"])
        starts = f"+{offset_ms:,.0f} ms" if placed else "unknown"
        if placed:
            label = f"{s['name']} ({role}): starts at {starts}, lasts {lasts}"
            bar = span_bar(offset_ms / total_ms, (s["duration_ms"] or 0) / total_ms, role, label)
        else:
            bar = '<span class="note">start time unknown</span>'
        cls = f"role-{escape(role)}" + (" jump" if jump else "")
        rows.append(
            f'<tr class="{cls}" data-span-id="{escape(s["span_id"])}">'
            f'<th scope="row" class="span d{min(depth, MAX_INDENT)}">{name}{note}</th>'
            f"<td>{escape(role)}</td>"
            f'<td class="num">{starts}</td>'
            f"{value_cell('trace', i, 'duration_ms', s['duration_ms'], extra=of_run)}"
            f"{value_cell('trace', i, 'usd', s['usd'], extra=of_run)}"
            f"{value_cell('trace', i, 'subtree_usd', s['subtree_usd'], extra=of_run)}"
            f'<td class="bar-cell">{bar}</td>'
            "</tr>"
        )
    cut = ""
    if len(spans) > max_spans:
        cut = (
            f'<p class="note cut">Showing the first {max_spans:,} of {len(spans):,} spans, depth first '
            f"(<code>{escape(listing)}</code> lists them all).</p>"
        )
    root = spans[0]
    title = escape(shorten(root["name"] or run.trace_id))
    head = "".join(
        f'<th scope="col">{t}</th>'
        for t in ("span", "role", "starts", "duration", "own cost", "subtree cost", "time axis")
    )
    return (
        f'<section id="run-{rid}" class="run" data-trace-id="{rid}">'
        f"<{h}>Run {title} <code>{rid}</code></{h}>"
        f"<p>{len(spans):,} spans over {fmt('duration_ms', total_ms)}, from "
        f"{escape(start.isoformat(sep=' ', timespec='seconds')) + ' UTC' if start else 'an unknown start'}. "
        "Each bar is one span on the run's time axis; "
        f"rows are indented by depth; model calls, tools and agents are told apart by the role column "
        f"(and colour); a call whose context jumped is marked ▲.</p>"
        f"{cut}"
        f'<div class="scroll"><table class="waterfall" data-rollup="trace" data-trace-id="{rid}" '
        f'data-rows="{len(rows)}"><caption>Spans of run {rid}, depth first</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )
