"""`otel-costattr serve` as a process: the bind rule, and kill -9 after acknowledged requests.

A 200 means the batch is on disk: SIGKILL right after the last one loses nothing, and the next
start ingests what was pending.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
from serverutil import free_port
from test_server_otlp import JS, json_request, span_json

from otel_costattr.cli import main
from otel_costattr.store.spool import pending_spool

PRICES = Path(__file__).parent / "data" / "test_prices.toml"


def start(db: Path, port: int, *args: str, at: str = "127.0.0.1") -> subprocess.Popen:
    """``serve`` in a process of its own, once it answers on ``at`` (its URL's host)."""
    cmd = [sys.executable, "-m", "otel_costattr.cli", "serve", "--db", str(db), "--port", str(port)]
    log = db.with_suffix(".log")
    with open(log, "ab") as err:
        proc = subprocess.Popen([*cmd, "--grpc-port", "0", "--pricing", str(PRICES), *args], stderr=err)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{at}:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)


def post(port: int, body: bytes) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", data=body, headers=JS, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def ids(db: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return set(con.execute("SELECT trace_id, span_id FROM spans").fetchall())


def spooled_ids(db: Path) -> set[tuple[str, str]]:
    files = [str(f) for f in pending_spool(db)]
    if not files:
        return set()
    with duckdb.connect() as con:
        return set(con.execute("SELECT trace_id, span_id FROM read_parquet(?)", [files]).fetchall())


def stored(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM spans").fetchone()[0]


def test_kill_9_after_acknowledged_requests_loses_nothing(tmp_path):
    db = tmp_path / "s.duckdb"
    port = free_port()
    proc = start(db, port)
    acked, expected = 0, set()
    try:
        for r in range(40):
            spans = [span_json(f"{r:08x}{i:08x}", traceId=f"{r + 1:032x}") for i in range(1, 51)]
            assert post(port, json_request(spans)) == 200
            acked += 50
            expected |= {(s["traceId"], s["spanId"]) for s in spans}
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # every acknowledged span is in the table or in the spool (a file may be in both when the
    # kill fell between an ingest's commit and its delete: ingested again once, stored once)
    assert ids(db) | spooled_ids(db) == expected
    # the next start ingests what the killed one left
    proc = start(db, port)
    try:
        deadline = time.monotonic() + 30
        while pending_spool(db):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/v1/stats?since=2025-01-01", timeout=10
        ) as r:
            assert json.loads(r.read())["calls"] == acked
    finally:
        proc.send_signal(signal.SIGINT)  # a clean stop: uvicorn runs the lifespan's shutdown
        assert proc.wait(30) == 0
    assert stored(db) == acked and not pending_spool(db)


def test_non_loopback_bind_without_a_token_refuses_to_start(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OTEL_COSTATTR_SERVE_TOKEN", raising=False)
    db = tmp_path / "s.duckdb"
    assert main(["serve", "--db", str(db), "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: refusing to bind 0.0.0.0 without a token") and err.count("\n") == 1
    assert not db.exists()  # refused before touching anything
    assert main(["serve", "--db", str(tmp_path), "--port", "0"]) == 1
    assert "is a directory" in capsys.readouterr().err

    # the spool folder cannot be made (a file is in its place): one line, not a traceback
    (tmp_path / "t.duckdb.spool").write_text("")
    assert main(["serve", "--db", str(tmp_path / "t.duckdb"), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "cannot create spool folder" in err and err.count("\n") == 1


def test_an_ipv6_host_in_brackets_is_served(tmp_path, capsys):
    # A review: --host '[::1]' (as a URL writes it) was bracketed again and serve died in a
    # 25-line traceback; ::1 worked. Brackets are taken off; around anything else, one line.
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback here")
    db = tmp_path / "s.duckdb"
    proc = start(db, port, "--host", "[::1]", at="[::1]")
    try:
        body = json.dumps({"resourceSpans": []}).encode()
        req = urllib.request.Request(f"http://[::1]:{port}/v1/traces", data=body, headers=JS, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    refused = (
        ("[0.0.0.0]", "brackets go around an IPv6 address only"),
        ("[::1", "unmatched"),
        ("[::1]:8080", "the port goes in --port"),
        ("[::]", "refusing to bind :: without a token"),
    )
    for host, message in refused:
        assert main(["serve", "--db", str(tmp_path / "t.duckdb"), "--host", host]) == 1
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and message in err and err.count("\n") == 1, err


def test_an_http_port_in_use_is_one_error_line(tmp_path, capsys):
    """uvicorn logged "address already in use" and exited 3 after serve had printed that it was
    receiving; now the port is checked before anything is opened, with one line and exit 1."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "s.duckdb"
        assert main(["serve", "--db", str(db), "--port", str(port), "--grpc-port", "0"]) == 1
    out, err = capsys.readouterr()
    assert err == f"Error: port {port} on 127.0.0.1: Address already in use\n"
    assert not db.exists()
    with socket.socket() as taken:  # the gRPC port too, before anything is opened
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grpc_port = taken.getsockname()[1]
        assert main(["serve", "--db", str(db), "--port", "0", "--grpc-port", str(grpc_port)]) == 1
    out, err = capsys.readouterr()
    assert err == f"Error: gRPC port {grpc_port} on 127.0.0.1: Address already in use\n"
    assert not db.exists()


def test_the_same_port_for_http_and_grpc_is_one_error_line(tmp_path, capsys):
    """Both probes passed (the port was free), serve printed "listening", then the second
    server to bind died with "address already in use"."""
    port = free_port()
    db = tmp_path / "s.duckdb"
    assert main(["serve", "--db", str(db), "--port", str(port), "--grpc-port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert err == (
        f"Error: --grpc-port {port}: the same port as --port: OTLP/HTTP and OTLP/gRPC each need"
        " their own (--grpc-port 0: no gRPC)\n"
    )
    assert not db.exists()


def test_port_0_announces_and_serves_the_port_the_system_picked(tmp_path):
    """--port 0 printed "listening on http://127.0.0.1:0" and made links with :0."""
    db = tmp_path / "s.duckdb"
    log = db.with_suffix(".log")
    cmd = [sys.executable, "-m", "otel_costattr.cli", "serve", "--db", str(db), "--port", "0"]
    with open(log, "ab") as err:
        proc = subprocess.Popen([*cmd, "--grpc-port", "0", "--workers", "0"], stderr=err)
    try:
        deadline = time.monotonic() + 30
        while "dashboard at" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        text = log.read_text()
        port = int(text.split("listening on http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        assert port != 0 and f"dashboard at http://127.0.0.1:{port}/" in text
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
