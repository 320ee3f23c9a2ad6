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


# What a provider appends to a model id when it serves a snapshot of it: a date (2025-01-01,
# 20250101, 0125 as MMDD), a three-digit version (-001), a -vN version or a Vertex @ version.
_SNAPSHOT_SUFFIX = re.compile(r"[-@](\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3}|v\d+(?:[.:]\d+)*)")


def snapshot_of(response_model: object, request_model: object) -> bool:
    """Whether ``response_model`` is ``request_model`` plus a date or version suffix
    (``gpt-4o-mini-2025-01-01`` served for ``gpt-4o-mini``): a newer snapshot of the model
    asked for, which the request model's price approximates until the table lists it."""
    if type(response_model) is not str or type(request_model) is not str:
        return False
    response, request = response_model.strip().lower(), request_model.strip().lower()
    if not request or len(response) > MAX_MODEL_ID or not response.startswith(request):
        return False
    return _SNAPSHOT_SUFFIX.fullmatch(response, len(request)) is not None
