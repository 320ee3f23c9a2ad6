"""What the exporter's ingest holds in memory, phase by phase: where its peak RSS comes from.

    python benchmarks/probe_ingest_memory.py [--stored 900000] [--pending 131072] [--rounds 2]
                                             [--old /tmp/old/src]

Makes a store of ``--stored`` spans (bench_exporter.py's agent runs, exported 2,048 at a time
and ingested 32k at a time, as the exporter does) and ``--pending`` more spooled, once; then,
in a fresh process each (alternated with ``--old``, another tree's ``src``), copies it and
moves the pending spans in as the exporter's ingester does (``ingest.ingest(db, threads=1,
compact=False)``). The default is the round that set the peak of the 1M-span run of
``bench_exporter.py --rss-worker`` on a quiet machine: ~140k spans pending (the ingester fell
behind) into ~900k.

Reported: the peak RSS growth over the ingest (VmHWM, reset just before), its CPU, and at the
highest RSS seen in each phase (a sampler thread, every ms) what it was made of, in MB over
the start: ``alloc`` and ``dirty``, DuckDB's allocator (jemalloc, read through the wheel's
``duckdb_je_mallctl``: live bytes, and pages freed but not yet given back), ``glibc`` the
system heap (``mallinfo2``: C++ objects, Python's large objects), ``file`` code pages
(RssFile). Phases: ``insert`` (look for stored spans, insert), ``commit``, ``other`` (the
checkpoint after each transaction), ``trim``, ``identity`` and ``facts`` (the pass and the
rollup facts' upkeep), ``-`` (connect, and the end). Linux only; never asserts.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PRICES = str(ROOT / "tests" / "data" / "test_prices.toml")
sys.path.insert(0, str(HERE))  # bench_exporter's span generator


def make(folder: Path, stored: int, pending: int) -> None:
    """A store of ``stored`` spans and ``pending`` more in its spool, in ``folder``."""
    from bench_exporter import span_batches

    from otel_costattr.pricing.table import load_pricing
    from otel_costattr.sdk.seam_records import records_from_sdk
    from otel_costattr.spans.rows import SpanMapper
    from otel_costattr.store import ingest, spool

    pricing = load_pricing([PRICES], bundled=False, use_env=False)
    mapper = SpanMapper(pricing)
    path = folder / "s.duckdb"
    made = 0
    for batch in span_batches(stored + pending, 2048):
        spool.write_spool(path, mapper.table(records_from_sdk(batch, mapper.skipped)), fsync=False)
        made += len(batch)
        if made <= stored and (made % 32768 == 0 or made == stored):
            ingest.ingest(path, threads=1, compact=False)


_MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd")
_MALLINFO2 += ("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2]


class Memory:
    """The process's memory by owner: kernel, DuckDB's jemalloc, glibc's heap."""

    def __init__(self) -> None:
        import _duckdb

        self._je = getattr(ctypes.CDLL(_duckdb.__file__), "duckdb_je_mallctl", None)
        self._libc = ctypes.CDLL("libc.so.6")
        self._libc.mallinfo2.restype = _Mallinfo2

    def _get(self, name: str, ctype: type = ctypes.c_size_t) -> int:
        value, size = ctype(), ctypes.c_size_t(ctypes.sizeof(ctype))
        if self._je is None or self._je(name.encode(), ctypes.byref(value), ctypes.byref(size), None, 0):
            return 0
        return int(value.value)

    def now(self) -> dict[str, int]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssFile"):
                    out["rss" if key == "VmRSS" else "file"] = int(value.split()[0]) * 1024
        if self._je is not None:
            epoch = ctypes.c_uint64(1)
            self._je(b"epoch", None, None, ctypes.byref(epoch), ctypes.sizeof(epoch))
            out["alloc"] = self._get("stats.allocated")
            arenas = self._get("arenas.narenas", ctypes.c_uint)
            pages = sum(self._get(f"stats.arenas.{i}.pdirty") for i in range(arenas))
            out["dirty"] = pages * os.sysconf("SC_PAGE_SIZE")
        info = self._libc.mallinfo2()
        out["glibc"] = info.arena + info.hblkhd
        return out


def worker(source: Path, work: Path) -> dict:
    """Ingest the copy of ``source`` in ``work``, phase by phase (see the module docstring)."""
    from otel_costattr.store import aggregates, identity, ingest
    from otel_costattr.store import database as store

    shutil.copytree(source, work)
    path = work / "s.duckdb"
    store.connect(path, ingest=False).close()  # as DuckDBSpanExporter() does, before any export
    phase: dict[int, str] = {}
    peaks: dict[str, dict[str, int]] = {}

    def mark(module: object, name: str, tag: str) -> None:
        original = getattr(module, name)

        def marked(*args: object, **kwargs: object) -> object:
            me = threading.get_ident()
            before = phase.get(me)
            phase[me] = tag
            try:
                return original(*args, **kwargs)
            finally:
                if before is None:
                    phase.pop(me, None)
                else:
                    phase[me] = before

        setattr(module, name, marked)

    mark(ingest, "ingest_spool", "other")
    mark(ingest, "_insert", "insert")
    mark(ingest, "_trim", "trim")
    mark(identity, "attempt", "identity")
    mark(aggregates, "attempt", "facts")
    commit = ingest._insert_files

    def insert_files(con: object, files: list) -> int:
        # the commit of `_insert_files` as a phase of its own: its statement before it is marked
        me = threading.get_ident()
        added = commit(_Committing(con, me, phase), files)
        return added

    ingest._insert_files = insert_files
    memory = Memory()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = memory.now()
            tag = "|".join(sorted(set(phase.values()))) or "-"
            if now["rss"] > peaks.get(tag, {}).get("rss", 0):
                peaks[tag] = now
            time.sleep(0.001)

    base = memory.now()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = time.process_time()
    ingest.ingest(path, threads=1, compact=False, max_files=100_000)
    cpu = time.process_time() - cpu
    stop.set()
    sampler.join()
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    mb = 2**20
    return {
        "growth": (hwm - base["rss"]) / mb,
        "cpu": cpu,
        "phases": {
            tag: {key: (value - base.get(key, 0)) / mb for key, value in at.items()}
            for tag, at in sorted(peaks.items(), key=lambda item: -item[1]["rss"])
        },
    }


class _Committing:
    """``con`` for `_insert_files`: its COMMIT statement marked as the phase ``commit``."""

    def __init__(self, con: object, me: int, phase: dict[int, str]) -> None:
        self._con, self._me, self._phase = con, me, phase

    def execute(self, sql: str, *args: object) -> object:
        if sql != "COMMIT":
            return self._con.execute(sql, *args)
        before = self._phase.get(self._me)
        self._phase[self._me] = "commit"
        try:
            return self._con.execute(sql, *args)
        finally:
            self._phase[self._me] = before or "other"


def _child(src: str | None, source: Path, work: Path) -> dict:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, __file__, "--worker", str(source), str(work)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _line(name: str, got: dict) -> str:
    phases = " ".join(
        f"{tag} {at['rss']:.0f}={at.get('alloc', 0):.0f}+{at.get('dirty', 0):.0f}d"
        for tag, at in got["phases"].items()
    )
    return f"{name:>5}: peak +{got['growth']:.1f} MB, {got['cpu']:.2f} s CPU | {phases}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=900_000)
    parser.add_argument("--pending", type=int, default=131_072)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--old", help="another tree's src, alternated with this one")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)  # source folder, work folder
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), Path(args.worker[1]))))
        return 0
    with tempfile.TemporaryDirectory(prefix="probe-ingest-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        make(source, args.stored, args.pending)
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"{args.stored:,} spans stored, {args.pending:,} pending; load {load} at start")
        print("each phase at its highest RSS, MB over the start: rss=jemalloc live+dirty")
        trees = [("this", None)] + ([("old", args.old)] if args.old else [])
        for r in range(args.rounds):
            for name, src in trees if r % 2 == 0 else reversed(trees):
                work = Path(tmp) / f"work-{r}-{name}"
                print(_line(name, _child(src, source, work)), flush=True)
                shutil.rmtree(work)
        with open("/proc/loadavg") as f:
            print(f"load {f.read().split()[0]} at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
