"""What the questions of issue 18 cost, side by side in one run on one generated store.

    python benchmarks/bench_questions.py                    # 1M spans
    python benchmarks/bench_questions.py --spans 10000000 --repeat 3

The store is bench_rollups.py's generated agent traffic, with ``user.id`` (10,000 users)
and ``app.tenant`` (50 tenants) added to each model call's attributes, as the processor's
``identity_keys`` would put them. Pairs timed on the same open connection, alternating:

- per-group by user.id (a key read from the attributes JSON) against per-feature (a column);
- per-feature with ``where={"app.tenant": ...}`` against per-feature unfiltered;
- per-run with unpriced_tokens against the run query without it (the text before issue 18);
- whatif (one agent's calls repriced at another model) against per-feature with --reprice;
- --group-by on any rollup (the generic one, rollups/dimensions.py render_group): per-feature
  by app.tenant (50 values) against per-feature, and stats by user.id (10,000 values)
  against stats.

Each figure is the median wall time of ``--repeat`` runs; the load average is printed (the
machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from bench_rollups import generate

from otel_costattr.rollups.queries import _prepare, rollup
from otel_costattr.rollups.whatif import whatif
from otel_costattr.store import database as store

IDENTITY = """
UPDATE spans
SET attributes = json_object('user.id', 'u' || (hash(trace_id) % 10000),
                             'app.tenant', 't' || (hash(trace_id) % 50))::VARCHAR
WHERE span_role = 'model_call';
CHECKPOINT;
"""
# per_run.sql as it was before unpriced_tokens (costattr_runs alone).
RUNS_BEFORE = """
SELECT trace_id, name AS run_name, agent_name AS agent, feature, start_time, duration_ms, calls,
    cost_usd AS usd, usd_repriced
FROM costattr_runs(NULL, NULL, NULL, NULL, NULL, 'newest', 100)
ORDER BY first_call DESC, trace_id
"""


def open_db(path: Path, spans: int) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        con = store.connect(path)
        try:
            t = time.perf_counter()
            n = generate(con, spans, 0.1)
            con.execute(IDENTITY)
            print(f"generated {n:,} spans in {time.perf_counter() - t:.0f} s -> {path}", file=sys.stderr)
        finally:
            con.close()
    return store.connect(path, read_only=True)


def median_pair(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    a(), b()  # warm-up
    ta, tb = [], []
    for _ in range(repeat):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="keep (and reuse) the generated database here")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        con = open_db(folder / f"questions-{args.spans}.duckdb", args.spans)
        calls = con.execute("SELECT count(*) FROM spans WHERE span_role = 'model_call'").fetchone()[0]
        print(f"{args.spans:,} spans, {calls:,} model calls, median of {args.repeat}")

        def runs_before() -> object:
            _prepare(con)
            return con.execute(RUNS_BEFORE).fetchall()

        pairs = {
            "per-group user.id / per-feature": (
                lambda: rollup("per_group", db=con, group_by="user.id"),
                lambda: rollup("per_feature", db=con),
            ),
            "per-feature --where app.tenant / unfiltered": (
                lambda: rollup("per_feature", db=con, where={"app.tenant": "t7"}),
                lambda: rollup("per_feature", db=con),
            ),
            "per-run with unpriced_tokens / without": (
                lambda: rollup("per_run", db=con),
                runs_before,
            ),
            "whatif --agent researcher / per-feature --reprice": (
                lambda: whatif(con, "gpt-4o-mini", agent="researcher"),
                lambda: rollup("per_feature", db=con, reprice=[]),
            ),
            "per-feature --group-by app.tenant / per-feature": (
                lambda: rollup("per_feature", db=con, group_by="app.tenant"),
                lambda: rollup("per_feature", db=con),
            ),
            "stats --group-by user.id / stats": (
                lambda: rollup("stats", db=con, group_by="user.id"),
                lambda: rollup("stats", db=con),
            ),
        }
        for label, (a, b) in pairs.items():
            ta, tb = median_pair(a, b, args.repeat)
            print(f"{label:<52} {ta:7.3f} s / {tb:7.3f} s = {ta / tb:5.2f}x")
        con.close()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
