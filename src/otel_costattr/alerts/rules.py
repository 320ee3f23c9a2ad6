"""Alert rules as data: the model, and ``alerts.toml`` read and checked into it.

A rule says what to watch (a ``scope``: ``run``, ``feature``, ``agent``, ``model``,
``service`` or any identity attribute such as ``user.id``; ``match`` filters), how to measure
it (``metric`` over a ``window``) and when to tell whom (``thresholds`` as fractions of a
``budget``, multiples of a ``baseline``, or absolute values; ``channels``). Every mistake is
one `AlertRulesError` line naming the file, the rule and the field, raised at load: a rule
file never fails at evaluation time.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._config_text import TOO_DEEP, ConfigTextError, read_config_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the core's tomli fallback
    import tomli as tomllib

__all__ = [
    "METRICS",
    "SCOPES",
    "WINDOWS",
    "AlertRulesError",
    "Channel",
    "Rule",
    "RuleSet",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

# The scopes with a typed column in the call contract; any other scope is an attribute key.
SCOPES = {
    "run": "trace_id",
    "feature": "feature",
    "agent": "agent_name",
    "model": "model",
    "service": "service_name",
}
METRICS = ("cost", "cost_per_run", "calls", "error_rate", "p95_latency", "unpriced_calls")
# Calendar windows are keyed by the period (a new day: fresh states); rolling ones by length.
CALENDAR = ("day", "month")
WINDOWS = ("run", "24h", "7d", *CALENDAR)
CHANNEL_TYPES = ("webhook", "slack")
# An attribute key becomes a JSON path: letters, digits and . _ - only (no quote can escape).
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE_KEYS = {
    "name", "scope", "match", "metric", "window", "timezone", "budget", "thresholds",
    "baseline", "min_calls", "lookback", "cooldown", "notify_resolved", "channels",
}  # fmt: skip
_CHANNEL_KEYS = {"type", "url", "timeout", "retries", "backoff"}
_MAX_BUDGET = Decimal(10) ** 12
_MIN_BUDGET = Decimal(10) ** -12  # the store's precision (DECIMAL(38, 12)): 1e-30 is no budget


class AlertRulesError(ValueError):
    """A rule file that cannot be used: one line naming the file, the rule and the field."""


@dataclass(frozen=True)
class Channel:
    """Where an alert goes: a generic JSON ``webhook`` or a Slack incoming webhook."""

    name: str
    type: str
    url: str
    timeout: float = 5.0  # seconds per attempt
    retries: int = 4  # attempts after the first
    backoff: float = 1.0  # the first wait; doubles per retry

    @property
    def round_waits(self) -> float:
        """The seconds one delivery round waits between its attempts at most: the doubling
        backoff's sum. A receiver's Retry-After is waited out within it (`deliver`); the
        re-sends of `redeliver` count on no round lasting longer (`redeliver.patience`)."""
        return self.backoff * (2**self.retries - 1)


@dataclass(frozen=True)
class Rule:
    """One rule. ``thresholds`` are fractions of ``budget``, multiples of the ``baseline``
    median, or absolute values (metric units: USD, calls, a 0-1 rate, milliseconds)."""

    name: str
    scope: str
    metric: str
    window: str
    thresholds: tuple[Decimal, ...]
    channels: tuple[str, ...]
    match: tuple[tuple[str, str], ...] = ()
    timezone: str = "UTC"
    budget: Decimal | None = None
    baseline: int = 0  # trailing windows whose median is the reference; 0: none
    min_calls: int = 1
    lookback: float = 86400.0  # window "run": runs with a call this many seconds back (each measured whole)
    cooldown: float = 3600.0  # a key that fired is not notified again sooner
    notify_resolved: bool = True

    def limit(self, threshold: Decimal, baseline: Decimal | None = None) -> Decimal | None:
        """The value at which ``threshold`` fires (None: no baseline to scale)."""
        if self.budget is not None:
            return self.budget * threshold
        if self.baseline:
            return None if baseline is None else baseline * threshold
        return threshold


@dataclass(frozen=True)
class RuleSet:
    """The rules and channels of one file (``source``: its path, for messages)."""

    rules: tuple[Rule, ...]
    channels: Mapping[str, Channel]
    source: str = "<rules>"


def parse_duration(text: Any) -> float:
    """``50ms``, ``30s``, ``5m``, ``24h``, ``7d`` as seconds; ValueError otherwise."""
    m = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a duration such as '30s', '5m', '24h' or '7d', got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def load_rules(path: str | Path) -> RuleSet:
    """Read and check ``path``; raises `AlertRulesError` (one line) on any mistake."""
    p = Path(path)
    try:
        text = read_config_text(p)
    except ConfigTextError as e:
        raise AlertRulesError(str(e)) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AlertRulesError(f"{p}: not valid TOML: {e}") from e
    except RecursionError as e:  # tomllib recurses per nesting level
        raise AlertRulesError(f"{p}: not valid TOML: {TOO_DEEP}") from e
    return parse_rules(data, str(p))


def parse_rules(data: Mapping[str, Any], source: str = "<rules>") -> RuleSet:
    """Check a parsed rule file; raises `AlertRulesError` naming ``source``, rule and field."""
    unknown = sorted(set(data) - {"channels", "rules"})
    if unknown:
        raise AlertRulesError(f"{source}: unknown top-level key {unknown[0]!r} (expected channels, rules)")
    raw_channels = data.get("channels", {})
    if not isinstance(raw_channels, dict):
        raise AlertRulesError(f"{source}: channels: expected a table of channels")
    channels = {name: _channel(source, name, spec) for name, spec in raw_channels.items()}
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise AlertRulesError(f"{source}: rules: expected at least one [[rules]] entry")
    rules = []
    seen: set[str] = set()
    for i, spec in enumerate(raw_rules):
        rule = _Reader(source, i, spec, channels).rule()
        if rule.name in seen:
            raise AlertRulesError(f"{source}: rule {rule.name!r}: field 'name': used by an earlier rule")
        seen.add(rule.name)
        rules.append(rule)
    return RuleSet(tuple(rules), channels, source)


def _url_problem(url: Any) -> str | None:
    """Why ``url`` is not one urllib can post to (None: it is): http(s), a host, a port in
    range if any, no whitespace or control character ('http://exa mple.com' and ':99999'
    failed only when an alert was sent)."""
    if not isinstance(url, str):
        return f"not text ({type(url).__name__})"
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return "another scheme"
    bad = next((i for i, c in enumerate(url) if c.isspace() or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return f"a space or control character at position {bad + 1} of {len(url)}"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range or not a number)
    except ValueError:  # '[::1' and the like too
        return "a port out of range or not a number, or a malformed host"
    return None if parts.hostname else "no host"


def _shown_url(url: Any) -> str:
    """A URL as a load error quotes it: its scheme and host only, since a webhook's secret is
    in its path, query or credentials (a Slack URL's last part is the key). Nothing of a text
    without a scheme (a pasted token) and no host of a URL holding an '@' anywhere (credentials,
    or an address in its query: where the host ends cannot be told) is shown, nor what
    follows a ':' that is not a port."""
    if not isinstance(url, str):  # a list or table of URLs holds them whole: its type only
        shown = url is None or type(url) in (bool, int, float)
        return repr(url) if shown else f"a {type(url).__name__} (not shown)"
    m = re.match(r"[A-Za-z][A-Za-z0-9+.-]{0,15}://", url)
    if m is None:
        return f"a text of {len(url)} characters (not shown)"
    scheme, rest = m.group(0), url[m.end() :]
    authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
    # Shown only when it is plainly a host (ASCII letters, digits, dots, dashes, or an IPv6
    # address in brackets) and a port: an '@' anywhere, a look-alike of one, a space or
    # anything else may be credentials or a pasted secret.
    host = re.fullmatch(r"([A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]*\])(?::(.*))?", authority)
    if host is None or "@" in rest or "\uff20" in rest or "\ufe6b" in rest:
        authority = "***"
    elif host.group(2) is not None and not re.fullmatch(r"[0-9]{1,5}", host.group(2)):
        authority = host.group(1) + ":***"  # not a port: a password cut short
    return repr(scheme + authority + ("/..." if len(scheme + authority) < len(url) else ""))


def _channel(source: str, name: str, spec: Any) -> Channel:
    where = f"{source}: channel {name!r}"
    if not isinstance(spec, dict):
        raise AlertRulesError(f"{where}: expected a table with type and url")
    unknown = sorted(set(spec) - _CHANNEL_KEYS)
    if unknown:
        raise AlertRulesError(
            f"{where}: field {unknown[0]!r}: unknown (expected one of {sorted(_CHANNEL_KEYS)})"
        )
    kind = spec.get("type")
    if kind not in CHANNEL_TYPES:
        raise AlertRulesError(f"{where}: field 'type': expected 'webhook' or 'slack', got {kind!r}")
    url = spec.get("url")
    problem = _url_problem(url)
    if problem is not None:
        raise AlertRulesError(
            f"{where}: field 'url': expected an http:// or https:// URL ({problem}), got {_shown_url(url)}"
        )
    if urllib.parse.urlsplit(url).username is not None:  # urllib sends no credentials from a URL
        raise AlertRulesError(
            f"{where}: field 'url': a user or password in the URL is never sent (every post would "
            "fail): put the receiver's token in its path or query"
        )
    retries = spec.get("retries", 4)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
        raise AlertRulesError(
            f"{where}: field 'retries': expected a whole number from 0 to 20, got {retries!r}"
        )
    values = {}
    for key, default, most in (("timeout", 5.0, 120.0), ("backoff", 1.0, 600.0)):
        try:
            values[key] = parse_duration(spec[key]) if key in spec else default
        except ValueError as e:
            raise AlertRulesError(f"{where}: field {key!r}: {e}") from None
        if not 0 < values[key] <= most:
            raise AlertRulesError(f"{where}: field {key!r}: must be above 0 and at most {most:g}s")
    return Channel(name, kind, url, values["timeout"], retries, values["backoff"])


class _Reader:
    """Reads one ``[[rules]]`` entry, field by field, each mistake naming its field."""

    def __init__(self, source: str, index: int, spec: Any, channels: Mapping[str, Channel]) -> None:
        self.source, self.spec, self.channels = source, spec, channels
        name = spec.get("name") if isinstance(spec, dict) else None
        self.where = (
            f"{source}: rule {name!r}" if isinstance(name, str) and name else f"{source}: rule #{index + 1}"
        )
        if not isinstance(spec, dict):
            raise AlertRulesError(f"{self.where}: expected a table")

    def fail(self, field: str, message: str) -> AlertRulesError:
        return AlertRulesError(f"{self.where}: field {field!r}: {message}")

    def rule(self) -> Rule:
        spec = self.spec
        unknown = sorted(set(spec) - _RULE_KEYS)
        if unknown:
            raise self.fail(unknown[0], f"unknown (expected one of {', '.join(sorted(_RULE_KEYS))})")
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise self.fail("name", "required: a non-empty text of at most 200 characters")
        scope = self._choice_or_key("scope")
        metric = self._choice("metric", METRICS)
        window = self._choice("window", WINDOWS)
        tz = spec.get("timezone", "UTC")
        try:
            zone(tz) if isinstance(tz, str) and tz else None
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: an area ('America'), too long
            tz = None
        if not isinstance(tz, str) or not tz:
            raise self.fail(
                "timezone",
                f"unknown time zone {spec.get('timezone')!r} (an IANA name such as 'UTC' or 'Europe/Paris')",
            )
        budget = self._budget(metric)
        baseline = self._baseline(window, budget)
        thresholds = self._thresholds(budget, baseline)
        if window == "run" and scope != "run":
            raise self.fail("window", f"'run' needs scope = 'run', not {scope!r}")
        if scope == "run" and window != "run":
            raise self.fail("scope", f"'run' needs window = 'run', not {window!r}")
        if window == "run" and metric not in ("cost", "calls", "unpriced_calls", "error_rate", "p95_latency"):
            raise self.fail("metric", f"{metric!r} is not measured per run (use cost, calls, ...)")
        if metric == "error_rate" and not baseline and thresholds[-1] > 1:
            # Absolute values in the metric's unit: a share of calls never exceeds 1.
            raise self.fail(
                "thresholds",
                "error_rate is a fraction from 0 to 1: a threshold above 1 never fires, "
                f"got {spec['thresholds']!r}",
            )
        lookback = self._seconds("lookback", 86400.0)  # its value is checked first, as before
        if "lookback" in spec and window != "run":
            # Only a run rule reads it (how far back runs are looked for); a window has its own length.
            raise self.fail("lookback", f"only for window 'run' (how far back runs are read), not {window!r}")
        return Rule(
            name=name, scope=scope, metric=metric, window=window, thresholds=thresholds,
            channels=self._channels(), match=self._match(), timezone=tz, budget=budget,
            baseline=baseline, min_calls=self._count("min_calls", 1),
            lookback=lookback,
            cooldown=self._seconds("cooldown", 3600.0, zero=True),
            notify_resolved=self._flag("notify_resolved", True),
        )  # fmt: skip

    def _got(self, field: str) -> str:
        return f"got {self.spec[field]!r}" if field in self.spec else "but it is missing"

    def _choice(self, field: str, choices: Sequence[str]) -> str:
        value = self.spec.get(field)
        if value not in choices:
            raise self.fail(field, f"expected one of {', '.join(choices)}, {self._got(field)}")
        return str(value)

    def _choice_or_key(self, field: str) -> str:
        value = self.spec.get(field)
        if value in SCOPES:
            return str(value)
        if isinstance(value, str) and _ATTRIBUTE_KEY.match(value):
            return value  # an identity attribute, read from the call's attributes
        raise self.fail(
            field, f"expected {', '.join(SCOPES)} or an attribute key such as 'user.id', {self._got(field)}"
        )

    def _match(self) -> tuple[tuple[str, str], ...]:
        value = self.spec.get("match", {})
        if not isinstance(value, dict):
            raise self.fail("match", 'expected a table such as { feature = "research" }')
        out = []
        for key, wanted in value.items():
            if key not in SCOPES and not _ATTRIBUTE_KEY.match(key):
                raise self.fail("match", f"unknown key {key!r} (a scope name or an attribute key)")
            if not isinstance(wanted, str):
                raise self.fail("match", f"{key}: expected a text value, got {wanted!r}")
            out.append((key, wanted))
        return tuple(out)

    def _budget(self, metric: str) -> Decimal | None:
        if "budget" not in self.spec:
            return None
        if metric not in ("cost", "cost_per_run"):
            raise self.fail(
                "budget", f"a budget is in USD: only for metric cost or cost_per_run, not {metric!r}"
            )
        value = _decimal(self.spec["budget"])
        if value is None or not _MIN_BUDGET <= value <= _MAX_BUDGET:
            raise self.fail("budget", f"expected USD from 10^-12 to 10^12, got {self.spec['budget']!r}")
        return value

    def _baseline(self, window: str, budget: Decimal | None) -> int:
        if "baseline" not in self.spec:
            return 0
        value = self.spec["baseline"]
        if budget is not None:
            raise self.fail("baseline", "give a budget or a baseline, not both")
        if window == "run":
            raise self.fail("baseline", "not available with window 'run'")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 90:
            raise self.fail("baseline", f"expected the number of trailing windows (1 to 90), got {value!r}")
        return value

    def _thresholds(self, budget: Decimal | None, baseline: int) -> tuple[Decimal, ...]:
        if "thresholds" not in self.spec:
            if budget is None and not baseline:
                raise self.fail("thresholds", "required without a budget or a baseline (absolute values)")
            return (Decimal(1),) if budget is not None else (Decimal(2),)
        raw = self.spec["thresholds"]
        if not isinstance(raw, list) or not raw or len(raw) > 20:
            raise self.fail("thresholds", f"expected a list of 1 to 20 numbers, got {raw!r}")
        values = [_decimal(v) for v in raw]
        if any(v is None or v <= 0 or v > _MAX_BUDGET for v in values):
            raise self.fail("thresholds", f"expected positive numbers, got {raw!r}")
        if len(set(values)) != len(values):
            raise self.fail("thresholds", f"a threshold is listed twice: {raw!r}")
        return tuple(sorted(v for v in values if v is not None))

    def _channels(self) -> tuple[str, ...]:
        raw = self.spec.get("channels", [])
        if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
            raise self.fail("channels", f"expected a list of channel names, got {raw!r}")
        for name in raw:
            if name not in self.channels:
                known = f"defined: {', '.join(self.channels)}" if self.channels else "none is defined"
                raise self.fail("channels", f"no channel named {name!r} ({known})")
        if len(set(raw)) != len(raw):  # each alert would be sent to it twice
            raise self.fail("channels", f"a channel is listed twice: {raw!r}")
        return tuple(raw)

    def _count(self, field: str, default: int) -> int:
        value = self.spec.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
            raise self.fail(field, f"expected a whole number from 1, got {value!r}")
        return value

    def _seconds(self, field: str, default: float, *, zero: bool = False) -> float:
        if field not in self.spec:
            return default
        try:
            value = parse_duration(self.spec[field])
        except ValueError as e:
            raise self.fail(field, str(e)) from None
        if (value <= 0 and not zero) or value > 400 * 86400:
            low = "0s" if zero else "above 0s"
            raise self.fail(field, f"out of range: {self.spec[field]!r} (from {low} to at most 400d)")
        return value

    def _flag(self, field: str, default: bool) -> bool:
        value = self.spec.get(field, default)
        if not isinstance(value, bool):
            raise self.fail(field, f"expected true or false, got {value!r}")
        return value


def _decimal(value: Any) -> Decimal | None:
    # TOML floats arrive as binary floats: read them as written (0.8, not 0.8000000000000000444).
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None


def zone(name: str) -> dt.tzinfo:
    """The time zone ``name``; UTC needs no time zone database (a system may have none)."""
    return dt.timezone.utc if name == "UTC" else ZoneInfo(name)
