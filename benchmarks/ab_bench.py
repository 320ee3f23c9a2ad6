"""A benchmark on this tree against another commit's, alternating in fresh processes.

    python benchmarks/ab_bench.py <ref> benchmarks/bench_cost.py [--rounds 4] [-- bench args]
    python benchmarks/ab_bench.py d85db10 benchmarks/bench_processor.py -- --reps 15 --spans 1000

On a shared machine two runs minutes apart measure the load as much as the change: here each
round runs the benchmark (this tree's script, with ``--json``: one line of medians) once on
``<ref>``'s package (``git archive <ref> src queries pricing`` in a temporary folder, put first
on ``PYTHONPATH``) and once on this tree's, in alternating order. Prints, per figure, each
side's median over the rounds and the median of the per-round ratios B / A, and the load
(``/proc/loadavg``) before and after.
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


def run(script: str, extra: list[str], pythonpath: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, script, "--json", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def extract(ref: str, dest: str | Path) -> Path:
    """``<ref>``'s package (``src``, ``queries``, ``pricing``) unpacked in ``dest``; returns the
    folder to put first on ``PYTHONPATH`` (``dest/src``)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src", "queries", "pricing"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return Path(dest) / "src"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("ref", help="the commit to compare against (A)")
    parser.add_argument("script", help="a benchmark that takes --json")
    parser.add_argument("--rounds", type=int, default=4)
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []  # the benchmark's own arguments
    args = parser.parse_args(argv[: len(argv) - len(extra) - (1 if extra or "--" in argv else 0)])
    print(f"load before: {load()}")
    with tempfile.TemporaryDirectory(prefix="ab-bench-") as tmp:
        extract(args.ref, tmp)
        a: list[dict[str, float]] = []
        b: list[dict[str, float]] = []
        for r in range(args.rounds):
            sides = [(a, str(Path(tmp) / "src")), (b, None)]
            for side, path in sides if r % 2 == 0 else reversed(sides):
                side.append(run(args.script, extra, path))
    print(f"load after: {load()}")
    print(f"{'figure':<28}{'A ' + args.ref:>14}{'B this tree':>14}{'B / A':>8}")
    for key in a[0]:
        if key not in b[0]:
            continue
        ratio = statistics.median(y[key] / x[key] for x, y in zip(a, b, strict=True))
        med_a, med_b = (statistics.median(s[key] for s in side) for side in (a, b))
        print(f"{key:<28}{med_a:>14.3f}{med_b:>14.3f}{ratio:>8.3f}")


if __name__ == "__main__":
    main()
