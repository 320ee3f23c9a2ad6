"""A backlog of spool files moved into the table by the exporter's ingest: peak RSS and CPU.

The exporter's ingester takes whatever is pending in one round: more when the machine is busy
or the write lock was held a while. This makes ``--files`` spool files of 2,048 spans (the
agent runs of bench_exporter.py, mapped as the exporter maps them), then, in a fresh process
each, moves them into a fresh store's table as the exporter does (``ingest.ingest(db,
threads=1, compact=False)`` until nothing is pending) and reports the peak RSS growth over
that (``VmHWM``, reset just before) and the CPU seconds. ``--old SRC`` alternates with another
tree's ``src`` (``git archive REV | tar -x -C DIR``), so both run in the same conditions.

    python benchmarks/bench_ingest_backlog.py --files 128 --rounds 3 [--old /tmp/old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # bench_exporter's span generator and RSS reader


def make(folder: Path, files: int) -> None:
    """``files`` spool files of 2,048 spans in ``folder``."""
    from bench_exporter import span_batches

    from otel_costattr.pricing.table import load_pricing
    from otel_costattr.spans.rows import SpanMapper
    from otel_costattr.store import spool

    mapper = SpanMapper(load_pricing([str(ROOT / "tests" / "data" / "test_prices.toml")], bundled=False))
    holder = folder / "make.duckdb"  # write_spool writes into <db>.spool/
    for batch in span_batches(files * 2048, 2048):
        spool.write_spool(holder, mapper.table(batch), fsync=False)
    for f in spool.pending_spool(holder):
        f.rename(folder / f.name)


def measure(source: Path, work: Path) -> dict:
    """Move every file of ``source`` into a fresh store in ``work``, as the exporter's ingest."""
    from bench_exporter import _rss_kb

    from otel_costattr.store import database as store
    from otel_costattr.store import ingest

    db = work / "b.duckdb"
    store.connect(db).close()
    folder = Path(str(db) + ".spool")
    folder.mkdir(exist_ok=True)
    files = sorted(source.glob("*.parquet"))
    for f in files[:4]:  # a first round: DuckDB's code and the Parquet reader paged in
        shutil.copy(f, folder)
    while ingest.ingest(db, threads=1, compact=False):
        pass
    for f in files[4:]:
        shutil.copy(f, folder)
    base = _rss_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM
    cpu, wall = time.process_time(), time.perf_counter()
    while ingest.ingest(db, threads=1, compact=False):
        pass
    return {
        "peak_mb": (_rss_kb("VmHWM") - base) / 1024,
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", help="another tree's src, alternated with this one")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # source folder, work folder
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(Path(args.worker[0]), Path(args.worker[1]))))
        return 0
    trees = {"this": str(ROOT / "src")} | ({"old": args.old} if args.old else {})
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmp:
        source = Path(tmp) / "files"
        source.mkdir()
        make(source, args.files + 4)
        print(f"{args.files} files of 2,048 spans pending; load {os.getloadavg()[0]:.2f} at start")
        got: dict[str, list[dict]] = {name: [] for name in trees}
        for r in range(args.rounds):
            for name in trees if r % 2 == 0 else reversed(list(trees)):
                work = Path(tmp) / f"{name}-{r}"
                work.mkdir()
                env = {**os.environ, "PYTHONPATH": trees[name]}
                cmd = [sys.executable, __file__, "--worker", str(source), str(work)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
                got[name].append(json.loads(out.strip().splitlines()[-1]))
                shutil.rmtree(work)
        for name, runs in got.items():
            peak = statistics.median(x["peak_mb"] for x in runs)
            cpu = statistics.median(x["cpu_s"] for x in runs)
            wall = statistics.median(x["wall_s"] for x in runs)
            print(f"{name:>5}: peak +{peak:.0f} MB, {cpu:.2f} s CPU, {wall:.2f} s wall, n={len(runs)}")
        print(f"load {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
