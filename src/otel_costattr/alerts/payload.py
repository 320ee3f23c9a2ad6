"""What a channel is sent: the webhook's versioned JSON payload, and the Slack message made
from it. The payload is the one description of an alert; Slack's text is derived from it.

Money and metric values are JSON numbers with ``<name>_exact`` beside them, the exact decimal
as a string (a float cannot hold every amount).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from .rules import Rule

__all__ = ["PAYLOAD_VERSION", "build_payload", "slack_message"]

PAYLOAD_VERSION = 1
_UNITS = {
    "cost": "usd", "cost_per_run": "usd", "calls": "calls", "error_rate": "ratio",
    "p95_latency": "ms", "unpriced_calls": "calls",
}  # fmt: skip


def unit(metric: str) -> str:
    """What a metric's values are in: ``usd``, ``calls``, ``ratio`` or ``ms``."""
    return _UNITS[metric]


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def _number(out: dict[str, Any], name: str, value: Decimal | None) -> None:
    out[name] = None if value is None else float(value)
    out[name + "_exact"] = _exact(value)


def _contributor(row: Mapping[str, Any]) -> str:
    """One top contributor in a Slack line: its name and cost, its unpriced calls said."""
    name = _short(next(iter(row.values())), 150)  # nine of them in one block, at most
    if row.get("usd_exact") is None:
        return f"{name} unpriced ({row.get('unpriced_calls', 0)} calls)"
    unpriced = row.get("unpriced_calls")
    return f"{name} {_dollars(Decimal(row['usd_exact']))}" + (f" (+{unpriced} unpriced)" if unpriced else "")


def _iso(value: dt.datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


def build_payload(
    *,
    event: str,
    rule: Rule,
    scope_value: str,
    window_key: str,
    start: dt.datetime,
    end: dt.datetime,
    value: Decimal | None,
    threshold: Decimal | None,
    limit: Decimal | None,
    crossed: Sequence[Decimal] = (),
    baseline: Decimal | None = None,
    projection: tuple[Decimal, dt.datetime] | None = None,
    top: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    base_url: str | None = None,
    at: dt.datetime,
    source: str = "store",
) -> dict[str, Any]:
    """The webhook payload (schema in the README, ``version`` 1). ``crossed``: every threshold
    this notification covers (several crossed at once are one message)."""
    out: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "event": event,
        "source": source,
        "at": _iso(at),
        "rule": rule.name,
        "scope": {"kind": rule.scope, "value": scope_value, "match": dict(rule.match)},
        "metric": rule.metric,
        "unit": _UNITS[rule.metric],
        "window": {"kind": rule.window, "key": window_key, "start": _iso(start), "end": _iso(end),
                   "timezone": rule.timezone},
    }  # fmt: skip
    _number(out, "value", value)
    _number(out, "threshold", threshold)
    out["thresholds_crossed"] = [float(t) for t in crossed]
    _number(out, "limit", limit)
    _number(out, "budget", rule.budget)
    _number(out, "baseline", baseline)
    reference = rule.budget if rule.budget is not None else limit
    used = None
    if value is not None and reference:
        # any value over any limit (an absolute threshold may be tiny): never InvalidOperation
        used = (value / reference * 100).quantize(Decimal("0.1"), context=_WIDE)
    out["percent_used"] = None if used is None else float(used)
    if projection is not None:
        amount, month_end = projection
        out["projection"] = {"month_end": _iso(month_end)}
        _number(out["projection"], "month_end_usd", amount)
    else:
        out["projection"] = None
    top_out: dict[str, list[dict[str, Any]]] = {}
    for kind, rows in (top or {}).items():
        items = []
        for row in rows:
            item: dict[str, Any] = {k: v for k, v in row.items() if k != "usd"}
            _number(item, "usd", row.get("usd"))
            if kind == "runs" and base_url:
                item["url"] = f"{base_url.rstrip('/')}/runs/{row['trace_id']}"
            items.append(item)
        top_out[kind] = items
    out["top"] = top_out
    links: dict[str, str] = {}
    if base_url:
        links["dashboard"] = base_url.rstrip("/") + "/"
        if rule.scope == "run":
            links["run"] = f"{base_url.rstrip('/')}/runs/{scope_value}"
    out["links"] = links
    return out


def _escape(text: Any) -> str:
    # Slack's mrkdwn treats these three as control characters (its "escaping text" rule).
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _short(text: Any, limit: int) -> str:
    """``text`` escaped, at most ``limit`` characters (cut with "…", never inside an
    entity): Slack refuses a block whose text passes 3,000 characters with a 400, and a
    scope value or a name can be any length."""
    out = _escape(text)
    if len(out) <= limit:
        return out
    kept: list[str] = []
    size = 0
    for char in str(text):
        piece = _escape(char)
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "…"


def _show(payload: Mapping[str, Any], name: str) -> str:
    exact = payload.get(name + "_exact")
    if exact is None:
        return "n/a"
    unit = payload["unit"]
    if unit == "usd":
        return _dollars(Decimal(exact))
    if unit == "ratio":
        return f"{Decimal(exact) * 100:.1f}%"
    if unit == "ms":
        return f"{Decimal(exact):,.0f} ms"
    return f"{Decimal(exact):,f}"


def _dollars(amount: Decimal) -> str:
    """An amount as a message reads it: cents, a half rounded up; under a dollar up to four
    places ($0.50, $0.0042); a cost under a hundredth of a cent is "<$0.0001", never "$0",
    written escaped for mrkdwn ("&lt;$0.0001": a raw "<" starts a link there)."""
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    if amount >= 1 or amount == 0:
        return f"{sign}${amount.quantize(_CENT, ROUND_HALF_UP, _WIDE):,}"
    if amount < _TINY:
        return f"{sign}&lt;${_TINY}"  # "<" escaped: mrkdwn reads a raw one as a link's start
    text = f"{amount.quantize(_TINY, ROUND_HALF_UP, _WIDE)}".rstrip("0")
    return f"{sign}${text}{'0' * max(0, 2 - len(text.split('.')[1]))}"


_CENT, _TINY = Decimal("0.01"), Decimal("0.0001")
_WIDE = Context(prec=80)


def _window(window: Mapping[str, Any]) -> str:
    # "day 2026-12-02", "month 2026-12"; a rolling window or a run is its own key ("7d", "run").
    kind, key = _escape(window["kind"]), _escape(window["key"])
    return kind if key == kind else f"{kind} {key}"


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (``text`` plus ``blocks``), every user value escaped."""
    scope = payload["scope"]
    head = "FIRING" if payload["event"] == "firing" else "RESOLVED"
    used = ""
    if payload.get("percent_used") is not None:  # of what percent_used is of: the budget if any
        budget = payload.get("budget_exact") is not None
        of = f"the budget {_show(payload, 'budget')}" if budget else "the limit"
        # written out with separators: :g wrote a 350,750,000% overrun as "3.5075e+08%"
        percent = f"{payload['percent_used']:,.1f}".rstrip("0").rstrip(".")
        used = f" ({percent}% of {of})"
    text = (
        f"[{head}] {_short(payload['rule'], 300)}: "
        f"{_short(scope['kind'], 100)}={_short(scope['value'], 1000)} "
        f"{_escape(payload['metric'])} {_show(payload, 'value')}, limit {_show(payload, 'limit')}{used}, "
        f"window {_window(payload['window'])}"
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    lines = []
    projection = payload.get("projection")
    if projection:
        lines.append(f"Month-end projection: {_dollars(Decimal(projection['month_end_usd_exact']))}")
    for kind, rows in (payload.get("top") or {}).items():
        if rows:
            shown = ", ".join(_contributor(r) for r in rows[:3])
            lines.append(f"Top {kind}: {shown}")
    run_link = (payload.get("links") or {}).get("run")
    if run_link:
        lines.append(f"<{_escape(run_link)}|Open the run>")
    if lines:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(lines)}]})
    return {"text": text, "blocks": blocks}
