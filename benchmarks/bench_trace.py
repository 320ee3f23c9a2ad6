"""Time the ``trace`` rollup on pathological trees: deep chains, a comb, a wide run.

    python benchmarks/bench_trace.py                     # chain 1k / 10k, cycle 10k, comb 5k, wide 10k
    python benchmarks/bench_trace.py --repeat 5 --depth 20000

Each tree is written straight into an in-memory store, rows in no useful order (as a store
filled by many exporters holds them): a chain (each span the parent of the next) with 9
model calls hung at depths from 0 to the bottom; a cycle (a chain whose first span's parent
is its last: no root, a sender's bad or hostile ids, broken where it starts); a comb (a
chain whose every span also has a model call child); a wide run (one root, every other span
its child). The walks in trace.sql
take one round per level, so a deep tree costs rounds, not rows. Prints spans shown / spans
stored (every stored span must be shown) and the median wall time of ``--repeat`` runs.

To compare with another version, run the same command with that version first on
``PYTHONPATH`` (its ``src``; the queries are found next to it).
"""

from __future__ import annotations

import argparse
import statistics
import time

import duckdb

from otel_costattr.rollups.queries import rollup
from otel_costattr.store import database as store

TRACE = "0" * 31 + "1"
SPAN = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_time, end_time,
    duration_ms, span_role, cost_usd, cost_status, attributes)
SELECT $trace, printf('%016x', id), CASE WHEN parent IS NOT NULL THEN printf('%016x', parent) END,
       name, 'INTERNAL', TIMESTAMP '2026-06-01' + to_microseconds(id),
       TIMESTAMP '2026-06-01' + to_microseconds(id + 1), 0.001, role,
       CASE WHEN role = 'model_call' THEN 0.0035 END, CASE WHEN role = 'model_call' THEN 'priced' END,
       '{}'
FROM (SELECT_TREE) ORDER BY hash(id)
"""
SHAPES = {
    "chain": """SELECT i + 1 AS id, CASE WHEN i > 0 THEN i END AS parent, 'level ' || i AS name,
                       'other' AS role FROM range($n) AS t(i)
                UNION ALL
                SELECT $n + 1 + k, 1 + (k * ($n - 1)) // 8, 'chat', 'model_call' FROM range(9) AS t(k)""",
    "cycle": """SELECT i + 1 AS id, CASE WHEN i > 0 THEN i ELSE $n END AS parent, 'level ' || i AS name,
                       'other' AS role FROM range($n) AS t(i)""",
    "comb": """SELECT i + 1 AS id, CASE WHEN i > 0 THEN i END AS parent, 'level ' || i AS name,
                      'other' AS role FROM range($n // 2) AS t(i)
               UNION ALL
               SELECT $n // 2 + 1 + i, i + 1, 'chat', 'model_call' FROM range($n // 2) AS t(i)""",
    "wide": """SELECT i + 1 AS id, CASE WHEN i > 0 THEN 1 END AS parent, 'span ' || i AS name,
                      CASE WHEN i % 2 = 1 THEN 'model_call' ELSE 'other' END AS role
               FROM range($n) AS t(i)""",
}


def measure(shape: str, n: int, repeat: int) -> tuple[int, int, float]:
    """(spans shown, spans stored, median seconds) of the trace rollup on one tree."""
    con = duckdb.connect()
    store.migrate(con)
    con.execute(SPAN.replace("SELECT_TREE", SHAPES[shape]), {"trace": TRACE, "n": n})
    stored = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    rows = rollup("trace", db=con, trace_id=TRACE)  # warm-up: parse, plan
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        rows = rollup("trace", db=con, trace_id=TRACE)
        times.append(time.perf_counter() - t)
    con.close()
    return len(rows), stored, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per tree (median)")
    parser.add_argument("--depth", type=int, default=10_000, help="spans in the deep chain")
    args = parser.parse_args()
    cases = [("chain", 1_000), ("chain", args.depth), ("cycle", args.depth), ("comb", 5_000)]
    cases.append(("wide", 10_000))
    print(f"{'tree':<8}{'spans':>8}{'shown / stored':>20}{'median':>12}")
    for shape, n in cases:
        shown, stored, seconds = measure(shape, n, args.repeat)
        print(f"{shape:<8}{n:>8,}{f'{shown:,} / {stored:,}':>20}{seconds * 1000:>10,.0f} ms")


if __name__ == "__main__":
    main()
