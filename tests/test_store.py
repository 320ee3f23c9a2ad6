"""The span store against real DuckDB files: schema, migrations, lock retry, spool."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from otel_costattr.spans import rows as mapping
from otel_costattr.store import database as store
from otel_costattr.store import ingest, maintenance, spool

EXPECTED_COLUMNS = [
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("parent_span_id", "VARCHAR"),
    ("name", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("start_time", "TIMESTAMP"),
    ("end_time", "TIMESTAMP"),
    ("duration_ms", "DOUBLE"),
    ("status_code", "VARCHAR"),
    ("status_message", "VARCHAR"),
    ("service_name", "VARCHAR"),
    ("scope_name", "VARCHAR"),
    ("scope_version", "VARCHAR"),
    ("span_role", "VARCHAR"),
    ("operation", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("request_model", "VARCHAR"),
    ("response_model", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("cost_usd", "DECIMAL(38,12)"),
    ("cost_status", "VARCHAR"),
    ("cost_source", "VARCHAR"),
    ("pricing_version", "VARCHAR"),
    ("priced_model", "VARCHAR"),
    ("agent_name", "VARCHAR"),
    ("agent_id", "VARCHAR"),
    ("agent_version", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("step", "INTEGER"),
    ("tool_name", "VARCHAR"),
    ("conversation_id", "VARCHAR"),
    ("workflow_name", "VARCHAR"),
    ("attributes", "JSON"),
    ("resource", "JSON"),
    ("events", "JSON"),
    ("links", "JSON"),
    # Filled in by the store after ingest (store/identity.py), not part of a span's row.
    ("identity_settled", "BOOLEAN"),
    ("settled_feature", "VARCHAR"),
    ("settled_agent_name", "VARCHAR"),
    ("settled_agent_version", "VARCHAR"),
    # The attributes kept as columns (filled at ingest for model calls: schema.ATTRIBUTES).
    ("attr_user_id", "VARCHAR"),
    ("attr_enduser_id", "VARCHAR"),
    ("attr_app_tenant", "VARCHAR"),
    ("attr_tenant_id", "VARCHAR"),
    ("attr_session_id", "VARCHAR"),
    ("attr_costattr_cost_source", "VARCHAR"),
    ("attr_costattr_computed_cost", "VARCHAR"),
]


def columns(con: duckdb.DuckDBPyConnection, table: str = "spans") -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(name, kind) for name, kind in rows]


def row(trace: int, span: int, start_us: int = 1_780_000_000_000_000, **values) -> dict:
    base = dict.fromkeys(mapping.COLUMN_NAMES)
    base.update(
        trace_id=f"{trace:032x}",
        span_id=f"{span:016x}",
        name="chat",
        start_time=start_us,
        end_time=start_us + 1000,
        attributes="{}",
        resource="{}",
        events="[]",
        links="[]",
    )
    base.update(values)
    return base


def table_of(*rows: dict) -> pa.Table:
    return mapping.rows_to_table([tuple(r[c] for c in mapping.COLUMN_NAMES) for r in rows])


def count(path: Path) -> int:
    con = store.connect(path, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        con.close()


# -- schema and migrations -----------------------------------------------------------------


def test_blank_file_is_migrated_to_the_contract_columns(tmp_path):
    con = store.connect(tmp_path / "blank.duckdb")
    try:
        assert columns(con) == EXPECTED_COLUMNS
        applied = con.execute("SELECT name FROM costattr_migrations ORDER BY name").fetchall()
        assert [name for (name,) in applied] == sorted(m.name for m in store.MIGRATIONS)
    finally:
        con.close()


def test_migrating_twice_applies_nothing(tmp_path):
    con = store.connect(tmp_path / "db.duckdb")
    try:
        assert store.migrate(con) == []
    finally:
        con.close()


def test_older_file_is_upgraded_in_order_and_recorded(tmp_path):
    path = str(tmp_path / "old.duckdb")
    first = store.Migration("0001_t", "CREATE TABLE t (a INTEGER)")
    second = store.Migration("0002_t_b", "ALTER TABLE t ADD COLUMN b VARCHAR")
    con = duckdb.connect(path)
    try:
        assert store.migrate(con, [first]) == ["0001_t"]
        con.execute("INSERT INTO t VALUES (1)")
        assert store.migrate(con, [first, second]) == ["0002_t_b"]
        assert columns(con, "t") == [("a", "INTEGER"), ("b", "VARCHAR")]
        assert con.execute("SELECT a, b FROM t").fetchall() == [(1, None)]
        names = con.execute("SELECT name FROM costattr_migrations ORDER BY applied_at, name")
        assert [n for (n,) in names.fetchall()] == ["0001_t", "0002_t_b"]
    finally:
        con.close()


def test_a_failing_migration_rolls_back_and_names_itself(tmp_path):
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    broken = store.Migration("0002_broken", "CREATE TABLE half (a INTEGER); SELECT * FROM no_such_table")
    try:
        store.migrate(con, [store.Migration("0001_t", "CREATE TABLE t (a INTEGER)")])
        with pytest.raises(store.StoreError, match="migration 0002_broken failed") as info:
            store.migrate(con, [store.Migration("0001_t", ""), broken])
        assert isinstance(info.value.__cause__, duckdb.Error)
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "half" not in tables
        assert con.execute("SELECT count(*) FROM costattr_migrations").fetchone()[0] == 1
    finally:
        con.close()


def test_a_file_from_before_the_spans_table_is_upgraded_on_open(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE notes (x VARCHAR)")
    con.close()
    con = store.connect(path, read_only=True)  # a reader upgrades it too, then reads
    try:
        assert columns(con) == EXPECTED_COLUMNS
        assert columns(con, "notes") == [("x", "VARCHAR")]
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["TABLE spans (id INTEGER, name VARCHAR)", "VIEW calls AS SELECT 1 AS x"])
def test_another_apps_file_with_a_name_of_ours_is_left_untouched(tmp_path, kind):
    """Another application's file with its own ``spans`` (or ``calls``...): the exporter
    refused it only when the first migration failed on the name, after adding the
    migrations' table to that file; now it refuses it untouched, in one line."""
    from otel_costattr import DuckDBSpanExporter

    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"CREATE {kind}")
    before = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    con.close()
    with pytest.raises(ValueError, match=r"not an otel-costattr database: it has a '(spans|calls)' table or"):
        DuckDBSpanExporter(path)
    with pytest.raises(store.StoreError, match="not an otel-costattr database"):
        store.connect(path, read_only=True)
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == before
    finally:
        con.close()


# -- paths and errors --------------------------------------------------------------------


def test_a_file_that_is_not_duckdb_is_refused_by_name(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("just some text, long enough to have a header\n")
    with pytest.raises(store.StoreError, match="not a DuckDB database") as info:
        store.check_path(path)
    assert str(path) in str(info.value)
    with pytest.raises(store.StoreError, match=str(path)):
        store.connect(path)


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    """A `touch`ed path (or a creation killed before DuckDB wrote its header), which DuckDB
    refuses: the message says what to do, not only that it is no database."""
    path = tmp_path / "spans.duckdb"
    path.touch()
    with pytest.raises(store.StoreError) as info:
        store.check_path(path)
    assert str(info.value) == (
        f"{path}: an empty file, not a DuckDB database file: delete it to start a store there"
    )


def test_an_uncreatable_path_is_refused_by_name(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(store.StoreError, match="is not a directory") as info:
        store.check_path(blocker / "spans.duckdb")
    assert str(blocker / "spans.duckdb") in str(info.value)
    with pytest.raises(store.StoreError, match="is a directory"):
        store.check_path(tmp_path)
    with pytest.raises(store.StoreError, match="folder .*missing does not exist"):
        store.check_path(tmp_path / "missing" / "spans.duckdb")


@pytest.mark.parametrize(
    ("path", "said"),
    [
        (":memory:", "in-memory database"),
        ("spans\0.duckdb", "NUL"),
        ("\udcff.duckdb", "not a UTF-8 path"),  # a name of bytes the file system encoding could not decode
    ],
)
def test_a_path_no_store_can_live_at_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, path, said):
    """A review: a non-UTF-8 name raised DuckDB's RuntimeError('std::bad_cast') with a
    spool folder left behind, a NUL a ValueError naming no file, and ':memory:' made a file
    of that name in the working directory."""
    from otel_costattr import DuckDBSpanExporter

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=said) as info:
        DuckDBSpanExporter(path)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_by_name_not_waited_on(tmp_path):
    """Opening a FIFO to read a header blocks until something writes to it: the exporter (a
    zero-code application's start with it), `serve` and `store status` hung for ever. Run in
    a child so that a hang fails the test instead of the run."""
    fifo = tmp_path / "spans.duckdb"
    os.mkfifo(fifo)
    code = textwrap.dedent(
        """
        import sys
        from otel_costattr import DuckDBSpanExporter
        from otel_costattr.store import database as store, maintenance
        for open_it in (lambda: DuckDBSpanExporter(sys.argv[1]),
                        lambda: store.connect(sys.argv[1], read_only=True),
                        lambda: store.connect(sys.argv[1]),  # a writer: store repair's
                        lambda: maintenance.repair(sys.argv[1], lock_timeout=1)):
            try:
                open_it()
            except (ValueError, store.StoreError) as e:
                print(e)
        """
    )
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60)
    said = f"{fifo}: not a regular file, not a DuckDB database file"
    assert done.stdout.splitlines() == [said] * 4, done.stderr


def test_read_only_open_of_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(store.StoreError, match="no database at"):
        store.connect(tmp_path / "missing.duckdb", read_only=True)


READ_SPOOLED = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from otel_costattr.store import database
    con = database.connect(sys.argv[1], read_only=True, retry=2)
    print(con.execute("SELECT count(*) FROM spans").fetchone()[0])
    """
)


def _run_read_only(tmp_path: Path, folder: Path, code: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run the script ``code`` on ``path`` with ``folder`` mounted read-only (a mount namespace
    of its own); skips where such a mount cannot be made. Asserts the script succeeded."""
    script = tmp_path / "read.py"
    script.write_text(code, encoding="utf-8")
    mount = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && exec "
    mount += f"{sys.executable} {script} {path}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "mount" in done.stderr and "Read-only" not in done.stderr:
        pytest.skip(f"no read-only bind mount here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return done


def test_a_store_that_cannot_be_written_is_read_saying_what_its_spool_holds(tmp_path, table):
    # On a read-only file system, a reader warned "opening read-only without upgrading"
    # and its answers silently left out the acknowledged spans still in the spool.
    from test_exporter import make_spans

    from otel_costattr import DuckDBSpanExporter

    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "s.duckdb"
    exporter = DuckDBSpanExporter(path, pricing=table, ingest_interval=3600)
    try:
        assert exporter.export(make_spans(2)[:1]).name == "SUCCESS"
        assert exporter.force_flush(10_000)
        assert exporter.export(make_spans(2)[1:]).name == "SUCCESS"
        assert len(store.pending_spool(path)) == 1
    finally:
        exporter._shutdown = True  # leave the second batch in the spool, as a crash would
    done = _run_read_only(tmp_path, folder, READ_SPOOLED, path)
    assert done.stdout.strip() == "1"  # the table as it is
    assert f"{path} read as it is, without the spans of 1 spool file waiting to be ingested" in done.stderr
    assert "Read-only file system" in done.stderr  # the cause, after it


OPEN_WRITER = """
import sys
from otel_costattr import DuckDBSpanExporter
try:
    DuckDBSpanExporter(sys.argv[1])
except ValueError as e:
    print(e)
"""


def test_a_spool_folder_that_cannot_be_written_fails_at_start(tmp_path):
    # A safety review: the folder existed, so the exporter started, then failed every export
    # and held each batch in memory. Now the start fails, in one line naming the folder.
    from otel_costattr import DuckDBSpanExporter

    path = tmp_path / "s.duckdb"
    DuckDBSpanExporter(path).shutdown()  # the database and its spool folder made
    folder = store.spool_dir(path)
    mount = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && exec "
    mount += f"{sys.executable} -c '{OPEN_WRITER}' {path}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"no read-only bind mount here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{folder}: spool folder not writable: Read-only file system\n"
    # the check leaves nothing behind where it can write (the reserve is the first exporter's)
    assert os.listdir(folder) == [spool.RESERVE]
    DuckDBSpanExporter(path).shutdown()
    assert os.listdir(folder) == [spool.RESERVE]


HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("held", flush=True)
    line = sys.stdin.readline().strip()
    if line:  # "<seconds> <note>": keep holding a while, leave a note, then let go
        seconds, note = line.split(" ", 1)
        time.sleep(float(seconds))
        con.execute("CREATE TABLE IF NOT EXISTS holder_note (note VARCHAR)")
        con.execute("INSERT INTO holder_note VALUES (?)", [note])
    con.close()
    """
)


@contextmanager
def hold(path: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the database file until we write a line to it."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout.readline().strip() == "held"
        yield holder


def test_lock_conflict_retries_then_times_out_naming_the_path(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    with hold(path) as holder:
        try:
            with pytest.raises(store.LockTimeout, match="locked by another process") as info:
                store.connect(path, read_only=True, retry=0.2)
            assert str(path) in str(info.value)
            assert isinstance(info.value.__cause__, duckdb.Error)
        finally:
            holder.communicate("\n", timeout=30)


def test_a_reader_gets_in_once_the_holder_lets_go(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    with hold(path) as holder:
        holder.stdin.write("0.5 written while the reader waited\n")
        holder.stdin.flush()  # the holder keeps the file half a second more, then closes
        with pytest.raises(store.LockTimeout):
            store.connect(path, read_only=True, retry=0)  # still held: no retry, no entry
        con = store.connect(path, read_only=True, retry=60)
        try:  # it got in only after the holder's last write: it retried until let in
            assert con.execute("SELECT note FROM holder_note").fetchall() == [
                ("written while the reader waited",)
            ]
        finally:
            con.close()
        holder.communicate(timeout=30)


def test_retry_policy_is_validated():
    with pytest.raises(ValueError):
        store.Retry(timeout=-1)
    with pytest.raises(ValueError):
        store.Retry(initial=0.5, maximum=0.1)


# -- spool and dedupe ---------------------------------------------------------------------


def test_spool_files_are_ingested_once_and_removed(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    batch = table_of(row(1, 1), row(1, 2), row(2, 3))
    store.write_spool(path, batch)
    store.write_spool(path, batch)  # a retry spooled twice
    assert len(store.pending_spool(path)) == 2
    assert store.spool_bytes(path) > 0
    assert count(path) == 3
    assert store.pending_spool(path) == []
    store.write_spool(path, table_of(row(1, 2), row(3, 4)))  # one old, one new
    assert ingest.ingest(path) == 1
    assert count(path) == 4


def _arrow_spool(path: Path, name: str, table: pa.Table) -> Path:
    """A spool file as the versions of 2026-12-02 from f6be598 to b291743 wrote it: an Arrow
    IPC file (Feather v2) with lz4 buffers."""
    import pyarrow.ipc as ipc

    folder = store.spool_dir(path)
    folder.mkdir(exist_ok=True)
    with ipc.new_file(folder / name, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as w:
        w.write_table(table)
    return folder / name


def test_arrow_spool_files_of_an_earlier_version_are_ingested(tmp_path):
    """Those versions' pending files (a process killed before its ingest) were ignored after
    the revert to Parquet: not pending in `store status`, never ingested, their spans missing.
    They are rewritten as Parquet, in their place in the order, and ingested; a corrupt one
    is quarantined like any unreadable spool file."""
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    _arrow_spool(path, "00000000000000000001-7-00000000.arrow", table_of(row(1, 1), row(1, 2)))
    store.write_spool(path, table_of(row(2, 3)))
    bad = store.spool_dir(path) / "00000000000000000002-7-00000001.arrow"
    bad.write_bytes(b"ARROW1 not really")
    # A real one with its middle zeroed: pyarrow raised a plain OSError ("LZ4 decompress
    # failed"), taken for the disk's, and every later ingest stopped at it.
    zeroed = _arrow_spool(path, "00000000000000000003-7-00000002.arrow", table_of(row(4, 5), row(4, 6)))
    data = bytearray(zeroed.read_bytes())
    data[len(data) // 2 - 32 : len(data) // 2 + 32] = bytes(64)
    zeroed.write_bytes(bytes(data))
    pending = store.pending_spool(path)
    assert [f.suffix for f in pending] == [".arrow", ".arrow", ".arrow", ".parquet"]
    from otel_costattr.store import spool

    assert spool.file_rows(pending[0]) == 2 and spool.file_rows(bad) is None
    assert count(path) == 3
    assert store.pending_spool(path) == []
    assert [f.name for f in spool.quarantined(path)] == [bad.name, zeroed.name]
    assert len(spool.journal_summary(path).quarantine_events) == 2


def test_insert_table_skips_spans_already_stored(tmp_path):
    path = tmp_path / "db.duckdb"
    con = store.connect(path)
    try:
        cost = Decimal("0.003600000001")
        assert ingest.insert_table(con, table_of(row(1, 1, cost_usd=cost), row(1, 2))) == 2
        assert ingest.insert_table(con, table_of(row(1, 1), row(1, 3))) == 1
        got = con.execute("SELECT span_id, cost_usd FROM spans ORDER BY span_id").fetchall()
        assert got == [(f"{1:016x}", cost), (f"{2:016x}", None), (f"{3:016x}", None)]
    finally:
        con.close()


def test_a_corrupt_spool_file_is_quarantined_and_the_rest_ingested(tmp_path, caplog):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(1, 1)))
    bad = store.spool_dir(path) / "00000000000000000000-1-00000000.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    store.write_spool(path, table_of(row(1, 2)))
    assert count(path) == 2
    assert store.pending_spool(path) == []
    assert (store.spool_dir(path) / "bad" / bad.name).exists()
    assert any("cannot be ingested" in r.getMessage() for r in caplog.records)


def test_temporary_spool_files_are_never_ingested(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    folder = store.spool_dir(path)
    folder.mkdir()
    young, old = folder / ".young.parquet.tmp", folder / ".old.parquet.tmp"
    young.write_bytes(b"partial")
    old.write_bytes(b"partial")
    os.utime(old, (0, 0))  # its writer died long ago, before the rename acknowledged it
    store.write_spool(path, table_of(row(1, 1)))
    assert count(path) == 1
    assert young.exists()  # its writer may still be at work
    assert not old.exists()


def test_a_reader_sees_spooled_spans(tmp_path):
    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    store.write_spool(path, table_of(row(7, 7)))
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT trace_id FROM spans").fetchall() == [(f"{7:032x}",)]
    finally:
        con.close()


def test_threads_opening_a_new_file_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "db.duckdb"
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            store.connect(path).close()
        except BaseException as e:  # collected, asserted below
            errors.append(e)

    threads = [threading.Thread(target=open_close) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    con = store.connect(path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM costattr_migrations").fetchone()[0] == len(store.MIGRATIONS)
    finally:
        con.close()


def _count_opens(monkeypatch) -> list:
    """The arguments of each `store._open` from now on (the store opened afresh or not)."""
    opened: list = []
    open_ = store._open

    def counted(*args, **kwargs):
        opened.append(args)
        return open_(*args, **kwargs)

    monkeypatch.setattr(store, "_open", counted)
    return opened


def _migrated(path):
    """(the migrations a new store at ``path`` records, its memory_limit after connect)."""
    con = store.connect(path)
    try:
        applied = {name for (name,) in con.execute("SELECT name FROM costattr_migrations").fetchall()}
        return applied, con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("bound", [1, 2], ids=["commit", "statement"])
def test_a_migration_out_of_room_in_its_bound_runs_again_without_it(tmp_path, monkeypatch, bound):
    # Migrations run in a bounded buffer pool first (a column fill over 10M spans held 1.9 GB);
    # one that needs more than the bound still applies, and the bound is not left behind. In
    # 1 MiB a migration's COMMIT runs out of room (DuckDB 2.0.1 says "Failed to commit", a
    # transaction error: it was not retried); in 2 MiB a statement does. (A bound below what
    # a rolled-back migration leaves held, 256 KiB, could not even be lifted again.)
    monkeypatch.setattr(store, "_MIGRATION_MEMORY", bound * 2**20)
    tries: list[str] = []
    apply = store._apply

    def counted(con, step):
        tries.append(step.name)
        apply(con, step)

    monkeypatch.setattr(store, "_apply", counted)
    applied, limit = _migrated(tmp_path / "s.duckdb")
    assert applied == {m.name for m in store.MIGRATIONS}
    assert len(tries) > len(applied)  # some ran again, without the bound
    assert limit != f"{bound}.0 MiB"


def test_a_bound_that_cannot_be_lifted_opens_the_store_afresh(tmp_path, monkeypatch):
    # In 1 MiB even the RESET that lifts the bound can find no room after the rollback (seen
    # once in CI, where the retry then ran out of room again inside the bound and the store
    # would not open): the store is then opened afresh and migrated unbounded.
    monkeypatch.setattr(store, "_MIGRATION_MEMORY", 2 * 2**20)
    failed: list[str] = []
    apply, restore = store._apply, store._restore

    def failing(con, step):
        try:
            apply(con, step)
        except duckdb.Error:
            failed.append(step.name)
            raise

    def stuck(con, before):  # the first restore after a failure finds no room
        if len(failed) != 1:
            restore(con, before)

    monkeypatch.setattr(store, "_apply", failing)
    monkeypatch.setattr(store, "_restore", stuck)
    opened = _count_opens(monkeypatch)
    applied, limit = _migrated(tmp_path / "s.duckdb")
    assert applied == {m.name for m in store.MIGRATIONS}
    assert failed and len(opened) == 2
    assert limit != "2.0 MiB"


def test_a_migration_whose_commit_invalidates_the_database_runs_again_on_a_new_one(tmp_path, monkeypatch):
    # In 700 KiB a migration's COMMIT fails to flush and DuckDB 2.0.1 invalidates the
    # instance ("database has been invalidated because of a previous fatal error"): connect
    # opens it afresh and migrates without the bound, instead of failing at every open.
    monkeypatch.setattr(store, "_MIGRATION_MEMORY", 700 * 1024)
    opened = _count_opens(monkeypatch)
    applied, limit = _migrated(tmp_path / "s.duckdb")
    assert applied == {m.name for m in store.MIGRATIONS}
    assert len(opened) == 2  # opened again after the invalidation
    assert "KiB" not in limit


def test_a_migration_is_bounded_only_below_the_limit_and_alone(tmp_path):
    # DuckDB's default limit is 80% of the host's memory: on a small host below the bound,
    # which must then not raise it; and the limit is the instance's, shared by connections.
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    try:
        con.execute("SET memory_limit = '300MB'")
        assert not store._bounds(con)
        con.execute("SET memory_limit = '2GB'")
        assert store._bounds(con)
        other = con.cursor()
        assert not store._bounds(con)
        other.close()
    finally:
        con.close()


def _older_store(path: Path) -> None:
    """A store as the first version left it: the first migration only."""
    con = duckdb.connect(str(path))
    try:
        store.migrate(con, store.MIGRATIONS[:1])
    finally:
        con.close()


def test_a_reader_upgrades_an_older_store_before_ingesting_its_spool(tmp_path, caplog):
    """A reader (the CLI's rollups) of a store an older version wrote, with spool files of
    this version's exporter waiting: it ingested them into the old schema first (a Binder
    Error on stderr, an ingest_error in the journal), upgrading only after."""
    from otel_costattr.rollups.queries import rollup

    path = tmp_path / "old.duckdb"
    _older_store(path)
    store.write_spool(path, table_of(row(1, 1), row(1, 2)))
    rollup("stats", db=path)
    assert store.pending_spool(path) == []
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (2,)
    assert not [r for r in caplog.records if r.levelno >= 30], [r.getMessage() for r in caplog.records]


READ_OLDER = textwrap.dedent(
    """
    import sys
    from otel_costattr.rollups.queries import rollup
    from otel_costattr.rollups.errors import RollupError
    try:
        rollup("per_feature", db=sys.argv[1])
    except RollupError as e:
        print(e)
    """
)


def test_an_older_store_that_cannot_be_written_is_refused_in_one_line(tmp_path):
    """Read where it cannot be upgraded (a read-only file system), an older store answered
    some rollups and failed others with a raw Binder Error on a column it lacks."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "old.duckdb"
    _older_store(path)
    done = _run_read_only(tmp_path, folder, READ_OLDER, path)
    assert done.stdout.strip() == (
        f"{path}: written by an older otel-costattr and not upgraded: it needs to be opened once by "
        f"a process that may write it (otel-costattr store repair --db {path})"
    )


def test_a_store_a_newer_version_upgraded_is_refused_by_name(tmp_path, table):
    """An older version writing into a store a newer one migrated leaves the newer columns
    empty on what it ingests (an upgrade review: the calls' user and tenant columns, lost to
    per-user rollups). A migration this version does not know is refused in one line by
    writers, readers and the exporter at start."""
    from otel_costattr import DuckDBSpanExporter
    from otel_costattr.rollups.errors import RollupError
    from otel_costattr.rollups.queries import rollup

    path = tmp_path / "newer.duckdb"
    store.connect(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO costattr_migrations (name, applied_at) VALUES ('0099_future', now())")
    said = f"{path}: a newer otel-costattr has upgraded this store (migration 0099_future)"
    retired = tmp_path / "retired.duckdb"  # an earlier commit's name for 0015: known, not newer
    store.connect(retired).close()
    with duckdb.connect(str(retired)) as con:
        con.execute(
            "UPDATE costattr_migrations SET name = '0015_rollup_facts_input_calls'"
            " WHERE name = '0015_rollup_facts_usage_calls'"
        )
    store.connect(retired).close()
    with duckdb.connect(str(retired)) as con:
        both = con.execute("SELECT count(*) FROM costattr_migrations WHERE name LIKE '0015%'").fetchone()
    assert both == (2,)
    for read_only in (False, True):
        with pytest.raises(store.NewerStore, match=re.escape(said)):
            store.connect(path, read_only=read_only)
    with pytest.raises(RollupError, match=re.escape(said)):
        rollup("stats", db=path)
    with pytest.raises(ValueError, match=re.escape(said)):
        DuckDBSpanExporter(path, pricing=table)


def test_arrow_spool_files_are_converted_where_no_python_child_can_start(tmp_path, monkeypatch):
    """Under uWSGI, or an embedded or frozen interpreter, sys.executable is not a Python that
    imports this package: the child failed to start and valid files were quarantined ("crashed
    the reader (exit 1)"), or, with sys.executable '', every ingest stopped on a disk error.
    The files are converted in this process then."""
    from otel_costattr.store import spool

    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    _arrow_spool(path, "00000000000000000001-7-00000000.arrow", table_of(row(1, 1), row(1, 2)))
    store.write_spool(path, table_of(row(2, 3)))
    not_python = tmp_path / "uwsgi"
    not_python.write_text("#!/bin/sh\necho 'uwsgi: unrecognized option -c' >&2\nexit 1\n")
    not_python.chmod(0o755)
    hangs = tmp_path / "app"  # an application's own binary, which ignores -c
    hangs.write_text("#!/bin/sh\nsleep 30\n")
    hangs.chmod(0o755)
    monkeypatch.setattr(spool, "_PROBE_SECONDS", 1)
    for executable in (str(not_python), str(hangs), ""):
        monkeypatch.setattr(spool, "_converter_ok", None)
        monkeypatch.setattr(sys, "executable", executable)
        assert spool._converter() is False
    assert count(path) == 3
    assert store.pending_spool(path) == [] and spool.quarantined(path) == []


def test_an_arrow_converter_that_fails_blames_the_file_only_when_it_crashed(tmp_path, monkeypatch):
    """A child ending with a code the converter does not give (an exit 1: memory, the
    interpreter) quarantined a valid file; only a crash (a signal) is the file's doing now,
    and the file waits for the next ingest otherwise."""
    from otel_costattr.store import spool

    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    arrow = _arrow_spool(path, "00000000000000000001-7-00000000.arrow", table_of(row(1, 1)))
    store.write_spool(path, table_of(row(2, 2)))  # behind it: never held up by it
    monkeypatch.setattr(spool, "_converter_ok", True)
    monkeypatch.setattr(spool, "_CONVERT", "import sys; sys.exit(1)")
    store.connect(path).close()
    assert store.pending_spool(path) == [arrow] and spool.quarantined(path) == []
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (1,)
    # Shown in `store status` as an error the Parquet files' success did not resolve (a
    # review: it was only logged, and the file sat pending with no reason).
    st = maintenance.status(path)
    assert "converter ended with exit code 1" in (st.last_ingest_error or "")
    assert st.recovered_time is None and not st.healthy
    monkeypatch.setattr(spool, "_CONVERT", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    store.connect(path).close()
    assert store.pending_spool(path) == [] and [f.name for f in spool.quarantined(path)] == [arrow.name]
    assert "crashed the reader (signal 11)" in spool.quarantine_reason(spool.quarantined(path)[0])


def test_an_arrow_probe_killed_every_time_converts_here(tmp_path, monkeypatch):
    """An application's binary that aborts on an option it does not know: each ingest probed
    it again and the Arrow file's spans never arrived. After a few kills in a row it is taken
    for no Python, and the file is converted in this process."""
    from otel_costattr.store import spool

    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    _arrow_spool(path, "00000000000000000001-7-00000000.arrow", table_of(row(1, 1), row(1, 2)))
    aborts = tmp_path / "app"
    aborts.write_text("#!/bin/sh\nkill -ABRT $$\n")
    aborts.chmod(0o755)
    monkeypatch.setattr(spool, "_converter_ok", None)
    monkeypatch.setattr(spool, "_probe_kills", 0)
    monkeypatch.setattr(sys, "executable", str(aborts))
    for _ in range(spool._PROBE_KILLS):
        store.connect(path).close()
    assert spool._converter_ok is False
    assert count(path) == 2 and store.pending_spool(path) == [] and spool.quarantined(path) == []


def test_arrow_files_that_hang_the_converter_hold_up_one_round_at_most(tmp_path, monkeypatch):
    """Each Arrow file hanging the converter held the write lock for the child's time limit,
    one after another, before any Parquet file went in (a review: connect() in user code
    waited for all of them). After a hang the process starts none for as long."""
    from otel_costattr.store import spool

    path = tmp_path / "db.duckdb"
    store.connect(path).close()
    for n in range(3):
        _arrow_spool(path, f"0000000000000000000{n}-7-00000000.arrow", table_of(row(1, n)))
    store.write_spool(path, table_of(row(2, 9)))
    monkeypatch.setattr(spool, "_converter_ok", True)
    monkeypatch.setattr(spool, "_CONVERT_SECONDS", 1)
    monkeypatch.setattr(spool, "_CONVERT", "import time; time.sleep(30)")
    monkeypatch.setattr(spool, "_resting_until", 0.0)
    for _ in range(2):
        store.connect(path).close()
        assert len(spool.quarantined(path)) == 1
        assert len(store.pending_spool(path)) == 2 and count(path) == 1
    monkeypatch.setattr(spool, "_resting_until", 0.0)  # its time is up
    monkeypatch.setattr(spool, "_CONVERT", "import sys; sys.exit(3)")  # invalid, found at once
    store.connect(path).close()
    assert len(spool.quarantined(path)) == 3 and store.pending_spool(path) == []


STATUS = textwrap.dedent(
    """
    import sys
    from otel_costattr.store.maintenance import status
    st = status(sys.argv[1])
    print(st.schema, st.healthy)
    """
)


def test_status_says_when_this_version_refuses_the_store(tmp_path):
    """`store status --check` said healthy of stores every command refused (an upgrade
    review): one a newer version upgraded, and an older one this user cannot upgrade."""
    from click.testing import CliRunner

    from otel_costattr.cli import cli
    from otel_costattr.store.maintenance import status

    newer = tmp_path / "newer.duckdb"
    store.connect(newer).close()
    with duckdb.connect(str(newer)) as con:
        con.execute("INSERT INTO costattr_migrations (name, applied_at) VALUES ('0099_future', now())")
    st = status(newer)
    assert (st.schema, st.healthy) == ("newer", False) and "0099_future" in st.schema_note
    done = CliRunner().invoke(cli, ["store", "status", "--db", str(newer), "--check"])
    assert done.exit_code == 3 and "REFUSED (a newer otel-costattr has upgraded" in done.stdout
    older = tmp_path / "ro" / "old.duckdb"
    older.parent.mkdir()
    _older_store(older)
    st = status(older)  # it may be written here: the next writer upgrades it
    assert (st.schema, st.healthy) == ("upgrade", True)
    assert status(older).schema == "upgrade"  # status itself upgraded nothing
    done = _run_read_only(tmp_path, older.parent, STATUS, older)
    assert done.stdout == "upgrade_blocked False\n"
    current = tmp_path / "current.duckdb"
    store.connect(current).close()
    assert (status(current).schema, status(current).schema_note) == ("current", None)


def test_repair_fills_the_columns_an_older_exporter_left_empty(tmp_path, table):
    """An exporter of a version before the attribute columns, still writing once this
    version had upgraded the store, left them NULL on its calls: per-group read its users'
    calls as 'no user' for good (an upgrade review: u-1 at $2.22 of $2.71)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_costattr import CostSpanProcessor, DuckDBSpanExporter
    from otel_costattr.rollups.queries import rollup
    from otel_costattr.store.maintenance import repair

    path = tmp_path / "s.duckdb"
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table, identity_keys=("user.id",)))
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path, pricing=table)))
    tracer = provider.get_tracer("t")
    call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-large",
            "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 0}  # fmt: skip
    for user in ("u-1", "u-1", "u-2", None):
        run = {"user.id": user} if user else {}
        start = tracer.start_as_current_span
        with start("run", attributes=run), start("chat", attributes=call):
            pass
    provider.shutdown()
    before = rollup("per_group", db=path, group_by="user.id")
    with duckdb.connect(str(path)) as con:  # what the older exporter wrote: no attribute columns
        con.execute("UPDATE spans SET attr_user_id = NULL WHERE attr_user_id = 'u-1'")
    broken = rollup("per_group", db=path, group_by="user.id")
    assert [r["value"] for r in broken] != [r["value"] for r in before]
    assert repair(path).refilled_calls == 2
    assert rollup("per_group", db=path, group_by="user.id") == before
    assert repair(path).refilled_calls == 0  # calls without any of the keys are not rewritten
