"""Time the fast rollups while some calls never settle (their parent was exported elsewhere).

    python benchmarks/bench_rollups_pending.py --db D/bench-1000000-100.duckdb --lost 100 --lost 1000

Works on a copy of ``--db`` (left untouched; a database bench_rollups.py made): its rollup
facts are brought up to date, then per ``--lost`` count, model calls whose parent is never
stored are added (bench_identity.py's, one trace each) until the store holds that many, and
the identity pass and the facts' upkeep run as ingest runs them. Each of per_feature,
per_step, per_run and per_agent is then timed, alternated within each round in this process:

- ``general``: the rollup's own file over the call contract, which is also what the store
  answered before the facts learnt to answer with calls pending (they switched off);
- ``facts``: `rollups.facts.fast_query`'s form, the runs with a pending call read from the
  contract for those traces only (the general path beyond `aggregates.MAX_PENDING_TRACES`).

Before any call is lost, ``facts`` alone is timed too (nothing pending: the floor). Figures
are median wall and CPU (every thread of this process) in ms; the load average is printed.
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

from bench_identity import LOST

from otel_costattr.rollups import queries
from otel_costattr.rollups.queries import rollup
from otel_costattr.store import aggregates, identity
from otel_costattr.store import database as store

NAMES = ("per_feature", "per_step", "per_run", "per_agent")
# bench_identity's lost calls, numbered from $start so that counts can grow in steps.
MORE_LOST = LOST.replace("range($n)", "range($start, $n)")


def timed(con, name: str, general: bool) -> tuple[float, float]:
    saved = queries.fast_query
    if general:
        queries.fast_query = lambda *args: None
    try:
        t, c = time.perf_counter(), time.process_time()
        rollup(name, db=con)
        return time.perf_counter() - t, time.process_time() - c
    finally:
        queries.fast_query = saved


def measure(con, ways: tuple[str, ...], rounds: int) -> dict[tuple[str, str], tuple[float, float]]:
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in NAMES:
        for way in ways:
            timed(con, name, way == "general")  # warm-up: parse, plan, fill caches
    for _ in range(rounds):
        for name in NAMES:
            for way in ways:
                runs.setdefault((name, way), []).append(timed(con, name, way == "general"))
    return {
        key: (statistics.median(w for w, _ in v) * 1e3, statistics.median(c for _, c in v) * 1e3)
        for key, v in runs.items()
    }


def report(title: str, figures: dict[tuple[str, str], tuple[float, float]]) -> None:
    print(f"{title}  (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for (name, way), (wall, cpu) in figures.items():
        print(f"  {name:<12} {way:<8} wall {wall:7.1f} ms  cpu {cpu:7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a database bench_rollups.py made")
    parser.add_argument("--lost", type=int, action="append", help="calls never settled (default: 100)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tmp", type=Path, default=None, help="where the copy goes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "spans.duckdb"
        shutil.copyfile(args.db, path)
        con = store.connect(path)
        try:
            con.execute("SET enable_progress_bar = false")
            assert aggregates.maintain(con) and aggregates.current(con)
            report("nothing pending", measure(con, ("facts",), args.rounds))
            stored = 0
            for lost in sorted(args.lost or [100]):
                con.execute(MORE_LOST, {"start": stored, "n": lost})
                stored = lost
                identity.run_pass(con)
                assert aggregates.maintain(con)
                # Past the cap the copy is not kept, and pending_traces says None.
                fast = aggregates.pending_traces(con) is not None
                pending = "SELECT count(DISTINCT trace_id) FROM costattr_fact_pending"
                traces = con.execute(pending).fetchone()[0]
                title = f"{traces:,} traces pending ({'facts' if fast else 'general path'} answer)"
                report(title, measure(con, ("general", "facts"), args.rounds))
        finally:
            con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
