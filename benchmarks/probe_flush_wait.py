"""How long ``force_flush(timeout_millis)`` waits while the background ingester has work, this
tree against another commit's, in fresh processes alternated.

    python benchmarks/probe_flush_wait.py 64bd4aa [--rounds 3] [--spans 131072]

Two cases, each a worker process of its own on a new database:

- backlog: ``--spans`` spans exported in batches of 2048 (the ingester wakes at 32k rows and
  starts a round that takes the whole spool), then ``force_flush(timeout_millis=500)``.
  Before 2026-12-05 the flush waited for the round to empty the spool, whatever its timeout.
- steady: a thread exports batches of 512 as fast as it can for 4 s; after 1 s the main
  thread calls ``force_flush(timeout_millis=10000)``. A flush is done once what was pending
  at its call is in the table; before, it waited for a moment with nothing pending.

Prints, per case and side: the flush's wall time (medians over rounds, and each round) and
what it answered. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ab_bench import extract  # run as a script: benchmarks/ is first on sys.path


def worker(case: str, spans: int, folder: str) -> dict:
    from bench_exporter import make_spans

    from otel_costattr.pricing.table import load_pricing
    from otel_costattr.store.exporter import DuckDBSpanExporter

    prices = Path(__file__).resolve().parent.parent / "tests" / "data" / "test_prices.toml"
    pricing = load_pricing([str(prices)], bundled=False, use_env=False)
    path = Path(folder) / f"{case}-{os.getpid()}.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=pricing)
    made = make_spans(spans)
    if case == "backlog":
        for i in range(0, len(made), 2048):
            exporter.export(made[i : i + 2048])
        start = time.monotonic()
        answer = exporter.force_flush(timeout_millis=500)
    else:
        stop = threading.Event()

        def keep_exporting() -> None:
            i = 0
            while not stop.is_set():
                exporter.export(made[i : i + 512])
                i = (i + 512) % (len(made) - 512)

        thread = threading.Thread(target=keep_exporting)
        thread.start()
        time.sleep(1)
        start = time.monotonic()
        answer = exporter.force_flush(timeout_millis=10000)
    waited = time.monotonic() - start
    if case != "backlog":
        stop.set()
        thread.join()
    exporter.shutdown()
    return {"waited_s": round(waited, 3), "answer": answer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", nargs="?", help="the commit to compare against (A)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spans", type=int, default=131072)
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "SPANS", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, spans, folder = args.worker
        print(json.dumps(worker(case, int(spans), folder)))
        return
    if not args.ref:
        parser.error("give the commit to compare against")
    print(f"load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="probe-flush-") as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        extract(args.ref, before)
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            sides = [("A", str(before / "src")), ("B", None)]
            for case in ("backlog", "steady"):
                for side, pythonpath in sides if r % 2 == 0 else reversed(sides):
                    env = dict(os.environ)
                    if pythonpath:
                        env["PYTHONPATH"] = pythonpath
                    cmd = [sys.executable, __file__, "--worker", case, str(args.spans), tmp]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
                    results.setdefault((case, side), []).append(json.loads(out.strip().splitlines()[-1]))
        for (case, side), rounds in sorted(results.items()):
            waits = [x["waited_s"] for x in rounds]
            answers = [x["answer"] for x in rounds]
            label = args.ref if side == "A" else "this tree"
            median = statistics.median(waits)
            print(f"{case:8s} {label:10s} waited {median:6.2f} s {waits} answered {answers}")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
