"""Alerts on ClickHouse (``alerts check/watch --db clickhouse://... --state FILE``, ``serve
--alerts``) against the DuckDB store, on the workload of tests/test_clickhouse.py.

The rules are measured on the calls selected in ClickHouse; the states and deliveries live in
the local DuckDB ``--state`` file (`otel_costattr.clickhouse.alerts`). Every key's value and
state must be the DuckDB store's; a key fires once per window, across evaluations and
connections; a notification no channel took is sent again from what the state file holds.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_workload
import duckdb
import pytest
from alerts_helpers import Receiver, free_port_url, rules_file
from click.testing import CliRunner

from otel_costattr.alerts.deliver import Notifier
from otel_costattr.alerts.watch import AlertWatcher, check_once
from otel_costattr.cli import cli
from otel_costattr.pricing.table import default_pricing
from otel_costattr.store.database import StoreError

pytestmark = pytest.mark.chdb

NOW = dt.datetime(2026, 6, 3, 12, tzinfo=dt.timezone.utc)  # within the workload's days
RULES = """
[[rules]]
name = "feature spend"
scope = "feature"
metric = "cost"
window = "day"
budget = 0.5
thresholds = [0.5, 1.0]
channels = ["ops"]

[[rules]]
name = "user calls"
scope = "user.id"
metric = "calls"
window = "24h"
thresholds = [20]
channels = ["ops"]

[[rules]]
name = "agent runs"
scope = "agent"
match = { service = "app" }
metric = "cost_per_run"
window = "24h"
baseline = 2
thresholds = [1.1]
channels = ["ops"]

[[rules]]
name = "sidecar unpriced"
scope = "model"
match = { "user.id" = "u1" }
metric = "unpriced_calls"
window = "24h"
thresholds = [1]
channels = ["ops"]
"""


@pytest.fixture(scope="module")
def stores(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(the DuckDB file, the chDB URL) holding the same spans (a database of their own)."""
    duck = str(tmp_path_factory.mktemp("duck") / "spans.duckdb")
    url = f"chdb://{chdb_dir}?database=alerting"
    clickhouse_workload.load(clickhouse_workload.spans(default_pricing()), duck, url)
    return duck, url


def _keys(result: Any) -> list[tuple[Any, ...]]:
    return [
        (r.rule, r.scope_value, r.window_key, r.threshold, r.limit, r.value, r.state, r.reason)
        for r in result.evaluation.rows
    ]


def test_states_agree_with_duckdb_and_fire_once(stores: tuple[str, str], tmp_path: Path) -> None:
    duck, url = stores
    store = tmp_path / "copy.duckdb"  # the DuckDB store records its states in itself
    shutil.copy(duck, store)
    rules = rules_file(tmp_path / "alerts.toml", RULES, free_port_url())
    state = tmp_path / "state.duckdb"
    expected = check_once(str(store), rules, now=NOW)
    got = check_once(url, rules, now=NOW, state=state)
    assert _keys(got) == _keys(expected)
    assert {r.state for r in got.evaluation.rows} >= {"FIRING", "OK"}
    assert len(got.evaluation.notifications) == len(expected.evaluation.notifications) > 2
    # Once per window: a later evaluation (a fresh connection to the state file) is silent.
    later = NOW + dt.timedelta(minutes=5)
    assert check_once(url, rules, now=later, state=state).evaluation.notifications == []
    with duckdb.connect(str(state), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM alert_events").fetchone()
        spans = con.execute("SELECT count(*) FROM spans").fetchone()
    assert stored is not None and stored[0] == len(got.evaluation.events)
    assert spans == (0,)  # no span is kept there: the state file holds states only
    # The next day (fresh calendar keys, the rolling keys carried on) as the DuckDB store says.
    day2 = NOW + dt.timedelta(days=1)
    tomorrow = check_once(url, rules, now=day2, state=state)
    expected = check_once(str(store), rules, now=day2)
    assert _keys(tomorrow) == _keys(expected)
    assert [n.payload for n in tomorrow.evaluation.notifications] == [
        n.payload for n in expected.evaluation.notifications
    ]


def test_a_month_crossed_late_fires_early_the_next(stores: tuple[str, str], tmp_path: Path) -> None:
    """Early in a day or month the one just ended is measured again, so a threshold crossed
    in its last minutes (or by spans arriving late) still fires. ClickHouse selected the calls
    from the new day's start only: the crossing never fired there (an alerts review)."""
    duck, url = stores
    store = tmp_path / "copy.duckdb"
    shutil.copy(duck, store)
    # "feature spend" alone (the others read 3 days back), its day and month those of UTC-12:
    # the workload's first calls (2026-06-01 08:00 UTC) are on May 31 there, the last day of a
    # month, and 12:10 UTC is 00:10 on June 1.
    day_rule = (
        RULES.split("[[rules]]")[1]
        .replace('window = "day"', 'window = "day"\ntimezone = "Etc/GMT+12"')
        .replace("budget = 0.5", "budget = 0.05")  # what May 31's few calls cross
    )
    rules = rules_file(tmp_path / "alerts.toml", "[[rules]]" + day_rule, free_port_url())
    early = dt.datetime(2026, 6, 1, 12, 10, tzinfo=dt.timezone.utc)
    expected = check_once(str(store), rules, now=early)
    got = check_once(url, rules, now=early, state=tmp_path / "state.duckdb")
    assert _keys(got) == _keys(expected)
    late = [n for n in expected.evaluation.notifications if n.payload["window"]["key"] == "2026-05-31"]
    assert late and [n.payload for n in got.evaluation.notifications] == [
        n.payload for n in expected.evaluation.notifications
    ]


def test_a_notification_no_channel_took_is_sent_again(stores: tuple[str, str], tmp_path: Path) -> None:
    _, url = stores
    state = tmp_path / "state.duckdb"
    down = rules_file(tmp_path / "down.toml", RULES, free_port_url())
    notifier = Notifier(str(state))
    notifier.start()
    first = check_once(url, down, notifier=notifier, now=NOW, state=state)
    notifier.flush(30)
    notifier.stop(1)
    assert first.evaluation.notifications and notifier.stats()["failed"] > 0
    assert first.failures["failed"] == 0  # read before the deliveries ran
    receiver = Receiver()
    try:
        up = rules_file(tmp_path / "up.toml", RULES, receiver.url)
        notifier = Notifier(str(state))
        notifier.start()
        again = check_once(url, up, notifier=notifier, now=NOW + dt.timedelta(minutes=10), state=state)
        notifier.flush(30)
        notifier.stop(1)
    finally:
        receiver.close()
    assert again.evaluation.notifications == []  # nothing new fired...
    assert len(again.redelivered) == len(first.evaluation.notifications)  # ...what failed is sent
    assert len(receiver.bodies) == len(again.redelivered)
    assert all(body["redelivered"] for body in receiver.bodies)


def test_what_alerts_on_clickhouse_refuse(stores: tuple[str, str], tmp_path: Path) -> None:
    _, url = stores
    rules = rules_file(tmp_path / "alerts.toml", RULES, free_port_url())
    with pytest.raises(StoreError, match="give --state FILE"):
        check_once(url, rules, now=NOW)
    with pytest.raises(StoreError, match="give --state FILE"):
        AlertWatcher(url, rules)
    errors = RULES + '\n[[rules]]\nname = "errors"\nscope = "service"\nmetric = "error_rate"\n'
    errors += 'window = "24h"\nthresholds = [0.2]\nchannels = ["ops"]\n'
    # Named as the rule file's own errors are: file, rule, field (a review).
    with pytest.raises(StoreError) as refused:
        check_once(url, rules_file(tmp_path / "errors.toml", errors, free_port_url()), now=NOW, state="s")
    where = f"{tmp_path / 'errors.toml'}: rule 'errors': field 'metric'"
    assert str(refused.value).startswith(f"{where}: 'error_rate' is not available on ClickHouse")


def test_cli_check_and_watch_on_clickhouse(stores: tuple[str, str], tmp_path: Path) -> None:
    """The CLI evaluates at the current time: the workload's June calls are out of every
    window, so each rule is NO_DATA, said in the table, exit 0."""
    _, url = stores
    rules = str(rules_file(tmp_path / "alerts.toml", RULES, free_port_url()))
    state = str(tmp_path / "state.duckdb")
    runner = CliRunner()
    check = runner.invoke(cli, ["alerts", "check", "--db", url, "--state", state, "--rules", rules])
    assert check.exit_code == 0, check.output
    assert "0 firing" in check.output and "no calls in the window" in check.output
    watch = ["alerts", "watch", "--db", url, "--state", state, "--rules", rules, "--count", "1"]
    watched = runner.invoke(cli, watch)
    assert watched.exit_code == 0 and "0 firing" in watched.output, watched.output
    missing = runner.invoke(cli, ["alerts", "check", "--db", url, "--rules", rules])
    assert missing.exit_code == 1 and "give --state FILE" in missing.output
    serve = runner.invoke(cli, ["serve", "--db", url, "--port", "0", "--alerts", rules])
    assert serve.exit_code == 1 and "Error: --alerts: " in serve.output
    assert "give --alerts-state FILE" in serve.output


def test_serve_on_clickhouse_runs_the_alerts(stores: tuple[str, str], tmp_path: Path) -> None:
    """serve --db chdb://... --alerts: the watcher runs in the app's lifespan and /healthz
    shows its counters."""
    pytest.importorskip("uvicorn", reason="uvicorn is in the [server] extra")
    from serverutil import serving

    from otel_costattr.clickhouse.serving import ReadOnlySink, read_only

    _, url = stores
    rules = rules_file(tmp_path / "alerts.toml", RULES, free_port_url())
    watcher = AlertWatcher(url, rules, interval=3600, state=tmp_path / "state.duckdb", notify=False)
    with serving(url, sink=ReadOnlySink(url), services=[watcher]) as c:  # type: ignore[arg-type]
        read_only(c.app)
        c.app.state.alerts = watcher
        deadline = dt.datetime.now() + dt.timedelta(seconds=120)
        while watcher.evaluations == 0 and watcher.errors == 0 and dt.datetime.now() < deadline:
            c.get_json("/healthz")
        health = c.get_json("/healthz")
    assert watcher.errors == 0, watcher.last_error
    assert health["alerts"]["evaluations"] >= 1


@pytest.mark.parametrize("hour", [12, 0.5])
def test_a_run_rule_costs_the_whole_run_on_clickhouse_too(
    chdb_dir: Path, tmp_path: Path, hour: float
) -> None:
    """A run with $0.20 spent 90 minutes ago and $0.10 a minute ago, a 1 h lookback and a $0.25
    budget: DuckDB costs it whole and fires; ClickHouse read $0.10 and stayed OK, the state
    file's empty spans table taken for "nothing earlier" (a review); and again at 00:30 on the
    1st, the run begun in the month before (the next review)."""
    from alerts_helpers import tokens
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_costattr.alerts import load_rules
    from otel_costattr.pricing.table import load_pricing
    from otel_costattr.sdk.processor import CostSpanProcessor

    prices = load_pricing([Path(__file__).parent / "data" / "test_prices.toml"], bundled=False, use_env=False)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        days=1 if hour == 12 else 0, hours=hour
    )
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(prices))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    calls = [(now - dt.timedelta(minutes=90), "0.20"), (now - dt.timedelta(minutes=1), "0.10")]
    root = tracer.start_span("run", start_time=int(calls[0][0].timestamp() * 1e9))
    for at, usd in calls:
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme",
                 "gen_ai.request.model": "acme-large", "gen_ai.usage.input_tokens": tokens(usd),
                 "gen_ai.usage.output_tokens": 0}  # fmt: skip
        start = int(at.timestamp() * 1e9)
        span = tracer.start_span("chat", trace.set_span_in_context(root), attributes=attrs, start_time=start)
        span.end(end_time=start + 10**9)
    root.end(end_time=int(now.timestamp() * 1e9))
    provider.shutdown()
    duck, url = str(tmp_path / "s.duckdb"), f"chdb://{chdb_dir}?database=runrule{int(hour)}"
    clickhouse_workload.load(memory.get_finished_spans(), duck, url)
    text = '[[rules]]\nname = "r"\nscope = "run"\nmetric = "cost"\nwindow = "run"\nbudget = 0.25\n'
    text += 'lookback = "1h"\n'
    (tmp_path / "a.toml").write_text(text)
    rules = load_rules(tmp_path / "a.toml")
    for db, state in ((duck, None), (url, str(tmp_path / "state.duckdb"))):
        rows = check_once(db, rules, now=now, state=state).evaluation.rows
        assert [(r.value, r.state) for r in rows] == [(Decimal("0.3"), "FIRING")], db
