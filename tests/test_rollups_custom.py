"""`rollups.custom`: a query from outside the bundle is checked and run as a bundled one is
(the server's runs page is one; its paging is tested in test_server_api.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alerts_helpers import NOW, Workload

from otel_costattr.pricing.table import load_pricing
from otel_costattr.rollups.custom import custom_query, run_custom
from otel_costattr.rollups.errors import RollupError, RollupParamError
from otel_costattr.rollups.queries import rollup

SQL = """-- @about Cost per run, most expensive first.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param limit INTEGER = 10      runs
SELECT trace_id, cost_usd FROM costattr_runs($since, $until, NULL, NULL, NULL, 'cost', $limit);
"""


def test_a_custom_query_runs_over_the_contract_as_a_rollup_does(tmp_path):
    table = load_pricing([Path(__file__).parent / "data" / "test_prices.toml"], use_env=False)
    work = Workload(tmp_path / "s.duckdb", table)
    dear = work.run(NOW, ["0.30", "0.10"])
    work.run(NOW, ["0.05"])
    work.close()
    q = custom_query("per_run_cost", SQL)
    assert [p.name for p in q.params] == ["since", "until", "limit"]
    rows = run_custom(tmp_path / "s.duckdb", q, since="2026-12-01", limit=5)
    assert rows.columns == ("trace_id", "cost_usd")
    assert [(r["trace_id"], str(r["cost_usd"].normalize())) for r in rows][0] == (dear, "0.4")
    # the same answer as the bundled runs list, sorted by cost
    listed = rollup("runs_list", db=tmp_path / "s.duckdb", since="2026-12-01", order="cost", limit=5)
    assert [r["trace_id"] for r in rows] == [r["trace_id"] for r in listed]
    with pytest.raises(RollupParamError, match="limit"):
        run_custom(tmp_path / "s.duckdb", q, limit="many")
    with pytest.raises(RollupError, match="unknown"):
        run_custom(tmp_path / "s.duckdb", q, feature="x")
    with pytest.raises(RollupError, match="unknown parameter 'where'"):  # never dropped unapplied
        run_custom(tmp_path / "s.duckdb", q, where="user.id=u1")


def test_a_custom_query_without_a_header_is_refused():
    with pytest.raises(RollupError, match="no '-- @about' line"):
        custom_query("bare", "SELECT 1")
