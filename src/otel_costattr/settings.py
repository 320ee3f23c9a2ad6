"""Every ``OTEL_COSTATTR_*`` environment setting, read in one place with one set of rules.

A malformed value raises ``ValueError`` naming the variable and its value; callers that must
not raise (the auto-instrumentation hook) catch it, log it and carry on without the feature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROCESSOR = "OTEL_COSTATTR_PROCESSOR"
DUCKDB_PATH = "OTEL_COSTATTR_DUCKDB_PATH"
CAPTURE_CONTENT = "OTEL_COSTATTR_CAPTURE_CONTENT"
PRICING_FILES = "OTEL_COSTATTR_PRICING_FILES"
SERVE_TOKEN = "OTEL_COSTATTR_SERVE_TOKEN"
PROPOSED_COST_ATTRIBUTES = "OTEL_COSTATTR_PROPOSED_COST_ATTRIBUTES"
IDENTITY_KEYS = "OTEL_COSTATTR_IDENTITY_KEYS"

DEFAULT_DUCKDB_PATH = "otel-costattr.duckdb"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class Setting:
    """One documented environment variable."""

    name: str
    kind: str  # "flag", "path", "paths", "names" or "text"
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(PROCESSOR, "flag", "false", "add the cost processor under opentelemetry-instrument"),
    Setting(DUCKDB_PATH, "path", DEFAULT_DUCKDB_PATH, "the DuckDB file the exporter and the CLI use"),
    Setting(CAPTURE_CONTENT, "flag", "false", "store prompt and completion text (off: never stored)"),
    Setting(
        PRICING_FILES, "paths", "", f"user price files layered over the bundled table, {os.pathsep}-separated"
    ),
    Setting(SERVE_TOKEN, "text", "", "`otel-costattr serve`: the bearer token every request must carry"),
    Setting(
        PROPOSED_COST_ATTRIBUTES,
        "flag",
        "false",
        "also write gen_ai.usage.cost.amount / .currency / .source (the proposed convention)",
    ),
    Setting(
        IDENTITY_KEYS,
        "names",
        "",
        "attributes model calls inherit from parents and Baggage, comma-separated, added to the defaults",
    ),
)


def flag(name: str) -> bool:
    """A true/false variable: 1/true/yes/on or 0/false/no/off (any case), unset or empty is
    false. Anything else raises ``ValueError``."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r}: expected true or false (1/0, yes/no, on/off)")


def duckdb_path() -> str:
    """``OTEL_COSTATTR_DUCKDB_PATH``, else ``otel-costattr.duckdb``."""
    return os.environ.get(DUCKDB_PATH, "").strip() or DEFAULT_DUCKDB_PATH


def pricing_files() -> list[str]:
    """The files named by ``OTEL_COSTATTR_PRICING_FILES`` (os.pathsep-separated), in order."""
    return [p for p in os.environ.get(PRICING_FILES, "").split(os.pathsep) if p.strip()]


def identity_keys() -> tuple[str, ...]:
    """The attribute names ``OTEL_COSTATTR_IDENTITY_KEYS`` lists (comma-separated, blanks
    around each ignored, empty items skipped), in order, each once. A name ``--group-by``
    would refuse raises ``ValueError`` (letters, digits, ``_ . : / -``): ``user id`` or
    ``user.id;app.tenant`` is a typo, and its calls could never be grouped."""
    from .rollups.dimensions import KEY  # the rollups' rule (imported here: no cycle at import)
    from .semconv import CALL_KEY_REFUSED, describes_a_call

    raw = os.environ.get(IDENTITY_KEYS, "")
    names: dict[str, None] = {}
    for item in raw.split(","):
        name = item.strip()
        if not name:
            continue
        if not KEY.fullmatch(name):
            raise ValueError(
                f"{IDENTITY_KEYS}={raw!r}: {name!r} is not an attribute name (letters, digits, _ . : / -)"
            )
        if describes_a_call(name):
            raise ValueError(f"{IDENTITY_KEYS}={raw!r}: {name!r} {CALL_KEY_REFUSED}")
        names[name] = None
    return tuple(names)


def check() -> None:
    """Every setting as the commands read it: each flag parsed, the price files named by
    ``OTEL_COSTATTR_PRICING_FILES`` loaded over the bundled table as a command that prices
    loads them (so an alias, a fallback, an overlap with another file or a region rule that
    only the whole table can check fails here too; about 0.1 s, only when files are named).
    Raises ``ValueError`` in one line naming the variable (and the file, entry and field), so
    a mistake stops a command at start instead of being ignored by the commands that happen
    not to price."""
    for setting in SETTINGS:
        if setting.kind == "flag":
            flag(setting.name)
        elif setting.kind == "names":
            identity_keys()
    files = pricing_files()
    if files:
        # pricing/ reads this module: imported here, when a file is named, not in a cycle.
        from .pricing.model import PricingError
        from .pricing.table import load_pricing

        try:
            load_pricing()
        except PricingError as e:
            raise ValueError(f"{PRICING_FILES}: {e}") from e
