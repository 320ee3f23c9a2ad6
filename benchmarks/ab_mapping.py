"""CPU of the row mapping (or of the whole export), this tree against another commit's,
alternating in fresh processes.

    python benchmarks/ab_mapping.py 6d6500b [--rounds 4] [--spans 65536] [--batch 2048]
                                            [--kind map|duckdb]

On a shared machine two runs minutes apart measure the load as much as the change: here
each round runs one ``bench_exporter.py`` worker once on ``<ref>``'s package (``git archive
<ref> src queries pricing`` in a temporary folder, put first on ``PYTHONPATH``) and once on
this tree's, in alternating order. ``--kind map`` (default): the "map" worker (spans -> Arrow
tables, no I/O, thread CPU, best of 3). ``--kind duckdb``: the ``DuckDBSpanExporter`` worker,
CPU µs per span on the exporting thread (``export()`` calls: read, map, durable spool file),
with the whole process's CPU and spans/s beside it, after a warm batch (its thread CPU printed
as "first export"; ``--metric steady_us`` is the same figure since the worker leaves that
batch out, 2026-12-05). Prints each side's median and the median of the per-round ratios B / A.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ab_bench import extract  # run as a script: benchmarks/ is first on sys.path

BENCH = Path(__file__).resolve().parent / "bench_exporter.py"


def run_worker(kind: str, pythonpath: str | None, spans: int, batch: int, folder: str) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, str(BENCH), "--worker", kind, str(spans), str(batch), folder]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the commit to compare against (A)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--spans", type=int, default=65536)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--kind", choices=("map", "duckdb"), default="map")
    parser.add_argument(
        "--metric",
        choices=("thread_us", "steady_us"),
        default="thread_us",
        help="duckdb: every export's thread CPU, or all but the first's (its one-time costs)",
    )
    args = parser.parse_args()
    if args.kind == "duckdb" and args.spans <= args.batch:
        parser.error("--kind duckdb needs --spans above --batch: steady_us leaves the first export out")
    metric = "map_us" if args.kind == "map" else args.metric
    other = "steady_us" if metric == "thread_us" else "thread_us"
    with tempfile.TemporaryDirectory(prefix="ab-mapping-") as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        extract(args.ref, before)
        a: list[dict] = []
        b: list[dict] = []
        for r in range(args.rounds):
            sides = [(a, str(before / "src")), (b, None)]
            for side, path in sides if r % 2 == 0 else reversed(sides):
                side.append(run_worker(args.kind, path, args.spans, args.batch, tmp))
        for label, side in ((f"A {args.ref}", a), ("B this tree", b)):
            got = [x[metric] for x in side]
            line = (
                f"{label}: {metric} median {statistics.median(got):.2f} µs/span  {[round(x, 2) for x in got]}"
            )
            if args.kind == "duckdb":
                line += (
                    f"; process cpu_us median {statistics.median(x['cpu_us'] for x in side):.1f},"
                    f" first export {statistics.median(x['first_ms'] for x in side):.0f} ms,"
                    f" {other} median {statistics.median(x[other] for x in side):.2f},"
                    f" spans/s median {statistics.median(x['spans_s'] for x in side):,.0f}"
                )
            print(line)
        ratio = statistics.median(y[metric] / x[metric] for x, y in zip(a, b, strict=True))
        print(f"B / A ({metric}): {ratio:.3f}")


if __name__ == "__main__":
    main()
