"""The spool's file format: Arrow IPC files written, Parquet files of earlier versions still
read, and only files that can never be read quarantined, whatever their format.

Real files on disk and a real DuckDB file; corruption made by flipping bits of a real spool
file, so every way pyarrow may refuse one (a bad footer, an lz4 block, an absurd length) is
met as it happens.
"""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from test_store import count, row, table_of

from otel_costattr.store import database as store
from otel_costattr.store import ingest, maintenance, spool


def _write_arrow(table: pa.Table, file) -> None:
    with ipc.new_file(str(file), table.schema) as writer:
        writer.write_table(table)


def test_batches_are_written_as_arrow_ipc_files_that_read_back_the_same(tmp_path):
    path = tmp_path / "db.duckdb"
    table = table_of(row(1, 1), row(1, 2, cost_usd=None), row(2, 1))
    size = store.write_spool(path, table)
    (file,) = spool.pending_spool(path)
    assert file.suffix == spool.ARROW and file.stat().st_size == size
    assert spool.read_arrow(file).equals(table)
    assert spool.file_rows(file) == 3


def test_parquet_files_of_earlier_versions_are_ingested_beside_arrow_ones_each_span_once(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    folder = store.spool_dir(path)
    folder.mkdir()
    # An earlier version's file, older than the Arrow ones, holding a span they repeat.
    pq.write_table(table_of(row(1, 1), row(1, 2)), folder / "00000000000000000001-1-00000000.parquet")
    store.write_spool(path, table_of(row(1, 2), row(1, 3)))
    store.write_spool(path, table_of(row(1, 3), row(1, 4)))
    assert [f.suffix for f in spool.pending_spool(path)] == [".parquet", ".arrow", ".arrow"]
    assert maintenance.status(path).pending_spans == 6
    assert count(path) == 4
    assert spool.pending_spool(path) == [] and spool.quarantined(path) == []


def test_arrow_files_in_groups_with_columns_of_other_versions_are_all_ingested(tmp_path, monkeypatch):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    monkeypatch.setattr(ingest, "_ARROW_ROWS", 2)  # a group every two rows: three groups
    store.write_spool(path, table_of(row(1, 1)))  # (the spool folder now exists)
    # A file from a version whose table had fewer columns (a later migration added some).
    older = pa.table({"trace_id": [f"{1:032x}"], "span_id": [f"{2:016x}"], "name": ["chat"]})
    _write_arrow(older, store.spool_dir(path) / "00000000000000000002-1-00000000.arrow")
    store.write_spool(path, table_of(row(1, 3), row(1, 4)))
    store.write_spool(path, table_of(row(1, 5)))
    assert count(path) == 5
    assert spool.pending_spool(path) == [] and spool.quarantined(path) == []


def _bad_arrow_files(path) -> dict:
    folder = store.spool_dir(path)
    folder.mkdir(exist_ok=True)
    names = ("not arrow", "truncated", "wrong columns", "no trace id", "parquet named arrow")
    files = {name: folder / f"{i:020d}-1-00000000.arrow" for i, name in enumerate(names, 1)}
    files["not arrow"].write_bytes(b"ARROW1 not really arrow")
    store.write_spool(tmp := path.with_name("other.duckdb"), table_of(row(9, 9)))
    (good,) = spool.pending_spool(tmp)
    files["truncated"].write_bytes(good.read_bytes()[:-40])
    surprise = pa.table({"trace_id": ["a" * 32], "span_id": ["b" * 16], "surprise": [1]})
    _write_arrow(surprise, files["wrong columns"])
    _write_arrow(
        pa.table({"trace_id": pa.array([None], pa.string()), "span_id": ["c" * 16]}), files["no trace id"]
    )
    pq.write_table(table_of(row(9, 8)), files["parquet named arrow"])
    return files


def test_arrow_files_that_can_never_be_read_are_quarantined_with_their_reason(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1)))
    bad = _bad_arrow_files(path)
    store.write_spool(path, table_of(row(1, 2)))
    assert count(path) == 2  # the readable ones
    assert store.pending_spool(path) == []
    st = maintenance.status(path)
    assert sorted(q.name for q in st.quarantined) == sorted(f.name for f in bad.values())
    reasons = {q.name: q.reason for q in st.quarantined}
    assert "surprise" in reasons[bad["wrong columns"].name]
    assert "NOT NULL" in reasons[bad["no trace id"].name]
    assert "Arrow" in reasons[bad["parquet named arrow"].name]
    assert all(reasons.values())


def test_an_arrow_file_that_cannot_be_opened_is_not_held_against_it(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    folder = store.spool_dir(path)
    folder.mkdir()
    odd = folder / "00000000000000000001-1-00000000.arrow"
    odd.mkdir()  # reading it fails in the operating system (EISDIR), not in its bytes
    assert ingest.unreadable(odd) is None
    assert spool.file_rows(odd) is None


def test_a_spool_file_with_any_bits_flipped_is_either_ingested_whole_or_quarantined(tmp_path):
    # Whatever pyarrow raises for a damaged file (OSError for an lz4 block or a short read,
    # MemoryError for an absurd length, a UnicodeDecodeError for a field name), the check
    # must say "unreadable" unless the file really can be inserted: a file wrongly thought
    # fine would stop every later ingest, one wrongly refused would be set aside.
    path = tmp_path / "db.duckdb"
    store.write_spool(path, table_of(*(row(1, s, attributes='{"k":"v"}') for s in range(1, 60))))
    (file,) = spool.pending_spool(path)
    data = file.read_bytes()
    rng = random.Random(12)
    probe = duckdb.connect()
    for step in store.MIGRATIONS:
        probe.execute(step.sql)
    verdicts = {True: 0, False: 0}
    for i in range(120):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 2, 4))):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        one = tmp_path / f"{i:020d}.arrow"
        one.write_bytes(bytes(damaged))
        reason = ingest.unreadable(one)
        verdicts[reason is None] += 1
        if reason is None:  # then it really is readable, and insertable
            probe.register("t", spool.read_arrow(one))
            probe.execute("INSERT INTO spans BY NAME SELECT * FROM t")
            probe.execute("DELETE FROM spans")
        else:
            assert isinstance(reason, str) and reason
    assert verdicts[False] > 60 and verdicts[True] > 0  # both kinds were met
