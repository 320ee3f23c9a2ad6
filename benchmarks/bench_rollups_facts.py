"""What keeping the rollup facts costs an ingest, on a copy of a large store.

    python benchmarks/bench_rollups_facts.py --db D/bench-10000000-100.duckdb --rounds 5

Works on a copy of ``--db`` (left untouched; a database bench_rollups.py made). The copy is
migrated first (timed: the facts built over every span stored, what an existing user pays
once). Then per round ``--batch`` new spans of other traces are stored (an agent and its call,
identity on the agent only, as bench_identity.py stores them), the identity pass settles
them (its CPU printed beside, for scale), and `aggregates.maintain` is timed: wall and CPU
per batch and per span, medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_identity import BATCH

from otel_costattr.store import aggregates, identity
from otel_costattr.store import database as store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a database bench_rollups.py made")
    parser.add_argument("--batch", type=int, default=2048, help="spans stored before each run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tmp", type=Path, default=None, help="where the copy goes")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "spans.duckdb"
        shutil.copyfile(args.db, path)
        t, c = time.perf_counter(), time.process_time()
        con = store.connect(path)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        print(f"migration (facts built): {wall:.1f} s wall, {cpu:.1f} s CPU")
        runs = []
        try:
            con.execute("SET enable_progress_bar = false")
            for r in range(args.rounds):
                con.execute(BATCH, {"n": args.batch, "tag": f"facts{r}"})
                c = time.process_time()
                identity.run_pass(con)
                passed = time.process_time() - c
                t, c = time.perf_counter(), time.process_time()
                assert aggregates.maintain(con)
                runs.append((time.perf_counter() - t, time.process_time() - c, passed))
            assert aggregates.current(con)
        finally:
            con.close()
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    wall = statistics.median(w for w, _, _ in runs)
    cpu = statistics.median(c for _, c, _ in runs)
    passed = statistics.median(p for _, _, p in runs)
    print(
        f"maintain after {args.batch:,} spans, median of {args.rounds}: wall {wall * 1e3:.1f} ms, "
        f"CPU {cpu * 1e3:.1f} ms ({cpu / args.batch * 1e6:.1f} us a span); "
        f"the identity pass before it: CPU {passed * 1e3:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
