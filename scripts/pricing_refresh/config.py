"""scripts/pricing_overrides.toml: what we ship (providers, id rewrites) and our corrections.

A mistake in the file stops the refresh with one line naming the file, the entry and the field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import tomllib

from . import RefreshError, tier_history
from .convert import Model

_PROVIDER_KEYS = {"id", "name", "otel_names", "genai_prices", "models", "fallback", "source", "comment"}
_NORMALIZE_KEYS = {"pattern", "replace", "why"}
_MODEL_KEYS = {"provider", "id", "reason", "match", "extra_match", "examples", "name", "deprecated", "new"}
_MODEL_KEYS |= {"price", "source", "retrieved"}


@dataclass
class ProviderConfig:
    """One pricing/<id>.toml: our provider and the genai-prices models it ships."""

    id: str
    name: str
    otel_names: list[str]
    genai_prices: str | None = None  # the genai-prices provider id (none: no models of its own)
    models: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    source: str | None = None  # default: genai-prices' first pricing URL
    comment: str = ""


@dataclass
class Config:
    """The whole file: providers in search order, normalize rules, model overrides."""

    path: Path
    providers: list[ProviderConfig]
    normalize: list[dict[str, str]]
    overrides: list[dict[str, Any]]
    tier_history: list[dict[str, Any]] = field(default_factory=list)


def _fail(path: Path, where: str, problem: str) -> RefreshError:
    return RefreshError(f"{path.name}: {where}: {problem}")


def _checked(path: Path, section: str, entries: Any, allowed: set[str], required: set[str]) -> list[dict]:
    if not isinstance(entries, list):
        raise _fail(path, section, "must be an array of tables")
    for i, entry in enumerate(entries):
        unknown, missing = sorted(set(entry) - allowed), sorted(required - set(entry))
        if unknown:
            raise _fail(
                path, f"{section}[{i}].{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
        if missing:
            raise _fail(path, f"{section}[{i}].{missing[0]}", "required")
    return entries


def load_config(path: Path) -> Config:
    """Read and check the file (keys only: prices are checked by the loader at the end)."""
    try:
        raw = tomllib.loads(path.read_text("utf-8"), parse_float=Decimal)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RefreshError(f"{path.name}: {e}") from e
    unknown = sorted(set(raw) - {"provider", "normalize", "model", "tier_history"})
    if unknown:
        raise _fail(path, unknown[0], "unknown key (allowed: model, normalize, provider, tier_history)")
    providers = _checked(
        path, "provider", raw.get("provider", []), _PROVIDER_KEYS, {"id", "name", "otel_names"}
    )
    normalize = _checked(path, "normalize", raw.get("normalize", []), _NORMALIZE_KEYS, _NORMALIZE_KEYS)
    overrides = _checked(path, "model", raw.get("model", []), _MODEL_KEYS, {"provider", "id", "reason"})
    history = _checked(
        path, "tier_history", raw.get("tier_history", []), tier_history.KEYS, tier_history.KEYS
    )
    configs = [ProviderConfig(**p) for p in providers]
    ids = [p.id for p in configs]
    for i, p in enumerate(configs):
        if p.id in ids[:i]:
            raise _fail(path, f"provider[{i}].id", f"{p.id!r} is listed twice")
        for fb in p.fallback:
            if fb not in ids:
                raise _fail(path, f"provider[{i}].fallback", f"{fb!r} is not a listed provider")
    for i, h in enumerate(history):
        where = f"tier_history[{i}]"
        if h["provider"] not in ids:
            raise _fail(path, f"{where}.provider", f"{h['provider']!r} is not a listed provider")
        if h["tier"] not in tier_history.TIERS:
            raise _fail(path, f"{where}.tier", f"must be one of {', '.join(tier_history.TIERS)}")
        if not isinstance(h["since"], dt.date) or isinstance(h["since"], dt.datetime):
            raise _fail(path, f"{where}.since", "must be a TOML date")
        if not isinstance(h["discount"], Decimal) or not 0 < h["discount"] < 1:
            raise _fail(path, f"{where}.discount", "must be a number between 0 and 1 (0.5: half price)")
    return Config(path, configs, normalize, overrides, history)


def apply_overrides(config: Config, models: dict[str, dict[str, Model]]) -> list[str]:
    """Apply the ``[[model]]`` entries in order; returns one summary line per entry."""
    applied = []
    for i, raw in enumerate(config.overrides):
        where = f"model[{i}]"
        pid, mid, reason = raw["provider"], raw["id"], " ".join(str(raw["reason"]).split())
        if pid not in models:
            raise _fail(config.path, f"{where}.provider", f"unknown provider {pid!r}")
        needed = ("price", "source", "retrieved", "match") if raw.get("new") else ()
        needed += ("source", "retrieved") if "price" in raw else ()
        for key in needed:
            if key not in raw:
                raise _fail(config.path, f"{where}.{key}", "required for a new model or a price correction")
        if raw.get("new"):
            if mid in models[pid]:
                raise _fail(config.path, f"{where}.new", f"{pid}/{mid} already exists; drop `new`")
            models[pid][mid] = Model(mid, [], [])
        model = models[pid].get(mid)
        if model is None:
            raise _fail(config.path, f"{where}.id", f"{pid}/{mid} is not generated (missing from models?)")
        model.match = raw.get("match", model.match) + raw.get("extra_match", [])
        model.price = raw.get("price", model.price)
        model.source, model.retrieved = raw.get("source", model.source), raw.get("retrieved", model.retrieved)
        model.examples += [e.lower() for e in raw.get("examples", []) if e.lower() not in model.examples]
        model.name = raw.get("name", model.name)
        model.deprecated = bool(raw.get("deprecated", model.deprecated))
        model.notes.append(f"override (scripts/pricing_overrides.toml): {reason}")
        applied.append(f"{pid}/{mid}: {reason}")
    return applied


def apply_tier_history(config: Config, models: dict[str, dict[str, Model]]) -> list[tuple[str, str, str]]:
    """Backdate each ``[[tier_history]]`` tier on every model of its provider that has one;
    returns (provider, model, why not) for each model left with genai-prices' dates."""
    kept = []
    for h in config.tier_history:
        why = f"{' '.join(str(h['reason']).split())} Source: {h['source']}"
        for mid, model in sorted(models[h["provider"]].items()):
            problem = tier_history.backdate(model, h["tier"], h["since"], h["discount"], why)
            if problem:
                kept.append((h["provider"], mid, f"{h['tier']} not backdated: {problem}"))
    return kept
