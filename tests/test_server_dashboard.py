"""The dashboard inside the real `create_app` under uvicorn on 127.0.0.1, behind a token: the
browser way in (``?token=`` once -> a 303 without it and an HttpOnly SameSite=Lax cookie),
what the cookie may do (read pages and the API, never send spans), and that no answer ever
repeats the token. A headless Chromium takes the same way in and follows a link to a run."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
from serverutil import serving
from test_server_otlp import JS, json_request, span_json

from otel_costattr.demo import run_demo

pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
from otel_costattr.report.live import routes  # noqa: E402
from otel_costattr.server.auth import COOKIE, SESSION_SECONDS, BearerAuth  # noqa: E402

TOKEN = "s3cret-Token_value"
TODAY = dt.date(2026, 11, 23)
PERIOD = "since=2026-11-16&until=2026-11-23"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("dash") / "demo.duckdb", today=TODAY)["path"]


@pytest.fixture(scope="module")
def srv(demo):
    with serving(demo, token=TOKEN, extra_routes=routes(demo)) as running:
        yield running


def raw(url: str, method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    """(status, header pairs, body) of one request, redirects not followed."""
    parts = urlsplit(url)
    con = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        con.request(method, target, body=body, headers=headers or {})
        r = con.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        con.close()


def header(pairs: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in pairs if k.lower() == name.lower()]


def no_token(pairs: list[tuple[str, str]], body: bytes) -> None:
    assert TOKEN not in " ".join(f"{k}: {v}" for k, v in pairs)
    assert TOKEN.encode() not in body


def session(srv, target: str = "/") -> str:
    """The cookie header the way in gives."""
    status, pairs, _ = raw(srv.url, "GET", f"{target}?token={TOKEN}")
    assert status == 303
    return header(pairs, "Set-Cookie")[0].split(";")[0]


def test_the_what_if_page_is_part_of_the_dashboard(srv):
    """`serve` mounts `report.live.routes`: the what-if page comes with them, linked from `/`."""
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = srv.request("GET", "/", headers=bearer)
    assert status == 200 and b'href="/whatif' in body
    status, _, body = srv.request("GET", "/whatif?model=gpt-4o-mini", headers=bearer)
    assert status == 200 and b"estimate" in body.lower()


def test_dashboard_at_root_for_a_bearer(srv):
    status, pairs, body = raw(srv.url, "GET", f"/?{PERIOD}", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body[:300]
    assert header(pairs, "Content-Type")[0].startswith("text/html")
    assert b"Where the money goes (live)" in body
    # the API and the OTLP receiver are still there beside it
    assert raw(srv.url, "GET", "/healthz", {"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_without_the_token_a_browser_gets_a_page_naming_the_way_in(srv):
    status, pairs, body = raw(srv.url, "GET", "/runs", HTML)
    assert status == 401
    assert header(pairs, "Content-Type")[0].startswith("text/html")
    assert b"?token=" in body
    assert not header(pairs, "Set-Cookie")
    status, _, body = raw(srv.url, "GET", "/api/v1/stats?days=1")
    assert status == 401 and json.loads(body) == {"error": "missing or wrong bearer token"}


def test_token_once_sets_a_lax_httponly_cookie_and_leaves_the_url(srv):
    status, pairs, body = raw(srv.url, "GET", f"/runs?sort=cost&token={TOKEN}&{PERIOD}", HTML)
    assert status == 303
    assert header(pairs, "Location") == [f"/runs?sort=cost&{PERIOD}"]
    (cookie,) = header(pairs, "Set-Cookie")
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    # Lax, not Strict: an alert's link opened from Slack or webmail (a cross-site top-level
    # navigation) must carry it; it is honoured for GET/HEAD only, so it still cannot write.
    assert {"httponly", "samesite=lax", "path=/"} <= flags and "samesite=strict" not in flags
    assert f"max-age={SESSION_SECONDS}" in flags
    name, value = cookie.split(";")[0].split("=", 1)
    stamp, mac = value.split(".")
    # the time it was issued and a MAC under the server's random key: never the token, nor a
    # function of the token alone (which a stolen cookie would let one test guesses against)
    # named for the port: two servers on one host (cookies are kept by host) keep their own
    port = urlsplit(srv.url).port
    assert name == f"{COOKIE}_{port}" and abs(int(stamp) - time.time()) < 300 and len(mac) == 64
    assert TOKEN not in cookie
    assert header(pairs, "Referrer-Policy") == ["no-referrer"]
    no_token(pairs, body)
    # the browser follows the Location with its cookie: the page, and no token in it
    status, pairs, body = raw(srv.url, "GET", f"/runs?sort=cost&{PERIOD}", {**HTML, "Cookie": cookie})
    assert status == 200 and b"<h2>Runs</h2>" in body
    no_token(pairs, body)


def test_the_bare_token_query_redirects_to_the_bare_path(srv):
    status, pairs, _ = raw(srv.url, "GET", f"/?token={TOKEN}")
    assert status == 303 and header(pairs, "Location") == ["/"]


@pytest.mark.parametrize(
    "query",
    [
        "token=wrong",
        f"token={TOKEN}x",
        "token=",
        f"token=wrong&token={TOKEN}",
        f"token={TOKEN}&token={TOKEN}",
    ],
)
def test_a_wrong_token_gets_no_cookie(srv, query):
    status, pairs, body = raw(srv.url, "GET", f"/?{query}", HTML)
    assert status == 401
    assert not header(pairs, "Set-Cookie") and not header(pairs, "Location")
    no_token(pairs, body)


def test_the_redirect_stays_on_this_site(srv):
    status, pairs, _ = raw(srv.url, "GET", f"//evil.example/x?token={TOKEN}")
    assert status == 303
    (location,) = header(pairs, "Location")
    assert location == "/evil.example/x" and urlsplit(location).netloc == ""
    # The path is decoded in ASGI: quoted again, a tab (which a browser drops, making
    # '//evil.example'), CR/LF or a character Latin-1 lacks never reaches the header as itself.
    for path, expected in (
        ("/%09/evil.example/", "/%09/evil.example/"),
        ("/%E2%82%AC", "/%E2%82%AC"),  # was a 500: Latin-1 cannot encode it
        ("/%0d%0aX:1", "/%0D%0AX:1"),  # was a dropped connection
    ):
        status, pairs, _ = raw(srv.url, "GET", f"{path}?token={TOKEN}")
        assert (status, header(pairs, "Location")) == (303, [expected]), path


def test_the_cookie_reads_pages_and_api_but_never_sends_spans(srv):
    cookie = session(srv)
    status, _, body = raw(srv.url, "GET", f"/api/v1/stats?{PERIOD}", {"Cookie": cookie})
    assert status == 200 and json.loads(body)["runs"] > 0
    assert raw(srv.url, "HEAD", "/", {"Cookie": cookie})[0] == 200
    spans = json_request([span_json("00000000000000aa")])
    status, _, body = raw(srv.url, "POST", "/v1/traces", {**JS, "Cookie": cookie}, spans)
    assert status == 401 and b"bearer" in body
    # a token in the query string is no way to send spans either
    assert raw(srv.url, "POST", f"/v1/traces?token={TOKEN}", JS, spans)[0] == 401
    assert raw(srv.url, "POST", "/v1/traces", {**JS, "Authorization": f"Bearer {TOKEN}"}, spans)[0] == 200
    # a cookie another server process issued (same token, its own key) is refused, and so is
    # this one's cookie with its time changed (to outlive its week)
    other = f"{COOKIE}_{urlsplit(srv.url).port}={BearerAuth(None, TOKEN).cookie()}"
    assert raw(srv.url, "GET", "/", {**HTML, "Cookie": other})[0] == 401
    name, value = cookie.split(";")[0].split("=", 1)
    stamp, mac = value.split(".")
    later = f"{name}={int(stamp) + 3600}.{mac}"
    assert raw(srv.url, "GET", "/", {**HTML, "Cookie": later})[0] == 401
    # the bearer scheme is case-insensitive (RFC 9110); the token itself is not
    assert raw(srv.url, "GET", "/healthz", {"Authorization": f"bearer {TOKEN}"})[0] == 200
    assert raw(srv.url, "GET", "/healthz", {"Authorization": f"BEARER  {TOKEN}"})[0] == 200
    assert raw(srv.url, "GET", "/healthz", {"Authorization": f"Bearer {TOKEN.upper()}"})[0] == 401
    assert raw(srv.url, "GET", "/healthz", {"Authorization": f"Basic {TOKEN}"})[0] == 401


def test_a_session_ends_after_its_week_and_with_the_process():
    auth = BearerAuth(None, TOKEN)
    assert auth._session(auth.cookie().encode())
    assert auth._session(auth.cookie(int(time.time()) - SESSION_SECONDS + 60).encode())
    assert not auth._session(auth.cookie(int(time.time()) - SESSION_SECONDS - 1).encode())
    assert not auth._session(auth.cookie(int(time.time()) + 3600).encode())  # issued in the future
    assert not BearerAuth(None, TOKEN)._session(auth.cookie().encode())  # a restart: a new key
    for junk in (b"", b".", b"x.y", b"9" * 40 + b".abc", auth.cookie().encode() + b"0"):
        assert not auth._session(junk)


def test_without_a_token_the_dashboard_is_open_and_links_to_runs(demo):
    with serving(demo, extra_routes=routes(demo)) as running:
        status, _, body = raw(running.url, "GET", f"/?{PERIOD}")
        assert status == 200 and b'href="/runs/' in body
        # the way in changes nothing without a token: no cookie, no redirect
        status, pairs, _ = raw(running.url, "GET", "/?token=anything")
        assert status == 200 and not header(pairs, "Set-Cookie")


def test_in_chromium_the_token_url_becomes_a_session(srv):
    from browser import DESKTOP, chromium, errors, outside

    browser = chromium()
    try:
        loaded = browser.open(f"{srv.url}/?token={TOKEN}&{PERIOD}", size=DESKTOP)
        here = browser.driver.current_url
        assert TOKEN not in here and here == f"{srv.url}/?{PERIOD}"
        assert not errors(loaded)
        assert not outside(loaded, srv.url)
        assert loaded.cells, "the overview shows no value cells"
        link = browser.driver.find_element("css selector", 'a[href^="/runs/"]')
        trace_id = link.get_attribute("href").rsplit("/", 1)[1]
        loaded = browser.follow(link)
        assert browser.driver.current_url == f"{srv.url}/runs/{trace_id}"
        assert trace_id in browser.driver.page_source
        assert TOKEN not in browser.driver.page_source
        assert not errors(loaded)
        # HttpOnly: no script on the page can read the cookie
        assert browser.driver.execute_script("return document.cookie") == ""
        browser.screenshot("server-dashboard-run", DESKTOP)
    finally:
        browser.quit()
