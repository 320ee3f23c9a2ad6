"""The generated files as a real `PriceTable`: the loader checks them and resolves ids.

Nothing here re-implements resolution: files are written to a temporary directory and loaded
with `load_pricing`, as a user's own pricing files are. Only the bundled table reads
pricing/_table.toml's normalize rules, so `resolve` runs `PriceTable.resolve` on each
normalised form in turn: the loop the table itself runs over `candidate_ids`.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from otel_costattr.pricing.entry import ModelEntry
from otel_costattr.pricing.model import PricingError
from otel_costattr.pricing.resolve import candidate_ids
from otel_costattr.pricing.table import PriceTable, load_pricing

from .config import ProviderConfig
from .convert import SERVICE_TIERS, Model, escape, rates, same_prices


def load_files(files: dict[str, str]) -> PriceTable:
    """Load provider files (name -> TOML text, in search order) with the real loader; its
    errors name the file as pricing/<name>."""
    with tempfile.TemporaryDirectory(prefix="refresh-pricing-") as tmp:
        paths = [Path(tmp) / name for name in files]
        for path, text in zip(paths, files.values(), strict=True):
            path.write_text(text, "utf-8")
        try:
            return load_pricing(paths, use_env=False, bundled=False)
        except PricingError as e:
            raise PricingError(str(e).replace(str(Path(tmp)) + os.sep, "pricing/")) from e


def resolve(
    table: PriceTable, rewrites: list[tuple[re.Pattern[str], str]], model_id: str, provider: str | None
) -> ModelEntry | None:
    """The entry a span reporting ``model_id`` (and ``provider``) is priced with."""
    for form in candidate_ids(model_id, rewrites):
        if (entry := table.resolve(form, provider)) is not None:
            return entry
    return None


def probes(model: Model) -> list[str]:
    """Ids a model is known to match: its examples and the literal text each rule requires
    (`equals`, `starts_with`, `ends_with` values; ``.*amazon\\.nova-lite.*`` -> amazon.nova-lite)."""
    out = list(model.examples)
    for rule in model.match:
        ((kind, text),) = rule.items()
        if kind == "regex":
            body = text.removeprefix(".*").removesuffix(".*")
            text = re.sub(r"\\(.)", r"\1", body)
            if escape(text) != body or not re.fullmatch(rule["regex"], text):
                continue  # not a literal: its examples speak for it
        # A Vertex AI version always follows its `@` (claude-opus-5@20251101).
        out.append(text + "20250101" if text.endswith("@") else text)
    return list(dict.fromkeys(out))


def _without(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return {k: _without(v, key) for k, v in obj.items() if k != key}
    return [_without(x, key) for x in obj] if isinstance(obj, list) else obj


def comparable(price: list[dict[str, Any]], host: Model) -> list[dict[str, Any]]:
    """Prices as the host states them: a rate or service tier the host's entry never lists is
    not compared (a Bedrock entry has no 1-hour cache writes and no batch)."""
    host_rates = {k for p in host.price for k in rates(p)}
    host_tiers = any(n in p for p in host.price for n in SERVICE_TIERS)
    out: list[dict[str, Any]] = []
    for period in price:
        q = period if "cache_write_1h" in host_rates else _without(period, "cache_write_1h")
        q = q if host_tiers else {k: v for k, v in q.items() if k not in SERVICE_TIERS}
        if not (out and same_prices(out[-1], q)):
            out.append(q)
    return out


def priced_alike(host: Model, other: Model) -> bool:
    """``other`` charges what ``host`` charges, at every date, for everything the host states."""
    a, b = comparable(host.price, host), comparable(other.price, host)
    return len(a) == len(b) and all(
        x.get("since") == y.get("since") and same_prices(x, y) for x, y in zip(a, b, strict=True)
    )


class Fallbacks:
    """Drops a host's copy of a model when its fallback providers price it identically."""

    def __init__(
        self, providers: list[ProviderConfig], models: dict[str, dict[str, Model]], normalize: list[dict]
    ) -> None:
        self.providers = {p.id: p for p in providers}
        self.models = models
        self.rewrites = [(re.compile(n["pattern"]), n["replace"]) for n in normalize]

    def group(self, pid: str) -> list[str]:
        """``pid`` and the providers it falls back to, in search order: all a span naming it sees."""
        group = [pid]
        for member in group:
            group += [fb for fb in self.providers[member].fallback if fb not in group]
        return [p for p in self.providers if p in group]

    def table(self, pid: str) -> PriceTable:
        """The group's table (written by tomli-w: only the committed files need our layout)."""
        files = {}
        for p in self.group(pid):
            models = [self.models[p][m].doc() for m in sorted(self.models[p])]
            files[f"{p}.toml"] = tomli_w.dumps(
                {"provider": p, "fallback": self.providers[p].fallback, "model": models}
            )
        return load_files(files)

    def served(self, table: PriceTable, pid: str, model: Model, ids: list[str]) -> list[str] | None:
        """Where each of ``ids`` resolves, if every one lands on a model priced like ``model``."""
        targets = []
        for probe in ids:
            entry = resolve(table, self.rewrites, probe, pid)
            if entry is None or not priced_alike(model, self.models[entry.provider][entry.id]):
                return None
            targets.append(f"{entry.provider}/{entry.id}")
        return targets

    def drop_duplicates(self) -> tuple[list[tuple[str, str, str]], list[str]]:
        """Drop duplicates provider by provider: (provider, model, served by) for each, and errors."""
        dropped: list[tuple[str, Model, list[str]]] = []
        for pid in (p for p, cfg in self.providers.items() if cfg.fallback and self.models[p]):
            table = self.table(pid)
            for mid, model in sorted(self.models[pid].items()):
                found = {p: resolve(table, self.rewrites, p, pid) for p in probes(model)}
                own = [p for p, e in found.items() if e is not None and (e.provider, e.id) == (pid, mid)]
                others = (m for p in self.group(pid) for m in self.models[p].values() if m is not model)
                if not own or not any(priced_alike(model, m) for m in others):
                    continue  # nothing could serve it: spare the table load
                del self.models[pid][mid]
                without = self.table(pid)
                if self.served(without, pid, model, own) is None:
                    self.models[pid][mid] = model
                else:
                    dropped.append((pid, model, own))
                    table = without
        # Checked again against the final tables: a later drop may have moved an earlier one's ids.
        final = {pid: self.table(pid) for pid in dict.fromkeys(pid for pid, _, _ in dropped)}
        deduped, errors = [], []
        for pid, model, own in dropped:
            targets = self.served(final[pid], pid, model, own)
            if targets is None:
                errors.append(f"{pid}/{model.id}: dropped as a duplicate, but its ids moved")
            else:
                deduped.append((pid, model.id, ", ".join(sorted(set(targets)))))
        return deduped, errors
