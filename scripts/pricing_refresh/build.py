"""One refresh: convert the chosen models, apply the overrides, drop fallback duplicates, render."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import tomllib

from otel_costattr.pricing.table import PriceTable

from . import RefreshError
from .config import Config, ProviderConfig, apply_overrides, apply_tier_history
from .convert import Model, Unrepresentable, clause_rules, convert_model
from .diff import changes
from .render import render_provider, render_table
from .tables import Fallbacks, load_files, priced_alike, resolve

TABLE_FILE = "_table.toml"
SERVED_NOTE = "Priced through `fallback`: {via} lists these here too, at the same prices: {served}"


@dataclass
class Refresh:
    """The converted table and everything the summary reports about it."""

    config: Config
    via: str
    source: dict[str, dict[str, Any]]
    models: dict[str, dict[str, Model]]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, why
    deduped: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, served by
    overrides: list[str] = field(default_factory=list)
    undated: list[tuple[str, str, str]] = field(default_factory=list)  # provider, model, why
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build(config: Config, version: str, source: dict[str, dict[str, Any]]) -> Refresh:
    """Convert ``source`` (genai-prices ``version``'s providers by id, as plain data)."""
    refresh = Refresh(config, f"genai-prices {version}", source, {p.id: {} for p in config.providers})
    for i, cfg in enumerate(config.providers):
        theirs = source.get(cfg.genai_prices or "")
        if cfg.genai_prices and theirs is None:
            raise RefreshError(f"{config.path.name}: provider[{i}].genai_prices: no {cfg.genai_prices!r}")
        available = {m["id"]: m for m in theirs["models"]} if theirs else {}
        for mid in cfg.models:
            if mid not in available:
                raise RefreshError(f"{config.path.name}: provider[{i}].models: no {mid!r} in genai-prices")
            try:
                refresh.models[cfg.id][mid] = convert_model(available[mid])
            except Unrepresentable as e:
                refresh.skipped.append((cfg.id, mid, str(e)))
    refresh.overrides = apply_overrides(config, refresh.models)
    refresh.undated = apply_tier_history(config, refresh.models)
    fallbacks = Fallbacks(config.providers, refresh.models, config.normalize)
    refresh.deduped, refresh.errors = fallbacks.drop_duplicates()
    return refresh


def provider_doc(refresh: Refresh, cfg: ProviderConfig, retrieved: dt.date) -> dict[str, Any]:
    """A provider file as `tomllib` reads it."""
    urls = refresh.source.get(cfg.genai_prices or "", {}).get("pricing_urls") or [None]
    models = refresh.models[cfg.id]
    doc = {"provider": cfg.id, "name": cfg.name, "otel_names": cfg.otel_names, "fallback": cfg.fallback,
           "source": cfg.source or urls[0], "retrieved": retrieved, "via": refresh.via,
           "model": [models[m].doc() for m in sorted(models)] or None}  # fmt: skip
    return {k: v for k, v in doc.items() if v is not None}


def checked(name: str, text: str, doc: dict[str, Any]) -> str:
    """``text``, once it has read back as exactly ``doc`` (the layout never changes a value)."""
    differ = next(changes("", tomllib.loads(text, parse_float=Decimal), doc), None)
    if differ is not None:
        raise RefreshError(
            f"{name}: the written TOML reads back differently at {differ[0]} (a bug in render.py)"
        )
    return text


def outputs(refresh: Refresh, version: str, retrieved: dt.date) -> dict[str, str]:
    """Every pricing file's text by name, each read back and loaded by the real loader (which
    raises `PricingError` for anything it would reject at a user's start-up)."""
    config = refresh.config
    normalize = [{"pattern": n["pattern"], "replace": n["replace"]} for n in config.normalize]
    table = {"version": version, "providers": [p.id for p in config.providers], "normalize": normalize}
    files = {
        TABLE_FILE: checked(TABLE_FILE, render_table(table, [n["why"] for n in config.normalize]), table)
    }
    for cfg in config.providers:
        comments = refresh.source.get(cfg.genai_prices or "", {}).get("price_comments")
        skipped = "; ".join(f"{m} ({why})" for p, m, why in refresh.skipped if p == cfg.id)
        served = "; ".join(f"{m} -> {by}" for p, m, by in refresh.deduped if p == cfg.id)
        intro = [
            cfg.comment,
            comments and f"genai-prices: {comments}",
            skipped and f"Not shipped, the format cannot say their prices: {skipped}",
            served and SERVED_NOTE.format(via=refresh.via, served=served),
        ]
        doc = provider_doc(refresh, cfg, retrieved)
        text = render_provider(doc, [p for p in intro if p], refresh.models[cfg.id])
        files[f"{cfg.id}.toml"] = checked(f"{cfg.id}.toml", text, doc)
    table = load_files({name: text for name, text in files.items() if name != TABLE_FILE})
    refresh.warnings = unshipped(refresh, table)
    return files


def unshipped(refresh: Refresh, table: PriceTable) -> list[str]:
    """genai-prices models we do not ship whose own ids one of ours prices otherwise (a rule of
    ours catching an audio or a dearer variant): the ids are the model id and its `equals`."""
    rewrites = Fallbacks(refresh.config.providers, refresh.models, refresh.config.normalize).rewrites
    warnings = []
    for cfg in (p for p in refresh.config.providers if p.genai_prices):
        for info in refresh.source[cfg.genai_prices]["models"]:
            if info["id"] in cfg.models:
                continue
            try:
                theirs = convert_model(info)
            except Unrepresentable:
                theirs = None
            ids = [info["id"].lower()] + [r["equals"] for r in clause_rules(info["match"]) if "equals" in r]
            for probe in dict.fromkeys(ids):
                entry = resolve(table, rewrites, probe, cfg.id)
                if entry and not (theirs and priced_alike(theirs, refresh.models[entry.provider][entry.id])):
                    where = f"{entry.provider}/{entry.id}"
                    warnings.append(f"{cfg.id}: {probe!r} ({info['id']}, not shipped) is priced as {where}")
    return warnings
