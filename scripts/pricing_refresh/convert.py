"""genai-prices-shaped model data -> our pricing format (pricing/README.md).

Input is plain data in genai-prices' own schema (its providers/*.yml and data.json): match
clauses as ``{"or": [{"equals": ...}, ...]}``, ``prices`` as one mapping or a list of
``{"constraint": ..., "prices": ...}``, ``price_variants``. What our format cannot say is skipped
(`Unrepresentable`) or left out and noted on the model (`Model.dropped`), never approximated.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# genai-prices price keys -> ours, in the order our files list them.
GP_RATES = {
    "input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write", "cache_write_1h_mtok": "cache_write_1h",
    "output_reasoning_mtok": "reasoning", "input_audio_mtok": "audio_input",
    "output_audio_mtok": "audio_output", "input_image_mtok": "image_input",
    "output_image_mtok": "image_output",
}  # fmt: skip
RATES = tuple(GP_RATES.values())
# What the other genai-prices price keys charge for, as the "left out" comments say it.
UNIT_NOTES = {
    "web_searches_kcount": "USD per 1,000 web searches", "requests_kcount": "USD per 1,000 requests",
    "storage_searches_kcount": "USD per 1,000 file searches", "input_audio_mtok": "audio input tokens",
    "cache_audio_read_mtok": "cached audio input tokens", "output_audio_mtok": "audio output tokens",
    "input_image_mtok": "image input tokens", "cache_image_read_mtok": "cached image input tokens",
    "output_image_mtok": "image output tokens", "input_video_mtok": "video input tokens",
    "output_video_mtok": "video output tokens", "output_citation_mtok": "citation tokens",
}  # fmt: skip
# Our service tiers and the genai-prices price context that selects each.
SERVICE_TIERS = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}
UTC = dt.timezone.utc


class Unrepresentable(Exception):
    """A genai-prices model (or part of one) our format cannot say faithfully."""


@dataclass
class Model:
    """One ``[[model]]`` of a provider file, plus the comments written above it."""

    id: str
    match: list[dict[str, str]]
    price: list[dict[str, Any]]
    name: str | None = None
    examples: list[str] = field(default_factory=list)
    source: str | None = None
    retrieved: dt.date | None = None
    deprecated: bool = False
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # parts left out: the format cannot say them
    backdated: dict[dt.date, str] = field(default_factory=dict)  # since -> tier (tier_history.py)

    def drop(self, what: str) -> None:
        """Record a part of the source model that the file leaves out."""
        if what not in self.dropped:
            self.dropped.append(what)

    def doc(self) -> dict[str, Any]:
        """The model as its TOML file holds it (what `tomllib` reads back)."""
        keys = ("id", "name", "match", "examples", "source", "retrieved", "deprecated", "price")
        return {k: getattr(self, k) for k in keys if getattr(self, k) not in (None, [], False)}


# --- match clauses -> rules -------------------------------------------------------------------


def escape(text: str) -> str:
    """re.escape, minus the escapes that only make a rule harder to read (-, /, @, :)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _scan(pattern: str):
    """(index, char, depth) of each unescaped ``(``, ``)`` and ``|`` outside a [class]."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c in "()|":
            depth += {"(": 1, ")": -1, "|": 0}[c]
            yield i, c, depth
        i += 1


def search_to_fullmatch(pattern: str) -> str:
    """genai-prices applies regexes with re.search, lower-casing the id; ours are full matches
    written in lower case."""
    if pattern != pattern.lower():
        if re.search(r"\\[A-Z]", pattern):
            raise Unrepresentable(f"regex {pattern!r} uses an upper-case escape")
        pattern = re.sub(r"\[([a-z0-9])\1\]", r"\1", pattern.lower())  # [tT] -> [tt] -> t
    if any(c == "|" and depth == 0 for _, c, depth in _scan(pattern)):
        return f".*(?:{pattern}).*"
    head = pattern.startswith("^")
    tail = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[1 if head else 0 : len(pattern) - (1 if tail else 0)]
    return ("" if head else ".*") + body + ("" if tail else ".*")


def clause_regex(clause: dict[str, Any]) -> str:
    """A full-match regex for any genai-prices match clause."""
    ((kind, value),) = clause.items()
    text = escape(value.lower()) if isinstance(value, str) else ""
    simple = {"equals": "{}", "starts_with": "{}.*", "ends_with": ".*{}", "contains": ".*{}.*"}
    if kind in simple:
        return simple[kind].format(text)
    if kind == "regex":
        return search_to_fullmatch(value)
    if kind == "or":
        return "(?:" + "|".join(clause_regex(c) for c in value) + ")"
    if kind == "and":
        # One clause is the body, the others lookaheads anchored at the end; a clause that is
        # already a leading lookahead (genai-prices' "not a -tts model") is kept as it is.
        lookaheads, bodies = [], []
        for rx in map(clause_regex, value):
            end = next((i + 1 for i, c, d in _scan(rx) if c == ")" and d == 0), 0)
            if rx.startswith(("(?!", "(?=")) and rx[end:] == ".*":
                lookaheads.append(rx[:end])
            else:
                bodies.append(rx)
        body = bodies.pop(0) if bodies else ".*"
        return "".join(lookaheads + [f"(?=(?:{rx})$)" for rx in bodies]) + body
    raise Unrepresentable(f"unknown match clause {clause!r}")


def clause_rules(clause: dict[str, Any]) -> list[dict[str, str]]:
    """Our match rules for a clause: its `or` branches one by one, regexes for the rest."""
    ((kind, value),) = clause.items()
    if kind == "or":
        return [rule for c in value for rule in clause_rules(c)]
    if kind in ("equals", "starts_with", "ends_with"):
        return [{kind: value.lower()}]
    return [{"regex": clause_regex(clause)}]


# --- prices -> periods ------------------------------------------------------------------------


def utc_time(value: dt.time) -> dt.time:
    """A constraint's time of day in UTC, naive (genai-prices reads naive times as UTC)."""
    if value.tzinfo is not None:
        value = dt.datetime.combine(dt.date(1970, 1, 1), value).astimezone(UTC).time()
    if value.microsecond:
        raise Unrepresentable(f"time-of-day price edge {value.isoformat()} (whole seconds only)")
    return value


def active(constraint: dict[str, Any], when: dt.date) -> bool:
    """genai-prices' StartDateConstraint / TimeOfDateConstraint test at ``when`` (a UTC
    datetime; a date alone matches no time of day)."""
    if "start_date" in constraint:
        return (when.date() if isinstance(when, dt.datetime) else when) >= constraint["start_date"]
    if not isinstance(when, dt.datetime):
        return False
    t, start, end = when.time(), utc_time(constraint["start_time"]), utc_time(constraint["end_time"])
    return (t >= start or t < end) if end < start else start <= t < end


def prices_at(info: dict[str, Any], when: dt.date, context: dict[str, str] | None = None) -> dict:
    """genai-prices' ``get_prices``: the last active conditional price (the first when none is),
    then each price variant matching ``context`` overrides its own keys, first match first."""
    prices = info["prices"]
    if isinstance(prices, list):
        chosen = [c for c in prices if not c.get("constraint") or active(c["constraint"], when)]
        prices = (chosen or prices)[-1 if chosen else 0]["prices"]
    overrides: dict[str, Any] = {}
    for variant in info.get("price_variants", []) if context else []:
        con = variant.get("constraint")
        if (not con or active(con, when)) and all(context.get(k) == v for k, v in variant["when"].items()):
            for key, price in variant["prices"].items():
                overrides.setdefault(key, price)
    return {**prices, **overrides}


def rates(schedule: dict[str, Any]) -> dict[str, Decimal]:
    """The rate keys of a schedule, window or tier (without tiers, since, start, ...)."""
    return {k: schedule[k] for k in RATES if k in schedule}


def schedule(prices: dict[str, Any], model: Model) -> dict[str, Any]:
    """One genai-prices price mapping as our rates plus long-context ``tiers``."""
    flat, tiered = {}, {}
    for key, value in prices.items():
        ours = GP_RATES.get(key)
        if ours is None:
            model.drop(f"{key} ({UNIT_NOTES.get(key, key)})")
        else:
            (tiered if isinstance(value, dict) else flat)[ours] = value
    if "input" not in flat and "input" not in tiered:
        units = ", ".join(sorted(prices)) or "none"
        raise Unrepresentable(f"no per-token input price (priced units: {units})")
    if "output" not in flat and "output" not in tiered:
        flat["output"] = Decimal(0)
        model.drop("no output price in source: output tokens priced at 0")
    starts = {tuple(t["start"] for t in tp["tiers"]) for tp in tiered.values()}
    if len(starts) > 1:
        raise Unrepresentable(f"tiers with different thresholds per rate: {sorted(starts)}")
    out = {k: Decimal(v) for k, v in rates({**flat, **{k: tp["base"] for k, tp in tiered.items()}}).items()}
    tiers = []
    for i, start in enumerate(starts.pop() if starts else ()):
        if start <= 0:
            raise Unrepresentable(f"tier starting at {start} tokens")
        values = rates({**flat, **{k: tp["tiers"][i]["price"] for k, tp in tiered.items()}})
        tiers.append({"above": start, **{k: Decimal(v) for k, v in values.items()}})
    return out | ({"tiers": tiers} if tiers else {})


def windows(info: dict[str, Any], day: dt.date, edges: list[dt.time], base: dict, model: Model) -> list:
    """The daily windows where genai-prices charges other than ``base`` on ``day``: its answer
    is constant from one time-of-day edge to the next, so one sample per stretch sees it all."""
    out: list[dict[str, Any]] = []
    for start, end in zip(edges, edges[1:] + edges[:1], strict=True):
        sched = schedule(prices_at(info, dt.datetime.combine(day, start, tzinfo=UTC)), model)
        if sched == base:
            continue
        if "tiers" in sched:
            raise Unrepresentable("long-context tiers inside a time-of-day window")
        missing = [k for k in rates(base) if k not in sched]
        if missing:
            raise Unrepresentable(f"a time-of-day window without the base's {', '.join(missing)} rate")
        if out and out[-1]["end"] == start and rates(out[-1]) == sched:
            out[-1]["end"] = end  # one window across an edge where nothing changes
        else:
            out.append({"start": start, "end": end, **sched})
    if len(out) > 1 and out[-1]["end"] == out[0]["start"] and rates(out[-1]) == rates(out[0]):
        out[0]["start"] = out.pop()["start"]  # across midnight
    return out


def conform(variant: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """A service tier repeats the base's long-context tiers (our format requires it)."""
    thresholds = [t["above"] for t in base.get("tiers", [])]
    if "tiers" in variant or not thresholds:
        if [t["above"] for t in variant.get("tiers", [])] != thresholds:
            raise Unrepresentable("service tier with other long-context thresholds than the base")
        return variant
    return {**variant, "tiers": [{"above": a, **variant} for a in thresholds]}


def same_prices(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two periods charge the same, whatever their ``since``."""
    return {k: v for k, v in a.items() if k != "since"} == {k: v for k, v in b.items() if k != "since"}


def convert_model(info: dict[str, Any]) -> Model:
    """One genai-prices model in our format; raises `Unrepresentable` when it cannot be said.

    genai-prices' own price resolution is sampled at every date where something changes and at
    every time-of-day edge, so the history, the windows and which variant wins are its own.
    """
    model = Model(info["id"], [], [], name=info.get("name"), deprecated=bool(info.get("deprecated")))
    for rule in clause_rules(info["match"]):
        if "regex" in rule:
            try:
                re.compile(rule["regex"])
            except re.error as e:
                raise Unrepresentable(f"regex {rule['regex']!r}: {e}") from e
        if rule not in model.match:
            model.match.append(rule)
    variants = info.get("price_variants", [])
    for v in variants:
        if v["when"] not in SERVICE_TIERS.values() and not (
            v["when"] == {"service_tier": "default"} and not any(v["prices"].values())  # explicit no-op
        ):
            model.drop("service variant " + ", ".join(f"{k}={x}" for k, x in v["when"].items()))
    conditional = info["prices"] if isinstance(info["prices"], list) else []
    constraints = [c["constraint"] for c in [*conditional, *variants] if c.get("constraint")]
    edges = sorted({utc_time(c[k]) for c in constraints for k in ("start_time", "end_time") if k in c})
    for since in [None, *sorted({c["start_date"] for c in constraints if "start_date" in c})]:
        day = since or dt.date(1990, 1, 1)
        standard = schedule(prices_at(info, day), model)
        found = windows(info, day, edges, standard, model)
        period = ({"since": since} if since else {}) | standard | ({"windows": found} if found else {})
        # Without time-of-day prices, noon stands for the whole day.
        at = [dt.datetime.combine(day, t, tzinfo=UTC) for t in edges or [dt.time(12)]]
        for name, ctx in SERVICE_TIERS.items():
            pairs = [
                (schedule(prices_at(info, w), model), schedule(prices_at(info, w, ctx), model)) for w in at
            ]
            if all(std == tier for std, tier in pairs):
                continue
            if any(tier != pairs[0][1] for _, tier in pairs):
                # Our service tier replaces the windows; a genai-prices variant overrides only
                # its own keys of whichever price is in force at that time of day.
                model.drop(f"{name} prices (they vary with the time of day)")
                continue
            try:
                period[name] = conform(pairs[0][1], standard)
            except Unrepresentable as e:
                model.drop(f"{name} prices ({e})")
        if not (model.price and same_prices(model.price[-1], period)):
            model.price.append(period)
    if info.get("price_comments"):
        model.notes.append(f"genai-prices: {info['price_comments']}")
    return model
