"""The report file in headless Chromium: no console error, no request outside the file, the
numbers the rollup API's, one waterfall bar per span; screenshots at desktop and narrow widths
under test-artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from browser import DESKTOP, NARROW, chromium, errors, outside
from report_check import check_cells

from otel_costattr.demo import run_demo
from otel_costattr.report import Window, write_report
from otel_costattr.rollups.queries import rollup

TODAY = dt.date(2026, 11, 23)
WEEK = Window(since=dt.datetime(2026, 11, 16), until=dt.datetime(2026, 11, 23))


@pytest.fixture(scope="module")
def browser():
    b = chromium()
    yield b
    b.quit()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    db = run_demo(folder / "demo.duckdb", today=TODAY)["path"]
    return db, write_report(db, folder / "costs.html", WEEK)


def test_the_report_in_chromium(browser, demo):
    db, page = demo
    url = page.as_uri()
    loaded = browser.open(url)
    assert errors(loaded) == []
    assert loaded.requests == [url]  # the file itself, nothing else
    assert check_cells(loaded.cells, db, WEEK) > 500
    assert browser.driver.title == "Where the money goes"
    browser.screenshot("report", DESKTOP)
    narrow = browser.open(url, size=NARROW)
    assert errors(narrow) == [] and outside(narrow, url) == []
    assert browser.overflow() == 0  # wide tables scroll in their own box, the page does not
    browser.screenshot("report", NARROW)


def test_one_bar_per_span_in_every_waterfall(browser, demo):
    db, page = demo
    browser.open(page.as_uri())
    bars = browser.driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('section.run')).map("
        "s => [s.dataset.traceId, s.querySelectorAll('rect.bar').length]))"
    )
    assert len(bars) >= 10
    for trace_id, count in bars.items():
        assert count == len(rollup("trace", db=db, trace_id=trace_id)), trace_id
    jump = rollup("step_jumps", db=db, **WEEK.params())[0]
    row = browser.driver.find_element("css selector", f'tr[data-span-id="{jump["span_id"]}"]')
    assert "jump" in row.get_attribute("class") and "▲ context jump" in row.text


def test_links_lead_to_the_waterfall(browser, demo):
    _, page = demo
    browser.open(page.as_uri())
    link = browser.driver.find_element("css selector", "#top-runs a[href^='#run-']")
    target = link.get_attribute("href").split("#", 1)[1]
    link.click()
    assert browser.driver.execute_script("return location.hash") == f"#{target}"
    assert browser.driver.find_element("id", target).is_displayed()


def test_sort_and_filter_the_runs_list(browser, demo):
    db, page = demo
    browser.open(page.as_uri())
    runs = rollup("runs_list", db=db, limit=100, **WEEK.params())
    ids = (
        "return Array.from(document.querySelectorAll('#table-runs_list tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.cells[0].dataset.exact)"
    )
    assert browser.driver.execute_script(ids) == [r["trace_id"] for r in runs]  # newest first
    cost = browser.driver.find_elements("css selector", "#table-runs_list thead button.sort")[-1]
    cost.click()
    by_cost = sorted(runs, key=lambda r: (r["usd"] is None, -(r["usd"] or 0)))
    assert browser.driver.execute_script(ids) == [r["trace_id"] for r in by_cost]
    cost.click()
    assert browser.driver.execute_script(ids) == [r["trace_id"] for r in reversed(by_cost)]
    box = browser.driver.find_element("css selector", "input[data-filter='table-runs_list']")
    box.send_keys("refund")
    assert browser.driver.execute_script(ids) == [
        r["trace_id"] for r in reversed(by_cost) if r["feature"] == "refund"
    ]
    # A whole trace id, as the API, the CLI and alerts print it (the cell shows 16 digits)
    box.clear()
    box.send_keys(runs[1]["trace_id"])
    assert browser.driver.execute_script(ids) == [runs[1]["trace_id"]]
    loaded = browser.loaded()
    assert errors(loaded) == [] and loaded.requests == []


def test_printable(browser, demo):
    import base64

    _, page = demo
    browser.open(page.as_uri())
    shown = (
        "return Array.from(document.querySelectorAll('details.table-view table'), t => t.checkVisibility())"
    )
    assert not any(browser.driver.execute_script(shown))  # on screen, behind "Table view"
    browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        views = browser.driver.execute_script(shown)
        assert len(views) >= 6 and all(views)  # on paper, every table view is printed
    finally:
        browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    pdf = browser.driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF") and len(data) > 20_000


def test_the_checks_can_fail(browser, tmp_path):
    """A page that reaches out is caught by the same checks: the request when nothing blocks
    it, the console error when a CSP like the report's does."""
    img = "<img src='http://127.0.0.1:9/x.png'>"
    csp = "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\">"
    open_page, blocked = tmp_path / "open.html", tmp_path / "blocked.html"
    open_page.write_text(f"<!DOCTYPE html><html><body>{img}</body></html>")
    blocked.write_text(f"<!DOCTYPE html><html><head>{csp}</head><body>{img}</body></html>")
    loaded = browser.open(open_page.as_uri())
    assert outside(loaded, open_page.as_uri()) == ["http://127.0.0.1:9/x.png"]
    loaded = browser.open(blocked.as_uri())
    assert any("Content Security Policy" in e["message"] for e in errors(loaded))


def test_a_long_name_without_spaces_never_scrolls_the_page(browser, tmp_path):
    # The per-step chart's title names the agent; a 306-character name without a space
    # made the page 444 px wider than a 1280 px window (1,320 at 390).
    from opentelemetry import trace
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    at = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    name = "agent-" + "x" * 300
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
    root = tracer.start_span("agent", attributes=agent, start_time=at)
    for step in range(2):
        chat = gpt4o_chat(input_tokens=1000 * (step + 1), output_tokens=10)
        span_name = "chat-" + "y" * 300 if step else "chat"  # the waterfall's span column
        tracer.start_span(
            span_name, trace.set_span_in_context(root), attributes=chat, start_time=at + step
        ).end(end_time=at + step + 1)
    root.end(end_time=at + 10)
    provider.shutdown()
    page = write_report(db, tmp_path / "r.html", WEEK)
    # A waterfall wider than its own scroll box: a 300-character span name made its span
    # column 2,000 px, pushing the role, costs and time axis out of sight.
    wider = (
        "return Math.max(0, ...Array.from(document.querySelectorAll('table.waterfall'))"
        ".map(t => t.scrollWidth - t.parentElement.clientWidth))"
    )
    for size in (DESKTOP, NARROW):
        loaded = browser.open(page.as_uri(), size=size)
        assert errors(loaded) == []
        assert browser.overflow() == 0, size
        assert browser.driver.find_elements("css selector", "table.waterfall")
        if size == DESKTOP:
            assert browser.driver.execute_script(wider) <= 1, size


def test_exact_values_read_back_whole(browser, tmp_path):
    # data-exact is what a reader checks the page against: a carriage return written raw in
    # it read back as a line feed (the HTML parser folds \r\n), and a cost of $1e-12 read
    # $0.000000 in its cell.
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    at = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    with tracer.start_as_current_span("run", attributes={"app.feature": "line1\r\nline2"}, start_time=at):
        tiny = {**gpt4o_chat(input_tokens=1, output_tokens=0), "gen_ai.usage.cost": 1e-12}
        tracer.start_span("chat", attributes=tiny, start_time=at).end(end_time=at + 1)
    provider.shutdown()
    loaded = browser.open(write_report(db, tmp_path / "r.html", WEEK).as_uri())
    assert errors(loaded) == []
    assert any(c.get("exact") == "line1\r\nline2" for c in loaded.cells)
    assert check_cells(loaded.cells, db, WEEK) > 20
