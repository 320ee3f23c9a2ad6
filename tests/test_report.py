"""The HTML report as a file: self-contained, every figure the rollups', hostile names escaped,
bad input refused in one line; the demo writes it beside its database. (In a browser:
test_report_browser.py.)"""

from __future__ import annotations

import datetime as dt
import html
import re
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from report_check import cells_of, check_cells, listed_by

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter
from otel_costattr.cli import main
from otel_costattr.demo import run_demo
from otel_costattr.report import Window, collect, window, write_report
from otel_costattr.report.commands import Commands
from otel_costattr.report.tables import table
from otel_costattr.rollups.errors import RollupParamError
from otel_costattr.rollups.queries import rollup

TODAY = dt.date(2026, 11, 23)
WEEK = Window(since=dt.datetime(2026, 11, 16), until=dt.datetime(2026, 11, 23))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("report") / "demo.duckdb", today=TODAY)["path"]


@pytest.fixture(scope="module")
def page(demo_db, tmp_path_factory):
    out = write_report(demo_db, tmp_path_factory.mktemp("out") / "costs.html", WEEK)
    return out.read_text(encoding="utf-8")


def test_every_figure_is_the_rollups(page, demo_db):
    cells = cells_of(page)
    assert check_cells(cells, demo_db, WEEK) > 500
    shown = {c["rollup"] for c in cells}
    assert shown >= {
        "overview",
        "daily_model",
        "daily",
        "per_feature",
        "per_agent",
        "agent_steps",
        "per_model",
        "top_runs",
        "step_jumps",
        "loops",
        "unpriced",
        "runs_list",
        "trace",
    }
    # Every table of calls grouped says how many of them have no cost (the demo's summarizer
    # calls an unknown model): never a cost without them.
    unpriced = {c["rollup"] for c in cells if c["col"] == "unpriced_calls" and c["exact"] != "0"}
    assert unpriced >= {"per_feature", "per_agent", "agent_steps", "daily", "per_model", "daily_model"}
    total = next(
        c for c in cells if c["rollup"] == "overview" and c["col"] == "usd" and c["window"] == "current"
    )
    assert Decimal(total["exact"]) == rollup("overview", db=demo_db, **WEEK.params())[0]["usd"]


def test_self_contained(page):
    assert len(page.encode()) < 1_000_000
    assert page.count("<script") == 1 and "<script>" in page  # the page's own, inline
    assert "@import" not in page and "url(" not in page
    # the only URL is the SVG namespace; links stay inside the file
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))
    assert "content=\"default-src 'none';" in html.unescape(page)  # the CSP blocks any request


def test_one_waterfall_bar_per_span_and_the_jump_marked(page, demo_db):
    sections = re.findall(r'<section id="run-([0-9a-f]{32})".*?</section>', page, flags=re.S)
    assert len(sections) >= 10
    jumps = rollup("step_jumps", db=demo_db, **WEEK.params())
    assert jumps and {j["trace_id"] for j in jumps} <= set(sections)
    for trace_id in sections:
        body = re.search(rf'<section id="run-{trace_id}".*?</section>', page, flags=re.S).group(0)
        spans = rollup("trace", db=demo_db, trace_id=trace_id)
        assert body.count('<rect class="bar ') == len(spans), trace_id
        # the jumping call's row is marked, in words as well as colour
        marked = re.findall(r'<tr class="role-model_call jump" data-span-id="([0-9a-f]{16})"', body)
        assert marked == [j["span_id"] for j in jumps if j["trace_id"] == trace_id]
        assert body.count("▲ context jump ×") == len(marked)


def test_links_reach_the_waterfalls(page):
    targets = set(re.findall(r'href="#(run-[0-9a-f]{32})"', page))
    assert targets
    assert all(f'id="{t}"' in page for t in targets)


def test_hostile_names_are_escaped(tmp_path):
    db = tmp_path / "hostile.duckdb"
    provider = TracerProvider(resource=Resource.create({"service.name": "<img src=x onerror=alert(1)>"}))
    provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(db)))
    tracer = provider.get_tracer("t")
    with (
        tracer.start_as_current_span(
            "</table><script>alert(1)</script>",
            attributes={"app.feature": '"><script>alert(2)</script>', "gen_ai.agent.name": "<b>a</b>"},
        ),
        tracer.start_as_current_span(
            "chat",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "<svg onload=alert(3)>",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 1,
            },
        ),
    ):
        pass
    provider.shutdown()
    html = write_report(db, tmp_path / "r.html", waterfalls=5).read_text()
    assert html.count("<script") == 1  # the page's own
    assert "<svg onload" not in html and "<img" not in html and "<b>a" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_huge_run_is_cut_in_the_file_and_says_so(tmp_path):
    db = tmp_path / "big.duckdb"
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
    tracer = provider.get_tracer("t")
    call = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10,
    }  # fmt: skip
    with tracer.start_as_current_span("invoke_agent looper", attributes={"gen_ai.agent.name": "looper"}):
        for _ in range(620):
            with tracer.start_as_current_span("chat gpt-4o", attributes=call):
                pass
    provider.shutdown()
    html = write_report(db, tmp_path / "r.html", waterfalls=1).read_text()
    assert html.count('<rect class="bar ') == 500
    assert "Showing the first 500 of 621 spans, depth first" in html
    assert len(html.encode()) < 1_000_000
    # The command it names lists them all as printed (a review: it named no --db, so it read
    # the default store, or none).
    (command,) = re.findall(r"spans, depth first \(<code>(.*?)</code> lists them all\)", html)
    assert len(listed_by(command, tmp_path)) == 621


def test_long_lists_are_cut_and_say_so(demo_db):
    commands = Commands(demo_db, Window())
    rows = rollup("per_run", db=demo_db, limit=0)
    listing = commands.rollup("per_run")
    html = table("per_run", rows, ("trace_id", "usd"), caption="runs", max_rows=5, listing=listing)
    assert html.count("<tr>") == 6  # the head and five rows
    every = f"otel-costattr rollup per-run --db {demo_db} --limit 0"
    assert f"The first 5 of 21 rows (<code>{every}</code> lists them all)" in html
    daily = table(
        "daily", rollup("daily", db=demo_db), ("day", "usd"), caption="days", max_rows=2,
        listing=commands.rollup("daily"),
    )  # fmt: skip
    assert f"(<code>otel-costattr rollup daily --db {demo_db}</code> lists them all)" in daily  # no limit
    whole = table("per_run", rows, ("trace_id", "usd"), caption="runs", max_rows=21, listing=listing)
    assert "The first" not in whole
    # a rollup's own limit is a cut too: the rows it left out are counted in ``total``
    limited = table("per_run", rows[:3], ("trace_id", "usd"), caption="runs", listing=listing, total=21)
    assert f"The first 3 of 21 rows (<code>{every}</code> lists them all)" in limited
    # waterfalls: the most expensive runs, then at most as many of the tail's jumps and loops
    report = collect(demo_db, WEEK, waterfalls=1)
    expected = [
        rollup(n, db=demo_db, **WEEK.params())[0]["trace_id"] for n in ("top_runs", "step_jumps", "loops")
    ]
    assert [r.trace_id for r in report.runs] == list(dict.fromkeys(expected))


def test_a_runs_list_cut_by_its_limit_says_so_and_names_the_command_for_all(tmp_path):
    # A review: with more runs in the window than --limit, the runs list showed the first 100
    # saying only "Newest first"; and the commands a page named for the rest left out --db,
    # the window and the filters, so run as printed they read another store or every day.
    from sdk_store import gpt4o_chat, priced_store

    provider, tracer = priced_store(tmp_path / "s.duckdb")
    day = dt.datetime(2026, 11, 18, tzinfo=dt.timezone.utc)
    runs = [(day + dt.timedelta(hours=h), "research") for h in range(9)]
    runs += [(day, "chat"), (day - dt.timedelta(days=5), "research")]  # another feature, before the window
    for at, feature in runs:
        t = int(at.timestamp() * 1e9)
        with tracer.start_as_current_span("run", attributes={"app.feature": feature}, start_time=t):
            tracer.start_span(
                "chat", attributes=gpt4o_chat(input_tokens=10, output_tokens=1), start_time=t
            ).end()
    provider.shutdown()
    report = [
        sys.executable, "-m", "otel_costattr.cli", "report", "--db", "s.duckdb", "--since", "2026-11-16",
        "--until", "2026-11-23", "--feature", "research", "--limit", "4", "--out", "r.html",
    ]  # fmt: skip
    subprocess.run(report, cwd=tmp_path, check=True, capture_output=True)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    (shown,) = re.findall(r'<table id="table-runs_list".*?</table>', page, flags=re.S)
    assert shown.count("<tr>") == 5  # the head and four runs
    (command,) = re.findall(r"The first 4 of 9 rows \(<code>(.*?)</code> lists them all\)", page)
    assert shlex.split(html.unescape(command))[:4] == ["otel-costattr", "rollup", "runs-list", "--db"]
    listed = listed_by(command, tmp_path)
    assert len(listed) == 9 and {r["feature"] for r in listed} == {"research"}
    assert [r["trace_id"] for r in listed[:4]] == re.findall(r'data-col="trace_id" data-exact="(\w+)"', shown)
    # the tail's commands, beside the waterfalls, are over the same store and window
    for name in ("step-jumps", "loops"):
        (tail,) = re.findall(rf"<code>(otel-costattr rollup {name} [^<]*)</code>", page)
        assert "--feature research" in tail
        assert listed_by(tail, tmp_path) == []


def test_an_empty_store_is_a_page_saying_so(tmp_path):
    db = tmp_path / "empty.duckdb"
    DuckDBSpanExporter(db).shutdown()
    report = collect(db, Window())
    assert report.sections["overview"][0]["runs"] == 0 and report.runs == []
    html = write_report(db, tmp_path / "r.html").read_text()
    assert "No rows in this window." in html


def test_the_window_and_the_period_before():
    now = dt.datetime(2026, 11, 23, 12)
    w = window(days="7", now=now)
    assert (w.since, w.until) == (now - dt.timedelta(days=7), now)
    assert (w.previous().since, w.previous().until) == (now - dt.timedelta(days=14), w.since)
    assert window(since="2026-11-01", now=now).until == now
    # days with until: the N days before it, as the rollups read them (it was refused)
    w = window(days="3", until="2026-11-20", now=now)
    assert (w.since, w.until) == (dt.datetime(2026, 11, 17), dt.datetime(2026, 11, 20))
    assert window().previous() is None
    # no period before year 1 to compare with: none, not an OverflowError (was a traceback
    # from `report --since 1000-01-01` and a 500 from the dashboard's /?since=0001-01-01)
    assert window(since="1000-01-01", until="2026-12-01").previous() is None
    assert window(since="0001-01-01", now=now).previous() is None
    assert window(feature="refund", agent="").params() == {"feature": "refund"}
    for bad, message in [
        ({"days": "x"}, "report: days: expected a number, got 'x'"),
        ({"days": "0"}, "report: days: must be more than 0 and at most 36500, got 0"),
        ({"days": "3000", "until": "0002-01-01"}, "report: days: reaches before year 1"),
        ({"days": "3", "since": "2026-01-01"}, "report: give days or since, not both"),
        (
            {"since": "2026-02-01", "until": "2026-01-01"},
            "report: since (2026-02-01 00:00:00) must be before until",
        ),
        ({"since": "yesterday"}, "report: since: expected an ISO date or time"),
    ]:
        with pytest.raises(RollupParamError) as e:
            window(now=now, **bad)
        assert str(e.value).startswith(message), bad


def test_cli(demo_db, tmp_path, capsys):
    out = tmp_path / "costs.html"
    assert (
        main(["report", "--db", demo_db, "--since", "2026-11-16", "--until", "2026-11-23", "--out", str(out)])
        == 0
    )
    assert capsys.readouterr().out == f"Wrote {out}\n"
    assert out.stat().st_size > 10_000
    assert main(["report", "--db", demo_db, "--days", "x", "--out", str(out)]) == 1
    assert capsys.readouterr().err == "Error: report: days: expected a number, got 'x'\n"
    assert main(["report", "--db", demo_db, "--limit", "-1", "--out", str(out)]) == 1
    assert capsys.readouterr().err == "Error: runs-list: limit: must not be negative, got -1\n"
    bad = tmp_path / "no" / "such" / "dir.html"
    assert main(["report", "--db", demo_db, "--out", str(bad)]) == 1
    err = capsys.readouterr().err  # refused before the report is built (cli/options.py check_out)
    assert err == f"Error: --out {bad}: no folder {bad.parent}\n"
    assert main(["report", "--db", str(tmp_path / "missing.duckdb"), "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"Error: no database at {tmp_path / 'missing.duckdb'}\n"


def test_the_demo_writes_the_report_beside_its_database(tmp_path, capsys):
    db = tmp_path / "demo.duckdb"
    assert main(["demo", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    page = Path(tmp_path / "demo.html")
    assert f"opens offline): {page}\n" in out
    html = page.read_text()
    assert len(html.encode()) < 1_000_000
    cells = cells_of(html)
    (total,) = [
        c for c in cells if c["rollup"] == "overview" and c["col"] == "runs" and c["window"] == "current"
    ]
    assert total["exact"] == "21"  # the whole demo week is in the page's window


def test_the_report_and_the_cli_need_no_server_extra():
    probe = (
        "import sys; import otel_costattr.report, otel_costattr.cli; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'selenium') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_axis_labels_stay_short_at_any_scale():
    # $1,000,000 ran out of the chart's 64-unit left margin (the '$' was cut off).
    from otel_costattr.report.charts import _tick

    assert [_tick(v) for v in (0, 0.05, 5, 9_999, 10_000, 250_000, 1_000_000, 1_250_000, 3.5e9)] == [
        "$0", "$0.0500", "$5.00", "$9,999", "$10k", "$250k", "$1M", "$1.2M", "$3.5B",
    ]  # fmt: skip
    assert max(len(_tick(10.0**e * m)) for e in range(-2, 14) for m in (1, 2.5, 9.99)) <= 7


def test_a_long_name_is_shown_short_and_kept_whole_once_a_cell(tmp_path):
    # One feature id of 10,000 characters was copied into the legend, the charts' titles and
    # descriptions, waterfall bars and every table: a 1 MB id made a 75 MB report.
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    long_name = "checkout/" + "x" * 10_000
    chat = gpt4o_chat(input_tokens=1000, output_tokens=100)
    with tracer.start_as_current_span(long_name, attributes={"app.feature": long_name}):
        tracer.start_span(long_name, attributes=chat).end()
    provider.shutdown()
    page = write_report(db, tmp_path / "r.html").read_text()
    whole = page.count(long_name)
    assert whole == page.count(f'data-exact="{long_name}"') > 0  # only where a cell keeps it exact
    assert "checkout/" + "x" * 190 + "…" in page  # what is shown


def test_a_model_from_two_providers_is_one_column_of_their_sum(tmp_path):
    # daily_model has a row per day, provider and model; the chart keyed its cells by day
    # and model, so the later row replaced the earlier: gpt-4o's day showed one provider's
    # cost (and an unpriced row, ordered last, hid a priced one).
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    at = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    for name, tokens in (("openai", 1_000_000), ("azure.ai.openai", 100_000), ("my-gateway", -10)):
        attrs = {**gpt4o_chat(input_tokens=tokens, output_tokens=0), "gen_ai.provider.name": name}
        tracer.start_span("chat", attributes=attrs, start_time=at).end(end_time=at + 1000)
    provider.shutdown()
    rows = rollup("daily_model", db=str(db))
    assert len(rows) == 3 and {r["model"] for r in rows} == {"gpt-4o"}
    priced = [r["usd"] for r in rows if r["usd"] is not None]
    assert len(priced) == 2  # the gateway's call reports a usage no price reads: unpriced
    page = write_report(db, tmp_path / "r.html", WEEK).read_text(encoding="utf-8")
    (chart,) = re.findall(r"<title>Cost per day by model</title>(.*?)</svg>", page, re.S)
    assert sum(priced) == Decimal("2.75")  # gpt-4o input at $2.50 a million tokens
    total = "$2.75"
    assert f"<desc>Cost per day stacked by model: 2026-11-20: gpt-4o {total}</desc>" in chart
    bars = re.findall(r"<title>([^<]*)</title></rect>", chart)
    assert [html.unescape(b) for b in bars] == [f"2026-11-20 · gpt-4o: {total}"]


def test_charts_are_bounded_as_the_tables_are(tmp_path):
    # Only the tables were capped: 10,000 features made a 6 MB report whose per-feature
    # chart drew every bar (a 220,006-pixel SVG) and whose legend had 10,001 entries.
    from opentelemetry import trace
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    at = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    for i in range(400):
        attrs = {**gpt4o_chat(input_tokens=1000 + i, output_tokens=0), "app.feature": f"feature-{i:03d}"}
        if i >= 24:
            tracer.start_span("chat", attributes=attrs, start_time=at).end(end_time=at + 1)
            continue
        agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": f"agent-{i:03d}"}
        root = tracer.start_span("agent", attributes=agent, start_time=at)
        for step in range(2):  # 24 agents of two steps each
            inside = trace.set_span_in_context(root)
            call = tracer.start_span("chat", inside, attributes=attrs, start_time=at + step)
            call.end(end_time=at + step + 1)
        root.end(end_time=at + 5)
    provider.shutdown()
    page = write_report(db, tmp_path / "r.html", WEEK).read_text(encoding="utf-8")
    assert len(page) < 1_000_000
    (bars,) = re.findall(r"<title>Cost per feature \(the 30 largest of 400\)</title>(.*?)</svg>", page, re.S)
    # the costliest: the 24 features of two calls, then the largest of one call
    assert bars.count("<rect") == 30 and "feature-000" in bars and "feature-394" in bars
    assert "feature-393" not in bars
    (by_feature,) = re.findall(r"<title>Cost per day by feature</title>(.*?)</svg>", page, re.S)
    assert "389 others" in by_feature and by_feature.count("<rect") == 12  # one day, 11 series and the rest
    assert page.count(": cost per priced call by step</title>") == 10
    assert "Charts for the 10 costliest of 24 agents." in page
    assert check_cells(cells_of(page), db, WEEK) > 200  # the tables: every figure the rollups'


def test_a_bidi_override_in_a_name_cannot_reverse_the_page(tmp_path):
    # An unclosed U+202E in a run's name reversed what followed it on the page: the run id in
    # the waterfall's heading read backwards. Shown as its code point; data-exact keeps it.
    from sdk_store import gpt4o_chat, priced_store

    from otel_costattr.report.tables import shorten

    assert shorten("a\u202eb\u2066c") == "a[U+202E]b[U+2066]c" and shorten("plain") == "plain"
    assert shorten("a\u200fb\u2028c") == "a[U+200F]b\u2028c"  # a mark, not a separator (harmless here)
    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    at = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp() * 1e9)
    feature = {"app.feature": "f\u202eeerf"}
    with tracer.start_as_current_span("run \u202ereversed", attributes=feature, start_time=at):
        tracer.start_span("chat", attributes=gpt4o_chat(input_tokens=10, output_tokens=1), start_time=at).end(
            end_time=at + 1
        )
    provider.shutdown()
    text = write_report(db, tmp_path / "r.html", WEEK).read_text(encoding="utf-8")
    assert "[U+202E]reversed" in text and "f[U+202E]eerf" in text
    # the period's heading names the filters too (a review: it printed them raw)
    filtered = Window(WEEK.since, WEEK.until, feature="f\u202eeerf")
    text = write_report(db, tmp_path / "f.html", filtered).read_text(encoding="utf-8")
    assert "feature = f[U+202E]eerf" in text
    assert 'data-exact="f\u202eeerf"' in text  # the value itself, exact
    shown = re.sub(r'data-exact="[^"]*"', "", text)
    assert "\u202e" not in shown


def test_the_overview_compares_a_period_without_calls_as_zero_cost(demo_db):
    """A period without calls cost $0: the cost card said "before: - · -" beside runs and
    calls saying "before: 0 · new" (a review). One whose calls are all unpriced still says
    "-": no one knows its cost."""
    from otel_costattr.report.sections import overview

    def changes(win):
        found = re.findall(
            r'<h3>([^<]+)</h3>.*?<span class="change">([^<]*)</span>', overview(collect(demo_db, win))
        )
        return dict(found)

    first = Window(since=dt.datetime(2026, 10, 24), until=dt.datetime(2026, 11, 23))  # before: nothing
    assert {k: changes(first)[k] for k in ("Total cost", "Runs", "Model calls")} == dict.fromkeys(
        ("Total cost", "Runs", "Model calls"), "new"
    )
    after = Window(since=dt.datetime(2026, 11, 23), until=dt.datetime(2026, 12, 23))  # now: nothing
    assert {k: changes(after)[k] for k in ("Total cost", "Runs", "Model calls")} == dict.fromkeys(
        ("Total cost", "Runs", "Model calls"), "-100%"
    )


def test_the_overview_gives_no_change_in_cost_beside_unpriced_calls(tmp_path):
    """The cost of a period with unpriced calls is its priced part: "-90%" beside nine runs
    of an unknown fine-tune read as a cheaper week, where `compare` leaves the change empty
    (a review). Runs and calls still compare."""
    from sdk_store import gpt4o_chat, priced_store

    from otel_costattr.report.sections import overview

    db = tmp_path / "spans.duckdb"
    provider, tracer = priced_store(db)
    week = 7 * 86_400 * 10**9
    start = int(dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    for n in range(10):  # the week before: ten gpt-4o runs, $0.0035 each
        at = start + n * 10**9
        attrs = gpt4o_chat(input_tokens=1000, output_tokens=100)
        with tracer.start_as_current_span("run", start_time=at):
            tracer.start_span("chat", attributes=attrs, start_time=at).end()
    for n in range(10):  # this week: one gpt-4o run, nine of an unknown fine-tune
        at = start + week + n * 10**9
        attrs = gpt4o_chat(input_tokens=1000, output_tokens=100)
        if n:
            attrs["gen_ai.request.model"] = "acme-ft-1"
        with tracer.start_as_current_span("run", start_time=at):
            tracer.start_span("chat", attributes=attrs, start_time=at).end()
    provider.shutdown()
    window = Window(since=dt.datetime(2026, 11, 9), until=dt.datetime(2026, 11, 16))
    cards = overview(collect(db, window))
    changes = dict(re.findall(r'<h3>([^<]+)</h3>.*?<span class="change">([^<]*)</span>', cards))
    assert (changes["Total cost"], changes["Cost per run"]) == ("-", "-")
    assert (changes["Runs"], changes["Model calls"], changes["Unpriced calls"]) == ("=", "=", "new")


def test_days_without_calls_keep_their_place_in_the_chart(tmp_path):
    # A time review: calls on 03-01, 03-02, 03-09 and 03-10 drew four columns side by side,
    # labelled 03-01, 03-02, 03-09, 03-10: a week's lull vanished from "Cost per day".
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    for day in (1, 2, 9, 10):
        at = int(dt.datetime(2026, 3, day, 12, tzinfo=dt.timezone.utc).timestamp() * 1e9)
        attrs = gpt4o_chat(input_tokens=1_000_000, output_tokens=0)
        tracer.start_span("chat", attributes=attrs, start_time=at).end(end_time=at + 1000)
    provider.shutdown()
    march = Window(since=dt.datetime(2026, 3, 1), until=dt.datetime(2026, 3, 11))
    page = write_report(db, tmp_path / "r.html", march).read_text(encoding="utf-8")
    (chart,) = re.findall(r"<title>Cost per day by model</title>(.*?)</svg>", page, re.S)
    xs = [float(x) for x in re.findall(r'<rect class="mark" x="([0-9.]+)"', chart)]
    assert len(xs) == 4
    gaps = [round((b - a) / (xs[1] - xs[0]), 3) for a, b in zip(xs, xs[1:], strict=False)]
    assert gaps == [1.0, 7.0, 1.0]  # one slot a day, the quiet ones empty
    assert "2026-03-05" not in re.search(r"<desc>(.*?)</desc>", chart, re.S).group(1)


def test_calls_with_no_start_time_take_a_column_of_their_own(tmp_path, table):
    # A review: a call whose span said its start is unknown (OTLP's startTimeUnixNano 0,
    # stored with no start time: a NULL day in `daily`) made `otel-costattr report` with no
    # window a traceback.
    from serverutil import serving
    from test_server_api import T0, run_spans
    from test_server_otlp import JS, json_request

    spans = run_spans("0001" + "a" * 28, 1, T0) + run_spans("0003" + "c" * 28, 1, T0 + 2 * 86_400 * 10**9)
    for s in run_spans("0002" + "b" * 28, 1, T0):
        if s.get("parentSpanId"):
            s["startTimeUnixNano"] = "0"
        spans.append(s)
    db = tmp_path / "s.duckdb"
    with serving(db, table=table) as srv:
        assert srv.request("POST", "/v1/traces", json_request(spans), JS)[0] == 200
        srv.wait_ingested()
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    for title in ("Cost per day by model", "Cost per day by feature"):
        (chart,) = re.findall(f"<title>{title}</title>(.*?)</svg>", page, re.S)
        assert len(re.findall(r'<rect class="mark"', chart)) == 3  # 01-01, 01-03, the unknown day
        desc = re.search(r"<desc>(.*?)</desc>", chart, re.S).group(1)
        assert re.match(r"[^;]*: 2026-01-01: [^;]*; 2026-01-03: [^;]*; no start time: \S", desc), desc
