"""The issue-12 rollups against another commit, alternated, on databases bench_rollups.py made.

    git archive <commit> | tar -x -C /tmp/old
    python benchmarks/ab_rollups.py --old /tmp/old/src --old-db OLD.duckdb --new-db NEW.duckdb

Each round times the bare ``GROUP BY feature`` scan and the four target rollups in a child
process per side (old source tree first, then this one), so both sides see the same machine
load; the figures are medians over rounds of each round's median. Make the old side's
database with the old tree's bench_rollups.py when its store lacks columns this one has (a
tree before the settled identity); a tree that knows them can read this side's database
(``--old-db`` = ``--new-db``): later migrations only add what it does not read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

TARGETS = ("per_feature", "per_step", "per_run", "per_agent")

CHILD = r"""
import json, statistics, sys, time
from otel_costattr.rollups.queries import rollup
from otel_costattr.store import database as store
con = store.connect(sys.argv[1], read_only=True)
con.execute("SET enable_progress_bar = false")  # it writes to stdout
repeat = int(sys.argv[2])
out = {}
def timed(run):
    run()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)
BARE = "SELECT feature, count(*) FROM spans GROUP BY feature"
out["(bare scan)"] = timed(lambda: con.execute(BARE).fetchall())
for name in json.loads(sys.argv[3]):
    out[name] = timed(lambda: rollup(name, db=con))
print("RESULT " + json.dumps(out))
"""


def side(src: str | None, db: Path, repeat: int) -> dict[str, list[float]]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(repeat), json.dumps(TARGETS)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.rsplit("RESULT ", 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the old commit's src/ folder")
    parser.add_argument("--old-db", type=Path, required=True)
    parser.add_argument("--new-db", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per rollup per round")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        runs["old"].append(side(args.old, args.old_db, args.repeat))
        runs["new"].append(side(None, args.new_db, args.repeat))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'':<12}{'old wall / cpu ms':>22}{'new wall / cpu ms':>22}{'old/new cpu':>13}{'new / bare':>12}")
    med = {
        s: {k: [statistics.median(r[k][i] for r in runs[s]) for i in (0, 1)] for k in runs[s][0]}
        for s in runs
    }
    for name in ("(bare scan)", *TARGETS):
        (ow, oc), (nw, nc) = med["old"][name], med["new"][name]
        bare = med["new"]["(bare scan)"][0]
        print(
            f"{name:<12}{f'{ow * 1e3:,.0f} / {oc * 1e3:,.0f}':>22}{f'{nw * 1e3:,.0f} / {nc * 1e3:,.0f}':>22}"
            f"{oc / nc if nc else float('nan'):>12.2f}x{nw / bare:>11.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
