"""``--db`` URLs for ClickHouse: what is accepted, and the one line a bad one gets."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from otel_costattr.clickhouse import Target, parse_target, rollup_source
from otel_costattr.rollups.errors import RollupError
from otel_costattr.rollups.queries import rollup


def test_server_url() -> None:
    t = parse_target("clickhouse://alice:s%40cret@ch.internal:9000/otel?table=traces")
    assert t == Target(
        "server", "otel", "traces", host="ch.internal", port=9000, user="alice", password="s@cret"
    )
    assert t.display() == "clickhouse://alice@ch.internal:9000/otel"


def test_server_defaults() -> None:
    assert parse_target("clickhouse://localhost") == Target("server", "default", host="localhost", port=8123)
    t = parse_target("clickhouses://h/db")
    assert (t.port, t.secure, t.table) == (8443, True, "otel_traces")


def test_chdb_urls() -> None:
    assert parse_target("chdb:///var/lib/spans") == Target("chdb", "default", path="/var/lib/spans")
    assert parse_target("chdb://memory?database=x") == Target("chdb", "x", path=None)


def test_duckdb_paths_are_not_targets() -> None:
    for db in ("spans.duckdb", "/tmp/clickhouse/spans.duckdb", "clickhouse.duckdb", ""):
        assert rollup_source(db) is None


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("clickhouse://u:hunter2@/db", "--db clickhouse://u:***@/db: no host"),
        ("clickhouse://h/db?tabel=x", "unknown option 'tabel'"),
        ("clickhouse://h/db?table=x;drop", "table 'x;drop' is not a plain identifier"),
        ("clickhouse://h/my-db", "database 'my-db' is not a plain identifier"),
        ("clickhouse://h:99999/db", "not a port number from 0 to 65535"),
        ("chdb://u:p@/x", "not a user, password or port"),
        ("chdb://relative/path", "three slashes"),
        ("clickhouse://h/db?database=x", "as the path"),
    ],
)
def test_bad_urls_fail_in_one_line(db: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_target(db)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert "hunter2" not in str(e.value)
    with pytest.raises(RollupError):
        rollup("per_feature", db)


def test_a_server_that_cannot_be_reached_is_one_line(tmp_path: object) -> None:
    """The driver logs a warning and wraps the socket's reason in a URL with a query id and a
    retry count; the user sees one line: the target (password masked) and the reason."""
    pytest.importorskip("clickhouse_connect")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = f"clickhouse://u:hunter2@127.0.0.1:{port}/db"
    done = subprocess.run(
        [sys.executable, "-m", "otel_costattr.cli", "rollup", "per-feature", "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: clickhouse://u@127.0.0.1:{port}/db: cannot connect: Connection refused\n"


_WITHOUT_CHDB = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "chdb" or name.startswith("chdb."):
            raise ImportError("No module named 'chdb'")
sys.meta_path.insert(0, Block())
from otel_costattr.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_chdb_not_installed_names_what_to_install(tmp_path) -> None:
    """clickhouse-connect's own hint named its extra ("pip install clickhouse-connect[chdb]"),
    where the README and the other extras say what to install for otel-costattr."""
    pytest.importorskip("clickhouse_connect")
    store = tmp_path / "store"
    (store / "metadata").mkdir(parents=True)  # what a chDB store's folder holds
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CHDB, "rollup", "per-feature", "--db", f"chdb://{store}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == f"Error: chdb://{store}: the embedded engine is not installed: pip install chdb\n"


@pytest.mark.parametrize("password", ["Xy/9kQ", "Xy#9kQ", "Xy?9kQ", "a@b/c"])
def test_a_password_with_url_characters_is_never_shown(password):
    """A review: a generated password holding '/' ended the mask early and urlsplit's own
    message quoted its start as the port ("as 'Xy'"), in every command's one-line error."""
    with pytest.raises(ValueError) as caught:
        parse_target(f"clickhouse://otel:{password}@ch.internal:8123/otel")
    said = str(caught.value)
    assert "9kQ" not in said and "Xy" not in said and "b/c" not in said, said
    assert said.startswith("--db clickhouse://otel:***@"), said
