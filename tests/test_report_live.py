"""The live pages (`report.live.routes`) served from a plain Starlette app under uvicorn on
127.0.0.1, in headless Chromium: no console error, no request outside the server, numbers the
rollup API's, filters and sort, links from the lists to one run's waterfall; bad input is a
4xx page naming it."""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.error
import urllib.request

import pytest
from browser import DESKTOP, NARROW, chromium, errors, outside
from report_check import check_cells, listed_by

from otel_costattr.demo import run_demo
from otel_costattr.report import Window
from otel_costattr.rollups.queries import rollup

uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
starlette = pytest.importorskip("starlette", reason="starlette is in the [server] extra")
from starlette.applications import Starlette  # noqa: E402

from otel_costattr.report.live import routes  # noqa: E402

TODAY = dt.date(2026, 11, 23)
WEEK = Window(since=dt.datetime(2026, 11, 16), until=dt.datetime(2026, 11, 23))
PERIOD = "since=2026-11-16&until=2026-11-23"


class Served:
    def __init__(self, app: Starlette) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("live") / "demo.duckdb", today=TODAY)["path"]


@pytest.fixture(scope="module")
def server(db, tmp_path_factory):
    missing = tmp_path_factory.mktemp("missing") / "none.duckdb"
    app = Starlette(routes=routes(db))
    app.mount("/missing", Starlette(routes=routes(str(missing))))
    served = Served(app)
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def browser():
    b = chromium()
    yield b
    b.quit()


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_overview(browser, server, db):
    url = f"{server}/?{PERIOD}"
    loaded = browser.open(url)
    assert errors(loaded) == [] and outside(loaded, server + "/") == []
    assert check_cells(loaded.cells, db, WEEK, runs=20) > 300
    assert browser.driver.find_elements("css selector", "section.run") == []  # waterfalls: one page each
    browser.screenshot("live-overview", DESKTOP)
    narrow = browser.open(url, size=NARROW)
    assert errors(narrow) == [] and browser.overflow() == 0
    browser.screenshot("live-overview", NARROW)


def test_the_filter_form(browser, server, db):
    browser.open(f"{server}/?{PERIOD}")
    field = browser.driver.find_element("css selector", "form.filters input[name=feature]")
    field.send_keys("refund")
    loaded = browser.follow(field, submit=True)
    assert "feature=refund" in browser.driver.current_url
    assert errors(loaded) == [] and outside(loaded, server + "/") == []
    refund = Window(WEEK.since, WEEK.until, feature="refund")
    assert check_cells(loaded.cells, db, refund, runs=20) > 100
    features = {c["exact"] for c in loaded.cells if c["rollup"] == "per_feature" and c["col"] == "feature"}
    assert features == {"refund"}


def test_a_since_typed_into_the_form_replaces_its_last_days(browser, server, db):
    """The form shows "last days" 7 filled in: typing a since (and until) date and pressing
    Apply sent both, and every page answered 400 "give days or since" (a review)."""
    overview = None
    for page in ("/", "/runs", "/whatif"):
        browser.open(f"{server}{page}")
        days = browser.driver.find_element("css selector", "form.filters input[name=days]")
        assert days.get_attribute("value") == "7"
        for name, value in (("since", WEEK.since), ("until", WEEK.until)):
            field = browser.driver.find_element("css selector", f"form.filters input[name={name}]")
            field.send_keys(value.isoformat())
        loaded = browser.follow(field, submit=True)
        assert errors(loaded) == [] and browser.driver.find_elements("css selector", ".error") == [], page
        assert (
            browser.driver.find_element("css selector", "form.filters input[name=days]").get_attribute(
                "value"
            )
            == ""
        ), page  # the page says which period it shows
        overview = overview or loaded
    assert check_cells(overview.cells, db, WEEK, runs=20) > 100


def test_runs_list_sort_and_a_waterfall(browser, server, db):
    loaded = browser.open(f"{server}/runs?{PERIOD}&sort=cost&limit=5")
    assert errors(loaded) == [] and outside(loaded, server + "/") == []
    top = rollup("runs_list", db=db, order="cost", limit=5, **WEEK.params())
    assert [r["trace_id"] for r in top] == [
        r["trace_id"] for r in rollup("top_runs", db=db, limit=5, **WEEK.params())
    ]
    ids = [c["exact"] for c in loaded.cells if c["col"] == "trace_id"]
    assert ids == [r["trace_id"] for r in top]
    shown = [(c["exact"]) for c in loaded.cells if c["col"] == "unpriced_calls"]
    assert shown == [str(r["unpriced_calls"]) for r in top]
    newest = browser.open(f"{server}/runs?{PERIOD}")
    assert [c["exact"] for c in newest.cells if c["col"] == "trace_id"] == [
        r["trace_id"]
        for r in rollup("per_run", db=db, **WEEK.params())  # newest first
    ]
    browser.screenshot("live-runs", DESKTOP)
    run = browser.follow(browser.driver.find_element("css selector", f"a[href='/runs/{top[0]['trace_id']}']"))
    assert browser.driver.current_url == f"{server}/runs/{top[0]['trace_id']}"
    assert errors(run) == [] and outside(run, server + "/") == []
    bars = browser.driver.find_elements("css selector", "table.waterfall rect.bar")
    assert len(bars) == len(rollup("trace", db=db, trace_id=top[0]["trace_id"]))
    assert check_cells(run.cells, db, WEEK) == 3 * len(bars)
    browser.screenshot("live-run", DESKTOP)
    browser.open(browser.driver.current_url, size=NARROW)
    assert browser.overflow() == 0
    browser.screenshot("live-run", NARROW)


def test_a_runs_page_cut_by_its_limit_says_so_and_names_the_command_for_all(server, db):
    # A review: /runs?limit=2 showed two runs and nothing saying there were more; the command
    # named for the rest must read the served store, over the page's window, filters and order.
    import re

    code, page, _ = get(f"{server}/runs?{PERIOD}&feature=research&sort=cost&limit=2")
    every = rollup("runs_list", db=db, feature="research", order="cost", limit=0, **WEEK.params())
    assert code == 200 and len(every) > 2
    (command,) = re.findall(rf"The first 2 of {len(every)} rows \(<code>(.*?)</code> lists them all\)", page)
    listed = listed_by(command)
    assert [r["trace_id"] for r in listed] == [r["trace_id"] for r in every]
    assert listed[:2] == [r for r in listed if r["trace_id"] in page]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/?days=x", 400, "Error: report: days: expected a number, got &#x27;x&#x27;"),
        ("/runs?sort=price", 400, "Error: sort: expected newest or cost, got &#x27;price&#x27;"),
        ("/runs?limit=-2", 400, "Error: runs-list: limit: must not be negative, got -2"),
        (
            "/runs/xyz%3Cscript%3E",
            400,
            "Error: not a trace id or a prefix of one (4 to 32 hex digits): &#x27;xyz&lt;script&gt;&#x27;",
        ),
        ("/runs/" + "0" * 32, 404, "Error: no spans for run " + "0" * 32),
        # a typo showed every feature under a 200 (a review)
        ("/?featrue=research", 400, "Error: unknown parameter &#x27;featrue&#x27; (closest: feature)"),
        ("/runs?days=7&sortby=cost", 400, "Error: unknown parameter &#x27;sortby&#x27; (closest: sort)"),
        ("/whatif?modle=gpt-4o-mini", 400, "Error: unknown parameter &#x27;modle&#x27; (closest: model)"),
        ("/runs/0000?days=7", 400, "Error: unknown parameter &#x27;days&#x27; (this page takes none)"),
        ("/missing/", 503, "Error: no database at "),
    ],
)
def test_bad_input_is_a_page_naming_it(server, path, status, message):
    code, body, headers = get(server + path)
    assert code == status and message in body
    assert "default-src 'none'" in headers["content-security-policy"]


def test_the_default_window_is_the_last_week(server):
    code, body, _ = get(server + "/")
    assert code == 200 and 'name="days" type="number" min="0" step="any" value="7"' in body


def test_pages_read_without_ingesting_the_spool(tmp_path):
    """serve's receiver keeps the spool moving: a page that ingested (each rollup it reads
    opening the store read-write while files wait) would run a busy receiver's backlog on the
    request thread, as the API's reads never do. The pages answer from what is ingested."""
    import shutil

    from test_store import row, table_of

    from otel_costattr.store import database as store

    path = tmp_path / "demo.duckdb"
    shutil.copy(run_demo(tmp_path / "made.duckdb", today=TODAY)["path"], path)
    store.write_spool(path, table_of(row(1, 1)))
    served = Served(Starlette(routes=routes(str(path))))
    try:
        for page in ("/?" + PERIOD, "/runs?" + PERIOD, "/whatif?model=gpt-4o-mini&" + PERIOD):
            code, body, _ = get(served.url + page)
            assert code == 200, (page, body)
            assert len(store.pending_spool(path)) == 1, page
    finally:
        served.stop()


def test_a_name_filter_is_taken_as_written(server):
    # The pages trimmed every filter: /runs?feature=%20research listed research's runs under
    # "feature = research", where the API (and the CLI) read " research", another feature.
    runs = 'data-rollup="runs_list" data-rows="0"'  # the empty list's marker
    _, body, _ = get(f"{server}/runs?feature=research&{PERIOD}")
    assert runs not in body and 'data-rollup="runs_list"' in body
    code, body, _ = get(f"{server}/runs?feature=%20research&{PERIOD}")
    assert code == 200 and runs in body
    assert 'name="feature" type="text" value=" research"' in body
    _, body, _ = get(f"{server}/runs?feature=%20%20&since=%202026-11-16%20&until=2026-11-23")
    assert runs not in body  # a blank name is no filter; the period's fields are trimmed
