"""The one module that imports genai-prices (a development tool, never a dependency).

It hands the rest of the refresh plain data in genai-prices' own published schema (the shape
of its providers/*.yml and data.json), so everything else runs, and is tested, on a small
fixture of that shape without genai-prices installed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import RefreshError

INSTALL = "pip install -e '.[dev]' (genai-prices==0.2.3 and tomli-w)"


def load() -> tuple[str, dict[str, dict[str, Any]]]:
    """genai-prices' version and its bundled providers by id, as plain data."""
    try:
        import genai_prices
        from genai_prices.data import providers
    except ImportError:
        raise RefreshError(f"the refresh needs genai-prices, a development tool: {INSTALL}") from None
    return genai_prices.__version__, {
        p.id: {
            "id": p.id,
            "name": p.name,
            "pricing_urls": p.pricing_urls or [],
            "price_comments": p.price_comments,
            "models": plain(p.models),
        }  # fmt: skip
        for p in providers
    }


def plain(obj: Any) -> Any:
    """genai-prices objects as the mappings and lists of its JSON schema, ``None`` left out."""
    if isinstance(obj, list):
        return [plain(x) for x in obj]
    if dataclasses.is_dataclass(obj):
        # The clause fields `or_` / `and_` are `or` / `and` in the schema.
        items = ((f.name.rstrip("_"), getattr(obj, f.name)) for f in dataclasses.fields(obj))
    elif type(obj).__name__ == "ModelPrice":  # a bag of prices, not a dataclass
        items = ((k, v) for k, v in vars(obj).items() if not k.startswith("_"))
    else:
        return obj  # str, Decimal, date, time, bool, and `when` (already a dict of strings)
    return {k: plain(v) for k, v in items if v is not None}


def model_finder() -> Any:
    """A function ``finds(model, provider_id) -> bool``: whether genai-prices prices ``model``
    for that provider (its own matching rules), or None without genai-prices. For coverage."""
    try:
        from genai_prices.data_snapshot import get_snapshot
    except ImportError:
        return None
    snapshot = get_snapshot()

    def finds(model: str, provider_id: str) -> bool:
        try:
            snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            return False
        return True

    return finds
