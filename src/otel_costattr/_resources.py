"""Where the bundled pricing files and SQL queries are, installed or not."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def bundled_dir(name: str) -> Traversable:
    """The bundled folder ``name`` ("pricing" or "queries").

    A wheel carries them as ``otel_costattr/_data/<name>``; an editable or source checkout
    does not (hatchling's force-include skips editable installs), so fall back to the folder
    at the repository root.
    """
    packaged = resources.files("otel_costattr") / "_data" / name
    if packaged.is_dir():
        return packaged
    local = _REPO_ROOT / name
    if local.is_dir():
        return local
    raise FileNotFoundError(f"bundled {name!r} data not found (looked in {packaged} and {local})")
