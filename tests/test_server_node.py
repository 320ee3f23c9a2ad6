"""The OpenTelemetry JavaScript SDK as a client: a small agent trace from Node.js, over OTLP/HTTP,
priced by the server and checked in the store to the cent.

The npm packages (tests/node/package.json, locked) are installed by `npm ci` into a cache
folder (``$OTEL_COSTATTR_NODE_CACHE``, default ``~/.cache/otel-costattr/node-<lock digest>``)
the first time, and reused after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from serverutil import serving

NODE_DIR = Path(__file__).parent / "node"


def node_modules() -> Path:
    """The cache folder holding the locked packages, installed on first use."""
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    default = Path.home() / ".cache" / "otel-costattr" / f"node-{hashlib.sha256(lock).hexdigest()[:12]}"
    cache = Path(os.environ.get("OTEL_COSTATTR_NODE_CACHE") or default)
    if not (cache / "node_modules" / ".package-lock.json").exists():
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(NODE_DIR / name, cache / name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=cache, check=True, timeout=600)
    return cache / "node_modules"


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm"
)
def test_node_sdk_agent_run_is_priced_to_the_cent(tmp_path, table):
    modules = node_modules()
    db = tmp_path / "s.duckdb"
    with serving(db, table=table, token="node-tok") as srv:
        env = {
            **os.environ,
            "NODE_PATH": str(modules),
            "OTLP_URL": srv.url + "/v1/traces",
            "OTLP_TOKEN": "node-tok",
        }
        done = subprocess.run(
            ["node", str(NODE_DIR / "agent.js")], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        trace_id = done.stdout.strip()
        srv.wait_ingested()
        run = srv.get_json(f"/api/v1/runs/{trace_id}", headers={"Authorization": "Bearer node-tok"})
    # acme-large since 2026-06-01, $2 in and $10 out a million tokens:
    #   12000 x 2 + 3400 x 10 = 58000; 25000 x 2 + 800 x 10 = 58000 micro-dollars: $0.116
    assert run["usd_exact"] == "0.116"
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT name, service_name, agent_name, feature, round(cost_usd, 2)"
            " FROM calls WHERE trace_id = ?",
            [trace_id],
        ).fetchall()
        total = con.execute("SELECT sum(cost_usd) FROM calls WHERE trace_id = ?", [trace_id]).fetchone()[0]
    assert rows == [("chat acme-large", "ts-front-agent", "front", "checkout-help", Decimal("0.06"))] * 2
    assert round(total, 2) == Decimal("0.12") and total == Decimal("0.116")
    (agent,) = run["spans"]
    # siblings come in start order, and the JS SDK's clock may give two the same start
    names = sorted(c["name"] for c in agent["children"])
    assert names == ["chat acme-large", "chat acme-large", "execute_tool lookup"]
    assert sum(Decimal(c["usd_exact"]) for c in agent["children"] if c["usd_exact"]) == Decimal("0.116")
