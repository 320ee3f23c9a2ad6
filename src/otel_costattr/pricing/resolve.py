"""Model resolution: which forms of a span's model id are tried (`candidate_ids`), and each
provider's models indexed for matching them (`ProviderIndex`).

The search order across providers and the caches stay with `PriceTable.resolve()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .entry import ModelEntry
from .model import MAX_MODEL_ID, MatchRule


def candidate_ids(model: str, normalize: Iterable[tuple[re.Pattern[str], str]]) -> list[str]:
    """``model`` lower-cased, then after each ``(pattern, replace)`` rewrite in turn
    (cumulative, first match only), without repeats: the ids resolution tries, in order.
    No form at all for an id longer than MAX_MODEL_ID characters: it is never resolved."""
    current = model.strip().lower()
    if len(current) > MAX_MODEL_ID:  # after lower(): a few characters grow when lower-cased
        return []
    forms = [current]
    for pattern, replace in normalize:
        current = pattern.sub(replace, current, count=1)
        if current not in forms:
            forms.append(current)
    return forms


class ProviderIndex:
    """The models of one provider, with a fast path for exact ids."""

    def __init__(self, pid: str, fallback: tuple[str, ...]) -> None:
        self.id = pid
        self.fallback = fallback
        self.entries: list[ModelEntry] = []
        self.exact: dict[str, ModelEntry] = {}
        self.patterns: list[tuple[MatchRule, ModelEntry]] = []

    def index(self) -> None:
        """Rebuild the exact-id map and the ordered pattern rules from `entries`."""
        self.exact.clear()
        self.patterns.clear()
        for entry in self.entries:
            for rule in entry.rules:
                if rule.kind == "equals":
                    self.exact.setdefault(rule.value, entry)
                else:
                    self.patterns.append((rule, entry))

    def match(self, model_id: str) -> ModelEntry | None:
        """The entry an exact id names, else the first whose pattern rule matches, else None."""
        hit = self.exact.get(model_id)
        if hit is not None:
            return hit
        for rule, entry in self.patterns:
            if rule.matches(model_id):
                return entry
        return None
