"""ARCHITECTURE.md names files a contributor is sent to: each of them must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "otel_costattr"
# A path as the document writes it: from the package (sdk/seam.py), from the repository
# (queries/_calls.sql, tests/test_x.py), or a bare module name inside a named folder.
PATH = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.(?:py|sql|toml))(?![\w])")

TOPS = ("src", "queries", "pricing", "tests", "benchmarks", "scripts", "examples")


def _exists(name: str) -> bool:
    if "/" not in name:  # a bare file name: somewhere in the package or the repository
        return any(any((ROOT / top).glob(f"**/{name}")) for top in TOPS)
    return any((base / name).exists() for base in (ROOT, PACKAGE, PACKAGE / "server"))


def test_every_file_architecture_names_exists():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    names = set(PATH.findall(text)) - {"alerts.toml", "pyproject.toml"}
    assert len(names) > 50  # the pattern still finds the document's paths
    missing = sorted(n for n in names if not _exists(n))
    assert missing == []
