"""One module reads every OTEL_COSTATTR_* variable, with one rule for flags, all documented."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from otel_costattr import settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), (" Yes ", True), ("ON", True), ("", False), ("0", False),
     ("false", False), ("No", False), ("off", False)],
)  # fmt: skip
def test_flags_read_the_same_everywhere(monkeypatch, value, expected):
    monkeypatch.setenv(settings.CAPTURE_CONTENT, value)
    assert settings.flag(settings.CAPTURE_CONTENT) is expected


def test_a_malformed_flag_names_the_variable_and_its_value(monkeypatch):
    monkeypatch.setenv(settings.PROCESSOR, "maybe")
    with pytest.raises(ValueError) as info:
        settings.flag(settings.PROCESSOR)
    assert str(info.value) == "OTEL_COSTATTR_PROCESSOR='maybe': expected true or false (1/0, yes/no, on/off)"


def test_paths(monkeypatch):
    monkeypatch.delenv(settings.DUCKDB_PATH, raising=False)
    assert settings.duckdb_path() == "otel-costattr.duckdb"
    monkeypatch.setenv(settings.DUCKDB_PATH, "  /data/costs.duckdb ")
    assert settings.duckdb_path() == "/data/costs.duckdb"
    monkeypatch.setenv(settings.PRICING_FILES, os.pathsep.join(["a.toml", "", "b.toml"]))
    assert settings.pricing_files() == ["a.toml", "b.toml"]


def test_no_other_module_reads_an_otel_costattr_variable():
    others = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sorted((ROOT / "src" / "otel_costattr").rglob("*.py"))
        if p.name != "settings.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"[\"']OTEL_COSTATTR_", line)
    ]
    assert others == []


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert [s.name for s in settings.SETTINGS if s.name not in readme] == []


def test_identity_keys(monkeypatch):
    monkeypatch.delenv(settings.IDENTITY_KEYS, raising=False)
    assert settings.identity_keys() == ()
    monkeypatch.setenv(settings.IDENTITY_KEYS, " user.id ,, app.tenant , user.id")
    assert settings.identity_keys() == ("user.id", "app.tenant")
    for bad in ("user id", "user.id,\tx y", "a\x01b", "user.id;app.tenant", "app.team@eu"):
        monkeypatch.setenv(settings.IDENTITY_KEYS, bad)
        with pytest.raises(ValueError, match="is not an attribute name"):
            settings.check()
