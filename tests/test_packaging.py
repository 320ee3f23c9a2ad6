"""The wheel carries pricing/ and queries/: build it, install it into a fresh virtual
environment, and load the table and every query from there (not from this checkout)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from otel_costattr.pricing.table import bundled_digest

# Builds virtualenvs (minutes on a cold pip cache): `pytest -m 'not slow'` skips it locally.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from otel_costattr import load_pricing, __version__
from otel_costattr._resources import bundled_dir
table = load_pricing(use_env=False)
queries = bundled_dir("queries")
print(json.dumps({
    "version": table.version,
    "digest": table.digest,
    "models": sum(1 for _ in table.models()),
    "pricing_dir": str(bundled_dir("pricing")),
    "queries": sorted(q.name for q in queries.iterdir() if q.name.endswith(".sql")),
    "query_text": {q.name: q.read_text() for q in queries.iterdir() if q.name.endswith(".sql")},
    "py_typed": (bundled_dir("pricing") / ".." / ".." / "py.typed").is_file(),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("otel_costattr-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    out = subprocess.run([str(python), "-c", PROBE], check=True, capture_output=True, text=True, cwd=work)
    return json.loads(out.stdout)


def test_wheel_loads_the_bundled_pricing_table(installed):
    assert "site-packages" in installed["pricing_dir"]
    assert str(ROOT) not in installed["pricing_dir"]
    assert installed["digest"] == bundled_digest()
    assert installed["models"] > 0


def test_wheel_ships_every_query(installed):
    repo_queries = sorted(p.name for p in (ROOT / "queries").glob("*.sql"))
    assert repo_queries, "queries/ holds no .sql file"
    assert installed["queries"] == repo_queries
    for name in repo_queries:
        assert installed["query_text"][name] == (ROOT / "queries" / name).read_text()


def test_wheel_ships_py_typed(installed):
    assert installed["py_typed"]
