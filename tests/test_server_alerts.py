"""Alerts inside `otel-costattr serve` (a real process): a run sent with the OpenTelemetry
Python OTLP/HTTP exporter crosses its budget, the watcher `serve` runs notices it, a webhook
receiver on 127.0.0.1 gets the payload once, and the payload's run link opens that run's page
on the same server (with the bearer token, and in a browser's way: ``?token=`` then the cookie).
A rule file that cannot be used stops `serve` before it starts, in one line."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from alerts_helpers import Receiver, rules_file, tokens
from serverutil import free_port
from test_server_process import PRICES

from otel_costattr.cli import main

pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

TOKEN = "alert-test-token"
RUN_BUDGET = '[[rules]]\nname = "run budget"\nscope = "run"\nmetric = "cost"\nwindow = "run"\nbudget = 0.25\n'
RULES = RUN_BUDGET + 'channels = ["ops"]\n'


def send_run(url: str, costs: list[str]) -> str:
    """One run (a root and a model call per cost) through the real OTLP/HTTP exporter, now."""
    exporter = OTLPSpanExporter(endpoint=url + "/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"})
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("serve-alerts-test")
    with tracer.start_as_current_span("run", attributes={"app.feature": "research"}) as root:
        for usd in costs:
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "acme",
                "gen_ai.request.model": "acme-large",
                "gen_ai.usage.input_tokens": tokens(usd),
                "gen_ai.usage.output_tokens": 0,
            }
            with tracer.start_as_current_span(
                "chat acme-large", context=trace.set_span_in_context(root)
            ) as s:
                s.set_attributes(attrs)
    provider.shutdown()
    return f"{root.get_span_context().trace_id:032x}"


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        con.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        r = con.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        con.close()


def start(db, port: int, *args: str) -> subprocess.Popen:
    """`otel-costattr serve` with a token, once it answers (a 401 to no token: it is up)."""
    cmd = [sys.executable, "-m", "otel_costattr.cli", "serve", "--db", str(db), "--port", str(port)]
    with open(db.with_suffix(".log"), "ab") as err:
        proc = subprocess.Popen([*cmd, "--grpc-port", "0", "--pricing", str(PRICES), *args], stderr=err)
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(f"http://127.0.0.1:{port}/healthz", {})[0] == 401:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(db.with_suffix(".log").read_text())
        time.sleep(0.1)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_serve_alerts_a_run_over_budget_once_with_a_link_to_its_page(tmp_path):
    receiver = Receiver()
    db = tmp_path / "s.duckdb"
    rules = rules_file(tmp_path / "alerts.toml", RULES, receiver.url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port, "--token", TOKEN, "--alerts", str(rules), "--alerts-interval", "200ms")
    code = None
    try:
        send_run(base, ["0.10"])  # under the budget: never alerts
        over = send_run(base, ["0.20", "0.10"])  # $0.30 of $0.25
        wait_for(lambda: receiver.bodies)
        time.sleep(3)  # more evaluations (every 200 ms) and the ingester's next round: no re-fire
        (body,) = receiver.bodies
        _, _, health = get(f"{base}/healthz", {"Authorization": f"Bearer {TOKEN}"})
        alerts = json.loads(health)["alerts"]
        assert alerts["evaluations"] >= 5 and alerts["failed_evaluations"] == 0
        assert alerts["notifications"]["delivered"] == 1
        assert body["rule"] == "run budget" and body["event"] == "firing"
        assert body["scope"] == {"kind": "run", "value": over, "match": {}}
        assert body["value_exact"] == "0.3"
        assert body["links"] == {"dashboard": f"{base}/", "run": f"{base}/runs/{over}"}
        link = body["links"]["run"]
        # a program with the token opens the run's page: the waterfall of that run
        status, _, page = get(link, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, page[:300]
        assert f"Run {over}".encode() in page and page.count(b'class="bar-cell"') == 3  # root and two calls
        # a browser: the link alone is refused, the way in gives a cookie that opens it
        assert get(link, {"Accept": "text/html"})[0] == 401
        status, headers, _ = get(f"{link}?token={TOKEN}", {"Accept": "text/html"})
        assert status == 303 and headers["location"] == urlsplit(link).path
        cookie = headers["set-cookie"].split(";")[0]
        status, _, page = get(link, {"Accept": "text/html", "Cookie": cookie})
        assert status == 200 and f"Run {over}".encode() in page and TOKEN.encode() not in page
    finally:
        proc.send_signal(signal.SIGINT)  # a clean stop: the lifespan stops the watcher
        try:
            code = proc.wait(30)
        finally:
            if code is None:
                proc.kill()
            receiver.close()
    assert code == 0
    log = db.with_suffix(".log").read_text()
    assert f"dashboard at {base}/ (first visit: {base}/?token=<the token>)" in log
    assert "alerts: 1 rules from" in log and TOKEN not in log


def test_a_bad_rule_file_stops_serve_before_it_starts(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    bad = rules_file(
        tmp_path / "alerts.toml", RUN_BUDGET + 'channels = ["pager"]\n', "http://127.0.0.1:9/hook"
    )
    assert main(["serve", "--db", str(db), "--port", "0", "--alerts", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {bad}: ") and "run budget" in err and "pager" in err
    assert err.count("\n") == 1
    assert not db.exists()  # refused before the store was touched
    missing = tmp_path / "none.toml"
    assert main(["serve", "--db", str(db), "--port", "0", "--alerts", str(missing)]) == 1
    assert capsys.readouterr().err == f"Error: {missing}: cannot read: No such file or directory\n"


@pytest.mark.parametrize(
    ("interval", "message"), [("soon", "expected a duration"), ("0s", "must be above 0")]
)
def test_a_bad_alert_interval_is_one_line(tmp_path, capsys, interval, message):
    db = tmp_path / "s.duckdb"
    rules = rules_file(tmp_path / "alerts.toml", RULES, "http://127.0.0.1:9/hook")
    args = ["serve", "--db", str(db), "--port", "0", "--alerts", str(rules), "--alerts-interval", interval]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: --alerts-interval: ") and message in err and err.count("\n") == 1
    assert not db.exists()


def test_serve_help_names_the_dashboard_and_alerts(capsys):
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--alerts FILE" in out and "--alerts-interval DURATION" in out and "?token=" in out


def test_bound_to_every_address_serve_asks_for_the_base_url(tmp_path):
    db = tmp_path / "s.duckdb"
    port = free_port()
    proc = start(db, port, "--host", "0.0.0.0", "--token", TOKEN)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    log = db.with_suffix(".log").read_text()
    assert f"note: links (alerts, pages) say http://0.0.0.0:{port}; pass --base-url" in log
    proc = start(db, port, "--host", "0.0.0.0", "--token", TOKEN, "--base-url", "https://costs.example/")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    log = db.with_suffix(".log").read_text()
    assert log.count("note: links") == 1 and "dashboard at https://costs.example/ (first visit" in log


def test_alerts_state_is_refused_where_it_would_be_ignored(tmp_path, capsys):
    """--alerts-state is the local file of a ClickHouse store's alert states (a DuckDB store
    keeps its own): given anywhere else it was silently unused."""
    import socket

    db, state = tmp_path / "s.duckdb", tmp_path / "state.duckdb"
    rules = rules_file(tmp_path / "alerts.toml", RULES, "http://127.0.0.1:9/hook")
    with socket.socket() as taken:  # refused before the port is looked at (and never serves)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["serve", "--db", str(db), "--port", port, "--alerts", str(rules)]
        argv += ["--alerts-state", str(state)]
        assert main(argv) == 1
        assert capsys.readouterr().err == (
            "Error: --alerts-state: only with a ClickHouse --db (a DuckDB store keeps its own alert states)\n"
        )
        chdb = tmp_path / "ch"
        assert main(["serve", "--db", f"chdb://{chdb}", "--port", port, "--alerts-state", str(state)]) == 1
        assert capsys.readouterr().err == (
            "Error: --alerts-state: only with --alerts (it keeps the states of those rules)\n"
        )
    assert not db.exists() and not state.exists() and not chdb.exists()
