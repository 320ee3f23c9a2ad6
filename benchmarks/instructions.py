"""Instructions per span or per call under callgrind: the load-proof figure.

    python benchmarks/instructions.py [--ref main] [--cases plain chat compute_cost] [--n 3000]
                                      [--warmup 200]

Wall and CPU time on a shared machine move with the neighbours; the instructions a piece
of code executes do not. Each case runs under ``valgrind --tool=callgrind`` with ``--n``
units after a warm-up and again with none; the difference over ``--n`` is the cost of one
unit. Interpreter start and imports cancel out. ``PYTHONHASHSEED=0`` fixes set and dict
layouts; what still moves a count by a few hundred instructions is where the heap and
stack land, so each count is run at ``--layouts`` environment sizes and the median kept.

Cases: ``plain`` / ``chat`` (bench_processor.py's spans, ``bare`` SDK and the processor
``ending``; ``--warmup`` spans first, 200 by default: the processor's first 1000 spans still
run its no-model-call check in Python, counted in; bench_processor.py warms up with 1500,
past it); ``plain+batch`` / ``chat+batch``: the same with a BatchSpanProcessor on every
provider, the bare one too (bench_processor.py --exporting); and bench_cost.py's cases
(``compute_cost``, ``price_call``, ``general_path``, ``dict_multiply``). With ``--ref``, that
commit's package (``git archive``, first on ``PYTHONPATH``) is counted beside this
tree's. Slow: each count is a few valgrind runs of a few hundred million instructions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPAN_CASES = ("plain", "chat", "plain+batch", "chat+batch")
sys.path.insert(0, str(HERE))


def workload(case: str, variant: str, n: int, warmup: int = 200) -> None:
    """Warm up, then run ``n`` units of ``case`` (inside valgrind)."""
    import bench_cost
    import bench_processor

    if case in SPAN_CASES:
        table = bench_processor.load_pricing([bench_processor.TEST_PRICES], bundled=False, use_env=False)
        tracer, parent = bench_processor.make_tracer(variant, table, exporting=case.endswith("+batch"))
        attrs = bench_processor.CHAT_ATTRS if case.startswith("chat") else bench_processor.PLAIN_ATTRS
        bench_processor.lifecycle(tracer, parent, attrs, warmup)
        if n:
            bench_processor.lifecycle(tracer, parent, attrs, n)
        return
    fn = {name.replace(" ", "_"): f for name, f in bench_cost.cases().items()}[case]
    for _ in range(2000):
        fn()
    for _ in range(n):
        fn()


def count(case: str, variant: str, n: int, pythonpath: str | None, pad: int, warmup: int = 200) -> int:
    """Instructions of one run (``n`` units) under callgrind."""
    env = dict(os.environ, PYTHONHASHSEED="0", COUNT_PAD="x" * pad)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = Path(tmp) / "out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        cmd += [__file__, "--run", case, variant, str(n), "--warmup", str(warmup)]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no total")


def per_unit(
    case: str, variant: str, n: int, pythonpath: str | None, layouts: int, warmup: int = 200
) -> float:
    pads = [37 * i for i in range(layouts)]
    diffs = [
        count(case, variant, n, pythonpath, p, warmup) - count(case, variant, 0, pythonpath, p, warmup)
        for p in pads
    ]
    return statistics.median(d / n for d in diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--run", nargs=3, metavar=("CASE", "VARIANT", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--ref", help="also count this commit's package (A) beside this tree (B)")
    parser.add_argument("--cases", nargs="+", default=["plain", "chat", "compute_cost"])
    parser.add_argument(
        "--variants", nargs="+", default=["bare", "ending"], help="span cases: bench_processor.py's"
    )
    parser.add_argument("--n", type=int, default=3000, help="units counted (default 3000)")
    parser.add_argument("--layouts", type=int, default=2, help="environment sizes per count (default 2)")
    parser.add_argument(
        "--warmup", type=int, default=200, help="plain/chat: spans before counting (default 200)"
    )
    args = parser.parse_args()
    if args.run:
        workload(args.run[0], args.run[1], int(args.run[2]), args.warmup)
        return
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        trees: list[tuple[str, str | None]] = [("this tree", None)]
        if args.ref:
            archive = subprocess.run(
                ["git", "-C", str(HERE.parent), "archive", args.ref, "src", "queries", "pricing"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            trees.insert(0, (args.ref, str(Path(tmp) / "src")))
        print(f"{'case':<14}{'variant':<9}" + "".join(f"{name:>14}" for name, _ in trees))
        for case in args.cases:
            variants = args.variants if case in SPAN_CASES else ("-",)
            for variant in variants:
                figures = [
                    per_unit(case, variant, args.n, path, args.layouts, args.warmup) for _, path in trees
                ]
                print(f"{case:<14}{variant:<9}" + "".join(f"{f:>14,.0f}" for f in figures), flush=True)


if __name__ == "__main__":
    main()
