"""DuckDBSpanExporter across processes: readers during export, concurrent writers, SIGKILL.

Every other process is a real ``sys.executable`` child; nothing is timed, children are told
when to stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_costattr.store import database as store

PRICES = str(Path(__file__).parent / "data" / "test_prices.toml")

PRELUDE = textwrap.dedent(
    """
    import sys, threading
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from otel_costattr.store.exporter import DuckDBSpanExporter
    from otel_costattr.pricing.table import load_pricing

    path, prices, name = sys.argv[1], sys.argv[2], sys.argv[3]
    table = load_pricing([prices], bundled=False, use_env=False)
    CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-large",
            "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
            "app.feature": name}
    """
)

# A gunicorn-style worker: its own provider and BatchSpanProcessor, same database file.
WORKER = PRELUDE + textwrap.dedent(
    """
    count = int(sys.argv[4])
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=0.02)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(
        exporter, max_queue_size=count + 1, max_export_batch_size=256, schedule_delay_millis=5))
    tracer = provider.get_tracer(name)
    for i in range(count):
        with tracer.start_as_current_span("chat", attributes=CHAT):
            pass
    provider.shutdown()
    print(exporter.dropped_spans, flush=True)
    """
)

# Exports batch after batch, printing the span ids of each acknowledged batch, until told
# to stop on stdin (or killed).
STREAM = PRELUDE + textwrap.dedent(
    """
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(name)
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=0.01)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    acked = 0
    while not stop.is_set():
        for _ in range(100):
            with tracer.start_as_current_span("chat", attributes=CHAT):
                pass
        spans = memory.get_finished_spans()
        memory.clear()
        if exporter.export(spans) is SpanExportResult.SUCCESS:
            acked += len(spans)
            print(" ".join(format(s.context.span_id, "016x") for s in spans), flush=True)
    exporter.shutdown()
    print("total", acked, exporter.dropped_spans, flush=True)
    """
)


def child(script: str, path: Path, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(path), PRICES, name, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_four_processes_exporting_at_once_land_every_span(tmp_path):
    path = tmp_path / "spans.duckdb"
    per_worker = 3000
    workers = [child(WORKER, path, f"w{i}", str(per_worker)) for i in range(4)]
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        assert out.strip() == "0"  # nothing dropped
    con = store.connect(path, read_only=True)
    try:
        per_feature = con.execute(
            "SELECT feature, count(*), count(DISTINCT span_id) FROM spans GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert per_feature == [(f"w{i}", per_worker, per_worker) for i in range(4)]
    assert store.pending_spool(path) == []


def test_a_reader_in_another_process_reads_while_spans_are_exported(tmp_path):
    path = tmp_path / "spans.duckdb"
    with child(STREAM, path, "stream") as writer:
        assert writer.stdout.readline()  # exporting has begun
        seen = []
        for _ in range(5):
            for _ in range(3):
                assert writer.stdout.readline()  # a few more batches acknowledged
            con = store.connect(path, read_only=True, retry=60)  # waits out ingestion, briefly
            try:
                seen.append(con.execute("SELECT count(*) FROM spans").fetchone()[0])
            finally:
                con.close()
        assert seen == sorted(seen)
        assert seen[-1] > 0
        out, _ = writer.communicate("stop\n", timeout=120)
    assert writer.returncode == 0
    total, dropped = out.strip().splitlines()[-1].split()[1:]
    assert dropped == "0"
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == int(total)
    finally:
        con.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_every_acknowledged_span_survives_sigkill(tmp_path):
    path = tmp_path / "spans.duckdb"
    acked: list[str] = []
    with child(STREAM, path, "doomed") as doomed:
        for _ in range(40):
            acked += doomed.stdout.readline().split()
        os.kill(doomed.pid, signal.SIGKILL)  # mid-export, perhaps mid-ingest
        doomed.communicate(timeout=60)
    assert doomed.returncode == -signal.SIGKILL
    assert len(acked) == 4000
    con = store.connect(path)  # reopening recovers the WAL and ingests what was spooled
    try:
        con.execute("CREATE TEMP TABLE acked (span_id VARCHAR)")
        con.executemany("INSERT INTO acked VALUES (?)", [[a] for a in acked])
        missing = con.execute(
            "SELECT count(*) FROM acked WHERE span_id NOT IN (SELECT span_id FROM spans)"
        ).fetchone()[0]
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans"
        ).fetchone()
    finally:
        con.close()
    assert missing == 0
    assert total == distinct


# Exports batch after batch and exits without shutdown() while its ingester is busy: an
# exporter used alone, as under TracerProvider(shutdown_on_exit=False).
EXIT_BUSY = PRELUDE + textwrap.dedent(
    """
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=0.02)
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(name)
    for _ in range(20):
        for _ in range(500):
            tracer.start_span("chat", attributes=dict(CHAT, pad="x" * 300)).end()
        assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
        memory.clear()
    sys.exit(0)
    """
)


def test_exiting_without_shutdown_while_the_ingester_works_exits_cleanly(tmp_path):
    """A daemon ingester inside DuckDB when the interpreter exits aborted the process
    (status 134, 'FATAL: exception not rethrown'; a review saw 8 exits of 10): the exporter
    stops it at exit. Every span acknowledged is in the table once the next writer opens it."""
    path = tmp_path / "spans.duckdb"
    for run in range(3):
        proc = child(EXIT_BUSY, path, f"run{run}")
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, (run, proc.returncode)
    con = store.connect(path)  # read-write: takes what the spool still holds
    try:
        assert con.execute("SELECT count(DISTINCT span_id) FROM spans").fetchone() == (30_000,)
    finally:
        con.close()


# Drops every batch but the first (the spool "full" at one byte, no memory buffer), then
# exits without shutdown().
EXIT_DROPPING = PRELUDE + textwrap.dedent(
    """
    exporter = DuckDBSpanExporter(path, pricing=table, max_spool_bytes=1, max_buffered_spans=0,
                                  ingest_interval=30)
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(name)
    for _ in range(5):
        for _ in range(100):
            tracer.start_span("chat", attributes=CHAT).end()
        exporter.export(memory.get_finished_spans())
        memory.clear()
    assert exporter.dropped_spans == 400
    """
)


FORKS_THEN_EXITS = textwrap.dedent(
    """
    import os
    for _ in range(2):  # a pre-forking server's workers, which exit through sys.exit
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        os.waitpid(pid, 0)
    """
)


@pytest.mark.parametrize("forks", [False, True])
def test_drops_of_an_exporter_never_shut_down_are_journaled_at_exit_once(tmp_path, forks):
    """`store status` said 0 dropped beside 400 spans the exporter dropped: its ingester,
    which journals them, was stopped at exit first (a review). Then each forked child that
    exited journaled the parent's drops again (1,200 for 400: the next review)."""
    from otel_costattr.store import maintenance

    path = tmp_path / "spans.duckdb"
    proc = child(EXIT_DROPPING + (FORKS_THEN_EXITS if forks else ""), path, "drops")
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    status = maintenance.status(path)
    assert (status.dropped_spans, status.healthy) == (400, False)
