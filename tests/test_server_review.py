"""Defects a new-user review found in ``serve`` and the dashboard: every unsafe start-up value
refused in one line before anything is opened (``--cors-origin '*'``, a ``javascript:`` base
URL, a blank token, a bad capture variable), the start line naming where it listens, and the
dashboard taking what the API and the CLI take (a trace id prefix, ``since=7d``)."""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from serverutil import serving
from test_server_alerts import TOKEN, free_port, start

from otel_costattr.cli import main
from otel_costattr.demo import run_demo

pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
from otel_costattr.report.live import routes  # noqa: E402
from otel_costattr.server import create_app  # noqa: E402

HTML = {"Accept": "text/html"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cors-origin", "*"], "--cors-origin '*': refusing"),
        (["--cors-origin", "https://ok.example", "--cors-origin", "null"], "--cors-origin 'null': "),
        (["--cors-origin", "https://a.example/path"], "no path"),
        (["--cors-origin", "ftp://a.example"], "expected http(s)://host[:port]"),
        (["--base-url", "javascript:alert(1)"], "--base-url 'javascript:alert(1)': expected http(s)"),
        (["--base-url", "http://"], "--base-url 'http://'"),
        (["--base-url", "https://costs.example/?x=1"], "query"),
        (["--host", "0.0.0.0", "--token", " "], "blank token"),
        (["--token", ""], "blank token"),
        (["--host", "0.0.0.0", "--token", "a"], "refusing a token of 1 characters on 0.0.0.0"),
        (["--host", "0.0.0.0", "--token", "s3cret-token-15"], "use 16 or more"),
        (["--host", "0.0.0.0", "--token", "s3cret token with space"], "with ' ' at position 7"),
        (["--token", "s3cret-t\u00f6ken-long-enough"], "a request header cannot carry it"),
        (["--host", "0.0.0.0", "--token", " s3cret-15chars \n"], "refusing a token of 14 characters"),
    ],
)
def test_unsafe_start_values_are_one_line(tmp_path, capsys, argv, message):
    db = tmp_path / "s.duckdb"
    assert main(["serve", "--db", str(db), "--port", "0", "--grpc-port", "0", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1, err
    assert not db.exists()


def test_a_token_read_with_its_final_newline_still_matches(tmp_path, table):
    # OTEL_COSTATTR_SERVE_TOKEN from a secret file or a Kubernetes secret ends in a newline:
    # started fine, then every request got a 401 (OTLP clients drop such a batch).
    from serverutil import serving

    secret = "s3cret-token-of-24-chars"
    with serving(tmp_path / "s.duckdb", table=table, token=secret + "\n") as srv:
        assert srv.request("GET", "/api/v1/rollups", headers={"Authorization": f"Bearer {secret}"})[0] == 200
        assert srv.request("GET", "/api/v1/rollups", headers={"Authorization": "Bearer other"})[0] == 401


def test_a_blank_token_is_refused_by_the_app_too(tmp_path):
    # clean_token made "\n" an empty token, and create_app then ran with no guard at all.
    # Refused before the store is opened: bad configuration leaves nothing on disk.
    for blank in ("\n", "   "):
        with pytest.raises(ValueError, match="blank token"):
            create_app(str(tmp_path / "unused.duckdb"), token=blank)
    for bad in ({"max_inflight": -1}, {"max_inflight": 0}, {"max_body_bytes": 0}, {"max_inflight": 2.5}):
        with pytest.raises(ValueError, match="expected a whole number of at least 1"):
            create_app(str(tmp_path / "unused.duckdb"), **bad)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_capture_variable_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OTEL_COSTATTR_CAPTURE_CONTENT", "maybe")
    db = tmp_path / "s.duckdb"
    assert main(["serve", "--db", str(db), "--port", "0", "--grpc-port", "0"]) == 1
    err = capsys.readouterr().err
    expected = "OTEL_COSTATTR_CAPTURE_CONTENT='maybe': expected true or false (1/0, yes/no, on/off)"
    assert err == f"Error: {expected}\n"
    assert not db.exists()


def test_good_origins_and_base_urls_pass_and_the_app_refuses_a_star(tmp_path):
    from otel_costattr.server.bind import check_base_url, check_origins

    check_origins(["http://localhost:3000", "https://costs.example", "http://[::1]:8080"])
    check_base_url("https://costs.example/prefix")
    with pytest.raises(ValueError, match="refusing"):
        create_app(str(tmp_path / "unused.duckdb"), cors_origins=["*"])
    assert list(tmp_path.iterdir()) == []


def test_the_start_lines_say_where_it_listens_and_what_links_use(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_COSTATTR_CAPTURE_CONTENT", "true")
    db = tmp_path / "s.duckdb"
    port = free_port()
    proc = start(db, port, "--token", TOKEN, "--base-url", "https://costs.example")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    log = db.with_suffix(".log").read_text()
    assert f"listening on http://127.0.0.1:{port} (OTLP at /v1/traces" in log
    assert "links (alerts, pages) use https://costs.example" in log
    assert "prompt and completion text is stored" in log  # the variable turned capture on


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    db = run_demo(tmp_path_factory.mktemp("review") / "demo.duckdb", today=dt.date(2026, 11, 23))["path"]
    with serving(db, extra_routes=routes(db)) as running:
        yield running


def test_the_run_page_takes_a_unique_prefix_as_the_api_does(srv):
    full = srv.get_json("/api/v1/runs?limit=1")["runs"][0]["trace_id"]
    status, _, body = srv.request("GET", f"/runs/{full[:8].upper()}", headers=HTML)
    assert status == 200 and f"Run {full}".encode() in body
    assert srv.request("GET", "/runs/ffffffff", headers=HTML)[0] == 404
    assert srv.request("GET", "/api/v1/runs/ffffffff")[0] == 404
    assert srv.request("GET", "/runs/not-hex", headers=HTML)[0] == 400


def test_the_dashboard_takes_relative_times(srv):
    status, _, body = srv.request("GET", "/?since=3650d&until=12h", headers=HTML)
    assert status == 200, body[:300]
    assert srv.request("GET", "/runs?since=7d", headers=HTML)[0] == 200
    assert srv.request("GET", "/?since=soon", headers=HTML)[0] == 400
