"""CPU of the row mapping, this tree against another commit's, alternating in fresh processes.

    python benchmarks/ab_mapping.py 6d6500b [--rounds 4] [--spans 65536] [--batch 2048]

On a shared machine two runs minutes apart measure the load as much as the change: here
each round runs ``bench_exporter.py``'s "map" worker (spans -> Arrow tables, no I/O, thread CPU,
best of 3) once on ``<ref>``'s package (``git archive <ref> src queries pricing`` in a
temporary folder, put first on ``PYTHONPATH``) and once on this tree's, in alternating order.
Prints each side's median µs per span and the median of the per-round ratios B / A.
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

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent / "bench_exporter.py"


def map_us(pythonpath: str | None, spans: int, batch: int, folder: str) -> float:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, str(BENCH), "--worker", "map", str(spans), str(batch), folder]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["map_us"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the commit to compare against (A)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--spans", type=int, default=65536)
    parser.add_argument("--batch", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ab-mapping-") as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.ref, "src", "queries", "pricing"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        a: list[float] = []
        b: list[float] = []
        for r in range(args.rounds):
            sides = [(a, str(before / "src")), (b, None)]
            for side, path in sides if r % 2 == 0 else reversed(sides):
                side.append(map_us(path, args.spans, args.batch, tmp))
        print(f"A {args.ref}: median {statistics.median(a):.2f} µs/span  {[round(x, 2) for x in a]}")
        print(f"B this tree: median {statistics.median(b):.2f} µs/span  {[round(x, 2) for x in b]}")
        print(f"B / A: {statistics.median(y / x for x, y in zip(a, b, strict=True)):.3f}")


if __name__ == "__main__":
    main()
