"""Defects a second new-user review found, each through the real command on real files: a
store that cannot be opened is unhealthy, a service tier a model lacks is said, error texts
quote values as typed, bad settings stop every command, a read never creates a chDB store,
and the examples install as the README does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_rollups_workload import build

from otel_costattr.cli import cli
from otel_costattr.store.maintenance import status

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("review-fixes") / "spans.duckdb"))


def invoke(*argv, env=None):
    return CliRunner().invoke(
        cli, [str(a) for a in argv], env={"COLUMNS": "", **(env or {})}, catch_exceptions=False
    )


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr[len("Error: ") : -1]


# --- 1. store status --check: a store that cannot be opened is not healthy --------------------


def _truncated(db: str, tmp_path: Path) -> Path:
    cut = tmp_path / "trunc.duckdb"
    cut.write_bytes(Path(db).read_bytes()[:20000])
    return cut


@pytest.mark.parametrize("make", [_truncated, lambda db, tmp: Path("/etc/passwd")])
def test_a_store_that_cannot_be_opened_fails_the_check(db, tmp_path, make):
    path = make(db, tmp_path)
    result = invoke("store", "status", "--db", path, "--check")
    assert result.exit_code == 3, result.output
    assert "UNREADABLE (" in result.output
    answer = json.loads(invoke("store", "status", "--db", path, "--format", "json").output)
    assert answer["healthy"] is False and answer["stored_error"]


def test_a_readable_store_stays_healthy(db):
    assert status(db).healthy
    assert invoke("store", "status", "--db", db, "--check").exit_code == 0


# --- 5. a service tier the model does not have is said, not applied silently ------------------


def test_a_tier_the_model_lacks_is_a_note_and_the_json_says_which_applied():
    flex = invoke("price", "gpt-4o", "--input", "1000", "--service-tier", "flex", "--format", "json")
    assert flex.exit_code == 0
    assert flex.stderr == "Note: openai/gpt-4o has no flex tier: priced at the standard rate\n"
    assert json.loads(flex.stdout)["service_tier"] is None
    batch = invoke("price", "gpt-4o", "--input", "1000", "--service-tier", "batch", "--format", "json")
    assert batch.stderr == "" and json.loads(batch.stdout)["service_tier"] == "batch"


