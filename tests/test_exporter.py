"""DuckDBSpanExporter in one process: real TracerProvider, real DuckDB files under tmp_path."""

from __future__ import annotations

import enum
import json
import logging
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import pyarrow as pa
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr.sdk.autoconfig import ZeroCodeDuckDBSpanExporter
from otel_costattr.spans import rows
from otel_costattr.spans.rows import SpanMapper
from otel_costattr.store import database as store
from otel_costattr.store import exporter as exporter_module
from otel_costattr.store import ingest, schema, spool
from otel_costattr.store.exporter import ENV_CAPTURE_CONTENT, ENV_PATH, DuckDBSpanExporter

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.input.messages": '[{"role": "user", "content": "secret"}]',
    "app.feature": "search",
}
T0 = 1_782_900_000_000_000_000  # 2026-07-01


def make_spans(count: int, attrs: dict | None = None) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(count):
        span = tracer.start_span(f"chat {i}", attributes=attrs or CHAT, start_time=T0 + i)
        span.end(end_time=T0 + i + 1000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def query(path: Path, sql: str) -> list[tuple]:
    con = store.connect(path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def exporters(tmp_path, table):
    """Build exporters on tmp_path/spans.duckdb; every one is shut down afterwards."""
    made = []

    def build(**kw) -> DuckDBSpanExporter:
        kw.setdefault("pricing", table)
        exporter = DuckDBSpanExporter(kw.pop("path", tmp_path / "spans.duckdb"), **kw)
        made.append(exporter)
        return exporter

    yield build
    for exporter in made:
        exporter.shutdown()


def test_batch_span_processor_lands_every_span_priced(tmp_path, exporters):
    exporter = exporters()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=10_000))
    tracer = provider.get_tracer("app")
    for _ in range(1000):
        with tracer.start_as_current_span("chat", attributes=CHAT):
            pass
    assert provider.force_flush()
    rows = query(
        tmp_path / "spans.duckdb",
        "SELECT count(*), count(DISTINCT span_id), min(cost_source), min(feature) FROM spans",
    )
    assert rows == [(1000, 1000, "exporter", "search")]
    provider.shutdown()
    assert exporter.dropped_spans == 0


def test_stored_rows_equal_the_mapped_rows_column_for_column(tmp_path, exporters, table):
    attrs = {**CHAT, "gen_ai.agent.step": 3, "gen_ai.usage.cache_creation.input_tokens": 100}
    spans = make_spans(3, attrs) + make_spans(2, {"gen_ai.operation.name": "execute_tool"})
    exporter = exporters()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    con = store.connect(tmp_path / "spans.duckdb", read_only=True)
    try:
        # the store's, not the row's (tests/test_attribute_columns.py checks the attr_* ones)
        derived = ", ".join(c.name for c in (*schema.IDENTITY, *schema.ATTRIBUTES))
        cursor = con.execute(f"SELECT * EXCLUDE ({derived}) FROM spans ORDER BY start_time, name")
        names = [d[0] for d in cursor.description]
        stored = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    mapper = SpanMapper(table)
    expected = sorted((mapper.row(s) for s in spans), key=lambda r: (r["start_time"], r["name"]))
    json_columns = ("attributes", "resource", "events", "links")
    for got, want in zip(stored, expected, strict=True):
        assert {k: json.loads(got[k]) for k in json_columns} == {k: json.loads(want[k]) for k in json_columns}
        assert {k: v for k, v in got.items() if k not in json_columns} == {
            k: v for k, v in want.items() if k not in json_columns
        }
    assert stored[0]["cost_usd"] == Decimal("0.00365")  # 100 x 2 + 1000 x 0.2 + 100 x 2.5 + 300 x 10


def test_content_is_not_stored_by_default(tmp_path, exporters):
    exporter = exporters()
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    for (attributes,) in query(tmp_path / "spans.duckdb", "SELECT attributes FROM spans"):
        stored = json.loads(attributes)
        assert "gen_ai.input.messages" not in stored
        assert stored["gen_ai.request.model"] == "acme-large"
    assert "secret" not in (tmp_path / "spans.duckdb").read_bytes().decode("latin-1")


def test_content_is_stored_when_asked(tmp_path, exporters):
    exporter = exporters(capture_content=True)
    exporter.export(make_spans(1))
    assert exporter.force_flush()
    (attributes,) = query(tmp_path / "spans.duckdb", "SELECT attributes FROM spans")[0]
    assert json.loads(attributes)["gen_ai.input.messages"] == CHAT["gen_ai.input.messages"]


def test_exporting_the_same_spans_again_stores_them_once(tmp_path, exporters):
    exporter = exporters()
    spans = make_spans(50)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans[10:30]) is SpanExportResult.SUCCESS  # a retry, same round
    assert exporter.force_flush()
    assert exporter.export(spans) is SpanExportResult.SUCCESS  # a retry after ingestion
    assert exporter.force_flush()
    other = exporters()  # another exporter on the same file
    assert other.export(spans[:5]) is SpanExportResult.SUCCESS
    assert other.force_flush()
    path = tmp_path / "spans.duckdb"
    assert query(path, "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans") == [(50, 50)]


def test_export_after_shutdown_fails_without_raising(exporters):
    exporter = exporters()
    exporter.shutdown()
    exporter.shutdown()  # twice is fine
    assert exporter.export(make_spans(1)) is SpanExportResult.FAILURE
    assert exporter.dropped_spans == 1  # the SDK does not retry: counted
    assert spool.journal_summary(exporter.path).dropped_spans == 1  # the journal `store status` reads
    assert exporter.export(None) is SpanExportResult.FAILURE  # type: ignore[arg-type]


def test_an_export_that_overlaps_shutdown_is_counted_and_journaled(exporters, monkeypatch):
    """An export already past its first check when shutdown runs (a SimpleSpanProcessor on
    another thread, at exit): its batch was put in a buffer nothing would write again,
    uncounted. Now dropped, counted and journaled."""
    exporter = exporters(max_spool_bytes=0)  # the spool refuses: the batch goes to memory
    real = exporter._mapper.table

    def table(records):
        out = real(records)
        exporter.shutdown()  # shutdown runs while this export is mapping
        return out

    monkeypatch.setattr(exporter._mapper, "table", table)
    assert exporter.export(make_spans(7)) is SpanExportResult.FAILURE
    assert exporter.buffered_spans == 0 and exporter.dropped_spans == 7
    assert spool.journal_summary(exporter.path).dropped_spans == 7


def test_drops_after_shutdown_from_many_threads_are_journaled_once(exporters):
    exporter = exporters()
    exporter.shutdown()
    spans = make_spans(1)

    with ThreadPoolExecutor(4) as pool:  # four threads at once, 200 exports each
        list(pool.map(lambda _: exporter.export(spans), range(800)))
    assert exporter.dropped_spans == 800
    assert spool.journal_summary(exporter.path).dropped_spans == 800


def test_a_batch_that_cannot_be_mapped_is_counted_dropped(tmp_path, exporters, monkeypatch, caplog):
    """Whatever makes a whole batch fail before it is kept, its spans are counted: the SDK
    drops a batch whose export fails."""
    exporter = exporters()
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS

    def table(records):
        raise RuntimeError("a column the mapper cannot build")

    monkeypatch.setattr(exporter._mapper, "table", table)
    assert exporter.export(make_spans(5)) is SpanExportResult.FAILURE
    assert exporter.dropped_spans == 5
    assert any("dropped 5 spans" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(3,)]


def test_a_value_no_column_takes_costs_only_its_span(tmp_path, exporters, monkeypatch, table):
    """Whatever value an Arrow column refuses (a lone surrogate was one) costs its own span,
    counted, and not the batch: the batch is built again a row at a time."""
    real = rows.to_arrow

    def to_arrow(name, values, kind):  # a value this pyarrow cannot take, in one span's name
        if name == "name" and "chat 3" in values:
            raise pa.ArrowInvalid("no column takes this")
        return real(name, values, kind)

    monkeypatch.setattr(rows, "to_arrow", to_arrow)
    mapper = SpanMapper(table)
    built = mapper.table(make_spans(5000))  # found by halving, built as one table again
    assert (built.num_rows, mapper.errors, built.column("name").num_chunks) == (4999, 1, 1)
    exporter = exporters()
    assert exporter.export(make_spans(40)) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert exporter.dropped_spans == 1
    names = {n for (n,) in query(tmp_path / "spans.duckdb", "SELECT name FROM spans")}
    assert len(names) == 39 and "chat 3" not in names


class Step(str):
    """A str subclass (as an Enum(str) member is)."""


def test_a_lone_surrogate_anywhere_keeps_the_span(tmp_path, exporters):
    """Python decodes file names, argv and the environment that are not UTF-8 into lone
    surrogates, which UTF-8 (and Arrow) cannot hold: the batch failed whole, uncounted. Each
    becomes U+FFFD now, wherever it is, and every span is stored."""
    provider = TracerProvider(resource=Resource.create({"service.name": "svc\udce9"}), shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scope\ud800")
    attrs = {**CHAT, "gen_ai.request.model": "acme-large\udcff", "user.id": "u\ud800", "k\udc80": "v"}
    with tracer.start_as_current_span("chat \udc80", attributes=attrs, start_time=T0) as span:
        span.add_event("retry \ud800", {"why": "\udcff"})
    tracer.start_span(Step("plain \udcff"), start_time=T0).end(end_time=T0 + 10)  # a str subclass
    provider.shutdown()
    exporter = exporters()
    assert exporter.export(memory.get_finished_spans()) is SpanExportResult.SUCCESS
    assert exporter.force_flush() and exporter.dropped_spans == 0
    rows = query(
        tmp_path / "spans.duckdb",
        "SELECT name, service_name, request_model, cost_status, events, attributes FROM spans ORDER BY name",
    )
    assert len(rows) == 2
    assert rows[1][0] == "plain \ufffd"
    name, service, model, status, events, attributes = rows[0]
    assert (name, service, model) == ("chat \ufffd", "svc\ufffd", "acme-large\ufffd")
    assert status != "ok"  # an unknown model, flagged
    assert "retry \ufffd" in events and "\ufffd" in json.loads(attributes)["user.id"]


def test_nothing_raises_into_the_application(tmp_path, exporters, caplog):
    exporter = exporters()
    assert exporter.export(iter(make_spans(3))) is SpanExportResult.SUCCESS  # no length: all kept
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(3,)]

    def broken():  # an iterator that fails after two spans: those two are lost, and counted
        yield from make_spans(2)
        raise RuntimeError("the caller's iterator broke")

    assert exporter.export(broken()) is SpanExportResult.FAILURE
    assert exporter.dropped_spans == 2
    caplog.clear()
    assert exporter.export(None) is SpanExportResult.FAILURE  # type: ignore[arg-type]
    result = exporter.export([object(), *make_spans(2)])  # one span the mapper cannot read
    assert result is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(5,)]
    assert exporter.dropped_spans == 3
    assert any("could not map span" in r.getMessage() for r in caplog.records)


def test_a_full_spool_buffers_in_memory_then_drops_counting_and_logging(tmp_path, exporters, caplog):
    exporter = exporters(max_spool_bytes=0, max_buffered_spans=150)
    spans = make_spans(200)
    with caplog.at_level(logging.WARNING, logger="otel_costattr.store.exporter"):
        assert exporter.export(spans[:100]) is SpanExportResult.FAILURE  # kept in memory
        assert exporter.buffered_spans == 100
        assert exporter.export(spans[100:]) is SpanExportResult.FAILURE  # past the bound
    assert exporter.dropped_spans == 100
    assert any("dropped 100 spans" in r.getMessage() for r in caplog.records)
    assert exporter.force_flush()  # the buffered batch goes straight into the table
    assert exporter.buffered_spans == 0
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(100,)]


def test_an_export_while_the_buffer_is_written_loses_no_batch(tmp_path, exporters, monkeypatch):
    """force_flush writes the memory buffer straight into the table; an export meanwhile
    spools the batch being written (the spool has room again) and takes it off the buffer.
    The writer must not then take off the next batch, never written: it was lost uncounted,
    and the buffered count went below zero."""
    exporter = exporters(max_spool_bytes=1, ingest_interval=3600)
    spans = make_spans(70)
    assert exporter.export(spans[:10]) is SpanExportResult.SUCCESS  # the spool is full now
    assert exporter.export(spans[10:40]) is SpanExportResult.FAILURE  # A, kept in memory
    assert exporter.export(spans[40:60]) is SpanExportResult.FAILURE  # B, kept in memory
    real = ingest.insert_table
    exported = []

    def insert_table(con, table):  # while A is being written, the application exports C
        if not exported:
            worker = threading.Thread(target=lambda: exported.append(exporter.export(spans[60:])))
            worker.start()
            worker.join()
        return real(con, table)

    monkeypatch.setattr(ingest, "insert_table", insert_table)
    assert exporter.force_flush()
    assert exported == [SpanExportResult.FAILURE]  # A went to the spool again, C to memory
    assert exporter.force_flush()
    assert exporter.buffered_spans == 0 and exporter.dropped_spans == 0
    stored = query(tmp_path / "spans.duckdb", "SELECT count(*), count(DISTINCT span_id) FROM spans")
    assert stored == [(70, 70)]


def test_a_flush_waiting_for_a_backlog_ends_the_ingesters_pauses(tmp_path, exporters, monkeypatch):
    """Between two ingests of a backlog the background ingester pauses for other processes'
    readers; not while the application waits in force_flush (50 ms of a 65k-span flush)."""
    monkeypatch.setattr(exporter_module, "_BACKLOG_PAUSE", 60.0)  # a pause the flush would see
    exporter = exporters(ingest_interval=3600)
    spans = make_spans(40)
    for i in range(0, 40, 10):
        assert exporter.export(spans[i : i + 10]) is SpanExportResult.SUCCESS
    real = ingest.ingest
    started, go_on = threading.Event(), threading.Event()
    calls = []

    def one_file(path, **kw):  # a backlog: one file an ingest, the first held for the flush
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            started.set()
            go_on.wait(30)
        return real(path, **{**kw, "max_files": 1})

    monkeypatch.setattr(ingest, "ingest", one_file)
    exporter._wake.ring()  # the background round begins, and is held in its first ingest
    assert started.wait(30)
    flushed = []
    flusher = threading.Thread(target=lambda: flushed.append(exporter.force_flush()), name="flusher")
    flusher.start()
    while not exporter._flushes_waiting:
        flusher.join(0.01)
    go_on.set()
    flusher.join(30)
    assert flushed == [True]
    assert calls == ["otel-costattr-ingest"] * 4  # the round went on, without pausing
    assert not exporter._flushes_waiting
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(40,)]


def _hold_the_round(exporter, monkeypatch, *, then=None):
    """Make the background round ingest one file a call and hold its first call until the
    returned event is set; ``then(n)`` runs after the n-th call's ingest."""
    real = ingest.ingest
    started, go_on = threading.Event(), threading.Event()
    calls = []

    def one_file(path, **kw):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            started.set()
            go_on.wait(60)
        handled = real(path, **{**kw, "max_files": 1})
        if then is not None:
            then(len(calls))
        return handled

    monkeypatch.setattr(ingest, "ingest", one_file)
    exporter._wake.ring()
    assert started.wait(30)
    return go_on, calls


def test_a_flush_waits_for_the_round_no_longer_than_its_timeout(tmp_path, exporters, monkeypatch):
    """force_flush(timeout_millis) bounds its wait for the background round too: the round
    held the turn until the spool was empty, and a flush waited for all of it (7.5 s for
    force_flush(500) in a review; without end while spans kept coming)."""
    exporter = exporters(ingest_interval=3600)
    spans = make_spans(30)
    for i in range(0, 30, 10):
        assert exporter.export(spans[i : i + 10]) is SpanExportResult.SUCCESS
    go_on, calls = _hold_the_round(exporter, monkeypatch)
    flushed = []
    flusher = threading.Thread(target=lambda: flushed.append(exporter.force_flush(timeout_millis=200)))
    flusher.start()
    flusher.join(30)  # the round is still held in its first ingest meanwhile
    alive = flusher.is_alive()
    go_on.set()
    flusher.join(60)
    assert not alive and flushed == [False]
    assert exporter._flushes_waiting == 0
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(30,)]


def test_a_flush_is_done_once_its_files_are_in_while_the_round_goes_on(tmp_path, exporters, monkeypatch):
    """Under continuous export the round never runs out of files; a flush is done (True) once
    the files pending at its call are in the table (their spool files are deleted only after
    the commit), not when the spool is empty."""
    exporter = exporters(ingest_interval=3600)
    spans = make_spans(200)
    for i in range(0, 40, 10):
        assert exporter.export(spans[i : i + 10]) is SpanExportResult.SUCCESS
    returned, ended = threading.Event(), threading.Event()

    def keep_exporting(n):  # each ingest of one file spools another: the spool stays at 4
        if n <= 16:
            assert exporter.export(spans[30 + 10 * n : 40 + 10 * n]) is SpanExportResult.SUCCESS
        if n == 12:  # the round stays here until the flush has answered (or 60 s)
            returned.wait(60)
        if n == 20:  # the last of the 20 files
            ended.set()

    go_on, calls = _hold_the_round(exporter, monkeypatch, then=keep_exporting)
    mine = set(store.pending_spool(exporter.path))
    flushed = []

    def flush():
        flushed.append(exporter.force_flush())
        flushed.append(mine & set(store.pending_spool(exporter.path)))
        returned.set()

    flusher = threading.Thread(target=flush)
    flusher.start()
    while not exporter._flushes_waiting:
        flusher.join(0.01)
    go_on.set()
    assert returned.wait(30), "the flush waited for the round to end"
    assert len(mine) == 4 and flushed == [True, set()] and len(calls) <= 12
    flusher.join(30)
    assert ended.wait(30)  # the round went on to the end of the exports
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*), count(DISTINCT name) FROM spans") == [
        (200, 200)
    ]


def _held_turn(exporter):
    """Hold the exporter's turn from another thread, as a long background round would;
    returns the event that lets it go."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with exporter._turn:
            held.set()
            release.wait(60)

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(30)
    return release


def _waiting_flush(exporter, timeout_millis: int) -> tuple[threading.Thread, list]:
    """A force_flush on another thread, returned once it waits for the turn; its answer
    lands in the list."""
    flushed: list = []
    flusher = threading.Thread(target=lambda: flushed.append(exporter.force_flush(timeout_millis)))
    flusher.start()
    while not exporter._flushes_waiting:
        flusher.join(0.01)
    return flusher, flushed


def test_a_buffer_spooled_while_the_flush_waits_is_not_taken_for_written(tmp_path, exporters):
    """A flush waiting to write the memory buffer took an empty buffer for written; an export
    meanwhile had moved it into the spool, not the table, and the flush answered True (a
    review's reproduction)."""
    exporter = exporters(ingest_interval=3600)
    spans = make_spans(20)
    exporter._spool_estimate = 2**62  # the spool looks full (another process's backlog)
    assert exporter.export(spans[:10]) is SpanExportResult.FAILURE and exporter.buffered_spans == 10
    release = _held_turn(exporter)
    flusher, flushed = _waiting_flush(exporter, 1000)
    exporter._spool_estimate = 0  # room again (as a round's end finds): the next export
    assert exporter.export(spans[10:]) is SpanExportResult.SUCCESS  # spools the buffer first
    assert exporter.buffered_spans == 0
    flusher.join(30)
    pending = len(store.pending_spool(exporter.path))
    release.set()
    assert flushed == [False] and pending == 2  # nothing is in the table: the turn was held
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(DISTINCT name) FROM spans") == [(20,)]


def test_a_flush_waiting_while_shutdown_drops_the_buffer_answers_false(exporters):
    """shutdown() on another thread dropped the buffer a flush waited to write; the flush
    took the empty buffer for written and answered True (a review's reproduction), also when
    it looked between the buffer emptied and the drop counted (a second review's)."""
    import time

    exporter = exporters(ingest_interval=3600, lock_timeout=0.2, max_spool_bytes=0)  # no spool
    assert exporter.export(make_spans(10)) is SpanExportResult.FAILURE
    drop = exporter._drop

    def slow_drop(*args):  # a thread switch between emptying the buffer and counting it
        time.sleep(0.3)
        drop(*args)

    exporter._drop = slow_drop
    release = _held_turn(exporter)
    flusher, flushed = _waiting_flush(exporter, 30_000)
    exporter.shutdown()  # its own flush cannot have the turn either: the buffer is dropped
    flusher.join(30)
    release.set()
    assert exporter.dropped_spans == 10 and flushed == [False]


def test_a_flush_called_just_before_shutdown_drops_the_buffer_answers_false(exporters):
    """The flush took its count of what shutdown dropped after its first move of the buffer
    to the spool; a shutdown between its call and that count went unseen, and it answered
    True with 0 rows (a third review's reproduction)."""
    exporter = exporters(ingest_interval=3600, lock_timeout=0.2, max_spool_bytes=0)  # no spool
    assert exporter.export(make_spans(10)) is SpanExportResult.FAILURE
    spool = exporter._spool
    entered, go_on = threading.Event(), threading.Event()

    def held_spool(table):  # the flush's thread, preempted in its first move to the spool
        if threading.current_thread().name == "flusher":
            entered.set()
            go_on.wait(30)
        return spool(table)

    exporter._spool = held_spool
    release = _held_turn(exporter)  # a long round: shutdown cannot write the buffer either
    flushed = []
    flusher = threading.Thread(target=lambda: flushed.append(exporter.force_flush(10_000)), name="flusher")
    flusher.start()
    assert entered.wait(30)
    exporter.shutdown()  # drops the 10 buffered spans
    go_on.set()
    flusher.join(30)
    release.set()
    assert exporter.dropped_spans == 10 and flushed == [False]


def test_a_flush_writes_the_buffer_it_found_not_what_exports_add_meanwhile(exporters, monkeypatch):
    """While the spool is full, exports keep filling the memory buffer; a flush writing it
    wrote until it was empty, past its timeout (force_flush(500) took 7.8 s in a review), and
    then counted what was exported while it ingested the spool as its own (a third)."""
    import time

    other = exporters(ingest_interval=3600)
    assert other.export(make_spans(10)) is SpanExportResult.SUCCESS  # a spool file waits
    exporter = exporters(ingest_interval=3600, max_spool_bytes=0)  # no spool: all in memory
    spans = make_spans(4000)
    real, real_ingest = ingest.insert_table, ingest.ingest
    written = []

    def slow_insert(con, table):  # a slow disk: the exports outpace the writes
        time.sleep(0.02)
        written.append(table.num_rows)
        return real(con, table)

    def slow_ingest(path, **kw):  # the flush ingests that file first, for 1 s
        time.sleep(1)
        return real_ingest(path, **kw)

    monkeypatch.setattr(ingest, "insert_table", slow_insert)
    monkeypatch.setattr(ingest, "ingest", slow_ingest)
    stop = threading.Event()

    def keep_exporting():
        for i in range(0, len(spans), 10):
            if stop.is_set():
                return
            exporter.export(spans[i : i + 10])
            time.sleep(0.001)

    exporting = threading.Thread(target=keep_exporting)
    exporting.start()
    while exporter.buffered_spans < 50:
        exporting.join(0.01)
    found = exporter.buffered_spans // 10  # batches: nothing was written yet
    try:
        flushed = exporter.force_flush(timeout_millis=30_000)
        after = len(written)
        # What exports add while the spool file goes in is not the flush's either, and its
        # deadline stops a write that would outlast it.
        late = exporter.force_flush(timeout_millis=50)
    finally:
        stop.set()
        exporting.join(30)
    assert flushed and found <= after < found + 20  # its batches, and the few exported as it began
    assert not late and len(written) < after + 20


def test_a_flush_that_ingests_itself_stops_once_its_files_are_in(tmp_path, exporters, monkeypatch):
    """A flush holding the turn ingested until the spool was empty: beside a thread that kept
    exporting it ran to its deadline, long after its own files were in."""
    exporter = exporters(ingest_interval=3600)
    spans = make_spans(400)
    for i in range(0, 40, 10):
        assert exporter.export(spans[i : i + 10]) is SpanExportResult.SUCCESS
    real = ingest.ingest
    calls = []

    def one_file(path, **kw):  # each file ingested, the application exports another, 36 more
        handled = real(path, **{**kw, "max_files": 1})
        calls.append(handled)
        if (n := len(calls)) <= 36:
            assert exporter.export(spans[30 + 10 * n : 40 + 10 * n]) is SpanExportResult.SUCCESS
        return handled

    monkeypatch.setattr(ingest, "ingest", one_file)
    assert exporter.force_flush(timeout_millis=60_000)
    assert len(calls) == 4 and len(store.pending_spool(exporter.path)) == 4
    names = ", ".join(f"'chat {i}'" for i in range(40))
    assert query(tmp_path / "spans.duckdb", f"SELECT count(*) FROM spans WHERE name IN ({names})") == [(40,)]


def test_a_flush_waits_for_the_lock_only_what_waiting_for_the_turn_left(tmp_path, exporters, monkeypatch):
    """Writing the buffer, a flush gave the database lock its whole timeout again after it
    had waited for the turn (force_flush(1500) took 2.5 s in a review)."""
    import time

    exporter = exporters(ingest_interval=3600)
    spans = make_spans(10)
    exporter._spool_estimate = 2**62  # the spool looks full (another process's backlog)
    assert exporter.export(spans) is SpanExportResult.FAILURE  # in memory
    real = store.writing
    asked = []

    def writing(path, *, retry=None, **kw):
        asked.append((time.monotonic(), retry.timeout))
        return real(path, retry=retry, **kw)

    monkeypatch.setattr(store, "writing", writing)
    start = time.monotonic()
    release = _held_turn(exporter)
    threading.Timer(0.5, release.set).start()
    assert exporter.force_flush(timeout_millis=1500)
    (at, timeout), *_ = asked
    assert at >= start + 0.5 and at + timeout <= start + 1.5 + 0.1
    monkeypatch.undo()
    assert exporter.force_flush()


class _Interrupt(BaseException):
    """What Ctrl-C raises, as KeyboardInterrupt: neither export nor force_flush catches it."""


def _interrupted(call, *, calls: int, seed: int, longest: float, again: float = 0) -> tuple[int, list]:
    """``call(n)`` for n in range(calls), for 3 s at most, with a SIGALRM raising
    `_Interrupt` into each at a random moment up to ``longest`` seconds, and every ``again``
    seconds after it, if given (a call that hangs is interrupted too, then found by the
    test). Returns how many were interrupted and what the others returned."""
    import random
    import signal
    import time

    def interrupt(*_):
        raise _Interrupt

    before = signal.signal(signal.SIGALRM, interrupt)
    rng = random.Random(seed)
    interrupted, returned = 0, []
    try:
        end = time.monotonic() + 3
        for n in range(calls):
            if time.monotonic() > end:
                break
            try:
                signal.setitimer(signal.ITIMER_REAL, rng.uniform(5e-6, longest), again)
                result = call(n)
                signal.setitimer(signal.ITIMER_REAL, 0)
                returned.append(result)
            except _Interrupt:
                interrupted += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    return interrupted, returned


# The interrupts also land in finalizers (an open spool file's), where Python ignores them.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_anywhere_in_a_flush_waiting_for_the_turn_leaves_nothing_taken(exporters, monkeypatch):
    """An exception a signal handler raises (Ctrl-C) at any point of a flush that waits for
    the turn must leave the turn free and no flush counted as waiting: a timed acquire
    returns before any ``try`` can begin."""
    import time

    exporter = exporters(ingest_interval=3600)
    assert exporter.export(make_spans(1)) is SpanExportResult.SUCCESS
    monkeypatch.setattr(ingest, "ingest", lambda path, **kw: 1)  # the file stays pending
    stop = threading.Event()

    def hold():  # another round holds the turn half of the time
        while not stop.is_set():
            with exporter._turn:
                time.sleep(0.0005)
            time.sleep(0.0005)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        interrupted, _ = _interrupted(
            lambda n: exporter.force_flush(timeout_millis=1), calls=10**9, seed=7, longest=1.5e-3
        )
    finally:
        stop.set()
        holder.join(30)
    taken = []

    def take():  # from another thread: an RLock this thread left taken would let it in
        taken.append(exporter._turn.acquire(timeout=5))
        if taken[-1]:
            exporter._turn.release()

    other = threading.Thread(target=take)
    other.start()
    other.join(30)
    monkeypatch.undo()
    assert interrupted > 50
    assert taken == [True] and not exporter._turn._is_owned()
    assert exporter._flushes_waiting == 0
    assert exporter.force_flush()


# The interrupts also land in finalizers (an open spool file's), where Python ignores them.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_anywhere_in_export_leaves_the_exporter_working(tmp_path, exporters, monkeypatch):
    """An exception a signal handler raises (Ctrl-C on the main thread, where a
    SimpleSpanProcessor exports) at any point of ``export`` must leave the next export and
    the ingester working, and lose nothing acknowledged. The ingester's wake-up was an
    Event, whose ``set`` could be left locked: the next export hung in it."""
    monkeypatch.setattr(exporter_module, "_INGEST_ROWS", 1)  # every export wakes the ingester
    exporter = exporters(ingest_interval=3600, fsync=False)  # more exports in the time
    spans = make_spans(8_050)  # at most 805 exports: the final flush has that many files
    # The interrupts land anywhere up to twice an export's time here, so that some exports
    # finish on a loaded machine too (every one interrupted made `acknowledged` 0).
    took = []
    for k in range(5):
        start = time.perf_counter()
        assert exporter.export(spans[8_000 + 10 * k : 8_010 + 10 * k]) is SpanExportResult.SUCCESS
        took.append(time.perf_counter() - start)
    longest = max(1e-3, 2 * statistics.median(took))
    interrupted, returned = _interrupted(
        lambda n: exporter.export(spans[10 * n : 10 * n + 10]), calls=799, seed=11, longest=longest, again=0.5
    )
    acknowledged = 10 * returned.count(SpanExportResult.SUCCESS) + 50
    results = []
    late = threading.Thread(target=lambda: results.append(exporter.export(spans[7_990:8_000])))
    late.start()
    late.join(30)
    assert interrupted > 50
    assert results == [SpanExportResult.SUCCESS], "the next export hung"
    assert exporter.force_flush(timeout_millis=300_000)  # hundreds of small files, a busy machine
    stored = query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans")[0][0]
    assert stored >= acknowledged + 10 > 60


HOLD = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])
    print("held", flush=True)
    sys.stdin.readline()
    con.close()
    """
)


def _on_a_thread(exporter, work, timeout: float = 60):
    """``work()`` on a thread of its own: its answer, or a failure if it hangs (the exporter
    then marked shut down, so that the fixture's shutdown does not wait for that lock too)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        exporter._shutdown = True
        pytest.fail("hung: the thread waits for a lock it holds itself")
    return out[0]


class _EndsOnCollect:
    """What a stream wrapper does when the collector finalizes it unclosed: it ends its span."""

    def __init__(self, span):
        self.span = span

    def __del__(self):
        self.span.end()


def test_calls_from_inside_the_exporters_lock_never_wait_for_it(tmp_path, exporters, caplog):
    """A finalizer (run by the collector at any allocation) or a signal handler (SIGTERM
    calling the provider's shutdown) can run on a thread inside one of the exporter's locked
    blocks: a span it ends is spooled as any other, a flush answers False at once, and a
    shutdown is left to a later call (the provider's at exit), which does it whole. Before,
    each waited for the lock its own thread held, for ever."""
    exporter = exporters(ingest_interval=3600)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
    stream = _EndsOnCollect(tracer.start_span("chat", attributes=CHAT))

    def inside():
        nonlocal stream
        with exporter._lock:  # the block the finalizer or the handler interrupted
            del stream  # the wrapper finalized: its span ends, SimpleSpanProcessor exports it
            return exporter.force_flush(100), exporter.shutdown()

    with caplog.at_level(logging.WARNING, logger="otel_costattr"):
        assert _on_a_thread(exporter, inside) == (False, None)
    assert "force_flush called on a thread inside" in caplog.text
    assert "shutdown called on a thread inside" in caplog.text
    assert exporter in exporter_module._DEFERRED  # to be shut down at exit, held till then
    assert exporter.export(make_spans(1)) is SpanExportResult.SUCCESS  # not shut down
    provider.shutdown()  # a later shutdown: whole, and the exit need not hold the exporter
    assert exporter not in exporter_module._DEFERRED
    assert query(exporter.path, "SELECT count(*) FROM spans") == [(5,)]
    assert exporter.dropped_spans == 0


_SIGTERM_INSIDE = """
import os, signal, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otel_costattr.store.exporter import DuckDBSpanExporter

path, held = sys.argv[1], sys.argv[2]
exporter = DuckDBSpanExporter(path, ingest_interval=3600)
provider = TracerProvider()  # its shutdown registered at exit, as an application has it
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("t")


def on_sigterm(signum, frame):  # what applications write
    provider.shutdown()
    sys.exit(0)


signal.signal(signal.SIGTERM, on_sigterm)
tracer.start_span("spooled").end()
exporter._max_spool = 0  # the spool full: the next batch is kept in memory
tracer.start_span("in memory").end()
assert exporter.buffered_spans == 1
from otel_costattr.store import database

# An export's block, a flush's round, an open of the store in this process (rollups, alerts).
lock = {"lock": exporter._lock, "turn": exporter._turn, "store": database._path_lock(exporter.path)}[held]
with lock:
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(10**6):  # the handler runs here, on this thread
        pass
print("the handler did not exit")
"""


@pytest.mark.parametrize("held", ["lock", "turn", "store"])
def test_sigterm_inside_the_exporter_shuts_it_down_whole_at_exit(tmp_path, held):
    """SIGTERM's handler (``provider.shutdown(); sys.exit(0)``) run on the thread while it is
    inside the exporter's locked block, a flush's round or an open of the store (which the
    ingester may be waiting for): the shutdown it calls is left to
    the interpreter's exit (the provider's own at-exit shutdown is gone: the handler's call
    unregistered it), which writes everything, the batch held in memory included. Before, the
    first hung for good; the second waited for itself, then left a spool file behind."""
    path = tmp_path / "spans.duckdb"
    script = tmp_path / "app.py"
    script.write_text(_SIGTERM_INSIDE)
    done = subprocess.run(
        [sys.executable, str(script), str(path), held], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "did not exit" not in done.stdout and "spool files wait in" not in done.stderr, done.stderr
    assert "shutdown called on a thread inside" in done.stderr  # it was left to the exit
    assert query(path, "SELECT name FROM spans ORDER BY name") == [("in memory",), ("spooled",)]
    assert spool.journal_summary(path).dropped_spans == 0


def test_a_batch_the_spool_refuses_inside_the_lock_is_dropped_and_counted(exporters, monkeypatch):
    """Inside a locked block no count may change but its own: a batch the spool refuses there
    is not kept in memory (the buffer is what the block may be changing), it is counted."""
    exporter = exporters(ingest_interval=3600)

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_spool", refuse)

    def inside():
        with exporter._lock:
            return exporter.export(make_spans(2))

    assert _on_a_thread(exporter, inside) is SpanExportResult.FAILURE
    assert (exporter.dropped_spans, exporter.buffered_spans) == (2, 0)


def test_a_held_lock_never_blocks_export_and_nothing_is_lost(tmp_path, exporters, caplog):
    path = tmp_path / "spans.duckdb"
    exporter = exporters(max_spool_bytes=1)  # the spool takes one batch, memory the next
    spans = make_spans(60)
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout.readline().strip() == "held"
        assert exporter.export(spans[:20]) is SpanExportResult.SUCCESS  # durable in the spool
        assert exporter.export(spans[20:40]) is SpanExportResult.FAILURE  # kept in memory
        assert exporter.buffered_spans == 20
        assert exporter.force_flush(timeout_millis=200) is False  # still locked
        late = exporters(lock_timeout=0.1)  # constructed while locked: a warning, no error
        assert late.export(spans[40:]) is SpanExportResult.SUCCESS
        holder.communicate("\n", timeout=30)
    assert any("locked by another process" in r.getMessage() for r in caplog.records)
    assert exporter.force_flush()
    assert exporter.buffered_spans == 0 and exporter.dropped_spans == 0
    assert query(path, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(60, 60)]


# -- construction and configuration ---------------------------------------------------------


def test_a_file_that_is_not_duckdb_is_a_clear_error(tmp_path, table):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(ValueError, match="not a DuckDB database") as info:
        DuckDBSpanExporter(path, pricing=table)
    assert str(path) in str(info.value)


def test_an_unwritable_path_is_a_clear_error(tmp_path, table):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "spans.duckdb"
    with pytest.raises(ValueError, match="cannot create") as info:
        DuckDBSpanExporter(target, pricing=table)
    assert str(target) in str(info.value)


def test_construction_creates_the_schema(tmp_path, exporters):
    exporters()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(0,)]


def test_configured_from_the_environment(tmp_path, table, monkeypatch):
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "env.duckdb"))
    monkeypatch.setenv(ENV_CAPTURE_CONTENT, "true")
    exporter = DuckDBSpanExporter(pricing=table)
    try:
        assert exporter.path == str(tmp_path / "env.duckdb")
        assert exporter.capture_content is True
    finally:
        exporter.shutdown()
    monkeypatch.setenv(ENV_CAPTURE_CONTENT, "perhaps")
    with pytest.raises(ValueError, match=ENV_CAPTURE_CONTENT):
        DuckDBSpanExporter(pricing=table)


def test_entry_point_builds_it_with_no_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "auto.duckdb"))
    monkeypatch.delenv(ENV_CAPTURE_CONTENT, raising=False)
    (point,) = entry_points(group="opentelemetry_traces_exporter", name="duckdb")
    cls = point.load()
    assert cls is ZeroCodeDuckDBSpanExporter and issubclass(cls, SpanExporter)
    exporter = cls()  # as opentelemetry-instrument does, bundled pricing
    try:
        assert exporter.capture_content is False
        assert exporter.export(make_spans(1)) is SpanExportResult.SUCCESS
        assert exporter.force_flush()
    finally:
        exporter.shutdown()
    assert query(tmp_path / "auto.duckdb", "SELECT count(*) FROM spans") == [(1,)]


def test_entry_point_with_bad_configuration_logs_one_line_and_breaks_nothing(tmp_path, monkeypatch, caplog):
    """The SDK's configurator builds every exporter at once, and one that raises makes it
    give up on tracing: a bad pricing file left the application with no tracing at all, its
    console and OTLP exporters included (a review). The entry point's exporter says what is
    wrong in one line, stores nothing and says so again at shutdown, with how many spans."""
    import logging

    from otel_costattr.pricing import table as pricing_table

    bad = tmp_path / "prices.toml"
    model = '[[model]]\nid = "m"\nmatch = [{ equals = "m" }]\n'
    bad.write_text(f'provider = "acme"\n{model}[[model.price]]\ninput = -1\noutput = 2\n')
    monkeypatch.setenv(ENV_PATH, str(tmp_path / "auto.duckdb"))
    monkeypatch.setenv("OTEL_COSTATTR_PRICING_FILES", str(bad))
    monkeypatch.setattr(pricing_table, "_default", None)  # read once a process: read again
    (point,) = entry_points(group="opentelemetry_traces_exporter", name="duckdb")
    with caplog.at_level(logging.ERROR):
        exporter = point.load()()
        assert exporter.export(make_spans(3)) is SpanExportResult.FAILURE
        assert exporter.force_flush()
        exporter.shutdown()
    first, last = (r.getMessage() for r in caplog.records)
    assert "\n" not in first and str(bad) in first and "input" in first
    assert "stored none of 3 spans" in last and not any(r.exc_info for r in caplog.records)
    assert not (tmp_path / "auto.duckdb").exists()


def test_bad_arguments_are_refused(tmp_path, table):
    with pytest.raises(ValueError):
        DuckDBSpanExporter(tmp_path / "x.duckdb", pricing=table, ingest_interval=0)
    with pytest.raises(ValueError):
        DuckDBSpanExporter(tmp_path / "x.duckdb", pricing=table, max_buffered_spans=-1)
    # A wrong type is refused at construction, not found at the first export (where a
    # pricing of "x" dropped every span it had to price, and "1" bytes raised TypeError).
    with pytest.raises(ValueError, match="pricing must be a PriceTable"):
        DuckDBSpanExporter(tmp_path / "x.duckdb", pricing="x")
    with pytest.raises(ValueError, match="max_spool_bytes must be a finite number"):
        DuckDBSpanExporter(tmp_path / "x.duckdb", pricing=table, max_spool_bytes="1")
    # NaN passed every comparison, and the ingester's wait then raised at every export;
    # infinity overflowed a join at shutdown.
    for name in ("ingest_interval", "lock_timeout", "max_spool_bytes", "max_buffered_spans"):
        for value in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match=f"{name} must be a finite number"):
                DuckDBSpanExporter(tmp_path / "x.duckdb", pricing=table, **{name: value})


@pytest.mark.parametrize("start", [2**80, 2**63 * 1000, -(2**63) * 1000 - 1, 1.5e18])
def test_one_span_with_an_impossible_time_costs_only_itself(tmp_path, exporters, caplog, start):
    # The SDK takes any start and end from the caller. Such a span once failed its batch's
    # conversion to Arrow, and the nine good spans exported with it were lost.
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    tracer.start_span("far", attributes=CHAT, start_time=start).end(end_time=start)
    spans = [*make_spans(9), *memory.get_finished_spans()]
    provider.shutdown()
    exporter = exporters()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.force_flush()
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans WHERE name LIKE 'chat %'") == [(9,)]
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(9,)]
    assert exporter.dropped_spans == 1
    assert any("could not map span" in r.getMessage() for r in caplog.records)


def test_a_file_ingested_again_stores_a_span_without_start_time_once(tmp_path, table):
    # OTLP's startTimeUnixNano 0 is stored NULL; a file ingested again (a crash between the
    # commit and the delete) looked for its stored spans by start time only, so that span
    # was stored a second time.
    path = tmp_path / "s.duckdb"
    spans = make_spans(3)
    first = spans[0]
    untimed = ReadableSpan(
        name="no start", context=first.context, start_time=None, end_time=T0 + 10, resource=first.resource
    )
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        assert exporter.export([untimed, *spans[1:]]).name == "SUCCESS"
        (pending,) = spool.pending_spool(path)
        saved = pending.read_bytes()
        assert ingest.ingest(path) == 1
        pending.write_bytes(saved)  # the file again, as after a crash before its delete
        assert ingest.ingest(path) == 1
    finally:
        exporter.shutdown()
    assert query(path, "SELECT count(*), count(start_time) FROM spans") == [(3, 2)]


FORK_WHILE_INGESTING = """
import os, signal, sys, threading
sys.path.insert(0, sys.argv[2])
from test_exporter import make_spans
from otel_costattr.pricing.table import load_pricing
from otel_costattr.store import database
from otel_costattr.store.exporter import DuckDBSpanExporter
exporter = DuckDBSpanExporter(sys.argv[1], pricing=load_pricing([sys.argv[3]], bundled=False, use_env=False),
                              ingest_interval=3600)
exporter.export(make_spans(10))
# The ingester here waits for the forking thread: the fork goes ahead after the bound.
database._FORK_WAIT = 0.5
held, release = threading.Event(), threading.Event()
def ingesting():  # the ingester's thread, inside an ingest when the process forks
    with database._path_lock(str(exporter.path)):
        held.set()
        release.wait()
threading.Thread(target=ingesting, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # a hang ends the child here, killed by SIGALRM
    os._exit(0 if exporter.force_flush(5000) else 3)
release.set()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


FORK_WITH_A_CONNECTION_OPEN = """
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[2])
from test_exporter import make_spans
from otel_costattr.pricing.table import load_pricing
from otel_costattr.store import database, ingest
from otel_costattr.store.exporter import DuckDBSpanExporter
exporter = DuckDBSpanExporter(sys.argv[1], pricing=load_pricing([sys.argv[3]], bundled=False, use_env=False),
                              ingest_interval=3600)
exporter.export(make_spans(10))
assert exporter.force_flush(10000)
held = threading.Event()
def ingesting():  # the ingester's round: a read-write connection open, tuned as a round tunes it
    with database.writing(str(exporter.path)) as con, ingest.tuned(con, threads=1, compact=False):
        con.execute("SELECT count(*) FROM spans").fetchall()
        held.set()
        time.sleep(1.0)  # the round's work
threading.Thread(target=ingesting, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    signal.alarm(30)  # a hang ends the child here, killed by SIGALRM
    exporter.export(make_spans(20))
    os._exit(0 if exporter.force_flush(5000) else 3)
_, status = os.waitpid(pid, 0)
assert exporter.force_flush(10000)
exporter.shutdown()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_child_forked_while_a_connection_is_open_writes_its_own(tmp_path):
    """A review forked while the parent's ingester had its DuckDB connection open (gunicorn
    --preload): the child inherited that database instance, reused it, and hung in DuckDB
    for good (or committed into a copy the parent overwrote). The fork now waits for the
    round; the child's spans reach the table."""
    here = Path(__file__).resolve().parent
    prices = str(here / "data" / "test_prices.toml")
    path = tmp_path / "spans.duckdb"
    script = [sys.executable, "-c", FORK_WITH_A_CONNECTION_OPEN, str(path), str(here), prices]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert query(path, "SELECT count(*) FROM spans") == [(30,)]


FORK_DURING_THE_FIRST_EXPORT = """
import os, signal, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otel_costattr.store.exporter import DuckDBSpanExporter

exporter = DuckDBSpanExporter(sys.argv[1])
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
tracer = provider.get_tracer("t")
for _ in range(100):
    tracer.start_span("s").end()
deadline = time.monotonic() + 30
while "pandas" not in sys.modules and time.monotonic() < deadline:
    time.sleep(0.001)  # the first export has begun pyarrow's import of pandas
pid = os.fork()
if pid == 0:
    signal.alarm(30)  # a hang ends the child here, killed by SIGALRM
    for _ in range(100):
        tracer.start_span("child").end()
    os._exit(0 if provider.force_flush(5000) else 3)
_, status = os.waitpid(pid, 0)
provider.shutdown()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_child_forked_during_the_first_export_can_flush(tmp_path):
    """A review: the first export made pyarrow import pandas (~0.2 s, under a lock of its
    own); a fork meanwhile left that lock taken in the child, whose exporter then waited for
    ever, and its flush and exit with it. The import now happens in the constructor."""
    pytest.importorskip("pandas")  # what pyarrow imports lazily (chdb, a test extra, brings it)
    script = [sys.executable, "-c", FORK_DURING_THE_FIRST_EXPORT, str(tmp_path / "spans.duckdb")]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(200,)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_child_forked_while_the_parent_ingests_can_flush(tmp_path):
    """The parent's ingester held the store's in-process write lock at the fork: the child,
    which has not that thread, flushes all the same (it waited for ever)."""
    here = Path(__file__).resolve().parent
    prices = str(here / "data" / "test_prices.toml")
    script = [sys.executable, "-c", FORK_WHILE_INGESTING, str(tmp_path / "spans.duckdb"), str(here), prices]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])


FORK_AND_EXIT = """
import os, signal, sys
from pathlib import Path
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otel_costattr.store import ingest
from otel_costattr.store.exporter import DuckDBSpanExporter

folder = Path(sys.argv[1])
exporter = DuckDBSpanExporter(folder / "spans.duckdb")
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("t")
tracer.start_span("before").end()
assert provider.force_flush(10000) and exporter.force_flush(10000)  # ingested once
if sys.argv[2] == "probe":  # and a spool file checked: the checks' in-memory store made
    bad = folder / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert ingest.unreadable(bad)
statuses = []
for spans in (0, 5):
    pid = os.fork()
    if pid == 0:  # a gunicorn --preload worker: it leaves by sys.exit, the interpreter's exit
        signal.alarm(30)
        for _ in range(spans):
            tracer.start_span("child").end()
        provider.shutdown()
        sys.exit(0)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
provider.shutdown()
print(statuses)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
@pytest.mark.parametrize("probe", ["ingest", "probe"])
def test_a_child_forked_after_an_ingest_exits_cleanly(tmp_path, probe):
    """A review: once the ingester had run, a child forked by the application (a gunicorn
    --preload worker, or one that never traces) died of SIGSEGV when its interpreter exited,
    tearing down DuckDB databases the parent had left open (the default connection
    `duckdb.extract_statements` opens; the checks' in-memory store) whose threads stayed in
    the parent. The tests before forked children that left by os._exit."""
    script = [sys.executable, "-c", FORK_AND_EXIT, str(tmp_path), probe]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "[0, 0]\n"), done.stderr[-2000:]
    assert query(tmp_path / "spans.duckdb", "SELECT count(*) FROM spans") == [(6,)]


C_FORK_AFTER_A_CHECK = """
import ctypes, os, sys
from pathlib import Path
from otel_costattr.store import ingest

bad = Path(sys.argv[1]) / "bad.parquet"
bad.write_bytes(b"not parquet")
assert ingest.unreadable(bad)  # the checks' in-memory store made
pid = ctypes.CDLL(None).fork()  # a C extension's own fork(): Python's at-fork hooks do not run
if pid == 0:
    if sys.argv[2] == "checks":
        assert ingest.unreadable(bad)  # checks on, in a store of its own
    sys.exit(0)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libc's fork() through ctypes: Linux")
@pytest.mark.parametrize("child", ["checks", "exits"])
def test_a_child_of_a_c_level_fork_after_a_check_exits_cleanly(tmp_path, child):
    """The checks' store a child inherits is made immortal by an at-fork hook; a fork that
    bypasses Python's hooks (a C extension calling fork()) left it to be freed at the child's
    exit, which died of SIGSEGV. A check notices the process changed and does the same, and
    so does the interpreter's exit in a child that never checks (a review)."""
    done = subprocess.run(
        [sys.executable, "-c", C_FORK_AFTER_A_CHECK, str(tmp_path), child],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (0, "0\n"), done.stderr[-2000:]


def test_a_span_named_otherwise_than_by_text_is_kept(tmp_path, table):
    # The SDK keeps a span's name as given: a safety review's span named 123 was dropped whole
    # (counted, with a traceback from pyarrow); its name is now its text.
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))

    class Named(str, enum.Enum):  # an application's own span names
        CHAT = "chat with enum"

    for name in (123, None, "chat", Named.CHAT, b"chat in bytes"):
        provider.get_tracer("t").start_span(name, attributes=CHAT).end()  # type: ignore[arg-type]
    exporter = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=table)
    assert exporter.export(memory.get_finished_spans()).name == "SUCCESS"
    exporter.shutdown()
    assert exporter.dropped_spans == 0
    names = query(tmp_path / "s.duckdb", "SELECT name FROM spans ORDER BY name")
    assert names == [("",), ("123",), ("chat",), ("chat in bytes",), ("chat with enum",)]


FORK_INSIDE_A_FORK = """
import os, sys
children, started = [], []
def again():  # a library's hook, registered first, that forks once more inside this fork
    if not started:
        started.append(True)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        children.append(pid)
os.register_at_fork(after_in_parent=again)
from otel_costattr.store import database
database._FORK_WAIT = 3600  # a fork that waited on itself would hang here: the run's timeout
database._path_lock("/tmp/one.duckdb")  # a store this process writes to
pid = os.fork()
if pid == 0:
    os._exit(0)
for child in (pid, *children):
    os.waitpid(child, 0)
lock = database._path_lock("/tmp/one.duckdb")
assert lock.acquire(blocking=False), "a path lock left held"
assert database._fork_guard.acquire(blocking=False), "the fork guard left held"
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_fork_inside_a_fork_does_not_wait_on_itself():
    """A review: an after-fork hook (or a signal handler) forking inside a fork waited out the
    whole bound on the guard its own thread held, or released the outer fork's locks."""
    script = [sys.executable, "-c", FORK_INSIDE_A_FORK]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr[-2000:]


def test_a_success_means_the_file_and_its_name_are_synced(tmp_path, exporters, monkeypatch):
    """Before `export` answers SUCCESS, the spool file is fsynced and so is its folder, after
    the rename: the name survives a power cut too (a review: the folder was never synced, so
    an acknowledged batch could vanish in the seconds after). With fsync=False neither."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    exporter = exporters()
    assert exporter.export(make_spans(3)) is SpanExportResult.SUCCESS
    folder = str(spool.spool_dir(tmp_path / "spans.duckdb"))
    files = [p for p in synced if p.startswith(folder + "/") and p.endswith(".parquet.tmp")]
    assert len(files) == 1 and synced.index(folder) > synced.index(files[0]), synced
    synced.clear()
    quick = exporters(path=tmp_path / "quick.duckdb", fsync=False)
    assert quick.export(make_spans(3)) is SpanExportResult.SUCCESS
    assert not [p for p in synced if "quick.duckdb.spool" in p], synced


def test_an_export_still_writing_at_shutdown_is_counted_until_it_lands(
    tmp_path, exporters, monkeypatch, caplog
):
    """A disk that stops answering (a review froze one with fsfreeze) holds an export inside
    its spool write while the application shuts down: shutdown returns within its bound and
    counts that batch as dropped, logged, since the process may exit before the write ends;
    when the write does end, the batch is in the spool and the count is taken back. The
    journal (`store status`) takes only final drops: an export refused after shutdown is one
    span there, not 8 (a review)."""
    release, writing = threading.Event(), threading.Event()
    real = spool.write_spool

    def hung_write(path, table, *, fsync=True):
        writing.set()
        release.wait(30)
        return real(path, table, fsync=fsync)

    db = tmp_path / "spans.duckdb"
    exporter = exporters(lock_timeout=0.5)
    monkeypatch.setattr(store, "write_spool", hung_write)
    results: list[SpanExportResult] = []
    export = threading.Thread(target=lambda: results.append(exporter.export(make_spans(7))))
    export.start()
    assert writing.wait(10)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="otel_costattr.store.exporter"):
        exporter.shutdown()
    assert time.monotonic() - started < 5
    assert exporter.dropped_spans == 7
    assert "7 spans of exports" in caplog.text and "still being written" in caplog.text
    assert exporter.export(make_spans(1)) is SpanExportResult.FAILURE  # after shutdown: dropped
    assert (exporter.dropped_spans, spool.journal_summary(db).dropped_spans) == (8, 1)
    release.set()
    export.join(10)
    assert results == [SpanExportResult.SUCCESS]
    assert (exporter.dropped_spans, spool.journal_summary(db).dropped_spans) == (1, 1)
    assert spool.file_rows(store.pending_spool(db)[0]) == 7


def test_a_hung_write_that_fails_after_shutdown_is_counted_once(tmp_path, exporters, monkeypatch):
    """The frozen disk answers with an error at last: the batch is dropped where the write
    failed, once, in the count and in the journal (a review saw 14 journaled for 7)."""
    release, writing = threading.Event(), threading.Event()

    def failing_write(path, table, *, fsync=True):
        writing.set()
        release.wait(30)
        raise OSError(5, "Input/output error")

    db = tmp_path / "spans.duckdb"
    exporter = exporters(lock_timeout=0.5)
    monkeypatch.setattr(store, "write_spool", failing_write)
    export = threading.Thread(target=lambda: exporter.export(make_spans(7)))
    export.start()
    assert writing.wait(10)
    exporter.shutdown()
    assert exporter.dropped_spans == 7
    release.set()
    export.join(10)
    assert (exporter.dropped_spans, spool.journal_summary(db).dropped_spans) == (7, 7)


def test_shutdown_from_a_handler_on_the_writing_thread_does_not_wait_for_itself(
    tmp_path, exporters, monkeypatch, caplog
):
    """A signal handler calling shutdown while its thread is inside the spool write (as
    SimpleSpanProcessor exports on the thread the signal interrupts): that write cannot end
    before shutdown returns, so it is not waited for (a review: shutdown stalled its whole
    lock_timeout and logged a frozen disk); counted until it lands, then taken back."""
    real = spool.write_spool
    took: list[float] = []
    exporter = exporters(lock_timeout=3)

    def write_then_signal(path, table, *, fsync=True):
        if not took:  # the handler runs in the middle of the write
            started = time.monotonic()
            exporter.shutdown()
            took.append(time.monotonic() - started)
            assert exporter.dropped_spans == 4
        return real(path, table, fsync=fsync)

    monkeypatch.setattr(store, "write_spool", write_then_signal)
    with caplog.at_level(logging.WARNING, logger="otel_costattr.store.exporter"):
        assert exporter.export(make_spans(4)) is SpanExportResult.SUCCESS
    assert took and took[0] < 2, took
    assert "still being written" not in caplog.text and "(a signal handler?)" in caplog.text
    assert exporter.dropped_spans == 0
