"""Parse and validate one pricing file (the format is described in pricing/README.md) into
the data model of `model.py`.

Everything here runs at configuration time: a malformed file raises `PricingError` naming
the file, the model and the field, so a mistake never surfaces as a wrong bill later.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from .._config_text import TOO_DEEP, ConfigTextError, read_config_text
from .model import (
    MATCH_KINDS,
    MAX_DECIMALS,
    MAX_MODEL_ID,
    MAX_MULTIPLIER,
    MAX_PRICE,
    MAX_RATE_DECIMALS,
    MAX_TIER_ABOVE,
    RATE_KEYS,
    SERVICE_TIERS,
    MatchRule,
    ModelSpec,
    PricePeriod,
    PriceSchedule,
    PricingError,
    ProviderFile,
    Rates,
    Tier,
    TimeWindow,
    decimal_places,
    within_places,
)
from .regex_guard import check_backtracking

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


_PROVIDER_KEYS = {
    "provider", "name", "otel_names", "fallback", "source", "retrieved", "via", "multiplier",
    "model",
}  # fmt: skip
_MODEL_KEYS = {
    "id", "name", "match", "examples", "source", "retrieved", "deprecated", "price", "alias_of",
    "multiplier",
}  # fmt: skip
_PERIOD_KEYS = {"since", "tiers", "windows", *RATE_KEYS, *SERVICE_TIERS}
_TIER_KEYS = {"above", *RATE_KEYS}
_WINDOW_KEYS = {"start", "end", *RATE_KEYS}
_VARIANT_KEYS = {"tiers", *RATE_KEYS}


def read_toml(path: str | Path, data: bytes | None = None) -> dict[str, Any]:
    """Parse TOML with every float as an exact `Decimal` (the text read as every config file
    is, `read_config_text`). An empty file (nothing but blanks and comments) is an error: it
    is never what was meant, and reported as a missing ``provider`` it misleads."""
    try:
        text = read_config_text(path, data)
    except ConfigTextError as e:
        raise PricingError(str(e)) from e
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as e:
        raise PricingError(f"{path}: invalid TOML: {e}") from e
    except RecursionError as e:  # tomllib recurses per nesting level: [[[[...]]]] in a file
        raise PricingError(f"{path}: invalid TOML: {TOO_DEEP}") from e
    if not raw:
        raise PricingError(f"{path}: the file is empty (no TOML keys)")
    return raw


def compile_rule(pattern: Any, *, search: bool) -> re.Pattern[str]:
    """Compile a pattern of the pricing format: a match rule (``search=False``, matched
    against the whole id) or a normalisation (``search=True``). Raises ValueError saying
    what is wrong, also for a pattern that could backtrack badly on the span path (see
    `_regex_guard`); the caller names file, entry and field."""
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as e:
        raise ValueError(f"invalid regex: {e}") from e
    check_backtracking(pattern, search=search, longest=MAX_MODEL_ID)
    return compiled


def parse_provider_file(
    path: str | Path, data: bytes | None = None, raw: dict[str, Any] | None = None, *, user: bool = False
) -> ProviderFile:
    """Read and validate one provider pricing file (or its already parsed table ``raw``);
    raise `PricingError` on any problem. ``user``: a user's file, which may also hold
    ``[[region]]`` rules (taken out before: `regions.user_file_parts`)."""
    return _Parser(str(path), region_allowed=user).provider(read_toml(path, data) if raw is None else raw)


class _Parser:
    def __init__(self, path: str, *, region_allowed: bool = False) -> None:
        self.path = path
        self.region_allowed = region_allowed  # named among the keys a user's file may hold

    def fail(self, model: str | None, field: str, problem: str) -> PricingError:
        where = f"{self.path}: model {model!r}: " if model is not None else f"{self.path}: "
        return PricingError(f"{where}{field}: {problem}")

    def check_keys(self, table: Any, allowed: set[str], model: str | None, field: str) -> None:
        if not isinstance(table, dict):
            raise self.fail(model, field or "(top level)", "must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            name = f"{field}.{unknown[0]}" if field else unknown[0]
            raise self.fail(model, name, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def string(self, value: Any, model: str | None, field: str, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(model, field, "must be a non-empty string")
        return value

    def strings(self, value: Any, model: str | None, field: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(model, field, "must be a list of strings")
        return tuple(self.string(v, model, f"{field}[{i}]") for i, v in enumerate(value))

    def date(self, value: Any, model: str | None, field: str) -> dt.date | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise self.fail(model, field, f"must be a TOML date like 2026-11-22, got {value!r}")
        return value

    def price(self, value: Any, model: str | None, field: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise self.fail(model, field, f"must be a number (USD per million tokens), got {value!r}")
        number = Decimal(value)
        if not number.is_finite() or number < 0:
            raise self.fail(model, field, f"must be a finite number >= 0, got {value}")
        if number > MAX_PRICE:
            raise self.fail(model, field, f"must be at most {MAX_PRICE} USD per million tokens, got {value}")
        return self.decimals(number, model, field, MAX_RATE_DECIMALS)

    def multiplier(self, value: Any, model: str | None) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise self.fail(model, "multiplier", f"must be a number (a factor on every price), got {value!r}")
        number = Decimal(value)
        if not number.is_finite() or not 0 < number <= MAX_MULTIPLIER:
            raise self.fail(model, "multiplier", f"must be a number > 0 and <= {MAX_MULTIPLIER}, got {value}")
        return self.decimals(number, model, "multiplier", MAX_DECIMALS)

    def decimals(self, number: Decimal, model: str | None, field: str, places: int) -> Decimal:
        # trailing zeros are no places (2.5000000000000 is 2.5), as after multipliers
        if decimal_places(number) > places:
            raise self.fail(model, field, f"must have at most {places} decimal places, got {number}")
        return within_places(number, places)

    def provider(self, raw: dict[str, Any]) -> ProviderFile:
        self.check_keys(raw, _PROVIDER_KEYS | {"region"} if self.region_allowed else _PROVIDER_KEYS, None, "")
        provider = self.string(raw.get("provider"), None, "provider")
        models_raw = raw.get("model", [])
        if not isinstance(models_raw, list):
            raise self.fail(None, "model", "must be an array of tables ([[model]])")
        models = tuple(self.model(m, i) for i, m in enumerate(models_raw))
        seen: set[str] = set()
        for m in models:
            if m.id in seen:
                raise self.fail(m.id, "id", "duplicate model id in this file")
            seen.add(m.id)
        check_overlaps([(m, self.path) for m in models])
        return ProviderFile(
            path=self.path,
            provider=provider,
            name=self.string(raw.get("name"), None, "name", optional=True),
            otel_names=tuple(n.lower() for n in self.strings(raw.get("otel_names"), None, "otel_names")),
            fallback=self.strings(raw.get("fallback"), None, "fallback"),
            source=self.string(raw.get("source"), None, "source", optional=True),
            retrieved=self.date(raw.get("retrieved"), None, "retrieved"),
            via=self.string(raw.get("via"), None, "via", optional=True),
            multiplier=self.multiplier(raw.get("multiplier"), None),
            models=models,
        )

    def model(self, raw: Any, index: int) -> ModelSpec:
        if not isinstance(raw, dict):
            raise self.fail(None, f"model[{index}]", "must be a table")
        model_id = raw.get("id")
        if not isinstance(model_id, str) or not model_id.strip():
            raise self.fail(None, f"model[{index}].id", "must be a non-empty string")
        if len(model_id) > MAX_MODEL_ID:
            raise self.fail(None, f"model[{index}].id", f"longer than {MAX_MODEL_ID} characters")
        self.check_keys(raw, _MODEL_KEYS, model_id, "")
        rules = self.rules(raw.get("match"), model_id)
        alias_of = self.string(raw.get("alias_of"), model_id, "alias_of", optional=True)
        periods_raw = raw.get("price")
        if alias_of is not None and periods_raw is not None:
            raise self.fail(model_id, "price", "a model with alias_of takes its prices from there")
        if alias_of is None and not periods_raw:
            raise self.fail(model_id, "price", "missing: at least one [[model.price]] is required")
        periods: tuple[PricePeriod, ...] = ()
        if periods_raw is not None:
            if not isinstance(periods_raw, list):
                raise self.fail(model_id, "price", "must be an array of tables ([[model.price]])")
            periods = tuple(self.period(p, model_id, i) for i, p in enumerate(periods_raw))
            self.check_history(periods, model_id)
        deprecated = raw.get("deprecated", False)
        if not isinstance(deprecated, bool):
            raise self.fail(model_id, "deprecated", "must be true or false")
        examples = self.strings(raw.get("examples"), model_id, "examples")
        for i, example in enumerate(examples):
            self.short_enough(example, model_id, f"examples[{i}]")
            if not any(r.matches(example.lower()) for r in rules):
                raise self.fail(model_id, f"examples[{i}]", f"{example!r} matches no rule of this model")
        return ModelSpec(
            id=model_id,
            name=self.string(raw.get("name"), model_id, "name", optional=True),
            rules=rules,
            examples=tuple(e.lower() for e in examples),
            source=self.string(raw.get("source"), model_id, "source", optional=True),
            retrieved=self.date(raw.get("retrieved"), model_id, "retrieved"),
            deprecated=deprecated,
            periods=periods,
            alias_of=alias_of,
            multiplier=self.multiplier(raw.get("multiplier"), model_id),
            rules_from="id" if raw.get("match") is None else "match",
        )

    def rules(self, raw: Any, model_id: str) -> tuple[MatchRule, ...]:
        if raw is None:
            # No rules: the canonical id itself is the only match.
            return (MatchRule("equals", model_id.lower()),)
        if not isinstance(raw, list) or not raw:
            raise self.fail(model_id, "match", "must be a non-empty list of rules")
        rules = []
        for i, rule in enumerate(raw):
            field = f"match[{i}]"
            if not isinstance(rule, dict) or len(rule) != 1:
                raise self.fail(model_id, field, f"must be a table with one of {', '.join(MATCH_KINDS)}")
            ((kind, value),) = rule.items()
            if kind not in MATCH_KINDS:
                raise self.fail(
                    model_id, f"{field}.{kind}", f"unknown rule (allowed: {', '.join(MATCH_KINDS)})"
                )
            value = self.string(value, model_id, f"{field}.{kind}")
            if value != value.lower():
                raise self.fail(
                    model_id, f"{field}.{kind}", "ids are matched lower-cased: write the rule in lower case"
                )
            pattern = None
            if kind == "regex":
                try:
                    pattern = compile_rule(value, search=False)
                except ValueError as e:
                    raise self.fail(model_id, f"{field}.regex", str(e)) from e
            else:
                self.short_enough(value, model_id, f"{field}.{kind}")
            rules.append(MatchRule(kind, value, pattern))
        return tuple(rules)

    def short_enough(self, value: str, model_id: str, field: str) -> None:
        if len(value) > MAX_MODEL_ID:
            raise self.fail(
                model_id, field, f"longer than {MAX_MODEL_ID} characters: no id that long is ever resolved"
            )

    def rates(self, raw: dict[str, Any], model_id: str, field: str, like: Rates | None = None) -> Rates:
        for key in ("input", "output"):
            if key not in raw:
                raise self.fail(model_id, f"{field}.{key}", "missing price")
        values = {k: self.price(raw[k], model_id, f"{field}.{k}") for k in RATE_KEYS if k in raw}
        if like is not None:
            # A tier or service tier must say every rate the base says: a silently inherited
            # base rate would overcharge (batch halves cache reads too).
            for key, base in like.as_dict().items():
                if base is not None and key not in values:
                    raise self.fail(model_id, f"{field}.{key}", "missing price (the base rates have it)")
        return Rates(**values)

    def schedule(self, raw: dict[str, Any], model_id: str, field: str, like: Rates | None) -> PriceSchedule:
        rates = self.rates(raw, model_id, field, like)
        tiers_raw = raw.get("tiers", [])
        if not isinstance(tiers_raw, list):
            raise self.fail(model_id, f"{field}.tiers", "must be a list of tables")
        tiers = []
        for i, t in enumerate(tiers_raw):
            tfield = f"{field}.tiers[{i}]"
            self.check_keys(t, _TIER_KEYS, model_id, tfield)
            above = t.get("above")
            if isinstance(above, bool) or not isinstance(above, int) or above <= 0:
                raise self.fail(model_id, f"{tfield}.above", "must be a whole number of input tokens > 0")
            if above >= MAX_TIER_ABOVE:
                raise self.fail(
                    model_id,
                    f"{tfield}.above",
                    f"must be below {MAX_TIER_ABOVE:,} input tokens, got {above:,}",
                )
            if tiers and above <= tiers[-1].above:
                raise self.fail(model_id, f"{tfield}.above", "tiers must be in increasing order")
            tiers.append(Tier(above, self.rates(t, model_id, tfield, rates)))
        return PriceSchedule(rates, tuple(tiers))

    def period(self, raw: Any, model_id: str, index: int) -> PricePeriod:
        field = f"price[{index}]"
        self.check_keys(raw, _PERIOD_KEYS, model_id, field)
        standard = self.schedule(raw, model_id, field, None)
        variants = {}
        for tier_name in SERVICE_TIERS:
            if tier_name in raw:
                vfield = f"{field}.{tier_name}"
                self.check_keys(raw[tier_name], _VARIANT_KEYS, model_id, vfield)
                variant = self.schedule(raw[tier_name], model_id, vfield, standard.rates)
                if standard.tiers and not variant.tiers:
                    # The base's long-context rates are not the variant's: its own are unknown.
                    raise self.fail(model_id, f"{vfield}.tiers", "missing (the base rates have tiers)")
                variants[tier_name] = variant
        windows = self.windows(raw.get("windows", []), model_id, f"{field}.windows", standard.rates)
        return PricePeriod(
            self.date(raw.get("since"), model_id, f"{field}.since"), standard, variants, windows
        )

    def windows(self, raw: Any, model_id: str, field: str, like: Rates) -> tuple[TimeWindow, ...]:
        if not isinstance(raw, list):
            raise self.fail(model_id, field, "must be a list of tables")
        windows = []
        for i, w in enumerate(raw):
            wfield = f"{field}[{i}]"
            self.check_keys(w, _WINDOW_KEYS, model_id, wfield)
            bounds = []
            for key in ("start", "end"):
                value = w.get(key)
                if not isinstance(value, dt.time) or value.tzinfo is not None:
                    raise self.fail(
                        model_id, f"{wfield}.{key}", "must be a TOML local time (UTC) like 01:00:00"
                    )
                if value.microsecond:
                    raise self.fail(model_id, f"{wfield}.{key}", f"whole seconds only, got {value}")
                bounds.append(value.hour * 3600 + value.minute * 60 + value.second)
            if bounds[0] == bounds[1]:
                raise self.fail(model_id, f"{wfield}.end", "must differ from start")
            for j, other in enumerate(windows):
                if _spans_meet(bounds, (other.start, other.end)):
                    raise self.fail(
                        model_id, wfield, f"overlaps {field}[{j}]: a call in both would have two prices"
                    )
            windows.append(TimeWindow(bounds[0], bounds[1], self.rates(w, model_id, wfield, like)))
        return tuple(windows)

    def check_history(self, periods: tuple[PricePeriod, ...], model_id: str) -> None:
        previous: dt.date | None = None
        for i, p in enumerate(periods):
            if i > 0 and p.since is None:
                raise self.fail(model_id, f"price[{i}].since", "missing: only the first price may omit it")
            if previous is not None and p.since is not None and p.since <= previous:
                raise self.fail(model_id, f"price[{i}].since", "dates must increase (oldest price first)")
            previous = p.since


def _spans_meet(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether two time-of-day windows (start, end) in seconds share a second; a window whose
    end is before its start wraps midnight."""

    def parts(w: Sequence[int]) -> list[tuple[int, int]]:
        return [(w[0], w[1])] if w[0] < w[1] else [(w[0], 86400), (0, w[1])]

    return any(s1 < e2 and s2 < e1 for s1, e1 in parts(a) for s2, e2 in parts(b))


def check_overlaps(models: Sequence[tuple[ModelSpec, str]]) -> None:
    """Every `equals` value and example must match exactly one of ``models`` (each with the
    file it is in: one file's, or one provider's from every user file, `table._build`).

    Linear in the number of models, not quadratic: equals values, prefixes and suffixes are
    dict lookups (a probe is cut at each length that some starts_with / ends_with value has:
    at most MAX_MODEL_ID lengths). Only regex rules are tried one by one on every probe, so
    that part costs probes x regex rules: files have few (the bundled aws.toml has the most,
    under 200).
    """
    by_kind: dict[str, dict[str, list[int]]] = {"equals": {}, "starts_with": {}, "ends_with": {}}
    regexes: list[tuple[MatchRule, int]] = []
    for index, (model, _) in enumerate(models):
        for rule in model.rules:
            if rule.kind == "regex":
                regexes.append((rule, index))
            else:
                by_kind[rule.kind].setdefault(rule.value, []).append(index)
    equals, prefixes, suffixes = by_kind.values()
    prefix_lengths = sorted({len(v) for v in prefixes})
    suffix_lengths = sorted({len(v) for v in suffixes})
    for index, (model, path) in enumerate(models):
        # Its own id too: with a match list of its own it is no equals value, and another
        # model's prefix could take it (acme-large's starts_with "acme-large" took
        # acme-large-mini, priced 20x its own rates), whether its own rules match it or not.
        probes = [r.value for r in model.rules if r.kind == "equals"] + list(model.examples)
        own = model.id.lower()
        for probe in dict.fromkeys([*probes, own]):
            hits = set(equals.get(probe, ()))
            for n in prefix_lengths:
                hits.update(prefixes.get(probe[:n], ()) if n <= len(probe) else ())
            for n in suffix_lengths:
                hits.update(suffixes.get(probe[-n:], ()) if n <= len(probe) else ())
            hits.update(i for rule, i in regexes if rule.matches(probe))
            label = probe == own and probe not in probes and index not in hits
            hits.discard(index)
            if hits and label:  # a call naming this model would be priced as another
                other, where = models[min(hits)]
                elsewhere = "" if where == path else f" in {where}"
                raise PricingError(
                    f"{path}: model {model.id!r}: match: its id {probe!r} resolves to model {other.id!r}"
                    f"{elsewhere}, and none of its own rules matches it (a call naming it would be"
                    f" priced as {other.id!r}): narrow the rules of {other.id!r} so that they leave"
                    f" {probe!r} out"
                )
            if hits:
                other, where = models[min(hits)]
                elsewhere = "" if where == path else f" in {where}"
                kept = next((m.id for m in (model, other) if m.rules_from == "bundled"), None)
                theirs = other.id if kept == model.id else model.id
                why = "" if kept is None else (
                    f" (model {kept!r} keeps the match rules of the bundled model it replaces:"
                    f" give it a match of its own, or name {probe!r} in an equals rule of {theirs!r})"
                )  # fmt: skip
                raise PricingError(
                    f"{path}: model {model.id!r}: match: {probe!r} also matches model {other.id!r}"
                    f"{elsewhere}{why}"
                )
