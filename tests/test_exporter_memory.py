"""The exporter's ingest keeps DuckDB's checkpoint vacuum off (its peak memory grows with the
table, inside the application's process); any other writer merges the row groups it leaves.
Real TracerProvider, real DuckDB files. Memory itself is measured in benchmarks/, not here."""

from __future__ import annotations

import contextlib
import os

import duckdb
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_exporter import CHAT, make_spans

from otel_costattr.store import database as store
from otel_costattr.store import ingest, spool
from otel_costattr.store.exporter import DuckDBSpanExporter


def _row_groups(path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        sql = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('spans')"
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _spans(count: int) -> list:
    return make_spans(count)  # random ids: nothing is deduplicated away


def test_exporter_ingest_leaves_row_groups_unmerged_and_a_normal_writer_merges_them(tmp_path, table):
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for _ in range(3):
            assert exporter.export(_spans(20)).name == "SUCCESS"
            assert exporter.force_flush(10_000)
    finally:
        exporter.shutdown()
    assert _row_groups(path) == 3  # no vacuum ran: one row group per ingest
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:  # a spool file for the next writer, which ingests it with DuckDB's defaults
        assert exporter.export(_spans(20)).name == "SUCCESS"
        store.connect(path).close()
    finally:
        exporter.shutdown()
    assert _row_groups(path) == 1
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 80
    finally:
        con.close()


_CHANGED = (
    "SELECT name, value FROM duckdb_settings()"
    " WHERE name IN ('threads', 'max_vacuum_tasks', 'memory_limit', 'checkpoint_threshold')"
)


def test_ingest_restores_the_settings_it_changed(tmp_path, table):
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        exporter.export(_spans(5))
        keep = duckdb.connect(str(path))  # shares the DuckDB instance with the ingest connection
        try:
            before = keep.execute(_CHANGED).fetchall()
            assert ingest.ingest(path, threads=1, compact=False) == 1
            after = keep.execute(_CHANGED).fetchall()
        finally:
            keep.close()
    finally:
        exporter.shutdown()
    assert after == before


def test_the_exporters_commits_are_checkpoints_only_while_the_disk_has_room(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    assert ingest._checkpoint_at_commit(path) == {"checkpoint_threshold": "1B"}  # the default room
    monkeypatch.setattr(ingest, "_ROOM_FOR_CHECKPOINTS", 2**62)  # more than any disk has free
    assert ingest._checkpoint_at_commit(path) == {}  # through the WAL, whose failure is undone


def test_the_exporters_ingest_leaves_nothing_in_the_wal_after_a_commit(tmp_path, table, monkeypatch):
    # Each transaction's COMMIT is its checkpoint: the rows go into the database file once,
    # not into the WAL first. Seen from inside: after a transaction commits, before the
    # ingest's own CHECKPOINT, the WAL holds nothing.
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    wal = []
    real_move = ingest._move

    def move(con, where, files):
        got = real_move(con, where, files)
        wal.append(os.path.getsize(str(path) + ".wal") if os.path.exists(str(path) + ".wal") else 0)
        return got

    monkeypatch.setattr(ingest, "_move", move)
    try:
        exporter.export(_spans(300))
        assert exporter.force_flush(10_000)
    finally:
        exporter.shutdown()
    assert wal == [0]
    monkeypatch.setattr(ingest, "_ROOM_FOR_CHECKPOINTS", 2**62)  # the WAL path, for contrast
    wal.clear()
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        exporter.export(_spans(300))
        assert exporter.force_flush(10_000)
    finally:
        exporter.shutdown()
    assert len(wal) == 1 and wal[0] > 0
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 600
    finally:
        con.close()


def test_an_applications_own_connection_keeps_its_checkpoint_threshold_during_an_ingest(
    tmp_path, table, monkeypatch
):
    # The threshold is the instance's: under it every commit of the application's connection
    # would be a checkpoint too, and one that failed would invalidate the instance under it.
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    seen = []
    real_move = ingest._move
    try:
        exporter.export(_spans(300))
        keep = duckdb.connect(str(path))
        try:
            before = keep.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]

            def move(con, where, files):
                got = real_move(con, where, files)
                seen.append(keep.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0])
                return got

            monkeypatch.setattr(ingest, "_move", move)
            assert ingest.ingest(path, threads=1, compact=False) == 1
        finally:
            keep.close()
    finally:
        exporter.shutdown()
    assert seen == [before]


def test_a_connection_that_joins_mid_round_gets_the_instances_threshold_back(tmp_path, table, monkeypatch):
    # The round decides at its start; an application connecting after its first transaction
    # (store.connect opens before it waits for the lock) had its commits made checkpoints.
    path = tmp_path / "s.duckdb"
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 40)  # three files: three transactions
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    joined: list = []
    seen = []
    real_move = ingest._move

    def move(con, where, files):
        got = real_move(con, where, files)
        if not joined:
            joined.append(duckdb.connect(str(path)))
            default = joined[0].execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
            seen.append(default != "16.0 MiB")  # the one-byte threshold while alone
        else:
            seen.append(joined[0].execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0])
        return got

    monkeypatch.setattr(ingest, "_move", move)
    try:
        for batch in range(3):
            assert exporter.export(_later_spans(batch, 40)).name == "SUCCESS"
        assert ingest.ingest(path, threads=1, compact=False) == 3
    finally:
        for con in joined:
            con.close()
        exporter.shutdown()
    assert seen == [True, "16.0 MiB", "16.0 MiB"]


def test_under_an_applications_connection_the_ingest_leaves_checkpoints_to_duckdb(tmp_path, table):
    # Any checkpoint that fails (no space, a file size limit) invalidates the instance, the
    # application's connection with it: the ingest's own are made only while it is alone.
    path = tmp_path / "s.duckdb"
    store.connect(path).close()
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        assert exporter.export(_later_spans(0, 300)).name == "SUCCESS"
        keep = duckdb.connect(str(path))
        try:
            assert ingest.ingest(path, threads=1, compact=False) == 1
            wal = os.path.getsize(str(path) + ".wal")
            stored = keep.execute("SELECT count(*) FROM spans").fetchone()[0]
        finally:
            keep.close()
    finally:
        exporter.shutdown()
    assert wal > 0 and stored == 300


def test_a_store_that_cannot_be_opened_is_journaled(tmp_path, table):
    # Not only a failed move: a store the ingest cannot open or migrate (e.g. an instance a
    # failed checkpoint invalidated) left `store status` healthy while the spool grew.
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        assert exporter.export(_spans(5)).name == "SUCCESS"
        path.write_bytes(b"not a database" * 1000)
        with pytest.raises(store.StoreError):
            ingest.ingest(path, threads=1, compact=False)
        assert spool.journal_summary(path).last_error is not None
    finally:
        exporter._stop.set()  # no shutdown flush into the broken file


def test_batches_the_spool_refused_are_written_without_vacuum_too(tmp_path, table):
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600, max_spool_bytes=0)
    try:
        for _ in range(2):
            exporter.export(_spans(10))  # kept in memory: the spool is "full"
            assert exporter.buffered_spans == 10
            assert exporter.force_flush(10_000)
            assert exporter.buffered_spans == 0
    finally:
        exporter.shutdown()
    assert _row_groups(path) == 2


def _pool(con) -> int:
    sql = "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    return con.execute(sql).fetchone()[0]


def _later_spans(batch: int, count: int) -> list:
    """Spans of their own time range: an ingest's duplicate check reads only the row groups
    whose start times overlap the batch (zone maps), as in a running application."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    t0 = 1_767_225_600_000_000_000 + batch * 10**12
    for i in range(count):  # mixed roles and identities, as the columns of a real table
        attrs = {**CHAT, "app.feature": f"f{i % 7}", "gen_ai.agent.name": f"a{i % 5}"}
        if i % 3 == 2:
            attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"t{i % 4}"}
        tracer.start_span("span", attributes=attrs, start_time=t0 + i).end(end_time=t0 + i + 1000)
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_the_exporters_identity_pass_keeps_no_more_than_its_headroom_of_the_table(
    tmp_path, table, monkeypatch
):
    # The pass reads a few columns of every row group; DuckDB keeps what it reads in the buffer
    # pool until the connection closes, so the ingester's peak grew with the table (issue 12).
    path = tmp_path / "s.duckdb"
    headroom = 2**20
    monkeypatch.setattr(ingest, "_PASS_HEADROOM", headroom)
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for batch in range(24):  # one row group, and at least one block, per ingest
            assert exporter.export(_later_spans(batch, 400)).name == "SUCCESS"
            assert exporter.force_flush(10_000)
        exporter.export(_later_spans(24, 5))
        with store.writing(path) as con, ingest.tuned(con, threads=1, compact=False):
            ingest.ingest_spool(con, path, bounded_pass=False)
            unbounded = _pool(con)
        exporter.export(_later_spans(25, 5))
        # As the exporter's ingest.ingest(compact=False) does, read on its own connection: the
        # bound is only set while the ingester is the instance's one connection.
        with store.writing(path) as con, ingest.tuned(con, threads=1, compact=False):
            assert ingest.ingest_spool(con, path, bounded_pass=True) == 1
            bounded = _pool(con)
    finally:
        exporter.shutdown()
    assert unbounded > 4 * headroom  # the table's blocks
    assert bounded <= 2 * headroom  # the headroom, and what the insert before it read


def test_a_pass_that_needs_more_than_the_headroom_still_settles_every_call(tmp_path, table, monkeypatch):
    path = tmp_path / "s.duckdb"
    monkeypatch.setattr(ingest, "_PASS_HEADROOM", 0)  # any pass runs out of room at once
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        assert exporter.export(_spans(50)).name == "SUCCESS"  # root calls without identity
        assert exporter.force_flush(10_000)
    finally:
        exporter.shutdown()
    con = duckdb.connect(str(path), read_only=True)
    try:
        settled = con.execute("SELECT count(*) FROM spans WHERE identity_settled").fetchone()[0]
    finally:
        con.close()
    assert settled == 50


def test_a_backlog_goes_in_transactions_of_bounded_size_and_every_span_arrives(tmp_path, table, monkeypatch):
    # A transaction's rows wait in memory until its commit: a backlog moved in one transaction
    # raised the application's peak RSS by ~1.7 KB a span (issue 12). Without vacuum each
    # commit leaves a row group of its own, which shows the transactions here.
    path = tmp_path / "s.duckdb"
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 40)
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for _ in range(7):  # seven spool files of 20 spans, pending at once
            assert exporter.export(_spans(20)).name == "SUCCESS"
        (spool.spool_dir(path) / "00000000000000000001-1-00000000.parquet").write_bytes(
            b"not parquet"
        )  # oldest first: a file no footer can be read from goes alone, and only it is set aside
        assert ingest.ingest(path, threads=1, compact=False) == 7
    finally:
        exporter.shutdown()
    assert _row_groups(path) == 4  # 40 + 40 + 40 + 20 spans
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 140
    finally:
        con.close()
    assert [f.name for f in spool.quarantined(path)] == ["00000000000000000001-1-00000000.parquet"]


def test_a_backlog_is_settled_every_few_transactions_and_the_facts_cover_it(tmp_path, table, monkeypatch):
    # What the rollup facts' upkeep needs grows with the spans moved since it last ran: for a
    # 262k-span backlog it outgrew its bound and ran again unbounded (+169 MB, issue 12).
    path = tmp_path / "s.duckdb"
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 40)
    monkeypatch.setattr(ingest, "_SETTLE_EVERY", 2)
    upkeeps: list[int] = []
    attempt = ingest.aggregates.attempt

    def counted(con):
        upkeeps.append(con.execute("SELECT count(*) FROM spans").fetchone()[0])
        return attempt(con)

    monkeypatch.setattr(ingest.aggregates, "attempt", counted)
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for batch in range(5):  # five spool files of 40 spans: five transactions
            assert exporter.export(_later_spans(batch, 40)).name == "SUCCESS"
        assert ingest.ingest(path, threads=1, compact=False) == 5
    finally:
        exporter.shutdown()
    assert upkeeps == [80, 160, 200]  # after the 2nd, the 4th and the last transaction
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 200
        assert ingest.aggregates.current(con)
    finally:
        con.close()


def _setting(con, name: str = "memory_limit") -> str:
    return con.execute("SELECT current_setting(?)", [name]).fetchone()[0]


def test_a_backlog_leaves_the_limit_of_an_applications_own_connection_alone(tmp_path, table, monkeypatch):
    # memory_limit is the instance's: lowered under a connection the application keeps to the
    # store, its queries failed out of memory, and its own limit, restored from DuckDB's
    # rounded text after every transaction, shrank (500 MB -> 476.5 MiB over one backlog).
    path = tmp_path / "s.duckdb"
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 40)  # six files: six transactions
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for batch in range(6):
            assert exporter.export(_later_spans(batch, 40)).name == "SUCCESS"
        keep = duckdb.connect(str(path))
        try:
            keep.execute("SET memory_limit = '500MB'")
            before = _setting(keep)
            assert ingest.ingest(path, threads=1, compact=False) == 6
            after = _setting(keep)
            stored = keep.execute("SELECT count(*) FROM spans").fetchone()[0]
        finally:
            keep.close()
    finally:
        exporter.shutdown()
    assert (after, stored) == (before, 240)


def test_no_committed_row_is_written_to_a_temporary_file_when_the_checkpoint_is_refused(
    tmp_path, table, monkeypatch
):
    # An application's open write transaction refuses the ingester's CHECKPOINT; a trim then
    # pushed the rows just committed out to temporary files.
    path = tmp_path / "s.duckdb"
    store.connect(path).close()
    monkeypatch.setattr(ingest, "_CHUNK_ROWS", 400)
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        for batch in range(12):
            assert exporter.export(_later_spans(batch, 400)).name == "SUCCESS"
        keep = duckdb.connect(str(path))
        try:
            keep.execute("BEGIN TRANSACTION")
            keep.execute("SELECT count(*) FROM spans").fetchall()
            assert ingest.ingest(path, threads=1, compact=False) == 12
            spilled = keep.execute("SELECT count(*) FROM duckdb_temporary_files()").fetchone()[0]
            keep.execute("ROLLBACK")
        finally:
            keep.close()
    finally:
        exporter.shutdown()
    assert spilled == 0


def test_settings_come_back_after_a_transaction_aborted_inside(tmp_path):
    # A statement that fails (out of memory, mostly) inside the bound aborts the transaction,
    # which then refused the restore: the lowered limit stayed, read as the "before" of every
    # later round.
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    try:
        before = _setting(con)
        with ingest._settings(con, {"memory_limit": "64MB"}):
            assert _setting(con) == "61.0 MiB"
            con.execute("BEGIN TRANSACTION")
            with contextlib.suppress(duckdb.Error):
                con.execute("SELECT error('out of memory, say')")
        assert _setting(con) == before
        assert con.execute("SELECT 1").fetchone() == (1,)
    finally:
        con.close()
