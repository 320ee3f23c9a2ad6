"""Why the exporting thread and the ingester do not overlap: DuckDB and the GIL.

    python benchmarks/probe_gil.py [--rows 100000000] [--statements 1000] [--rounds 3]
                                   [--exporter-spans 65536]

DuckDB's Python client releases the GIL while a statement runs but takes it back after every
internal task to check for Ctrl-C (``PyErr_CheckSignals``). While another thread runs Python,
each take-back waits for the interpreter's switch interval (5 ms by default). The
DuckDBSpanExporter's ingester is such a DuckDB thread, and the application's exporting thread
(mapping spans) is such a Python thread.

Measured, each in this process, alone and beside a thread spinning in pure Python, at the
default switch interval and at 0.5 ms:

- one query (``sum(i*i)`` over ``--rows``, one DuckDB thread), wall seconds;
- ``--statements`` small statements (``SELECT 42``), wall seconds;

and, unless ``--exporter-spans 0``, bench_exporter.py's duckdb worker (end-to-end spans/s,
batch 2048) in fresh processes alternated, at the default switch interval and at 0.5 ms (set
in the worker's process before it starts: what an application may choose; the library does
not change a process-wide setting). Medians of ``--rounds``. Never asserts on time.
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
from collections.abc import Callable
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
FAST = 0.0005


def beside_python(work: Callable[[], None]) -> float:
    """Wall seconds of ``work`` while another thread spins in pure Python."""
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            for _ in range(1000):
                n += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.05)
    try:
        return timed(work)
    finally:
        stop.set()
        spinner.join()


def timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def exporter_worker(spans: int, interval: float, folder: str) -> float:
    """bench_exporter.py's duckdb worker in a fresh process at switch ``interval``: spans/s."""
    code = (
        "import runpy, sys; sys.setswitchinterval(float(sys.argv[1])); "
        "sys.argv = [sys.argv[2], '--worker', 'duckdb', sys.argv[3], '2048', sys.argv[4]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    bench = str(HERE / "bench_exporter.py")
    out = subprocess.run(
        [sys.executable, "-c", code, str(interval), bench, str(spans), folder],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["spans_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--exporter-spans", type=int, default=65536, help="0: skip the exporter runs")
    args = parser.parse_args(argv)
    con = duckdb.connect()
    con.execute("SET threads = 1")

    def query() -> None:
        con.execute(f"SELECT sum(i * i) FROM range({args.rows}) t(i)").fetchall()

    def statements() -> None:
        for _ in range(args.statements):
            con.execute("SELECT 42").fetchall()

    print("load before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    default = sys.getswitchinterval()
    for name, work in (("one query", query), (f"{args.statements} statements", statements)):
        figures: dict[str, list[float]] = {"alone": [], "beside, 5 ms": [], "beside, 0.5 ms": []}
        for _ in range(args.rounds):
            figures["alone"].append(timed(work))
            figures["beside, 5 ms"].append(beside_python(work))
            sys.setswitchinterval(FAST)
            try:
                figures["beside, 0.5 ms"].append(beside_python(work))
            finally:
                sys.setswitchinterval(default)
        alone = statistics.median(figures["alone"])
        row = ", ".join(
            f"{k} {statistics.median(v):.3f} s ({statistics.median(v) / alone:.1f}x)"
            for k, v in figures.items()
        )
        print(f"{name}: {row}", flush=True)
    if args.exporter_spans:
        rates: dict[float, list[float]] = {default: [], FAST: []}
        with tempfile.TemporaryDirectory(prefix="probe-gil-") as folder:
            for r in range(args.rounds):
                for interval in (default, FAST) if r % 2 == 0 else (FAST, default):
                    rates[interval].append(exporter_worker(args.exporter_spans, interval, folder))
        print(
            f"exporter, {args.exporter_spans} spans, batch 2048: "
            + ", ".join(
                f"switch {k * 1000:g} ms {statistics.median(v):,.0f} spans/s" for k, v in rates.items()
            )
        )
    print("load after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
