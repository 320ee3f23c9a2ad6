"""Nothing acknowledged is ever lost: a database that cannot take the spool (disk full, a file
size limit, a failed commit) leaves every file pending; only files DuckDB can never read are
quarantined, counted, reported by `store status` and retried by `store repair`.

Faults are real, not mocked: a small tmpfs the test fills (Linux, root), and RLIMIT_FSIZE in a
subprocess (any Linux), which makes DuckDB's commit fail exactly as a full disk does
("... File too large") while small spool files still fit. The tmpfs is nearly full, so the
ingest commits through the WAL there; under RLIMIT_FSIZE the disk has room and each commit
is a checkpoint (`ingest._checkpoint_at_commit`): both failures are covered.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_store import count, row, table_of

from otel_costattr import cli
from otel_costattr.store import database as store
from otel_costattr.store import ingest, maintenance, spool

LINUX = sys.platform.startswith("linux")


def _chat_spans(n: int):
    """``n`` finished chat spans from a real TracerProvider."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("durability")
    for i in range(n):
        with tracer.start_as_current_span(f"chat {i}") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 1000 + i)
            span.set_attribute("gen_ai.usage.output_tokens", 10)
            span.set_attribute("app.feature", "f" * 200)  # rows big enough to need room
    provider.shutdown()
    return memory.get_finished_spans()


# -- a real full disk --------------------------------------------------------------------


@pytest.fixture
def small_disk():
    """A tmpfs of 8 MiB, mounted for the test; skipped where mounting is not allowed."""
    if not LINUX or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs Linux and root (the RLIMIT_FSIZE test covers the rest)")
    where = Path(f"/tmp/costattr-full-{uuid.uuid4().hex[:8]}")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def test_a_full_disk_keeps_every_acknowledged_batch_and_ingests_it_once_space_returns(small_disk):
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel_costattr import DuckDBSpanExporter

    db = small_disk / "spans.duckdb"
    exporter = DuckDBSpanExporter(db, ingest_interval=3600)  # ingest only when flushed
    spans = _chat_spans(3000)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free - 400_000))  # room for the spool, not for the database
    try:
        for k in range(6):
            assert exporter.export(spans[k * 500 : (k + 1) * 500]) is SpanExportResult.SUCCESS
        assert exporter.force_flush(5000) is False  # nothing moved: the database cannot grow
        assert len(spool.pending_spool(db)) == 6
        assert spool.quarantined(db) == []
        st = maintenance.status(db)
        assert (st.pending_files, st.pending_spans, st.quarantined, st.dropped_spans) == (6, 3000, [], 0)
        assert "No space left on device" in st.last_ingest_error
        assert st.recovered_time is None and not st.healthy
    finally:
        filler.unlink()
    assert exporter.force_flush(10_000) is True
    exporter.shutdown()
    assert count(db) == 3000
    st = maintenance.status(db)
    assert (st.stored_spans, st.pending_files, st.quarantined, st.dropped_spans) == (3000, 0, [], 0)
    assert st.recovered_time is not None and st.healthy


def test_drops_counted_when_the_disk_is_full_at_shutdown_reach_the_journal(small_disk):
    # A review: with the disk full at shutdown, the exporter's last round could not journal
    # what it had dropped; the count lived only in that process's log, and `store status`
    # said 0 dropped and healthy. The spool keeps a reserve the journal frees for it.
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel_costattr import DuckDBSpanExporter

    db = small_disk / "spans.duckdb"
    exporter = DuckDBSpanExporter(db, ingest_interval=3600, max_buffered_spans=500)
    reserve = spool.spool_dir(db) / spool.RESERVE
    assert reserve.stat().st_blocks * 512 >= spool.RESERVE_BYTES  # allocated, not sparse
    spans = _chat_spans(600)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # every block the disk has left
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    for k in range(6):  # kept in memory (FAILURE: not on disk), then dropped past 500
        assert exporter.export(spans[k * 100 : (k + 1) * 100]) is SpanExportResult.FAILURE
    exporter.shutdown()  # the disk still full: what it kept in memory is dropped, and journaled
    assert not reserve.exists()
    filler.unlink()
    st = maintenance.status(db)
    assert st.dropped_spans == exporter.dropped_spans == 600  # nothing reached the table
    assert count(db) == 0
    assert not st.healthy


def test_a_journal_line_the_full_disk_cuts_short_is_finished_from_the_reserve(small_disk):
    # The review of the reserve: the journal's last page had 60 bytes free, os.write wrote
    # that much of the line and returned a short count (no ENOSPC), record() said True, and
    # both that line and the next, glued to it, were lost: status said 0 of 1000 dropped.
    db = small_disk / "spans.duckdb"
    spool.spool_dir(db).mkdir()
    assert spool.keep_reserve(db)
    journal = spool.spool_dir(db) / spool.JOURNAL
    assert spool.record(db, "start")
    with journal.open("a") as f:  # the journal's second page with 60 bytes left
        f.write(" " * (4096 * 2 - 60 - journal.stat().st_size - 1) + "\n")
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    assert spool.record(db, "dropped", spans=600)
    assert spool.record(db, "dropped", spans=400)
    (small_disk / "filler").unlink()
    assert maintenance.status(db).dropped_spans == 1000
    # a line some writer left torn (killed mid-line) spoils only itself
    with journal.open("a") as f:
        f.write('{"event": "dropped", "spa')
    assert spool.record(db, "dropped", spans=1)
    assert maintenance.status(db).dropped_spans == 1001


def test_a_child_forked_inside_a_journal_line_does_not_keep_its_lock(tmp_path):
    # A review: flock belongs to the open file description, which fork shares; closing the
    # parent's descriptor left the lock held by a child forked while a line was written, for
    # as long as the child lived, and every roll-over (in any process) waited on it.
    import fcntl

    path = tmp_path / "db.duckdb"
    spool.spool_dir(path).mkdir()
    journal = spool.spool_dir(path) / spool.JOURNAL
    read, write = os.pipe()
    with spool._journal_lock(journal, exclusive=False):
        child = os.fork()
        if child == 0:  # pragma: no cover - the child only waits
            os.close(write)
            os.read(read, 1)  # until the test is done with it
            os._exit(0)
    os.close(read)
    try:
        fd = os.open(journal.with_name(spool.JOURNAL + ".lock"), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the child holds it
        finally:
            os.close(fd)
        assert spool.record(path, "dropped", spans=1)
    finally:
        os.close(write)
        os.waitpid(child, 0)
    assert spool.journal_summary(path).dropped_spans == 1


def test_an_error_another_process_journaled_is_resolved_by_this_ones_ingest(tmp_path):
    # A chaos review: a process whose ingest failed (disk full) exited with files pending; a
    # later process ingested them all, yet `store status` said "not resolved" (--check exit
    # 3) for good: only the process that journaled an error ever journaled its recovery.
    from otel_costattr import DuckDBSpanExporter

    db = tmp_path / "spans.duckdb"
    exporter = DuckDBSpanExporter(db, ingest_interval=3600)
    spool.record(db, "ingest_error", error="No space left on device", pending_files=3)  # theirs
    st = maintenance.status(db)
    assert st.last_ingest_error and not st.healthy
    exporter.export(_chat_spans(10))
    assert exporter.force_flush(10_000)
    st = maintenance.status(db)
    assert st.recovered_time is not None and st.healthy
    events = [e["event"] for e in spool._read(spool.spool_dir(db) / spool.JOURNAL)]
    exporter.export(_chat_spans(10))
    assert exporter.force_flush(10_000)
    exporter.shutdown()
    again = [e["event"] for e in spool._read(spool.spool_dir(db) / spool.JOURNAL)]
    assert again == events and events.count("ingest_recovered") == 1  # said once, not every round
    # A rollover carries the recovery too (it carried the error alone: "not resolved" again).
    spool._roll_over(spool.spool_dir(db) / spool.JOURNAL)
    st = maintenance.status(db)
    assert st.last_ingest_error and st.recovered_time is not None and st.healthy


# -- a file size limit: the same failure, anywhere ----------------------------------------

_LIMITED = textwrap.dedent(
    """
    import json, os, resource, signal, sys, time
    sys.path.insert(0, sys.argv[2])
    from test_store_durability import _chat_spans
    from otel_costattr import DuckDBSpanExporter
    from otel_costattr.store import spool
    from otel_costattr.store import database as store

    db = sys.argv[1]
    exporter = DuckDBSpanExporter(db, ingest_interval=0.05)
    spans = _chat_spans(2000)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    limit = os.path.getsize(db)  # no file may grow past the fresh database's size
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    # Two batches of 1,000: each spool file (~80 KB) fits under the limit, while any commit of
    # a batch needs more WAL than the limit allows, so no ingest can succeed meanwhile.
    acked = sum(exporter.export(spans[k : k + 1000]).name == "SUCCESS" for k in (0, 1000))
    deadline = time.monotonic() + 60
    while spool.journal_summary(db).last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the background ingester tries, fails, backs off
    during = {
        "pending": len(spool.pending_spool(db)),
        "quarantined": len(spool.quarantined(db)),
        "error": spool.journal_summary(db).last_error,
    }
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    while spool.pending_spool(db) and time.monotonic() < deadline:
        time.sleep(0.05)  # the same ingester, with no flush, retries and gets them in
    after = {"pending": len(spool.pending_spool(db)), "quarantined": len(spool.quarantined(db))}
    exporter.shutdown()
    print(json.dumps({"acked": acked, "during": during, "after": after, "dropped": exporter.dropped_spans}))
    """
)


def _run_script(script: str, db: Path) -> dict:
    """Run one of the fault scripts above in a process of its own (a limit or an exhausted
    resource must not leak into the test run); its last line is a JSON report."""
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", script, str(db), here], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not LINUX, reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_failed_commit_keeps_the_files_pending_and_the_ingester_retries_them(tmp_path):
    db = tmp_path / "spans.duckdb"
    report = _run_script(_LIMITED, db)
    assert report["acked"] == 2
    assert report["during"]["pending"] == 2 and report["during"]["quarantined"] == 0
    # The ingest commits by checkpointing (the disk has room: ingest._checkpoint_at_commit),
    # so DuckDB reports the failed checkpoint that failed the commit; through the WAL it would
    # say "Failed to commit". Either way the cause is the limit.
    assert "File too large" in report["during"]["error"]
    assert report["after"] == {"pending": 0, "quarantined": 0}
    assert report["dropped"] == 0
    assert count(db) == 2000
    st = maintenance.status(db)
    assert st.healthy and st.recovered_time is not None


# -- what may be quarantined, and only that ------------------------------------------------


def _bad_files(path: Path) -> dict[str, Path]:
    folder = store.spool_dir(path)
    folder.mkdir(exist_ok=True)
    files = {
        "not parquet": folder / "00000000000000000001-1-00000000.parquet",
        "truncated": folder / "00000000000000000002-1-00000000.parquet",
        "wrong columns": folder / "00000000000000000003-1-00000000.parquet",
        "no trace id": folder / "00000000000000000004-1-00000000.parquet",
        # A flipped bit in a column name: pyarrow and DuckDB's client raise UnicodeDecodeError,
        # which escaped the ingest and stopped every later file for good (a review).
        "not utf-8": folder / "00000000000000000005-1-00000000.parquet",
        # A spool file with a bit flipped by a review's fuzz: DuckDB calls it an IO Error,
        # which was taken for the disk's fault, so it stayed pending and held the rest back.
        "io error": folder / "00000000000000000006-1-00000000.parquet",
        # A footer pointing past the file's end: DuckDB's words are "Could not read enough
        # bytes", which were taken for the system's fault (kept pending for good, every later
        # file behind it: a review).
        "short read": folder / "00000000000000000007-1-00000000.parquet",
    }
    files["not parquet"].write_bytes(b"PAR1 not really parquet")
    good = folder / "good.tmp"
    pq.write_table(table_of(row(9, 9)), good)
    files["truncated"].write_bytes(good.read_bytes()[:-40])
    files["not utf-8"].write_bytes(good.read_bytes().replace(b"span_id", b"span\xffid"))
    good.unlink()
    files["io error"].write_bytes(
        (Path(__file__).parent / "data" / "spool_io_error_int16.parquet").read_bytes()
    )
    files["short read"].write_bytes(
        (Path(__file__).parent / "data" / "spool_short_read.parquet").read_bytes()
    )
    surprise = pa.table({"trace_id": ["a" * 32], "span_id": ["b" * 16], "surprise": [1]})
    pq.write_table(surprise, files["wrong columns"])
    no_id = pa.table({"trace_id": pa.array([None], pa.string()), "span_id": ["c" * 16]})
    pq.write_table(no_id, files["no trace id"])
    return files


def _status_text(path) -> str:
    from click.testing import CliRunner

    from otel_costattr.cli import cli

    return CliRunner().invoke(cli, ["store", "status", "--db", str(path)], catch_exceptions=False).output


def test_only_files_duckdb_can_never_read_are_quarantined_with_their_reason(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1)))
    bad = _bad_files(path)
    store.write_spool(path, table_of(row(1, 2)))
    assert count(path) == 2  # the readable ones, in one go
    assert store.pending_spool(path) == []
    st = maintenance.status(path)
    assert sorted(q.name for q in st.quarantined) == sorted(f.name for f in bad.values())
    reasons = {q.name: q.reason for q in st.quarantined}
    assert "magic bytes" in reasons[bad["not parquet"].name] or "Parquet" in reasons[bad["not parquet"].name]
    assert "surprise" in reasons[bad["wrong columns"].name]
    assert "NOT NULL" in reasons[bad["no trace id"].name]
    assert reasons[bad["not utf-8"].name] == "corrupt: DuckDB's error about it is not even text"
    assert reasons[bad["io error"].name].startswith("IO Error: INT16 converted type")
    assert reasons[bad["short read"].name].startswith("IO Error: Could not read enough bytes")
    assert not st.healthy
    journaled = spool.journal_summary(path).quarantine_events
    assert sorted(e["file"] for e in journaled) == sorted(f.name for f in bad.values())
    # `store status` never says "0 spans" of files whose count cannot be read (a review)
    unknown = sum(q.spans is None for q in st.quarantined)
    assert unknown
    line = next(x for x in _status_text(path).splitlines() if x.startswith("quarantined"))
    assert f"and those of {unknown} files whose count cannot be read" in line, line


def test_repair_ingests_quarantined_files_that_can_be_read_now_and_keeps_the_rest(tmp_path, capsys):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    # A readable file an older version quarantined for a full disk, and a corrupt one.
    folder = spool.quarantine_dir(path)
    folder.mkdir(parents=True)
    pq.write_table(table_of(row(3, 1), row(3, 2)), folder / "00000000000000000001-1-00000000.parquet")
    (folder / "00000000000000000002-1-00000000.parquet").write_bytes(b"garbage")
    assert count(path) == 0
    assert cli.main(["store", "repair", "--db", str(path)]) == 1  # one is still unreadable
    out = capsys.readouterr().out
    assert "requeued 2 quarantined files; ingested 1 spool files" in out
    assert "still quarantined: 00000000000000000002-1-00000000.parquet: " in out
    assert count(path) == 2
    assert [f.name for f in spool.quarantined(path)] == ["00000000000000000002-1-00000000.parquet"]
    (folder / "00000000000000000002-1-00000000.parquet").unlink()
    assert cli.main(["store", "repair", "--db", str(path)]) == 0
    assert "requeued 0 quarantined files; ingested 0 spool files" in capsys.readouterr().out


def test_an_unreadable_file_is_set_aside_while_the_database_is_failing_but_good_ones_stay(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1)))
    corrupt = store.spool_dir(path) / "00000000000000000000-1-00000000.parquet"
    corrupt.write_bytes(b"garbage")
    con = store.connect(path, ingest=False)
    try:
        con.execute("CHECKPOINT")
        con.execute("ATTACH ':memory:' AS elsewhere")
        con.execute("USE elsewhere")  # `spans` no longer resolves: every insert fails
        with pytest.raises(ingest.IngestError, match="kept for a later try"):
            ingest.ingest_spool(con, path)
    finally:
        con.close()
    assert [f.name for f in spool.quarantined(path)] == [corrupt.name]
    assert len(store.pending_spool(path)) == 1  # the good one waits for a working database
    assert count(path) == 1


# -- drops and the status command ----------------------------------------------------------


def test_spans_dropped_by_any_exporter_are_counted_in_the_status(tmp_path, capsys):
    from otel_costattr import DuckDBSpanExporter

    path = tmp_path / "db.duckdb"
    spans = _chat_spans(30)
    for _ in range(2):  # two exporters (two processes, say) that can neither spool nor buffer
        exporter = DuckDBSpanExporter(path, max_spool_bytes=0, max_buffered_spans=0)
        exporter.export(spans[:10])
        exporter.export(spans[10:])
        assert exporter.dropped_spans == 30
        exporter.shutdown()
    assert maintenance.status(path).dropped_spans == 60
    assert cli.main(["store", "status", "--db", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dropped_spans"] == 60 and report["healthy"] is False
    assert report["pending_files"] == 0 and report["quarantined_files"] == 0
    assert cli.main(["store", "status", "--db", str(path), "--check"]) == 3
    out = capsys.readouterr().out
    assert "dropped            60 spans" in out


def test_spans_not_stored_for_an_id_already_stored_are_counted(tmp_path, capsys):
    """Five spans of one (trace id, span id), as a broken id generator makes, and a retry's
    copy: the store keeps one of each id and says how many it did not store (a review saw
    four of five colliding calls vanish with every count at 0)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    from otel_costattr import DuckDBSpanExporter

    class Constant(IdGenerator):
        def generate_span_id(self) -> int:
            return 7

        def generate_trace_id(self) -> int:
            return 9

    path = tmp_path / "db.duckdb"
    exporter = DuckDBSpanExporter(path)
    provider = TracerProvider(id_generator=Constant(), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for n in range(5):
        provider.get_tracer("t").start_span(f"call {n}").end()
    exporter.force_flush()
    batch = _chat_spans(2)
    exporter.export(batch)
    exporter.export(batch)  # a retry of the batch before
    provider.shutdown()
    assert count(path) == 3
    st = maintenance.status(path)
    assert (st.repeated_spans, st.healthy) == (6, True)
    assert cli.main(["store", "status", "--db", str(path)]) == 0
    assert "repeated           6 spans not stored" in capsys.readouterr().out


def test_status_of_a_healthy_store_and_of_no_store(tmp_path, capsys):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1), row(1, 2)))
    assert cli.main(["store", "status", "--db", str(path), "--check"]) == 0
    out = capsys.readouterr().out
    assert "pending            1 file, 2 spans" in out  # status never ingests
    assert "last ingest error  none" in out
    assert cli.main(["store", "status", "--db", str(tmp_path / "nothing.duckdb")]) == 1
    assert capsys.readouterr().err.strip() == f"Error: no database at {tmp_path / 'nothing.duckdb'}"


def test_the_journal_rolls_over_keeping_its_totals(tmp_path, monkeypatch):
    path = tmp_path / "db.duckdb"
    spool.spool_dir(path).mkdir()
    monkeypatch.setattr(spool, "_JOURNAL_MAX_BYTES", 2000)
    for _ in range(100):
        spool.record(path, "dropped", spans=3)
    spool.record(path, "ingest_error", error="boom")
    assert (spool.spool_dir(path) / spool.JOURNAL).stat().st_size < 4000
    spool.record(path, "repeated", spans=2)
    summary = spool.journal_summary(path)
    assert summary.dropped_spans == 300 and summary.last_error == "boom"


_NO_DESCRIPTORS = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[2])
    from test_store import row, table_of
    from otel_costattr.store import database as store, ingest, spool

    db = sys.argv[1]
    store.connect(db).close()
    for i in range(5):
        store.write_spool(db, table_of(row(1, i)))
    con = store.connect(db, ingest=False)
    spare = []
    try:  # use up every file descriptor: nothing can be opened, good files included
        while True:
            spare.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        ingest.ingest_spool(con, db)
        outcome = "ingested"
    except ingest.IngestError:
        outcome = "kept"
    finally:
        for fd in spare:
            os.close(fd)
    con.close()
    print(json.dumps({"outcome": outcome, "pending": len(spool.pending_spool(db)),
                      "quarantined": len(spool.quarantined(db))}))
    """
)


@pytest.mark.skipif(not LINUX, reason="file descriptor exhaustion as on Linux")
def test_a_spool_that_cannot_even_be_listed_stays_pending(tmp_path):
    # No descriptors left: the spool folder cannot be read, nor any file opened. That is the
    # process's fault, not the files': an IngestError (the ingester backs off), all five
    # pending for the next round, none quarantined.
    db = tmp_path / "spans.duckdb"
    assert _run_script(_NO_DESCRIPTORS, db) == {
        "outcome": "kept",
        "pending": 5,
        "quarantined": 0,
    }
    assert count(db) == 5  # and the next ingest takes them


def test_drops_are_journaled_once_the_journal_can_be_written_again(tmp_path):
    from otel_costattr import DuckDBSpanExporter

    path = tmp_path / "db.duckdb"
    exporter = DuckDBSpanExporter(path, max_spool_bytes=0, max_buffered_spans=0)
    journal = spool.spool_dir(path) / spool.JOURNAL
    journal.mkdir()  # the journal cannot be written (a full disk, say)
    exporter.export(_chat_spans(10))
    exporter._journal_drops()
    assert exporter.dropped_spans == 10
    journal.rmdir()
    exporter.shutdown()  # journals what it still owes
    assert maintenance.status(path).dropped_spans == 10


def test_the_journal_rolls_over_without_losing_concurrent_lines(tmp_path, monkeypatch):
    import threading

    path = tmp_path / "db.duckdb"
    spool.spool_dir(path).mkdir()
    monkeypatch.setattr(spool, "_JOURNAL_MAX_BYTES", 600)

    def drop() -> None:
        for _ in range(200):
            spool.record(path, "dropped", spans=1)

    threads = [threading.Thread(target=drop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spool.journal_summary(path).dropped_spans == 800


def test_a_quarantine_reason_is_one_line_about_the_file(tmp_path):
    # The reason was DuckDB's whole error, with the probe's SQL echoed ('LINE 1: INSERT INTO
    # spans BY NAME ... ^^^') and the file's spool path, though the file moves to bad/.
    from otel_costattr.store.ingest import unreadable

    junk = tmp_path / "0000-junk.parquet"
    junk.write_bytes(b"not parquet at all")
    reason = unreadable(junk)
    assert reason is not None and "\n" not in reason
    assert "LINE" not in reason and "INSERT" not in reason and str(tmp_path) not in reason
    assert "0000-junk.parquet" in reason


def test_the_journal_is_read_on_from_where_it_was_left(tmp_path):
    # The check reads only what was appended since it last looked; a review found a journal
    # emptied or deleted and written again (on the same inode) read from the old offset, the
    # error line cut in two and skipped.
    db = tmp_path / "spans.duckdb"
    journal = spool.spool_dir(db) / spool.JOURNAL
    journal.parent.mkdir(parents=True)
    look = ingest._open_error_elsewhere

    def line(event: str, **more: object) -> bytes:
        return (json.dumps({"time": "t", "pid": os.getpid(), "event": event, **more}) + "\n").encode()

    assert look(db) is False  # no journal
    journal.write_bytes(line("dropped", spans=1) + line("ingest_error", error="disk full"))
    assert look(db) is True
    recovered = line("ingest_recovered")
    with journal.open("ab") as f:
        f.write(recovered[:10])  # another process is writing it
    assert look(db) is True
    with journal.open("ab") as f:
        f.write(recovered[10:])
    assert look(db) is False
    with journal.open("r+b") as f:  # emptied in place, then an error longer than what was read
        f.truncate(0)
        f.write(line("ingest_error", error="x" * 400))
    assert look(db) is True
    journal.unlink()
    assert look(db) is False
    journal.write_bytes(line("receiver", rejected=1) + line("ingest_error", error="again"))
    assert look(db) is True
    spool._roll_over(journal)  # a rollover carries the open error
    assert look(db) is True
    # written again with exactly as many bytes: its first bytes tell it is another file
    size = journal.stat().st_size
    recovered = line("ingest_recovered", pad="")
    recovered = line("ingest_recovered", pad="p" * (size - len(recovered)))
    assert len(recovered) == size
    with journal.open("r+b") as f:
        f.truncate(0)
        f.write(recovered)
    assert look(db) is False


def _asked(asked: list[bool]) -> bool:
    asked.append(True)
    return True


def test_an_ingest_told_to_stop_ends_between_transactions(tmp_path, monkeypatch):
    """The exporter's ingester stops at the interpreter's exit (a daemon thread inside DuckDB
    then aborts the process): its round ends after the transaction under way, the identity
    pass run over what it committed, the rest left pending for the next writer."""
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 2)  # two spans a transaction
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    for n in range(6):
        store.write_spool(path, table_of(row(n, 1), row(n, 2)))
    for bounded in (True, False):
        asked: list[bool] = []
        con = store.connect(path, ingest=False)
        try:
            stop = functools.partial(_asked, asked)
            assert ingest.ingest_spool(con, path, bounded_pass=bounded, stop=stop) == 1
        finally:
            con.close()
        assert asked == [True]
    con = store.connect(path, read_only=True, ingest=False)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (4,)
    finally:
        con.close()
    assert len(store.pending_spool(path)) == 4
    assert ingest.ingest(path, stop=lambda: False) == 4
    assert count(path) == 12


def test_a_read_ingests_the_files_pending_when_it_opened_not_those_written_meanwhile(tmp_path):
    """A read-only open ingests the spool first; it took every file written while it did, so
    beside writers that kept spooling a rollup waited 47 s and their flushes failed on the
    lock it held (a review). `ingest_spool(upto=)` bounds it to the files pending at the open."""
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1)))
    store.write_spool(path, table_of(row(1, 2)))
    first, later = (f.name for f in store.pending_spool(path))
    con = store.connect(path, ingest=False)
    try:
        assert ingest.ingest_spool(con, path, upto=first) == 1
        assert [f.name for f in store.pending_spool(path)] == [later]
    finally:
        con.close()
    assert count(path) == 2  # the next open takes it
    # connect: a writer spools while the open ingests; that file waits for the next open
    real = ingest.ingest_spool

    def writer_meanwhile(*args, **kwargs):
        if not calls:
            store.write_spool(path, table_of(row(1, 3)))
        calls.append(kwargs.get("upto"))
        return real(*args, **kwargs)

    calls: list[str | None] = []
    store.write_spool(path, table_of(row(1, 9)))
    ingest.ingest_spool = writer_meanwhile
    try:
        store.connect(path, read_only=True).close()
    finally:
        ingest.ingest_spool = real
    assert len(store.pending_spool(path)) == 1 and None not in calls
    assert count(path) == 4


def test_one_store_spelled_two_ways_is_one_writer(tmp_path):
    """Keyed by the absolute path, a store reached through a symlinked folder had two
    in-process write locks, and two writers conflicted in DuckDB's one instance (a review)."""
    from otel_costattr.store.turns import turns

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    one, two = str(tmp_path / "real" / "db.duckdb"), str(tmp_path / "link" / "db.duckdb")
    assert store._path_lock(one) is store._path_lock(two)
    assert turns(one) is turns(two)


_ONE_DESCRIPTOR_SHORT = textwrap.dedent(
    """
    import os, resource, sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from test_store import row, table_of
    from otel_costattr.store import database as store
    from otel_costattr.store import ingest, spool
    path = Path(sys.argv[1])
    store.connect(path).close()
    for i in range(3):
        store.write_spool(path, table_of(row(1, i)))
    con = store.connect(path, ingest=False)
    ingest._probe_store()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    os.close(held.pop())  # one spare: DuckDB's insert needs two, Python's read one
    try:
        ingest.ingest_spool(con, path)
    except store.StoreError:
        pass
    for fd in held:
        os.close(fd)
    print(len(spool.pending_spool(path)), len(spool.quarantined(path)))
    """
)


def test_a_process_short_of_descriptors_keeps_its_files_pending(tmp_path):
    """One descriptor short, DuckDB failed to open each file twice alike ("Too many open
    files") while Python's read passed: three good files were quarantined (a review of the
    IO-error rule). An IO error naming a fault of the system is never the file's."""
    argv = [
        sys.executable,
        "-c",
        _ONE_DESCRIPTOR_SHORT,
        str(tmp_path / "db.duckdb"),
        str(Path(__file__).parent),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["3", "0"], done.stderr


def test_a_check_left_inside_a_transaction_blames_no_file(tmp_path):
    """A signal handler's exception between a check's insert and its rollback left the probe
    store inside a transaction: the next check's BEGIN failed, and a good file was taken for
    corrupt (a review)."""
    path = tmp_path / "db.duckdb"
    store.write_spool(path, table_of(row(1, 1)))
    (good,) = store.pending_spool(path)
    ingest._probe_store().execute("BEGIN TRANSACTION")  # as an interrupted check leaves it
    assert ingest.unreadable(good) is None
    assert ingest.unreadable(good) is None


def test_a_read_takes_an_arrow_file_pending_at_its_open(tmp_path):
    """The bound on a read's ingest is the last pending file's name: an Arrow-era file,
    converted to Parquet under its name with another suffix, sorted after it and was left
    out of the answer (a review)."""
    import time

    import pyarrow.ipc as ipc

    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1)))
    name = f"{time.time_ns():020d}-{os.getpid()}-00000009.arrow"
    table = table_of(row(2, 2))
    with ipc.new_file(store.spool_dir(path) / name, table.schema) as writer:
        writer.write_table(table)
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (2,)
    finally:
        con.close()


_START_EXPORTER = textwrap.dedent(
    """
    import resource, sys
    from otel_costattr import DuckDBSpanExporter
    if sys.argv[2] == "full":
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        DuckDBSpanExporter(sys.argv[1]).shutdown()
        print("started")
    except ValueError as e:
        print("refused:", e)
    """
)


def _start_exporter(db: Path, *, disk_full: bool) -> None:
    """An exporter's start on ``db`` in a child: with ``disk_full``, RLIMIT_FSIZE 0 (DuckDB
    creates the file and cannot write its header, as on a full disk; Python ignores SIGXFSZ,
    the write fails with EFBIG), which must refuse it; else it must start."""
    args = [sys.executable, "-c", _START_EXPORTER, str(db), "full" if disk_full else "room"]
    done = subprocess.run(args, capture_output=True, text=True)
    if disk_full:
        assert done.stdout.startswith("refused:"), done.stdout + done.stderr
    else:
        assert done.stdout.strip() == "started", done.stdout + done.stderr


@pytest.mark.skipif(not LINUX, reason="RLIMIT_FSIZE as a full disk: Linux")
def test_a_store_that_could_not_be_created_on_a_full_disk_is_created_once_there_is_room(tmp_path):
    # RLIMIT_FSIZE 0 in the child: DuckDB creates the file and cannot write its header, as on
    # a full disk (Python ignores SIGXFSZ: the write fails with EFBIG). The empty file it left
    # made every later start fail ("not a DuckDB database file") once there was room.
    db = tmp_path / "spans.duckdb"
    _start_exporter(db, disk_full=True)
    _start_exporter(db, disk_full=False)


@pytest.mark.skipif(not LINUX, reason="RLIMIT_FSIZE as a full disk: Linux")
def test_a_failed_creation_through_a_symlink_keeps_the_link(tmp_path):
    """The store's path a symlink to a file yet to be made (a data volume): a creation that
    failed deleted the link and left the empty file behind it, so the next start made the
    store beside the link, off the volume. The empty file goes, the link stays."""
    volume = tmp_path / "volume"
    volume.mkdir()
    db = tmp_path / "spans.duckdb"
    db.symlink_to(volume / "spans.duckdb")
    _start_exporter(db, disk_full=True)
    assert db.is_symlink() and not (volume / "spans.duckdb").exists()
    _start_exporter(db, disk_full=False)
    assert db.is_symlink() and (volume / "spans.duckdb").stat().st_size > 0
