"""Time the same rollups from two query folders side by side, alternating, on one database.

    git archive dd040a5 queries | tar -x -C /tmp/before
    python benchmarks/bench_rollups.py --spans 1000000 --dir /tmp/bench    # makes the file
    python benchmarks/ab_queries.py /tmp/bench/bench-1000000-100.duckdb /tmp/before/queries queries

On a shared machine two runs minutes apart measure the load as much as the change: here
each round runs A then B on their own read-only connections (each with its folder's
``_calls.sql`` prelude: run as it is when it defines macros, as the rollups derive it when it
defines the persisted views), so both see the same load. Prints the median wall and CPU time of
each and the median of the per-round ratios B / A.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import duckdb

from otel_costattr.rollups.contract import rollup_prelude

WINDOW = {"since": None, "until": None, "service": None, "feature": None, "agent": None}
EXTRA = {"per_run": {"limit": 100}, "top_runs": {"limit": 10}}
DEFAULT = "per_feature,per_step,per_run,per_agent,per_model,stats,unpriced,daily,top_runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", help="a database bench_rollups.py generated")
    parser.add_argument("a", type=Path, help="query folder A (before)")
    parser.add_argument("b", type=Path, help="query folder B (after)")
    parser.add_argument("--rollups", default=DEFAULT, help="comma-separated rollup names")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of A then B")
    args = parser.parse_args()
    folders = {"A": args.a, "B": args.b}
    cons = {}
    for key, folder in folders.items():
        cons[key] = duckdb.connect(args.db, read_only=True)
        contract = (folder / "_calls.sql").read_text()
        cons[key].execute(rollup_prelude(contract) if "-- @rollups:" in contract else contract)
    print(f"{'rollup':<12}{'A ms (cpu)':>16}{'B ms (cpu)':>16}{'B / A':>8}")
    for name in args.rollups.split(","):
        params = {**WINDOW, **EXTRA.get(name, {})}
        sql = {key: (folder / f"{name}.sql").read_text() for key, folder in folders.items()}
        for key in folders:  # warm-up: parse, plan, fill caches
            cons[key].execute(sql[key], params).fetchall()
        times: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
        for _ in range(args.rounds):
            for key in folders:
                cpu, wall = time.process_time(), time.perf_counter()
                cons[key].execute(sql[key], params).fetchall()
                times[key].append((time.perf_counter() - wall, time.process_time() - cpu))
        cells = []
        for key in folders:
            wall = statistics.median(w for w, _ in times[key])
            cpu = statistics.median(c for _, c in times[key])
            cells.append(f"{wall * 1000:,.0f} ({cpu * 1000:,.0f})")
        ratio = statistics.median(b[0] / a[0] for a, b in zip(times["A"], times["B"], strict=True))
        print(f"{name:<12}{cells[0]:>16}{cells[1]:>16}{ratio:>8.2f}")
    for con in cons.values():
        con.close()


if __name__ == "__main__":
    main()
