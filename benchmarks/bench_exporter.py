"""DuckDBSpanExporter throughput: ReadableSpan -> committed rows, against the raw-insert ceiling.

    python benchmarks/bench_exporter.py [--spans 163840] [--batch 512 2048] [--repeat 3]

For each batch size:

- exporter: ``export()`` every batch (mapping, cost, durable spool file), then
  ``force_flush()`` until every row is committed in ``spans``; the clock covers all of it,
  including the background ingester's work.
- ceiling: the same rows, already mapped to Arrow tables before the clock starts, inserted
  batch by batch (``INSERT INTO spans BY NAME SELECT * FROM tbl``, one commit per batch) on a
  connection opened once; the clock stops after close (the final checkpoint).

Spans come from a real TracerProvider: per agent run 1 invoke_agent span, 3 chat spans
(tokens, cache reads, no cost stamped, so the exporter prices them) and 3 execute_tool spans.
Figures are the median of ``--repeat`` runs; CPU is the whole process's (the ingester thread
included) per span, over the exporter's run. "map" is the CPU of mapping alone (the best of
``--repeat``): what a change to the row mapping moves, measurable on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.spans.rows import SpanMapper
from otel_costattr.store import database as store
from otel_costattr.store.exporter import DuckDBSpanExporter

ROOT = Path(__file__).resolve().parents[1]


def make_spans(count: int) -> list[ReadableSpan]:
    """``count`` finished spans of agent runs, from a real TracerProvider."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench.agent", "1.0")
    # Counted, not asked: get_finished_spans() copies every span so far (quadratic).
    per_run = 7
    for run in range(1, -(-count // per_run) + 1):
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
    provider.shutdown()
    return list(memory.get_finished_spans())[:count]


def batches(spans: list[ReadableSpan], size: int) -> list[list[ReadableSpan]]:
    return [spans[i : i + size] for i in range(0, len(spans), size)]


def run_exporter(
    folder: Path, spans: list[ReadableSpan], size: int, pricing: PriceTable
) -> tuple[float, float]:
    """(spans/s, process CPU µs per span) of export() + force_flush() over ``spans``."""
    path = folder / f"exporter-{size}-{time.monotonic_ns()}.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=pricing)
    work = batches(spans, size)
    start = time.perf_counter()
    cpu_start = time.process_time()  # the whole process: the ingester thread counts too
    for batch in work:
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise SystemExit("export failed")
    if not exporter.force_flush(60_000):
        raise SystemExit("force_flush failed")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    exporter.shutdown()
    check(path, len(spans))
    return len(spans) / elapsed, cpu / len(spans) * 1e6


def run_ceiling(folder: Path, spans: list[ReadableSpan], size: int, pricing: PriceTable) -> float:
    path = folder / f"ceiling-{size}-{time.monotonic_ns()}.duckdb"
    store.connect(path).close()
    mapper = SpanMapper(pricing)
    tables = [mapper.table(batch) for batch in batches(spans, size)]
    start = time.perf_counter()
    con = duckdb.connect(str(path))
    for tbl in tables:  # noqa: B007 - DuckDB reads the local by name
        con.execute("INSERT INTO spans BY NAME SELECT * FROM tbl")
    con.close()
    elapsed = time.perf_counter() - start
    check(path, len(spans))
    return len(spans) / elapsed


def run_mapping(spans: list[ReadableSpan], size: int, pricing: PriceTable) -> float:
    """CPU µs per span of mapping alone (spans -> Arrow tables, as export() does it): no I/O,
    no ingester thread, so the steadiest of the three figures on a busy machine."""
    mapper = SpanMapper(pricing)
    mapper.table(spans[:size])  # warm the key caches, as a running exporter has them
    work = batches(spans, size)
    start = time.process_time()
    for batch in work:
        mapper.table(batch)
    return (time.process_time() - start) / len(spans) * 1e6


def check(path: Path, expected: int) -> None:
    con = store.connect(path, read_only=True)
    try:
        got = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        con.close()
    if got != expected:
        raise SystemExit(f"{path}: {got} rows, expected {expected}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=163_840)
    parser.add_argument("--batch", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pricing", default=str(ROOT / "tests" / "data" / "test_prices.toml"))
    args = parser.parse_args(argv)

    pricing = load_pricing([args.pricing], bundled=False, use_env=False)
    print(f"making {args.spans} spans ...", file=sys.stderr)
    spans = make_spans(args.spans)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
    print(
        f"{'batch':>6} {'exporter spans/s':>17} {'cpu us/span':>12} {'map cpu us/span':>16}"
        f" {'ceiling spans/s':>16} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
        folder = Path(tmp)
        for size in args.batch:
            ours = [run_exporter(folder, spans, size, pricing) for _ in range(args.repeat)]
            ceiling = [run_ceiling(folder, spans, size, pricing) for _ in range(args.repeat)]
            a, b = statistics.median(r for r, _ in ours), statistics.median(ceiling)
            cpu = statistics.median(c for _, c in ours)
            mapping = min(run_mapping(spans, size, pricing) for _ in range(args.repeat))
            print(
                f"{size:>6} {a:>17,.0f} {cpu:>12.1f} {mapping:>16.2f} {b:>16,.0f} {a / b:>6.2f}", flush=True
            )
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
