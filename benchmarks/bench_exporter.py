"""DuckDBSpanExporter against two baselines and the raw-insert ceiling, each in its own process.

    python benchmarks/bench_exporter.py [--spans 200000] [--batch 512 2048] [--repeat 3]
                                        [--rss-spans 1000000] [--rss-batch 2048]

Exporters, measured on the same spans (made before the clock starts, by a real
TracerProvider), each run in a fresh process of its own so that none inherits another's heap
or threads, in interleaved order round by round so drift in machine speed hits them alike:

- duckdb: ``DuckDBSpanExporter``: ``export()`` every batch (mapping, cost, durable spool
  file), then ``force_flush()`` until every row is committed in ``spans``.
- sqlite: the naive baseline: one JSON document per span (fields, attributes, resource),
  ``executemany`` into SQLite, one durable commit per batch (the default rollback journal,
  ``synchronous=FULL``).
- otlp: ``OTLPSpanExporter`` (HTTP/protobuf) posting to a trivial sink on 127.0.0.1 in
  another process (reads the body, answers 200): what shipping spans away costs the
  application, without the collector's work.
- ceiling: the same rows as the duckdb exporter makes, already mapped to Arrow tables before
  the clock starts, inserted batch by batch (``INSERT INTO spans BY NAME``, one commit per
  batch) on one connection; the clock stops after close (the final checkpoint).

Per exporter, after one warm batch exported and flushed before the clock starts (what a
running exporter has behind it: pyarrow's first array imports pandas when it is installed,
about 0.2 s, shown as "first ms"; the ingester started), with the spans made for the run
frozen out of the garbage collector (an application's exporting thread never holds them):
spans/s (wall, first timed export to last commit), CPU µs per span on the exporting thread
(``export()`` calls alone: what the application's export thread pays) and of the whole
process (background ingester and final flush included). "map" is the CPU of mapping alone
(records -> Arrow tables, no I/O), the steadiest figure on a busy machine. Figures are
medians of ``--repeat`` runs. Before 2026-12-05 the clock included the first export and the
collector walked the made spans (benchmarks/RESULTS.md has both side by side).

RSS: each exporter in its own process again, ``--rss-spans`` spans made batch by batch while
exporting (so the spans themselves do not count), growth of the peak RSS (VmHWM, reset after
the first batch) over the run, in MB.

Spans per agent run: 1 invoke_agent span, 3 chat spans (tokens, cache reads, no cost
stamped, so the exporter prices them) and 3 execute_tool spans. Never asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import duckdb
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.spans.rows import SpanMapper
from otel_costattr.store import database as store
from otel_costattr.store.exporter import DuckDBSpanExporter

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("duckdb", "sqlite", "otlp")


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def span_batches(count: int, size: int) -> Iterator[list[ReadableSpan]]:
    """``count`` finished spans of agent runs from a real TracerProvider, ``size`` at a time,
    made as they are asked for (linear: nothing is copied twice)."""
    sink = _Collect()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(sink))
    tracer = provider.get_tracer("bench.agent", "1.0")
    made = 0
    run = 0
    while made < count:
        run += 1
        agent = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "planner",
            "app.feature": "search",
            "gen_ai.conversation.id": f"conv-{run}",
        }
        with tracer.start_as_current_span("invoke_agent planner", attributes=agent):
            for step in range(3):
                chat = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "acme",
                    "gen_ai.request.model": "acme-large",
                    "gen_ai.response.model": "acme-large-20260101",
                    "gen_ai.usage.input_tokens": 1200 + run % 97,
                    "gen_ai.usage.output_tokens": 300 + step,
                    "gen_ai.usage.cache_read.input_tokens": 1000,
                    "gen_ai.agent.name": "planner",
                    "gen_ai.agent.step": step,
                    "app.feature": "search",
                    "gen_ai.conversation.id": f"conv-{run}",
                    "server.address": "api.acme.test",
                }
                with tracer.start_as_current_span("chat acme-large", kind=SpanKind.CLIENT, attributes=chat):
                    pass
                tool = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "search",
                    "gen_ai.agent.step": step,
                }
                with tracer.start_as_current_span("execute_tool search", attributes=tool):
                    pass
        while len(sink.spans) >= size or (sink.spans and made + len(sink.spans) >= count):
            batch = sink.spans[: min(size, count - made)]
            del sink.spans[:size]
            made += len(batch)
            yield batch
            if made >= count:
                break
    provider.shutdown()


def make_spans(count: int) -> list[ReadableSpan]:
    """``count`` finished spans of agent runs (see `span_batches`)."""
    return [span for batch in span_batches(count, 4096) for span in batch]


def batches(spans: list[ReadableSpan], size: int) -> list[list[ReadableSpan]]:
    return [spans[i : i + size] for i in range(0, len(spans), size)]


# -- the baselines --------------------------------------------------------------------------


class SQLiteJSONExporter(SpanExporter):
    """The naive exporter: one JSON document per span in SQLite, one commit per batch."""

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(str(path), check_same_thread=False)
        self.con.execute("PRAGMA synchronous = FULL")
        self.con.execute("CREATE TABLE spans (trace_id TEXT, span_id TEXT, doc TEXT)")

    def export(self, spans: Any) -> SpanExportResult:
        rows = []
        for s in spans:
            ctx, parent = s.context, s.parent
            doc = {
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
                "parent_span_id": format(parent.span_id, "016x") if parent else None,
                "name": s.name,
                "kind": s.kind.name,
                "start_time": s.start_time,
                "end_time": s.end_time,
                "status": s.status.status_code.name,
                "attributes": dict(s.attributes),
                "resource": dict(s.resource.attributes),
                "scope": s.instrumentation_scope.name if s.instrumentation_scope else None,
            }
            rows.append((doc["trace_id"], doc["span_id"], json.dumps(doc)))
        with self.con:
            self.con.executemany("INSERT INTO spans VALUES (?, ?, ?)", rows)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        self.con.close()


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector does

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve_sink() -> None:
    """The OTLP baseline's receiver: prints its port, answers 200 to every POST."""
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def make_exporter(kind: str, folder: Path, pricing: PriceTable, port: int) -> tuple[Any, Path | None]:
    path = folder / f"{kind}-{time.monotonic_ns()}"
    if kind == "duckdb":
        return DuckDBSpanExporter(path.with_suffix(".duckdb"), pricing=pricing), path.with_suffix(".duckdb")
    if kind == "sqlite":
        return SQLiteJSONExporter(path.with_suffix(".sqlite")), None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"), None


# -- one measurement, in a process of its own ----------------------------------------------


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(kind: str, spans: int, size: int, folder: Path, pricing: PriceTable, port: int) -> dict:
    """spans/s, exporting-thread and process CPU µs per span (or, for the ceiling and map
    kinds, their one figure)."""
    made = make_spans(spans + size)
    warm, work = made[:size], batches(made[size:], size)
    if kind in ("ceiling", "map"):
        return _measure_mapped(kind, work, spans, folder, pricing)
    exporter, db = make_exporter(kind, folder, pricing, port)
    # The spans made for the run are the benchmark's, not the exporter's: frozen, the
    # collector no longer walks them at every collection the exporting thread triggers (at
    # 262k spans that was 1.8 s of the main thread's 3.3). An application's exporting thread
    # never holds a run's worth of finished spans.
    gc.collect()
    gc.freeze()
    # One warm batch before the clock, exported and flushed: what a running exporter has
    # behind it (pyarrow imported pandas on its first array when pandas is installed, ~0.2 s;
    # the ingester, the shapes compiled). "first ms" is that batch's export().
    t = time.thread_time()
    if exporter.export(warm) is not SpanExportResult.SUCCESS or not exporter.force_flush(60_000):
        raise SystemExit(f"{kind}: the warm batch failed")
    first = time.thread_time() - t
    thread_cpu = 0.0
    start = time.perf_counter()
    cpu_start = time.process_time()
    for batch in work:
        t = time.thread_time()
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise SystemExit(f"{kind}: export failed")
        thread_cpu += time.thread_time() - t
    if not exporter.force_flush(60_000):
        raise SystemExit(f"{kind}: force_flush failed")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    exporter.shutdown()
    gc.unfreeze()
    if db is not None:
        check(db, spans + len(warm))
    return {
        "spans_s": spans / elapsed,
        "thread_us": thread_cpu / spans * 1e6,
        "steady_us": thread_cpu / spans * 1e6,  # the same since the warm batch (ab_mapping.py)
        "first_ms": first * 1e3,
        "cpu_us": cpu / spans * 1e6,
    }


def _measure_mapped(kind: str, work: list, spans: int, folder: Path, pricing: PriceTable) -> dict:
    mapper = SpanMapper(pricing)
    mapper.table(work[0])  # warm the key caches, as a running exporter has them
    start = time.process_time()
    tables = [mapper.table(batch) for batch in work]
    mapping = (time.process_time() - start) / spans * 1e6
    if kind == "map":
        return {"map_us": mapping}
    path = folder / f"ceiling-{time.monotonic_ns()}.duckdb"
    store.connect(path).close()
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    for tbl in tables:  # noqa: B007 - DuckDB reads the local by name
        con.execute("INSERT INTO spans BY NAME SELECT * FROM tbl")
    con.close()
    elapsed = time.perf_counter() - start
    check(path, spans)
    return {"spans_s": spans / elapsed}


def measure_rss(kind: str, spans: int, size: int, folder: Path, pricing: PriceTable, port: int) -> dict:
    """Peak RSS growth (MB) over ``spans`` spans, made batch by batch as they are exported."""
    exporter, db = make_exporter(kind, folder, pricing, port)
    base = None
    for batch in span_batches(spans, size):
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise SystemExit(f"{kind}: export failed")
        if base is None:  # after the first batch: imports, caches and the ingester exist
            gc.collect()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM, the peak
            base = _rss_kb("VmRSS")
    exporter.force_flush(120_000)
    grown = (_rss_kb("VmHWM") - (base or 0)) / 1024
    exporter.shutdown()
    if db is not None:
        check(db, spans)
    return {"rss_mb": grown}


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


def check(path: Path, expected: int) -> None:
    con = store.connect(path, read_only=True)
    try:
        got = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        con.close()
    if got != expected:
        raise SystemExit(f"{path}: {got} rows, expected {expected}")


def _child(args: argparse.Namespace, *what: str) -> dict:
    cmd = [sys.executable, __file__, "--pricing", args.pricing, "--port", str(args.port), *what]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-spans", type=int, default=1_000_000, help="0: skip the RSS runs")
    parser.add_argument("--rss-batch", type=int, default=2048)
    parser.add_argument("--pricing", default=str(ROOT / "tests" / "data" / "test_prices.toml"))
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)  # kind, spans, batch, folder
    parser.add_argument("--rss-worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.sink:
        serve_sink()
        return 0
    if args.worker or args.rss_worker:
        kind, spans, size, folder = args.worker or args.rss_worker
        pricing = load_pricing([args.pricing], bundled=False, use_env=False)
        run = measure if args.worker else measure_rss
        print(json.dumps(run(kind, int(spans), int(size), Path(folder), pricing, args.port)))
        return 0

    sink = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
    try:
        args.port = int(sink.stdout.readline())
        print(f"cpus {os.cpu_count()}, load {_load()} at start", flush=True)
        print(
            f"{'batch':>6} {'exporter':>9} {'spans/s':>9} {'thread us':>10} {'cpu us':>7} {'vs duckdb':>10}"
            f" {'first ms':>9}"
        )
        with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
            for size in args.batch:
                runs: dict[str, list[dict]] = {k: [] for k in (*KINDS, "ceiling", "map")}
                for r in range(args.repeat):
                    order = (*KINDS, "ceiling", "map")
                    for kind in order if r % 2 == 0 else reversed(order):
                        runs[kind].append(_child(args, "--worker", kind, str(args.spans), str(size), tmp))
                ours = statistics.median(x["spans_s"] for x in runs["duckdb"])
                for kind in (*KINDS, "ceiling"):
                    rate = statistics.median(x["spans_s"] for x in runs[kind])
                    thread = cpu = first = ""
                    if kind in KINDS:
                        thread = f"{statistics.median(x['thread_us'] for x in runs[kind]):.1f}"
                        cpu = f"{statistics.median(x['cpu_us'] for x in runs[kind]):.1f}"
                        first = f"{statistics.median(x['first_ms'] for x in runs[kind]):.0f}"
                    print(
                        f"{size:>6} {kind:>9} {rate:>9,.0f} {thread:>10} {cpu:>7} {ours / rate:>9.2f}x"
                        f" {first:>9}"
                    )
                mapping = min(x["map_us"] for x in runs["map"])
                print(f"{size:>6} {'map':>9} {'':>9} {mapping:>10.2f}  (CPU us/span, best of {args.repeat})")
            if args.rss_spans:
                for kind in KINDS:
                    got = _child(args, "--rss-worker", kind, str(args.rss_spans), str(args.rss_batch), tmp)
                    grown = got["rss_mb"]
                    print(f"rss growth over {args.rss_spans:,} spans, {kind}: {grown:.0f} MB", flush=True)
        print(f"load {_load()} at end")
    finally:
        sink.terminate()
        sink.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
