"""Instructions a span on the exporting thread, this tree against another commit's, under
callgrind: a figure the machine's load cannot move.

    python benchmarks/cg_exporter.py main [--batches 4] [--batch 2048] [--part export]

Each side (``<ref>``'s package from ``git archive``, put first on ``PYTHONPATH``, and this
tree's) runs twice under ``valgrind --tool=callgrind``: once exporting ``--batches`` batches
of ``bench_exporter.py``'s agent-run spans through ``DuckDBSpanExporter.export`` after one
warm batch, once with the same set-up and no batch; the difference over the spans exported
is the export's instructions a span (its ingester never runs: fewer rows than it waits for).
``--part`` narrows what is exported: ``records`` (``records_from_sdk`` alone), ``map``
(records -> Arrow table), ``export`` (all of ``export()``: read, map, spool file, fsync).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def work(part: str, batches: int, size: int) -> None:
    """The measured program: set up, warm, then ``batches`` exports (0: set-up alone)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_exporter as be

    from otel_costattr.pricing.table import load_pricing
    from otel_costattr.sdk.seam_records import records_from_sdk
    from otel_costattr.spans.rows import SpanMapper
    from otel_costattr.store.exporter import DuckDBSpanExporter

    pricing = load_pricing([str(ROOT / "tests" / "data" / "test_prices.toml")], bundled=False, use_env=False)
    spans = be.batches(be.make_spans(size * 5), size)
    with tempfile.TemporaryDirectory(prefix="cg-exporter-") as tmp:
        if part == "export":
            exporter = DuckDBSpanExporter(Path(tmp) / "x.duckdb", pricing=pricing, ingest_interval=3600)
            run = exporter.export
        else:
            mapper = SpanMapper(pricing)
            run = records_from_sdk if part == "records" else (lambda b: mapper.table(records_from_sdk(b)))
        run(spans[0])
        for batch in spans[1 : 1 + batches]:
            run(batch)
        if part == "export":
            os._exit(0)  # no shutdown: its flush would ingest, in the one run only


def instructions(pythonpath: str | None, part: str, batches: int, size: int) -> int:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory(prefix="cg-out-") as out:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/cg.%p",
            sys.executable,
            __file__,
            "--work",
            part,
            str(batches),
            str(size),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        found = re.findall(r"Collected : (\d+)", done.stderr)
        if not found:
            raise SystemExit(done.stderr[-2000:])
        return sum(int(n) for n in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("ref", nargs="?", help="the commit to compare against (A)")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--part", choices=("records", "map", "export"), default="export")
    parser.add_argument("--work", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.work:
        part, batches, size = args.work[0], int(args.work[1]), int(args.work[2])
        work(part, batches, size)
        return
    with tempfile.TemporaryDirectory(prefix="cg-ref-") as tmp:
        sides: list[tuple[str, str | None]] = [("B this tree", None)]
        if args.ref:
            from ab_bench import extract  # benchmarks/ is first on sys.path: the script's folder

            sides.insert(0, (f"A {args.ref}", str(extract(args.ref, tmp))))
        spans = args.batches * args.batch
        got = {}
        for label, path in sides:
            full = instructions(path, args.part, args.batches, args.batch)
            base = instructions(path, args.part, 0, args.batch)
            got[label] = (full - base) / spans
            print(f"{label}: {args.part} {got[label]:,.0f} instructions a span", flush=True)
        if len(got) == 2:
            a, b = got.values()
            print(f"B / A: {b / a:.3f}")


if __name__ == "__main__":
    main()
