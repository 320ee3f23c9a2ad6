"""The JSON API of `otel-costattr serve`: the rollups over HTTP, money exact, times zoned."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

from serverutil import serving
from test_server_otlp import JS, json_request, span_json

T0 = 1767225600_000_000_000  # 2026-01-01T00:00:00Z


def run_spans(trace: str, n_calls: int, t: int, feature: str = "search") -> list[dict]:
    root = span_json(f"{int(trace[:4], 16):04x}000000000001", traceId=trace, name=f"run {trace[:4]}")
    root["attributes"] = [{"key": "app.feature", "value": {"stringValue": feature}}]
    root["startTimeUnixNano"], root["endTimeUnixNano"] = str(t), str(t + 5_000_000_000)
    out = [root]
    for i in range(n_calls):
        s = span_json(
            f"{int(trace[:4], 16):04x}0000000001{i:02x}", traceId=trace, parentSpanId=root["spanId"]
        )
        s["startTimeUnixNano"], s["endTimeUnixNano"] = str(t + i * 1000), str(t + 1_000_000_000)
        out.append(s)
    return out


def test_runs_page_with_a_cursor_and_a_run_tree(tmp_path, table):
    traces = [f"{i:04x}" + "a" * 28 for i in range(1, 6)]  # five runs, one call more each
    spans = [s for i, tr in enumerate(traces) for s in run_spans(tr, i + 1, T0 + i * 60_000_000_000)]
    spans += run_spans("ffff" + "b" * 28, 1, T0, feature="other")
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        assert srv.request("POST", "/v1/traces", json_request(spans), JS)[0] == 200
        srv.wait_ingested()
        seen, cursor, pages = [], None, 0
        while True:
            page = srv.get_json(
                "/api/v1/runs?feature=search&limit=2" + (f"&cursor={cursor}" if cursor else "")
            )
            seen += page["runs"]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert [r["trace_id"] for r in seen] == traces[::-1]  # newest first, each once
        newest = seen[0]
        assert (newest["calls"], newest["unpriced_calls"], newest["feature"]) == (5, 0, "search")
        # before 2026-06-01 acme-large: 1000 x 3 + 500 x 15 = 10500 micro-dollars a call
        assert Decimal(newest["cost_usd_exact"]) == 5 * Decimal("0.0105")
        assert newest["cost_usd"] == float(5 * Decimal("0.0105"))
        assert newest["start_time"] == "2026-01-01T00:04:00+00:00"
        assert srv.request("GET", "/api/v1/runs?cursor=garbage")[0] == 400
        # A type error is 400 with one message too (FastAPI's default was 422 with a list).
        status, _, body = srv.request("GET", "/api/v1/runs?limit=many")
        assert status == 400 and json.loads(body)["detail"].startswith("limit: ")
        # A unique prefix names the run, as the CLI's `trace` takes; none is 404.
        assert srv.get_json(f"/api/v1/runs/{traces[1][:8]}")["trace_id"] == traces[1]
        assert srv.request("GET", "/api/v1/runs/dddd")[0] == 404
        assert srv.request("GET", "/api/v1/runs?since=yesterday")[0] == 400

        tree = srv.get_json(f"/api/v1/runs/{traces[1]}")
        assert Decimal(tree["usd_exact"]) == 2 * Decimal("0.0105")
        (root,) = tree["spans"]
        assert root["depth"] == 0 and len(root["children"]) == 2
        assert Decimal(root["subtree_usd_exact"]) == 2 * Decimal("0.0105")
        assert root["usd"] is None and root["usd_exact"] is None  # unpriced: same keys
        assert [Decimal(c["usd_exact"]) for c in root["children"]] == [Decimal("0.0105")] * 2
        assert srv.request("GET", "/api/v1/runs/" + "c" * 32)[0] == 404
        assert srv.request("GET", "/api/v1/runs/nothex")[0] == 400


def test_stats_rollups_catalogue_and_errors(tmp_path, table):
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        empty = srv.get_json("/api/v1/stats?days=7")
        assert (empty["runs"], empty["calls"], empty["usd"], empty["by_model"]) == (0, 0, None, [])
        spans = run_spans("1234" + "d" * 28, 3, T0)
        assert srv.request("POST", "/v1/traces", json_request(spans), JS)[0] == 200
        srv.wait_ingested()
        stats = srv.get_json("/api/v1/stats?since=2025-12-31T19:00:00-05:00&until=2026-01-02")
        assert (stats["runs"], stats["calls"], stats["usd_exact"]) == (1, 3, "0.0315")
        (model,) = stats["by_model"]
        assert (model["model"], model["calls"], model["usd_exact"]) == ("acme-large", 3, "0.0315")
        assert srv.get_json("/api/v1/stats?until=2026-01-01")["calls"] == 0

        catalogue = srv.get_json("/api/v1/rollups")
        names = [q["name"] for q in catalogue]
        assert "per-feature" in names and "stats" in names
        per_feature = srv.get_json("/api/v1/rollups/per-feature?since=2025-01-01")
        assert [(r["feature"], r["usd_exact"]) for r in per_feature["rows"]] == [("search", "0.0315")]
        status, _, body = srv.request("GET", "/api/v1/rollups/per-feature?days=-1")
        assert status == 400 and json.loads(body)["detail"] == "per-feature: days: must be positive, got -1"
        status, _, body = srv.request("GET", "/api/v1/rollups/per-feature?colour=red")
        assert status == 400 and "unknown parameter 'colour'" in json.loads(body)["detail"]
        assert "where)" in json.loads(body)["detail"]  # the valid ones, where among them
        for python_only in (
            "reprice=/etc/hostname",
            "arrow=1",
            "now=2026-01-01",
        ):  # rollup()'s, not the API's
            status, _, body = srv.request("GET", f"/api/v1/rollups/per-feature?{python_only}")
            assert status == 400 and "unknown parameter" in json.loads(body)["detail"], python_only
        status, _, body = srv.request("GET", "/api/v1/rollups/per-run?group_by=user.id")
        assert status == 400 and "cannot group by a key" in json.loads(body)["detail"]
        assert all("where" in q["accepts"] for q in catalogue)
        # --where as the API takes it, more than once: either value of a key
        one = "/api/v1/rollups/per-feature?since=2025-01-01&where=model%3Dacme-large"
        assert srv.get_json(one.replace("acme-large", "other"))["rows"] == []
        either = srv.get_json(one + "&where=model%3Dother")
        assert [(r["feature"], r["usd_exact"]) for r in either["rows"]] == [("search", "0.0315")]
        status, _, body = srv.request("GET", "/api/v1/rollups/per-fetaure")
        assert status == 404 and "unknown rollup" in json.loads(body)["detail"]

        health = srv.get_json("/healthz")
        assert (health["status"], health["stored_spans"], health["pending_spool_files"]) == ("ok", 4, 0)
        openapi = srv.get_json("/openapi.json")
        assert {"/v1/traces", "/api/v1/stats", "/api/v1/runs", "/api/v1/runs/{trace_id}"} <= set(
            openapi["paths"]
        )
        # It says what the server does: a rollup's parameters documented (they were not: only
        # `name`), and a bad parameter 400 with one message, never FastAPI's 422 (a review).
        run = openapi["paths"]["/api/v1/rollups/{name}"]["get"]
        params = {p["name"]: p for p in run["parameters"]}
        expected = {"name", "days", "since", "until", "where", "group_by", "limit", "order", "trace_id"}
        assert expected <= set(params) and params["where"]["schema"]["type"] == "array"
        assert params["since"]["schema"]["format"] == "date-time"
        assert params["order"]["description"].endswith("(only runs-list)")
        assert set(run["responses"]) == {"200", "400", "404"}
        assert "422" not in json.dumps(openapi) and "ValidationError" not in json.dumps(openapi)
        status, _, body = srv.request("GET", "/api/v1/runs?limit=x")
        assert status == 400 and isinstance(json.loads(body)["detail"], str)
        status, _, body = srv.request("GET", "/api/v1/runs?since=tuesday")  # not the query's own name
        assert status == 400 and json.loads(body)["detail"].startswith("runs: since: "), body
        # The reference renders on the server: no script, nothing loaded from a CDN.
        status, headers, body = srv.request("GET", "/docs")
        page = body.decode()
        assert status == 200 and "<script" not in page and "http" not in page.replace(srv.url, "")
        assert "GET /api/v1/runs/{trace_id}" in page and "cursor" in page
        assert srv.app.state.base_url == srv.url


def test_extra_routes_and_services_run_in_the_lifespan(tmp_path, table):
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    class Watcher:
        def __init__(self) -> None:
            self.events: list[str] = []

        def start(self) -> None:
            self.events.append("start")

        def stop(self) -> None:
            self.events.append("stop")

    watcher = Watcher()
    home = Route("/", lambda request: PlainTextResponse("dashboard"))
    with serving(tmp_path / "s.duckdb", table=table, extra_routes=[home], services=[watcher]) as srv:
        assert srv.request("GET", "/") == (200, srv.request("GET", "/")[1], b"dashboard")
        assert watcher.events == ["start"]
    assert watcher.events == ["start", "stop"]
    with serving(tmp_path / "t.duckdb", table=table) as srv:  # no dashboard: / shows the docs
        status, _, body = srv.request("GET", "/")
        assert status == 200 and b"/openapi.json" in body


def test_no_cors_unless_asked(tmp_path, table):
    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        _, headers, _ = srv.request("GET", "/api/v1/stats", headers={"Origin": "https://dash.example"})
        assert "access-control-allow-origin" not in {k.lower() for k in headers}
        assert srv.request("OPTIONS", "/api/v1/stats", headers=preflight)[0] == 405
    with serving(tmp_path / "t.duckdb", table=table, cors_origins=["https://dash.example"]) as srv:
        status, headers, _ = srv.request("OPTIONS", "/api/v1/stats", headers=preflight)
        assert status == 200 and headers["access-control-allow-origin"] == "https://dash.example"
        _, headers, _ = srv.request("GET", "/api/v1/stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in {k.lower() for k in headers}
    # with a token, the browser's preflight (which carries none) is still answered; the call is not
    with serving(tmp_path / "u.duckdb", table=table, cors_origins=["https://dash.example"], token="t") as srv:
        assert srv.request("OPTIONS", "/api/v1/stats", headers=preflight)[0] == 200
        assert srv.request("GET", "/api/v1/stats", headers={"Origin": "https://dash.example"})[0] == 401
        auth = {"Origin": "https://dash.example", "Authorization": "Bearer t"}
        assert srv.request("GET", "/api/v1/stats", headers=auth)[0] == 200


def _with_host(srv, host: str, path: str = "/api/v1/runs", body: bytes | None = None, headers=None) -> int:
    import http.client

    conn = http.client.HTTPConnection(srv.url.split("//")[1], timeout=30)
    try:
        conn.putrequest("POST" if body is not None else "GET", path, skip_host=True)
        conn.putheader("Host", host)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return conn.getresponse().status
    finally:
        conn.close()


def test_without_a_token_only_requests_for_localhost_are_answered(tmp_path, table):
    # DNS rebinding: a page at attacker.example, its name then pointed at 127.0.0.1, is the
    # server's own origin to the browser. Its requests carry Host: attacker.example.
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        port = srv.url.rsplit(":", 1)[1]
        assert _with_host(srv, f"attacker.example:{port}") == 421
        body = json_request([span_json("7777777777777777")])
        assert _with_host(srv, f"attacker.example:{port}", "/v1/traces", body, JS) == 421
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", f"[::1]:{port}", "127.0.0.2"):
            assert _with_host(srv, host) == 200, host
        assert srv.sink.stored_spans == 0
    # The name a reverse proxy forwards: the --base-url's host.
    from otel_costattr.server import create_app
    from otel_costattr.server.hosts import HostCheck

    app = create_app(str(tmp_path / "b.duckdb"), base_url="https://costs.example.com")
    hosts = [m for m in app.user_middleware if m.cls.__name__ == "HostCheck"]
    assert len(hosts) == 1 and hosts[0].kwargs["allowed"] == ["costs.example.com"]
    for base in ("costs.example.com", "costs.example.com."):  # a fully qualified name too
        check = HostCheck(None, [base])
        assert all(check.allows(h) for h in ("costs.example.com", "COSTS.example.com.:443", "localhost"))
        assert not check.allows("costs.example.com.evil")
    # With a token the token guards every request, whatever the Host.
    with serving(tmp_path / "t.duckdb", table=table, token="a-token-of-enough-length") as srv:
        assert (
            _with_host(srv, "attacker.example", headers={"Authorization": "Bearer a-token-of-enough-length"})
            == 200
        )
        assert _with_host(srv, "attacker.example") == 401


def test_healthz_shows_a_spool_file_set_aside(tmp_path, table):
    # A quarantined file's spans are not in the table: /healthz said ok and counted nothing.
    from otel_costattr.store.spool import spool_dir

    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        assert srv.get_json("/healthz")["quarantined_spool_files"] == 0
        spool = spool_dir(db)
        spool.mkdir(parents=True, exist_ok=True)
        (spool / "0-broken.parquet").write_bytes(b"not parquet")
        srv.sink._wake.set()
        deadline = time.monotonic() + 20
        while srv.get_json("/healthz")["quarantined_spool_files"] != 1:
            assert time.monotonic() < deadline, srv.get_json("/healthz")
            time.sleep(0.05)
        assert srv.get_json("/healthz")["status"] == "degraded"


def test_healthz_says_degraded_when_the_spool_cannot_be_listed(tmp_path, table, monkeypatch):
    """An OSError listing the spool folder (no descriptors left) made /healthz a 500, where
    the ingester's same failure is 'degraded' with the error."""
    import errno

    from otel_costattr.store import spool

    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        real = spool._spool_files

        def out_of_descriptors(folder, *args):
            if folder.name == spool.QUARANTINE:
                raise OSError(errno.EMFILE, "Too many open files", str(folder))
            return real(folder, *args)

        monkeypatch.setattr(spool, "_spool_files", out_of_descriptors)
        health = srv.get_json("/healthz")
        monkeypatch.undo()
    assert health["status"] == "degraded" and "Too many open files" in health["last_ingest_error"]
    assert health["pending_spool_files"] is None and health["quarantined_spool_files"] is None


def test_healthz_says_degraded_while_ingest_is_stuck(tmp_path, table, monkeypatch):
    """A frozen disk blocks an ingest round without an error: /healthz said "ok" while
    nothing moved (a review froze one under `serve`). A round that has finished no step for
    ``stall_after`` seconds is 'degraded', with how long; once it moves, 'ok' again."""
    from otel_costattr.store import ingest

    real, release, entered = ingest.ingest, threading.Event(), threading.Event()

    def frozen(*args, **kwargs):
        entered.set()
        release.wait(30)  # the disk thaws
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "ingest", frozen)
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        srv.sink.stall_after = 30.0
        assert srv.request("POST", "/v1/traces", json_request(run_spans("ab" * 16, 1, T0)), JS)[0] == 200
        assert entered.wait(20)
        health = srv.get_json("/healthz")
        assert (health["status"], health["ingest_stalled_seconds"]) == ("ok", None)  # not yet
        srv.sink.stall_after = 0.3
        time.sleep(0.4)
        health = srv.get_json("/healthz")
        assert health["status"] == "degraded" and health["ingest_stalled_seconds"] >= 0.3
        assert health["last_ingest_error"] is None and health["pending_spool_files"] == 1
        release.set()
        srv.wait_ingested()
        deadline = time.monotonic() + 20  # the step's end comes a moment after its files went
        while (health := srv.get_json("/healthz"))["status"] != "ok":
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert (health["ingest_stalled_seconds"], health["stored_spans"]) == (None, 2)


def test_healthz_says_degraded_while_readers_keep_the_ingester_out(tmp_path, table, monkeypatch):
    """A read that holds the file (a 40,000-span run's page took minutes) makes each ingest
    round wait for its turn, give up and end: no round was stalled, so /healthz said "ok"
    while an acknowledged span stayed out of the table for 5 minutes (a review). Rounds that
    each end with files kept out count as stalled since the last step."""
    from otel_costattr.server import sink as sink_module
    from otel_costattr.store import database as store

    monkeypatch.setattr(sink_module, "_TURN", 0.2)  # each round gives up on its turn sooner
    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        srv.sink.stall_after = 30.0
        leave, inside = threading.Event(), threading.Event()

        def long_read():
            with store.turns(str(db)).reading(10):
                inside.set()
                leave.wait(30)

        reader = threading.Thread(target=long_read)
        reader.start()
        try:
            assert inside.wait(10)
            assert srv.request("POST", "/v1/traces", json_request(run_spans("cd" * 16, 1, T0)), JS)[0] == 200
            time.sleep(0.6)  # a few rounds, each kept out
            health = srv.get_json("/healthz")
            assert (health["status"], health["ingest_stalled_seconds"]) == ("ok", None)  # not yet
            srv.sink.stall_after = 0.5
            deadline = time.monotonic() + 10  # a loaded machine: the rounds come late
            while (health := srv.get_json("/healthz"))["status"] != "degraded":
                assert time.monotonic() < deadline, health
                time.sleep(0.05)
            assert health["ingest_stalled_seconds"] >= 0.5, health
            assert health["pending_spool_files"] == 1 and health["last_ingest_error"] is None
        finally:
            leave.set()
            reader.join()
        srv.wait_ingested()
        deadline = time.monotonic() + 20
        while (health := srv.get_json("/healthz"))["status"] != "ok":
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert health["ingest_stalled_seconds"] is None


def test_head_answers_as_get_without_the_body(tmp_path, table):
    """HEAD (an uptime monitor's probe, a load balancer's check) gets the GET's status and
    headers, Content-Length included, and no body; a route without GET is 405 as before; with
    a token, a HEAD needs it as a GET does."""
    token = "a-token-of-24-characters"
    bearer = {"Authorization": f"Bearer {token}"}
    with serving(tmp_path / "s.duckdb", table=table, token=token) as srv:
        spans = json_request(run_spans("a" * 32, 2, T0))
        assert srv.request("POST", "/v1/traces", spans, JS | bearer)[0] == 200
        srv.wait_ingested()
        for path in ("/healthz", "/api/v1/rollups/per-feature", "/api/v1/runs?limit=1", "/docs"):
            status, got, body = srv.request("GET", path, headers=bearer)
            assert status == 200 and body, path
            status, head, empty = srv.request("HEAD", path, headers=bearer)
            assert (status, empty) == (200, b""), path
            assert head["content-length"] == str(len(body)), path
            assert head["content-type"] == got["content-type"], path
        assert srv.request("HEAD", "/healthz")[0] == 401  # no token: refused, as a GET is
        status, head, _ = srv.request("HEAD", "/v1/traces", headers=bearer)
        assert status == 405 and head["allow"] == "POST"
        assert srv.request("HEAD", "/api/v1/runs/ffff", headers=bearer)[0] == 404


def test_runs_whose_calls_came_without_a_start_time_page_and_show(tmp_path, table):
    # OTLP's startTimeUnixNano 0 means unknown: such a run's first_call is NULL. A page
    # ending on one answered 500 ('NoneType' has no isoformat), the cursor test never
    # matched them (23 of 25 runs reached by paging), and the run's dashboard page was 500.
    timed = [f"{i:04x}" + "a" * 28 for i in range(1, 4)]
    startless = [f"{i:04x}" + "c" * 28 for i in range(1, 3)]
    spans = [s for i, tr in enumerate(timed) for s in run_spans(tr, 1, T0 + i * 60_000_000_000)]
    for tr in startless:
        for s in run_spans(tr, 2, T0):
            if s.get("parentSpanId") or tr == startless[1]:  # the second: its root too
                s["startTimeUnixNano"] = "0"
            spans.append(s)
    from otel_costattr.report.live import routes

    db = tmp_path / "s.duckdb"
    with serving(db, table=table, extra_routes=routes(str(db))) as srv:
        assert srv.request("POST", "/v1/traces", json_request(spans), JS)[0] == 200
        srv.wait_ingested()
        everything = srv.get_json("/api/v1/runs?limit=100")["runs"]
        assert len(everything) == 5
        for limit in (1, 2, 3, 4):
            seen, cursor = [], None
            while True:
                status, _, body = srv.request(
                    "GET", f"/api/v1/runs?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
                )
                assert status == 200, body
                page = json.loads(body)
                seen += [r["trace_id"] for r in page["runs"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == [r["trace_id"] for r in everything], limit  # each once, in order
        assert seen == timed[::-1] + startless[::-1]  # the startless last
        for trace in startless:
            status, _, body = srv.request("GET", f"/runs/{trace}")
            assert status == 200 and trace.encode() in body
            assert body.count(b"start time unknown") == (2 if trace == startless[0] else 3)


def test_a_run_nested_deeper_than_the_serializer_goes_is_answered(tmp_path, table):
    # A chain of 150 spans, one inside the next, and one more at the bottom: 500 from depth
    # 128 on (past the serializer's depth limit, a dict and a list a level).
    trace = "d" * 32
    chain = []
    for i in range(150):
        s = span_json(f"{i + 1:016x}", traceId=trace, name=f"level {i}")
        if i:
            s["parentSpanId"] = chain[-1]["spanId"]
        s["startTimeUnixNano"], s["endTimeUnixNano"] = str(T0 + i), str(T0 + 10_000)
        chain.append(s)
    call = run_spans(trace, 1, T0)[1]
    call["parentSpanId"] = chain[-1]["spanId"]
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        assert srv.request("POST", "/v1/traces", json_request([*chain, call]), JS)[0] == 200
        srv.wait_ingested()
        status, _, body = srv.request("GET", f"/api/v1/runs/{trace}")
        assert status == 200, body
        tree = json.loads(body)
        assert Decimal(tree["usd_exact"]) == 151 * Decimal("0.0105")  # span_json's spans are calls
        node, levels = tree["spans"][0], 0
        while node["children"] and len(node["children"]) == 1:
            node, levels = node["children"][0], levels + 1
        assert levels == 63 and node["depth"] == 63  # nested 64 levels, then flat below it
        assert [c["depth"] for c in node["children"]] == list(range(64, 151))
        assert Decimal(node["children"][-1]["usd_exact"]) == Decimal("0.0105")  # depth 150


def test_links_stay_under_the_base_urls_path(tmp_path, table):
    """Behind a reverse proxy at /costs (--base-url https://host/costs), the pages' links, the
    filter form, the docs' link and the token's redirect began at "/": every click left
    /costs (a review). Both a proxy that strips the path and one that passes it reach the
    same pages."""
    import http.client

    trace = "c0575" + "a" * 27
    spans = run_spans(trace, 1, T0)
    token = "a-token-of-enough-length"
    auth = {"Authorization": f"Bearer {token}"}
    from otel_costattr.report.live import routes

    db = tmp_path / "s.duckdb"
    with serving(db, table=table, base_path="/costs", token=token, extra_routes=routes(db, table)) as srv:
        assert srv.request("POST", "/v1/traces", json_request(spans), {**JS, **auth})[0] == 200
        srv.wait_ingested()
        for prefix in ("", "/costs"):  # the proxy stripped the path, or passed it
            status, _, page = srv.request("GET", f"{prefix}/?days=36500", headers=auth)
            assert status == 200
            text = page.decode()
            assert f'href="/costs/runs/{trace}' in text and 'action="/costs/' in text
            assert 'href="/runs/' not in text
            status, _, docs = srv.request("GET", f"{prefix}/docs", headers=auth)
            assert status == 200 and 'href="/costs/openapi.json"' in docs.decode()
        host, port = srv.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", f"/?token={token}&days=7")
        answer = conn.getresponse()
        assert answer.status == 303 and answer.getheader("Location") == "/costs/?days=7"
        conn.close()
    # A root that begins another path's name is no prefix of it (/r and /runs: a review).
    from otel_costattr.server.auth import _same_site_path

    assert _same_site_path({"root_path": "/r", "path": "/runs/abc"}) == "/r/runs/abc"
    assert _same_site_path({"root_path": "/r", "path": "/r/runs/abc"}) == "/r/runs/abc"


def test_an_endpoint_with_a_trailing_slash_is_the_receiver(tmp_path, table):
    """``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:4318/v1/traces/`` is taken as it is
    by the exporters: the 307 to the path without the slash, which Node's exporter does not
    follow (nor urllib for a POST), lost every batch. Its refusals are OTLP's Status too."""
    token = "a-token-of-24-characters"
    bearer = {"Authorization": f"Bearer {token}"}
    with serving(tmp_path / "s.duckdb", table=table, token=token) as srv:
        spans = json_request(run_spans("c" * 32, 2, T0))
        assert srv.request("POST", "/v1/traces/", spans, JS | bearer)[0] == 200
        srv.wait_ingested()
        tree = srv.get_json("/api/v1/runs/" + "c" * 32, headers=bearer)
        assert Decimal(tree["usd_exact"]) == 2 * Decimal("0.0105")
        status, head, body = srv.request("POST", "/v1/traces/", spans, JS)  # no token
        assert (status, head["content-type"]) == (401, "application/json"), body
        assert json.loads(body)["code"] == 16  # google.rpc.Status: UNAUTHENTICATED
        status, head, body = srv.request("GET", "/v1/traces/", headers=bearer)
        assert (status, head["allow"]) == (405, "POST") and b"takes POST" in body


def test_a_cursor_nested_past_the_json_parser_is_400(tmp_path, table):
    """A cursor is the client's text: 3 KB of nested brackets made json raise RecursionError,
    which no handler took (a 500 and a traceback in the log) where any other bad cursor is 400."""
    import base64

    deep = base64.urlsafe_b64encode(b"[" * 1100 + b"]" * 1100).decode().rstrip("=")
    with serving(tmp_path / "s.duckdb", table=table) as srv:
        status, _, body = srv.request("GET", f"/api/v1/runs?cursor={deep}")
        assert status == 400, body
        assert json.loads(body)["detail"].startswith("runs: cursor: not a cursor this API gave out")
