"""Time the HTML report: its rollups (`report.collect`) next to turning them into the page
(`render_report`), over the demo week and over generated spans (bench_rollups' shape).

    python benchmarks/bench_report.py                       # the demo, and 1M generated spans
    python benchmarks/bench_report.py --spans 100000 --repeat 3
    python benchmarks/bench_report.py --dir /tmp/bench      # keep (and reuse) the databases

Each figure is the median of ``--repeat`` runs, measured side by side in one process: wall
time, and the page's size. The rollups open the database read-only for each section (as
the CLI does). The load average is printed: on a shared machine other processes stretch the
wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_rollups import open_db  # noqa: E402

from otel_costattr.demo import run_demo  # noqa: E402
from otel_costattr.report.commands import Commands  # noqa: E402
from otel_costattr.report.data import Window, collect  # noqa: E402
from otel_costattr.report.page import render_report  # noqa: E402


def bench(db: str, repeat: int) -> tuple[float, float, int, int]:
    """Median seconds of collect and of render, the page's bytes, waterfalls drawn."""
    collected, rendered, size, runs = [], [], 0, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = collect(db, Window())
        t1 = time.perf_counter()
        shown = {r.trace_id for r in report.runs}
        html = render_report(
            report,
            link=lambda t, shown=shown: f"#run-{t}" if t in shown else None,
            commands=Commands(db, report.window),
        )
        t2 = time.perf_counter()
        collected.append(t1 - t0)
        rendered.append(t2 - t1)
        size, runs = len(html.encode()), len(report.runs)
    return statistics.median(collected), statistics.median(rendered), size, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, action="append", help="generated span counts (default: 1M)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (median)")
    parser.add_argument("--dir", type=Path, help="keep the generated databases here (reused)")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        demo = run_demo(folder / "bench-report-demo.duckdb")["path"]
        rows.append(("demo week", demo))
        for size in args.spans or [1_000_000]:
            path = folder / f"bench-{size}-100.duckdb"
            open_db(path, size, 0.1).close()
            rows.append((f"{size:,} spans", str(path)))
        results = [(label, *bench(db, args.repeat)) for label, db in rows]
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"median of {args.repeat} runs, all time, 10 waterfalls + the tail's")
    head = ("rollups ms", 12), ("render ms", 12), ("render/rollups", 16), ("page KB", 10), ("waterfalls", 12)
    print(f"{'store':<16}" + "".join(f"{h:>{w}}" for h, w in head))
    for label, c, r, size, runs in results:
        print(f"{label:<16}{c * 1000:>12,.0f}{r * 1000:>12,.0f}{r / c:>16.2f}{size / 1024:>10,.0f}{runs:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
