"""``--out`` never overwrites the span store a command reads: the database, its write-ahead
log, a file in its spool. (A review found `rollup ... --db x.duckdb --out x.duckdb` turned a
1.3 MB store into a 288-byte CSV.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_rollups_workload import build

from otel_costattr.cli import cli


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("out-store") / "spans.duckdb")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(*argv: object):
    return CliRunner().invoke(cli, [str(a) for a in argv], env={"COLUMNS": ""}, catch_exceptions=False)


@pytest.mark.parametrize(
    "argv",
    [
        ["rollup", "per-feature", "--days", "3650", "--format", "csv"],
        ["report", "--days", "3650"],
        ["store", "status", "--format", "json"],
    ],
)
def test_out_refuses_the_database_it_reads(db: Path, argv: list[str]) -> None:
    before = digest(db)
    result = invoke(*argv, "--db", db, "--out", db)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: --out {db}: is a DuckDB database; write the output elsewhere\n"
    assert digest(db) == before


def test_out_refuses_any_duckdb_file_and_the_stores_wal_and_spool(db: Path, tmp_path: Path) -> None:
    other = build(tmp_path / "other.duckdb")  # not the --db: still a store someone keeps
    result = invoke("rollup", "stats", "--db", db, "--out", other)
    assert result.exit_code == 1 and "is a DuckDB database" in result.stderr
    wal = Path(f"{other}.wal")
    result = invoke("rollup", "stats", "--db", db, "--out", wal)
    assert result.exit_code == 1 and f"write-ahead log of the database {other}" in result.stderr
    spool = Path(f"{other}.spool")
    spool.mkdir(exist_ok=True)
    result = invoke("rollup", "stats", "--db", db, "--out", spool / "batch.parquet")
    assert result.exit_code == 1 and f"inside the spool of the database {other}" in result.stderr
    assert not (spool / "batch.parquet").exists()


def test_out_still_writes_beside_the_store(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "spans.duckdb.csv"  # a name like the store's is fine
    result = invoke("rollup", "stats", "--db", db, "--format", "csv", "--out", out)
    assert result.exit_code == 0, result.output
    header, *rows = out.read_text().splitlines()
    assert "," in header and rows
