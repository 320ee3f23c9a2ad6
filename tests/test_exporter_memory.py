"""The exporter's ingest keeps DuckDB's checkpoint vacuum off (its peak memory grows with the
table, inside the application's process); any other writer merges the row groups it leaves.
Real TracerProvider, real DuckDB files. Memory itself is measured in benchmarks/, not here."""

from __future__ import annotations

import duckdb
from test_exporter import make_spans

from otel_costattr.store import database as store
from otel_costattr.store import ingest
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


def test_ingest_restores_the_settings_it_changed(tmp_path, table):
    path = tmp_path / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        exporter.export(_spans(5))
        keep = duckdb.connect(str(path))  # shares the DuckDB instance with the ingest connection
        try:
            before = keep.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'max_vacuum_tasks')"
            ).fetchall()
            assert ingest.ingest(path, threads=1, compact=False) == 1
            after = keep.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'max_vacuum_tasks')"
            ).fetchall()
        finally:
            keep.close()
    finally:
        exporter.shutdown()
    assert after == before


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
