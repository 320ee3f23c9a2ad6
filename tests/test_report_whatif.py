"""The dashboard's what-if page (`report.whatif_page.routes`) served by uvicorn on 127.0.0.1
and read in headless Chromium: every figure is the `whatif` API's, the estimate is labelled,
nothing is requested outside the server; bad input is a 400 page naming it."""

from __future__ import annotations

import datetime as dt

import pytest
from browser import DESKTOP, NARROW, chromium, errors, outside
from report_check import as_exact, cells_of

from otel_costattr.demo import run_demo
from otel_costattr.rollups.whatif import ESTIMATE_NOTE, whatif

pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
pytest.importorskip("starlette", reason="starlette is in the [server] extra")
from starlette.applications import Starlette  # noqa: E402
from test_report_live import Served, get  # noqa: E402

from otel_costattr.report.whatif_page import COLUMNS, routes  # noqa: E402

TODAY = dt.date(2026, 11, 23)
SINCE, UNTIL = dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 23)
PERIOD = "since=2026-11-16&until=2026-11-23"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("whatif") / "demo.duckdb", today=TODAY)["path"]


@pytest.fixture(scope="module")
def server(db):
    served = Served(Starlette(routes=routes(db)))
    yield served.url
    served.stop()


def _check(cells, answer) -> int:
    """Each whatif cell's exact value is the API's, row for row; how many were checked."""
    checked = 0
    for cell in cells:
        if cell["rollup"] != "whatif":
            continue
        value = answer.rows[int(cell["row"])][cell["col"]]
        assert cell["exact"] == as_exact(value), (cell, value)
        checked += 1
    return checked


def test_the_form_alone(server):
    status, html, _ = get(f"{server}/whatif")
    assert status == 200
    assert 'name="model"' in html and 'data-rollup="whatif"' not in html


def test_the_page_is_the_api(server, db):
    status, html, _ = get(f"{server}/whatif?model=gpt-4o-mini&feature=refund&{PERIOD}&limit=5")
    assert status == 200
    answer = whatif(db, "gpt-4o-mini", feature="refund", since=SINCE, until=UNTIL, limit=5)
    total = answer.rows[0]
    assert total["level"] == "total" and total["selected_calls"] > 0
    assert total["whatif_usd"] != total["actual_usd"]
    assert _check(cells_of(html), answer) == len(answer.rows) * len(COLUMNS)
    assert ESTIMATE_NOTE.capitalize() in html.replace("&#x27;", "'")


def test_in_chromium_with_from_and_step(browser, server, db):
    url = f"{server}/whatif?model=claude-haiku-4-5&from=gpt-4o&{PERIOD}"
    loaded = browser.open(url)
    assert errors(loaded) == [] and outside(loaded, server + "/") == []
    answer = whatif(db, "claude-haiku-4-5", from_model="gpt-4o", since=SINCE, until=UNTIL, limit=20)
    assert _check(loaded.cells, answer) > 12
    browser.screenshot("live-whatif", DESKTOP)
    run = answer.rows[-1]["trace_id"]
    assert browser.driver.find_elements("css selector", f"a[href='/runs/{run}']")  # live's run page
    narrow = browser.open(url, size=NARROW)
    assert errors(narrow) == [] and browser.overflow() == 0
    browser.screenshot("live-whatif", NARROW)


@pytest.fixture(scope="module")
def browser():
    b = chromium()
    yield b
    b.quit()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "model=no-such-model",
            "Error: whatif: the pricing table does not know the model &#x27;no-such-model&#x27;",
        ),
        ("model=gpt-4o-mini&step=x", "Error: whatif: step: expected a number, got &#x27;x&#x27;"),
        ("model=gpt-4o-mini&days=-1", "Error: report: days: must be more than 0"),
    ],
)
def test_bad_input_is_a_400_naming_it(server, query, message):
    status, html, _ = get(f"{server}/whatif?{query}")
    assert status == 400 and message in html


def test_the_page_prices_with_the_servers_table(db, tmp_path):
    # `serve --pricing contract.toml` priced what it received with the contract, while the
    # page's what-if always loaded the bundled table: 400 for a model only the contract knows.
    from pathlib import Path

    from otel_costattr import load_pricing

    table = load_pricing([Path(__file__).parent / "data" / "test_prices.toml"], use_env=False)
    served = Served(Starlette(routes=routes(db, table)))
    try:
        status, html, _ = get(f"{served.url}/whatif?model=acme-large&{PERIOD}")
    finally:
        served.stop()
    assert status == 200 and "On acme/acme-large" in html
    expected = whatif(db, "acme-large", reprice=table, since=SINCE, until=UNTIL, limit=20)
    total = next(r for r in expected.rows if r["level"] == "total")
    assert f'data-exact="{total["whatif_usd"]}"' in html


def test_a_cut_answer_points_to_the_whatif_command(tmp_path, capsys):
    # A review: past 200 rows the page said "otel-costattr rollup whatif lists them all", a
    # command that does not exist; its review: the command left out the server's --pricing,
    # so it refused a model only that table knows. The command given answers as the page.
    import html as html_lib
    import json
    import re
    import shlex
    from decimal import Decimal
    from pathlib import Path

    from test_rollups_workload import DAY0, Writer

    from otel_costattr import load_pricing
    from otel_costattr.cli import main
    from otel_costattr.store import database as store

    path = tmp_path / "s.duckdb"
    con = store.connect(path)
    try:
        w = Writer(con)
        for i in range(1, 206):
            at = DAY0 + dt.timedelta(minutes=i)
            w.call(i, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=at, feature="chat")
    finally:
        con.close()
    prices = str(Path(__file__).parent / "data" / "test_prices.toml")
    served = Served(Starlette(routes=routes(str(path), load_pricing([prices], use_env=False))))
    try:
        query = "model=acme-large&from=gpt-4o-mini&since=2026-06-01&limit=0"
        status, html, _ = get(f"{served.url}/whatif?{query}")
    finally:
        served.stop()
    assert status == 200
    (command,) = re.findall(r"The first 200 of 207 rows \(<code>(.*?)</code> lists them all\)", html)
    argv = shlex.split(html_lib.unescape(command))
    # ... and its review: it left out the served store and the window, for the reader to add
    assert argv[:7] == [
        "otel-costattr",
        "whatif",
        "--db",
        str(path),
        "--since",
        "2026-06-01T00:00:00",
        "--until",
    ]
    assert argv[8:] == [
        "--model", "acme-large", "--from", "gpt-4o-mini", "--pricing", prices, "--limit", "0",
    ]  # fmt: skip
    capsys.readouterr()
    assert main([*argv[1:], "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    shown = {Decimal(v) for v in re.findall(r'data-exact="([0-9.-]+)"', html)}
    assert len(rows) == 207 and Decimal(rows[0]["whatif_usd_exact"]) in shown


def test_runs_cut_by_the_limit_say_so(tmp_path):
    """A review: the page showed 20 runs of 21 (its default limit), or 2 with limit=2, and
    no word of the others, where the runs page says how many of how many."""
    import re

    from test_rollups_workload import DAY0, Writer

    from otel_costattr.store import database as store

    path = tmp_path / "s.duckdb"
    con = store.connect(path)
    try:
        w = Writer(con)
        for i in range(1, 9):
            w.call(i, "gpt-4o-mini", 1000, 100, "0.00021", parent=None, at=DAY0 + dt.timedelta(minutes=i))
    finally:
        con.close()
    served = Served(Starlette(routes=routes(str(path))))
    try:
        _, cut, _ = get(f"{served.url}/whatif?model=claude-haiku-4-5&since=2026-06-01&limit=3")
        _, whole, _ = get(f"{served.url}/whatif?model=claude-haiku-4-5&since=2026-06-01")
    finally:
        served.stop()
    assert re.findall(r"The first (\d+) of (\d+) rows", cut) == [("5", "10")]  # total, feature, 3 of 8 runs
    assert "The first" not in whole
