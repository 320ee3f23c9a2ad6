"""Alerts evaluated against the store: thresholds, states, dedupe across restarts, anomalies,
identity scopes, delivery to a real HTTP receiver on 127.0.0.1. Real SDK, real DuckDB."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from alerts_helpers import NOW, Receiver, Workload, free_port_url, rules_file

from otel_costattr.alerts import Notifier, check_once, load_rules, slack_message
from otel_costattr.alerts.deliver import Notification
from otel_costattr.alerts.state import Delivery, delivery_failures, record_deliveries
from otel_costattr.rollups.queries import rollup
from otel_costattr.store.database import connect

DAY_BUDGET = """
[[rules]]
name = "research daily budget"
scope = "feature"
match = { feature = "research" }
metric = "cost"
window = "day"
timezone = "UTC"
budget = 1.00
thresholds = [0.5, 0.8, 1.0]
channels = ["ops"]
"""


def check(workload, rules, now, notifier=None):
    workload.flush()
    own = notifier is None
    notifier = notifier or Notifier(str(workload.path))
    result = check_once(workload.path, rules, notifier=notifier, now=now)
    assert notifier.flush(30)
    if own:
        notifier.stop()
    return result


def test_three_thresholds_fire_in_order_once_each_per_window(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    morning = NOW.replace(hour=8)
    workload.run(morning, ["0.30", "0.30"])  # $0.60: past 50%
    assert len(check(workload, rules, NOW).evaluation.firing) == 1
    assert check(workload, rules, NOW).evaluation.events == []  # nothing new: no state change
    workload.run(morning, ["0.25"])  # $0.85: past 80%
    check(workload, rules, NOW)
    workload.run(morning, ["0.20"])  # $1.05: past 100%
    result = check(workload, rules, NOW)
    assert [b["threshold"] for b in receiver.bodies] == [0.5, 0.8, 1.0]
    assert [b["percent_used"] for b in receiver.bodies] == [60.0, 85.0, 105.0]
    assert {b["window"]["key"] for b in receiver.bodies} == {"2026-12-02"}
    assert len(result.evaluation.firing) == 3
    # A new day is a new window: the first threshold fires again, once.
    tomorrow = NOW + dt.timedelta(days=1)
    workload.run(tomorrow.replace(hour=8), ["0.30", "0.25"])
    check(workload, rules, tomorrow)
    check(workload, rules, tomorrow)
    assert [(b["window"]["key"], b["threshold"]) for b in receiver.bodies[3:]] == [("2026-12-03", 0.5)]


def test_thresholds_crossed_together_are_one_notification(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    workload.run(NOW.replace(hour=9), ["0.30", "0.30", "0.30"])
    result = check(workload, rules, NOW)
    assert len(result.evaluation.firing) == 2
    assert len(receiver.bodies) == 1
    assert receiver.bodies[0]["threshold"] == 0.8 and receiver.bodies[0]["thresholds_crossed"] == [0.5, 0.8]


def test_identity_keys_count_calls_whose_identity_is_inherited(tmp_path, table, receiver):
    # A service without the processor: the calls carry no app.feature of their own, the run
    # does. The rollups' --where app.feature=research counts them; a rule naming the same key
    # as its scope or filter read the calls' own attributes and never fired.
    rules_text = DAY_BUDGET.replace('scope = "feature"', 'scope = "app.feature"').replace(
        'match = { feature = "research" }', 'match = { "app.feature" = "research", "service.name" = "svc" }'
    )
    rules = load_rules(rules_file(tmp_path / "alerts.toml", rules_text, receiver.url))
    bare = Workload(tmp_path / "bare.duckdb", table, processor=False)
    try:
        bare.run(NOW.replace(hour=8), ["0.30", "0.30"])
        result = check(bare, rules, NOW)
    finally:
        bare.close()
    (firing,) = result.evaluation.firing
    (body,) = receiver.bodies
    assert body["scope"]["value"] == "research" and body["value_exact"] == "0.6"
    assert body["threshold"] == 0.5


def test_payload_schema(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    trace_id = workload.run(NOW.replace(hour=6), ["0.40", "0.20"])
    workload.run(NOW.replace(hour=7), ["0.05"], feature="other")
    workload.run(NOW - dt.timedelta(days=30), ["0.01"])  # research spent in November too
    workload.flush()
    notifier = Notifier(str(workload.path))
    check_once(workload.path, rules, notifier=notifier, now=NOW, base_url="http://127.0.0.1:8000")
    assert notifier.flush(30)
    notifier.stop()
    (body,) = receiver.bodies
    assert body["version"] == 1 and body["event"] == "firing" and body["source"] == "store"
    assert body["rule"] == "research daily budget"
    assert body["scope"] == {"kind": "feature", "value": "research", "match": {"feature": "research"}}
    assert body["metric"] == "cost" and body["unit"] == "usd"
    assert body["window"]["key"] == "2026-12-02" and body["window"]["start"] == "2026-12-02T00:00:00+00:00"
    assert body["value_exact"] == "0.6" and body["budget_exact"] == "1" and body["limit_exact"] == "0.5"
    assert body["percent_used"] == 60.0
    # Month to date $0.60 at noon on Dec 2 (1.5 of 31 days): linear to the month's end (from
    # the month's start: research spent in November; one whose calls begin this month is
    # projected from its first day, as forecast does: the test below).
    assert Decimal(body["projection"]["month_end_usd_exact"]) == Decimal("0.6") * 31 / Decimal("1.5")
    assert body["projection"]["month_end"] == "2027-01-01T00:00:00+00:00"
    (run,) = body["top"]["runs"]
    assert run["trace_id"] == trace_id and run["usd_exact"] == "0.6" and run["calls"] == 2
    assert run["url"] == f"http://127.0.0.1:8000/runs/{trace_id}"
    assert body["top"]["features"] == [
        {"feature": "research", "calls": 2, "unpriced_calls": 0, "usd": 0.6, "usd_exact": "0.6"}
    ]
    assert body["top"]["models"][0]["model"] == "acme-large"
    assert body["links"] == {"dashboard": "http://127.0.0.1:8000/"}


def test_the_month_end_projection_is_forecasts_to_the_digit(tmp_path, workload, receiver):
    # At any instant (microseconds and all) the projection is forecast's, digit for digit:
    # it divided float seconds, a double's digits in an exact string (a review). Research's
    # calls begin this month: both project from its first day (the alert's from the month's
    # start was 1.5 days against forecast's half day: a review).
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    at = NOW.replace(hour=13, minute=7, second=11, microsecond=123457)
    workload.run(NOW.replace(hour=6), ["0.3", "0.3", *["150.123456789012"] * 8])
    check(workload, rules, at)
    (body,) = receiver.bodies
    (forecast,) = [r for r in rollup("forecast", db=workload.path, until=at) if r["value"] == "research"]
    assert body["projection"]["month_end_usd_exact"] == format(forecast["projected_usd"].normalize(), "f")


def test_top_contributors_never_show_an_unknown_model_as_zero(tmp_path, workload, receiver):
    # The top models listed a model the prices do not know as $0 (coalesce), and Slack's
    # line printed "zzz-unknown $0.0000": an unpriced cost must be said, never a zero.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    unknown_run = workload.run(NOW.replace(hour=5), ["?", "?"])
    mixed_run = workload.run(NOW.replace(hour=6), ["0.30", "0.30", "?"])
    check(workload, rules, NOW)
    (body,) = receiver.bodies
    assert body["value_exact"] == "0.6"
    assert body["top"]["models"] == [
        {"model": "acme-large", "calls": 2, "unpriced_calls": 0, "usd": 0.6, "usd_exact": "0.6"},
        {"model": "zzz-unknown", "calls": 3, "unpriced_calls": 3, "usd": None, "usd_exact": None},
    ]
    runs = {r["trace_id"]: r for r in body["top"]["runs"]}
    assert [r["trace_id"] for r in body["top"]["runs"]] == [mixed_run, unknown_run]  # unpriced last
    assert (runs[mixed_run]["usd_exact"], runs[mixed_run]["unpriced_calls"]) == ("0.6", 1)
    assert (runs[unknown_run]["usd_exact"], runs[unknown_run]["unpriced_calls"]) == (None, 2)
    assert body["top"]["features"] == [
        {"feature": "research", "calls": 5, "unpriced_calls": 3, "usd": 0.6, "usd_exact": "0.6"}
    ]
    context = slack_message(body)["blocks"][1]["elements"][0]["text"]
    assert "Top models: acme-large $0.60, zzz-unknown unpriced (3 calls)" in context
    assert "Top features: research $0.60 (+3 unpriced)" in context
    # Every amount of the message by the message's one rule (_dollars): a tiny contributor
    # read "$0.0000" and a tiny projection "$0.00" beside a headline of "<$0.0001".
    from otel_costattr.alerts.payload import _contributor

    assert _contributor({"model": "m", "usd_exact": "0.00000002"}) == "m &lt;$0.0001"  # mrkdwn's "<"
    assert "$0.0000" not in context


def test_a_restart_does_not_refire_and_states_are_stored(tmp_path, workload, receiver):
    path = rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url)
    workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
    check(workload, load_rules(path), NOW)
    # A new evaluator (a restarted process): rules read again, a new notifier.
    result = check(workload, load_rules(path), NOW + dt.timedelta(minutes=5))
    assert len(receiver.bodies) == 1
    assert [r.state for r in result.evaluation.firing] == ["FIRING"]
    con = connect(workload.path, read_only=True)
    try:
        rows = con.execute(
            "SELECT rule, scope_value, window_key, threshold, state, notified FROM alert_events"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("research daily budget", "research", "2026-12-02", "0.5", "FIRING", True)]


ROLLING = """
[[rules]]
name = "errors"
scope = "feature"
metric = "error_rate"
window = "24h"
thresholds = [0.2]
min_calls = 10
cooldown = "0s"
channels = ["ops"]
"""


def test_error_rate_spike_fires_and_resolves(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", ROLLING, receiver.url))
    for hour in range(1, 9):  # a steady 1 error in 10 calls: 10%, below 20%
        workload.run(NOW - dt.timedelta(hours=hour), ["0.001"] * 10, errors=1)
    assert check(workload, rules, NOW).evaluation.firing == []
    for minute in range(1, 4):  # the spike: 3 runs with 6 errors in 10
        workload.run(NOW - dt.timedelta(minutes=minute), ["0.001"] * 10, errors=6)
    result = check(workload, rules, NOW)
    (row,) = result.evaluation.firing
    assert row.value == Decimal(8 + 18) / 110
    assert [b["event"] for b in receiver.bodies] == ["firing"]
    # A day later the spike has left the window: the alert resolves, and says so once.
    later = NOW + dt.timedelta(hours=25)
    for minute in range(1, 3):
        workload.run(later - dt.timedelta(minutes=minute), ["0.001"] * 10, errors=0)
    assert [r.state for r in check(workload, rules, later).evaluation.summary()] == ["RESOLVED"]
    check(workload, rules, later + dt.timedelta(minutes=1))
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]


LATENCY = """
[[rules]]
name = "latency"
scope = "model"
metric = "p95_latency"
window = "24h"
baseline = 7
thresholds = [2.0]
channels = ["ops"]
"""


def test_latency_degradation_against_the_trailing_median(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", LATENCY, receiver.url))
    for day in range(1, 8):  # a week at 100 ms
        workload.run(NOW - dt.timedelta(days=day, hours=1), ["0.001"] * 5, latency_ms=100)
    workload.run(NOW - dt.timedelta(hours=2), ["0.001"] * 5, latency_ms=150)
    assert check(workload, rules, NOW).evaluation.firing == []  # 1.5x: not degraded enough
    workload.run(NOW - dt.timedelta(hours=1), ["0.001"] * 20, latency_ms=500)
    result = check(workload, rules, NOW)
    (row,) = result.evaluation.firing
    assert row.scope_value == "acme-large" and row.limit == Decimal(200)
    (body,) = receiver.bodies
    assert body["baseline_exact"] == "100" and body["unit"] == "ms" and body["value"] == 500.0


def test_no_baseline_is_no_data_not_an_alert(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", LATENCY, receiver.url))
    workload.run(NOW - dt.timedelta(hours=1), ["0.001"] * 5, latency_ms=900)
    result = check(workload, rules, NOW)
    assert [(r.state, r.reason) for r in result.evaluation.rows] == [
        ("NO_DATA", "no baseline: 0 of the 7 windows before had calls, 3 needed")
    ]
    assert receiver.bodies == []


PER_USER = """
[[rules]]
name = "per-user spend"
scope = "user.id"
metric = "cost"
window = "month"
timezone = "Europe/Paris"
budget = 0.50
channels = ["ops"]
"""


def test_per_user_cost_alert_through_an_identity_attribute(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", PER_USER, receiver.url))
    workload.run(NOW - dt.timedelta(days=1), ["0.30", "0.30"], user="u-heavy")
    workload.run(NOW - dt.timedelta(hours=3), ["0.10"], user="u-light")
    workload.run(NOW - dt.timedelta(hours=3), ["0.30", "0.30", "0.30"])  # no user: in no user's total
    result = check(workload, rules, NOW)
    assert [(r.scope_value, r.state) for r in result.evaluation.firing] == [("u-heavy", "FIRING")]
    (body,) = receiver.bodies
    assert body["scope"]["kind"] == "user.id" and body["scope"]["value"] == "u-heavy"
    assert body["value_exact"] == "0.6" and body["window"]["key"] == "2026-12"
    # The month in Paris starts at 23:00 UTC the day before.
    assert body["window"]["start"] == "2026-11-30T23:00:00+00:00"


def test_a_receiver_that_fails_is_retried_until_it_answers(tmp_path, workload):
    receiver = Receiver(fail_first=2)
    try:
        rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
        workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
        notifier = Notifier(str(workload.path))
        check(workload, rules, NOW, notifier)
        assert receiver.requests == 3 and len(receiver.bodies) == 1
        assert notifier.stats()["delivered"] == 1 and notifier.stats()["attempts"] == 3
        notifier.stop()
    finally:
        receiver.close()


def test_a_receiver_that_is_down_is_counted_and_recorded(tmp_path, workload):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, free_port_url()))
    workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
    notifier = Notifier(str(workload.path))
    check(workload, rules, NOW, notifier)
    stats = notifier.stats()
    notifier.stop()
    assert stats["failed"] == 1 and stats["attempts"] == 3 and "Connection refused" in stats["last_error"]
    result = check_once(workload.path, rules, now=NOW)
    assert result.failures["failed"] == 1 and result.failures["last_channel"] == "ops"
    assert "Connection refused" in result.failures["last_error"]


def test_no_calls_at_all_is_no_data(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    workload.run(NOW - dt.timedelta(days=3), ["0.10"])
    result = check(workload, rules, NOW)
    assert {(r.scope_value, r.state, r.reason) for r in result.evaluation.rows} == {
        ("*", "NO_DATA", "no calls in the window")
    }
    assert result.evaluation.firing == [] and receiver.bodies == []


def test_calls_without_the_scope_key_say_so(tmp_path, workload, receiver):
    """A per-user rule whose calls do not carry user.id (set on the request span, the processor
    not told to copy it) said "no calls in the window" beside $0.60 of calls."""
    text = '[[rules]]\nname = "u"\nscope = "user.id"\nmetric = "cost"\nwindow = "day"\nbudget = 0.5\n'
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text + 'channels = ["ops"]\n', receiver.url))
    workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
    (row,) = check(workload, rules, NOW).evaluation.rows
    assert (row.state, row.reason) == (
        "NO_DATA",
        "2 calls in the window, none with user.id (add it to the processor's identity_keys, "
        "or OTEL_COSTATTR_IDENTITY_KEYS)",
    )
    agents = load_rules(rules_file(tmp_path / "b.toml", text.replace("user.id", "agent"), receiver.url))
    assert check(workload, agents, NOW).evaluation.rows[0].reason == "2 calls in the window, none with agent"


def test_the_migration_creates_the_tables(tmp_path):
    con = connect(tmp_path / "blank.duckdb")
    try:
        names = {r[0] for r in con.execute("SELECT name FROM costattr_migrations").fetchall()}
        columns = [r[0] for r in con.execute("DESCRIBE alert_events").fetchall()]
        deliveries = [r[0] for r in con.execute("DESCRIBE alert_deliveries").fetchall()]
    finally:
        con.close()
    assert "0005_alert_events" in names
    assert columns == [
        "recorded_at", "rule", "scope", "scope_value", "window_key", "threshold", "state", "value",
        "limit_value", "notified", "source", "payload",
    ]  # fmt: skip
    assert deliveries == [
        "recorded_at", "rule", "scope_value", "window_key", "event", "channel", "ok", "attempts", "error",
    ]  # fmt: skip


FLAPPING = """
[[rules]]
name = "spend"
scope = "feature"
metric = "cost"
window = "24h"
budget = 0.50
cooldown = "2h"
channels = ["ops"]
"""


def test_a_resolved_key_refiring_within_its_cooldown_is_not_notified(tmp_path, workload, receiver):
    rules = load_rules(rules_file(tmp_path / "alerts.toml", FLAPPING, receiver.url))
    workload.run(NOW - dt.timedelta(hours=23), ["0.30", "0.30"])
    check(workload, rules, NOW)  # fires
    # An hour later those calls left the window: the scope value is gone, the alert resolves.
    resolved = check(workload, rules, NOW + dt.timedelta(hours=1, minutes=1))
    rows = [(r.scope_value, r.state, r.value) for r in resolved.evaluation.rows]
    assert rows == [("*", "NO_DATA", None), ("research", "RESOLVED", Decimal(0))]
    workload.run(NOW + dt.timedelta(hours=1, minutes=30), ["0.30", "0.30"])
    quiet = check(workload, rules, NOW + dt.timedelta(hours=1, minutes=45))  # fires again, within 2h
    assert [r.state for r in quiet.evaluation.firing] == ["FIRING"]
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies] == [("firing", "0.6"), ("resolved", "0")]
    assert [e.notified for e in quiet.evaluation.events] == [False]
    # Once the cooldown has passed, a new crossing is told again.
    workload.run(NOW + dt.timedelta(hours=1, minutes=50), ["0.01"])
    later = NOW + dt.timedelta(hours=27)
    check(workload, rules, later)  # everything left the window: resolved (told)
    workload.run(later, ["0.30", "0.30"])
    check(workload, rules, later + dt.timedelta(minutes=1))
    # (the quiet firing resolved quietly too: no "resolved" for a firing nobody was told of)
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved", "firing"]


def test_a_run_over_budget_fires_once_from_the_store(tmp_path, workload, receiver):
    text = '[[rules]]\nname = "run budget"\nscope = "run"\nmetric = "cost"\nwindow = "run"\nbudget = 0.25\n'
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text + 'channels = ["ops"]\n', receiver.url))
    over = workload.run(NOW - dt.timedelta(hours=2), ["0.20", "0.10"])
    workload.run(NOW - dt.timedelta(hours=1), ["0.20"])
    workload.run(NOW - dt.timedelta(hours=30), ["0.40"])  # before the lookback (24h by default)
    first = check(workload, rules, NOW)
    again = check(workload, rules, NOW + dt.timedelta(minutes=1))
    assert [r.scope_value for r in first.evaluation.firing] == [over]
    assert [r.changed for r in again.evaluation.firing] == [False]
    (body,) = receiver.bodies
    assert body["scope"]["value"] == over and body["value_exact"] == "0.3" and body["projection"] is None
    # The run's window starts at its first call (not at the start of the 24 h lookback).
    assert body["window"]["start"] == (NOW - dt.timedelta(hours=2)).isoformat()
    assert slack_message(body)["text"].endswith(", window run")  # not "window run run"


def _long_run(workload, calls):
    """One run whose calls ((when, usd) pairs) lie where the test says, under one root."""
    from alerts_helpers import _ns, tokens
    from opentelemetry import trace

    root = workload.tracer.start_span("run", start_time=_ns(calls[0][0]), attributes={"app.feature": "f"})
    ctx = trace.set_span_in_context(root)
    for at, usd in calls:
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme",
                 "gen_ai.request.model": "acme-large", "gen_ai.usage.input_tokens": tokens(usd),
                 "gen_ai.usage.output_tokens": 0}  # fmt: skip
        span = workload.tracer.start_span("chat", context=ctx, start_time=_ns(at), attributes=attrs)
        span.end(end_time=_ns(at + dt.timedelta(seconds=1)))
    root.end(end_time=_ns(calls[-1][0] + dt.timedelta(seconds=2)))
    return f"{root.get_span_context().trace_id:032x}"


def test_a_run_is_measured_whole_not_its_calls_inside_the_lookback(tmp_path, workload, receiver):
    """The lookback picks the runs; each costs every call of it. A run with $0.20 spent 90
    minutes ago and $0.10 now, 1 h lookback, read $0.10 and never fired; a run whose $0.30 call
    slid out of the 24 h lookback was told "resolved" at $0.01 while it had cost $0.31."""
    text = '[[rules]]\nname = "run budget"\nscope = "run"\nmetric = "cost"\nwindow = "run"\nbudget = 0.25\n'
    short = load_rules(
        rules_file(tmp_path / "a.toml", text + 'lookback = "1h"\nchannels = ["ops"]\n', receiver.url)
    )
    run = _long_run(
        workload, [(NOW - dt.timedelta(minutes=90), "0.20"), (NOW - dt.timedelta(minutes=1), "0.10")]
    )
    (row,) = check(workload, short, NOW).evaluation.firing
    assert (row.scope_value, row.value) == (run, Decimal("0.3"))
    (body,) = receiver.bodies
    assert body["window"]["start"] == (NOW - dt.timedelta(minutes=90)).isoformat()  # the run's first call
    # The default 24 h lookback: fired at $0.30, then its first call leaves the lookback.
    receiver.bodies.clear()
    day = load_rules(rules_file(tmp_path / "b.toml", text + 'channels = ["ops"]\n', receiver.url))
    later = NOW + dt.timedelta(days=3)
    old = _long_run(
        workload, [(later - dt.timedelta(hours=23), "0.30"), (later - dt.timedelta(hours=1), "0.01")]
    )
    check(workload, day, later)
    rows = check(workload, day, later + dt.timedelta(hours=2)).evaluation.rows  # $0.30 25 h back
    assert {r.scope_value: r.value for r in rows} == {old: Decimal("0.31")}
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies] == [("firing", "0.31")]


def test_a_resolve_no_channel_took_is_sent_again_once(tmp_path, workload, receiver):
    """A resolve the receiver missed (down when the key resolved) is sent again, as a firing
    is; it was lost for good, the incident left open wherever the firing went."""
    text = ('[[rules]]\nname = "rolling"\nscope = "feature"\nmetric = "cost"\nwindow = "24h"\n'
            'budget = 1.00\nthresholds = [0.5]\nchannels = ["ops"]\n')  # fmt: skip
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url))
    workload.run(NOW - dt.timedelta(hours=1), ["0.30", "0.30"])
    check(workload, rules, NOW)
    receiver.fail_first = receiver.requests + 3  # the resolve's three attempts fail
    gone = NOW + dt.timedelta(hours=24)
    assert "RESOLVED" in [e.state for e in check(workload, rules, gone).evaluation.events]
    assert [b["event"] for b in receiver.bodies] == ["firing"]
    assert check(workload, rules, gone + dt.timedelta(seconds=30)).redelivered == []  # too soon
    again = check(workload, rules, gone + dt.timedelta(hours=1))
    assert len(again.redelivered) == 1 and again.evaluation.events == []
    assert [(b["event"], b.get("redelivered")) for b in receiver.bodies] == [
        ("firing", None),
        ("resolved", True),
    ]
    assert check(workload, rules, gone + dt.timedelta(hours=2)).redelivered == []  # delivered: once
    # One nobody took for longer than its window is old news: never sent.
    receiver.fail_first = receiver.requests + 100
    workload.run(gone + dt.timedelta(hours=3), ["0.30", "0.30"])
    check(workload, rules, gone + dt.timedelta(hours=3, minutes=1))
    later = gone + dt.timedelta(hours=28)
    check(workload, rules, later)  # resolved, not delivered
    receiver.fail_first = 0
    assert check(workload, rules, later + dt.timedelta(hours=25)).redelivered == []


def test_a_resolve_is_not_sent_again_where_it_is_no_news(tmp_path, workload, receiver):
    """A resolve the receiver missed is not sent again once the rule says notify_resolved =
    false, nor to a channel that never took the firing: an end it never heard start (a
    review of the redelivery of resolves)."""
    text = ('[[rules]]\nname = "rolling"\nscope = "feature"\nmetric = "cost"\nwindow = "24h"\n'
            'budget = 1.00\nthresholds = [0.5]\nchannels = ["ops"]\n')  # fmt: skip
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url))
    workload.run(NOW - dt.timedelta(hours=1), ["0.30", "0.30"])
    check(workload, rules, NOW)  # the firing, delivered
    receiver.fail_first = receiver.requests + 3
    gone = NOW + dt.timedelta(hours=24)
    check(workload, rules, gone)  # its resolve, not delivered
    quiet = text.replace('channels = ["ops"]', 'notify_resolved = false\nchannels = ["ops"]')
    off = load_rules(rules_file(tmp_path / "quiet.toml", quiet, receiver.url))
    assert check(workload, off, gone + dt.timedelta(hours=1)).redelivered == []
    assert [b["event"] for b in receiver.bodies] == ["firing"]
    # A firing no channel took, then its resolve: neither is sent later (the firing is over)
    receiver.fail_first = receiver.requests + 100
    workload.run(gone + dt.timedelta(hours=2), ["0.30", "0.30"], feature="other")
    check(workload, rules, gone + dt.timedelta(hours=2, minutes=1))
    check(workload, rules, gone + dt.timedelta(hours=27))  # resolved
    receiver.fail_first = 0
    assert check(workload, rules, gone + dt.timedelta(hours=28)).redelivered == []
    assert [b["event"] for b in receiver.bodies] == ["firing"]


def test_a_resolve_is_news_only_to_a_channel_told_of_its_own_firing(tmp_path, workload, receiver):
    """A rolling window's key is reused by each episode: a channel that took the first
    episode's firing was taken for told of the second's, whose firing it never got, and was
    sent its resolve (a review)."""
    text = ('[[rules]]\nname = "rolling"\nscope = "feature"\nmetric = "cost"\nwindow = "24h"\n'
            'budget = 1.00\nthresholds = [0.5]\nchannels = ["ops"]\n')  # fmt: skip
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url))
    workload.run(NOW - dt.timedelta(hours=1), ["0.30", "0.30"])
    check(workload, rules, NOW)  # fires: delivered
    check(workload, rules, NOW + dt.timedelta(hours=24))  # resolves: delivered
    receiver.fail_first = receiver.requests + 100  # down for the second episode
    later = NOW + dt.timedelta(hours=26)
    workload.run(later, ["0.30", "0.30"])
    check(workload, rules, later + dt.timedelta(minutes=1))  # fires: not delivered
    check(workload, rules, later + dt.timedelta(hours=25))  # resolves: not delivered
    receiver.fail_first = 0
    assert check(workload, rules, later + dt.timedelta(hours=26)).redelivered == []
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]


TWO_THRESHOLDS = """
[[rules]]
name = "rolling"
scope = "feature"
metric = "cost"
window = "24h"
budget = 1.00
thresholds = [0.5, 1.0]
cooldown = "0s"
channels = ["ops"]
"""


@pytest.mark.parametrize("cooldown", ["0s", "1h"])
def test_a_lower_threshold_crossed_with_one_that_resolved_unheard_is_told(
    tmp_path, workload, receiver, cooldown
):
    """0.5 and 1.0 fired together while the receiver was down: their one message was held
    by 1.0's event. Back up as 1.0 resolved, the receiver was sent "resolved 1.0", an end it
    never heard start, and never heard that 0.5 went on firing: the firing's resend stopped
    with 1.0's state (a review). Now the resolve goes to channels that took the firing only,
    and the firing that goes on is told."""
    text = TWO_THRESHOLDS.replace('"0s"', f'"{cooldown}"')
    rules = load_rules(rules_file(tmp_path / "alerts.toml", text, receiver.url))
    for hours in (3, 2, 1):
        workload.run(NOW - dt.timedelta(hours=hours), ["0.40"])
    receiver.fail_first = 10_000  # down
    (fired,) = [n.payload for n in check(workload, rules, NOW).evaluation.notifications]
    assert fired["thresholds_crossed"] == [0.5, 1.0]
    check(workload, rules, NOW + dt.timedelta(minutes=30))  # its resend fails too
    receiver.fail_first = 0  # back up
    partly = check(workload, rules, NOW + dt.timedelta(hours=21, minutes=30))  # 0.80: 1.0 resolves
    assert {(e.threshold, e.state) for e in partly.evaluation.events} >= {("1", "RESOLVED")}
    assert [(b["event"], b["thresholds_crossed"], b["value_exact"]) for b in receiver.bodies] == [
        ("firing", [0.5], "0.8")
    ]
    check(workload, rules, NOW + dt.timedelta(hours=22))  # nothing new
    check(workload, rules, NOW + dt.timedelta(hours=22, minutes=30))  # 0.40: 0.5 resolves
    assert [(b["event"], b["thresholds_crossed"]) for b in receiver.bodies] == [
        ("firing", [0.5]),
        ("resolved", [0.5]),
    ]
    assert check(workload, rules, NOW + dt.timedelta(hours=30)).redelivered == []


def test_a_partial_resolve_heard_by_its_receiver_stays_one_message(tmp_path, workload, receiver):
    """The receiver took "0.5 and 1.0 firing": 1.0's resolve alone says the rest, as before."""
    rules = load_rules(rules_file(tmp_path / "alerts.toml", TWO_THRESHOLDS, receiver.url))
    for hours in (3, 2, 1):
        workload.run(NOW - dt.timedelta(hours=hours), ["0.40"])
    check(workload, rules, NOW)
    check(workload, rules, NOW + dt.timedelta(hours=21, minutes=30))
    check(workload, rules, NOW + dt.timedelta(hours=22, minutes=30))
    assert [(b["event"], b["thresholds_crossed"]) for b in receiver.bodies] == [
        ("firing", [0.5, 1.0]),
        ("resolved", [1.0]),
        ("resolved", [0.5]),
    ]


def _firing_held(tmp_path, workload, receiver, fail_first, resolving: int, then) -> None:
    """0.5 and 1.0 fire at NOW (runs of $0.40 3, 2 and 1 h before; one notifier all along, as
    serve's), their firing held at the receiver through the check ``resolving`` minutes
    later; then the receiver answers (``fail_first``) and checks run at ``then`` minutes."""
    rules = load_rules(rules_file(tmp_path / "alerts.toml", TWO_THRESHOLDS, receiver.url))
    for hours in (3, 2, 1):
        workload.run(NOW - dt.timedelta(hours=hours), ["0.40"])
    workload.flush()
    receiver.hold.clear()
    receiver.fail_first = fail_first
    notifier = Notifier(str(workload.path))
    try:
        check_once(workload.path, rules, notifier=notifier, now=NOW)
        assert receiver.arrived.wait(10)
        check_once(workload.path, rules, notifier=notifier, now=NOW + dt.timedelta(minutes=resolving))
        receiver.hold.set()
        assert notifier.flush(30)
        for minutes in then:
            check_once(workload.path, rules, notifier=notifier, now=NOW + dt.timedelta(minutes=minutes))
            assert notifier.flush(30)
    finally:
        notifier.stop()


@pytest.mark.parametrize("gets_through", [False, True])
def test_a_partial_resolve_while_the_firing_is_on_its_way(tmp_path, workload, receiver, gets_through):
    """serve and alerts watch hand notifications to a notifier that keeps sending: 1.0
    resolved while the firing of 0.5 and 1.0 was still on its way, and when that firing then
    failed the receiver never heard that 0.5 went on firing (a review). 0.5 is told again,
    after the resolve, which follows the firing in the channel's queue: when the firing
    failed, that resolve is an end the receiver never heard start, but what it is left
    believing is true (leaving it unsent took a worker's memory of failed firings, which
    the reviews of it found lost resolves with: see the README)."""
    minutes = (22 * 60, 22 * 60 + 30, 23 * 60)  # 0.5 resolves at 22:30
    _firing_held(tmp_path, workload, receiver, 0 if gets_through else 3, 21 * 60 + 30, minutes)
    told = [(b["event"], b["thresholds_crossed"]) for b in receiver.bodies]
    heard = [("firing", [0.5, 1.0])] if gets_through else []
    assert told == [*heard, ("resolved", [1.0]), ("firing", [0.5]), ("resolved", [0.5])]


def test_a_long_lived_notifier_sends_a_resolve_after_a_higher_firing_failed(tmp_path, workload, receiver):
    """A review of a notifier that left a resolve unsent behind a failed firing (taken back):
    in serve or alerts watch (one notifier all along) 1.0's firing failed, and the resolve of
    0.5 and 1.0, handed over a day later to a receiver that took 0.5's firing, was never
    sent, nor sent again."""
    rules = load_rules(rules_file(tmp_path / "alerts.toml", TWO_THRESHOLDS, receiver.url))
    workload.run(NOW - dt.timedelta(hours=3), ["0.40"])
    workload.run(NOW - dt.timedelta(hours=2), ["0.40"])
    notifier = Notifier(str(workload.path))
    try:
        check(workload, rules, NOW, notifier)  # 0.80: 0.5 fires, delivered
        receiver.fail_first = 10_000
        workload.run(NOW + dt.timedelta(minutes=10), ["0.40"])
        check(workload, rules, NOW + dt.timedelta(minutes=30), notifier)  # 1.20: 1.0 fires, lost
        receiver.fail_first = 0
        check(workload, rules, NOW + dt.timedelta(hours=22, minutes=30), notifier)  # 0.40: both resolve
    finally:
        notifier.stop()
    assert [(b["event"], b["thresholds_crossed"]) for b in receiver.bodies] == [
        ("firing", [0.5]),
        ("resolved", [0.5, 1.0]),
    ]


class _FailsTheSecondToFourth:
    """A receiver's fail_first that fails requests 2, 3 and 4 (a resolve's three attempts)."""

    def __ge__(self, n: int) -> bool:
        return n in (2, 3, 4)


def test_a_resolve_that_failed_after_its_firing_got_through_late_is_sent_again(tmp_path, workload, receiver):
    """A review: the firing was still on its way when 0.5 and 1.0 resolved, then got
    through; its outcome was recorded after the resolve, and a resend of the resolve that
    counted only firings recorded before it took the channel for one that never heard the
    firing: the failed resolve never came."""
    _firing_held(tmp_path, workload, receiver, _FailsTheSecondToFourth(), 22 * 60 + 30, [23 * 60 + 30])
    told = [(b["event"], b.get("redelivered")) for b in receiver.bodies]
    assert told == [("firing", None), ("resolved", True)]


def test_a_partial_resolve_after_a_no_notify_check_tells_what_still_fires(tmp_path, workload, receiver):
    """0.5 and 1.0 found firing with --no-notify: the next check that notifies resolved 1.0
    (a resolve no one heard start: unsent) and 0.5, whose message 1.0's event held, was never
    sent (a review)."""
    rules = load_rules(rules_file(tmp_path / "alerts.toml", TWO_THRESHOLDS, receiver.url))
    for hours in (3, 2, 1):
        workload.run(NOW - dt.timedelta(hours=hours), ["0.40"])
    workload.flush()
    check_once(workload.path, rules, notifier=None, now=NOW)  # --no-notify
    check(workload, rules, NOW + dt.timedelta(hours=21, minutes=30))
    check(workload, rules, NOW + dt.timedelta(hours=22, minutes=30))
    assert [(b["event"], b["thresholds_crossed"]) for b in receiver.bodies] == [
        ("firing", [0.5]),
        ("resolved", [0.5]),
    ]


def test_a_second_partial_resolve_that_failed_is_sent_again(tmp_path, workload, receiver):
    """A review: 0.5, 0.8 and 1.0 fired (told); "resolved 1.0" got through, then "resolved
    0.5, 0.8" failed, and was never sent again: the resend took 1.0's resolve for the end of
    their episode, and found no firing of it taken."""
    three = TWO_THRESHOLDS.replace("thresholds = [0.5, 1.0]", "thresholds = [0.5, 0.8, 1.0]")
    rules = load_rules(rules_file(tmp_path / "alerts.toml", three, receiver.url))
    for hours in (3, 2, 1):
        workload.run(NOW - dt.timedelta(hours=hours), ["0.40"])
    check(workload, rules, NOW)  # 1.20: all three fire
    check(workload, rules, NOW + dt.timedelta(hours=21, minutes=30))  # 0.80: 1.0 resolves
    receiver.fail_first = receiver.requests + 3
    check(workload, rules, NOW + dt.timedelta(hours=22, minutes=30))  # 0.40: 0.5 and 0.8, lost
    check(workload, rules, NOW + dt.timedelta(hours=23, minutes=30))
    assert [(b["event"], b["thresholds_crossed"], b.get("redelivered")) for b in receiver.bodies] == [
        ("firing", [0.5, 0.8, 1.0], None),
        ("resolved", [1.0], None),
        ("resolved", [0.5, 0.8], True),
    ]


def test_a_notification_no_channel_took_is_sent_again_with_backoff_then_never(tmp_path, workload):
    receiver = Receiver(fail_first=6)  # two rounds of three attempts (retries = 2) fail
    try:
        rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
        workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
        assert check(workload, rules, NOW).redelivered == []
        assert receiver.requests == 3 and receiver.bodies == []
        second = NOW + dt.timedelta(seconds=61)  # the first wait (60 s) has passed
        assert check(workload, rules, NOW + dt.timedelta(seconds=30)).redelivered == []  # too soon
        assert len(check(workload, rules, second).redelivered) == 1
        assert receiver.requests == 6 and receiver.bodies == []  # down again: the wait doubles
        assert check(workload, rules, second + dt.timedelta(seconds=100)).redelivered == []
        # Any evaluator (a new process: a new notifier) sends it; the receiver is back.
        again = check(workload, rules, second + dt.timedelta(seconds=121))
        assert len(again.redelivered) == 1 and again.evaluation.events == []
        (body,) = receiver.bodies
        assert body["threshold"] == 0.5 and body["redelivered"] is True and body["failed_rounds"] == 2
        assert body["at"] == NOW.isoformat()  # the crossing's payload, as first sent
        # Delivered: never sent again, and the two failed rounds stay counted.
        last = check(workload, rules, NOW + dt.timedelta(hours=3))
        assert last.redelivered == [] and len(receiver.bodies) == 1 and receiver.requests == 7
        assert last.failures["failed"] == 2
    finally:
        receiver.close()


def test_only_the_channel_that_missed_it_is_sent_it_again(tmp_path, workload, receiver):
    down = Receiver(fail_first=3)
    try:
        path = rules_file(tmp_path / "alerts.toml", DAY_BUDGET.replace('["ops"]', '["ops", "backup"]'),
                          receiver.url)  # fmt: skip
        backup = f'[channels.backup]\ntype = "webhook"\nurl = "{down.url}"\nbackoff = "50ms"\nretries = 2\n'
        path.write_text(backup + path.read_text("utf-8"), encoding="utf-8")
        rules = load_rules(path)
        workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
        check(workload, rules, NOW)
        assert len(receiver.bodies) == 1 and down.bodies == []
        check(workload, rules, NOW + dt.timedelta(minutes=5))
        check(workload, rules, NOW + dt.timedelta(minutes=10))
        assert len(receiver.bodies) == 1 and len(down.bodies) == 1
    finally:
        down.close()


def test_a_past_window_is_not_sent_again(tmp_path, workload):
    receiver = Receiver(fail_first=9)  # the crossing's round and two re-sends fail
    try:
        rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
        workload.run(NOW.replace(hour=8), ["0.30", "0.30"])
        check(workload, rules, NOW)
        assert len(check(workload, rules, NOW.replace(hour=23, minute=50)).redelivered) == 1
        # The next day, yesterday's crossing is still news (a late crossing fires then too)
        assert len(check(workload, rules, NOW + dt.timedelta(days=1)).redelivered) == 1
        # the day after, it is old news: not sent again.
        assert check(workload, rules, NOW + dt.timedelta(days=2)).redelivered == []
        assert receiver.requests == 9 and receiver.bodies == []
    finally:
        receiver.close()


def test_a_scope_value_longer_than_a_stored_key_fires_once(tmp_path, workload, receiver):
    # alert_events keeps 512 characters of a value; the next evaluation looked the state up
    # by the whole value, never found it, and fired again (a day window) or fired and
    # "resolved" the stored one (24h) at every evaluation: a message pair a minute under serve.
    long_feature = "checkout/" + "x" * 600
    for window in ("day", "24h"):
        rules = load_rules(
            rules_file(tmp_path / f"{window}.toml", FLAPPING.replace('"24h"', f'"{window}"'), receiver.url)
        )
        workload.run(NOW - dt.timedelta(minutes=5), ["0.30", "0.30"], feature=long_feature + window)
        for minute in range(3):
            check(workload, rules, NOW + dt.timedelta(minutes=minute))
    # once each: the day rule's one value, the 24h rule's two (the first value is in its window too)
    assert [b["event"] for b in receiver.bodies] == ["firing"] * 3


def test_a_receiver_that_does_not_speak_http_is_a_counted_failure(tmp_path, workload):
    # http.client's BadStatusLine is neither OSError nor ValueError: it escaped the retry
    # loop with a traceback, and the delivery was counted nowhere.
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_garbage() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-not-http\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    try:
        error = _one_failed_delivery(tmp_path, workload, f"http://127.0.0.1:{server.getsockname()[1]}/hook")
    finally:
        server.close()
    assert "BadStatusLine" in error


def _one_failed_delivery(tmp_path: Path, workload: Workload, url: str) -> str:
    """One firing sent to the receiver at ``url``: it must be one counted failure, recorded
    as not ok. Its recorded error."""
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, url))
    workload.run(NOW.replace(hour=8), ["0.60"])
    notifier = Notifier(str(workload.path))
    try:
        check(workload, rules, NOW, notifier)
        assert (notifier.stats()["delivered"], notifier.stats()["failed"]) == (0, 1)
    finally:
        notifier.stop()
    with connect(workload.path, read_only=True) as con:
        ((ok, error),) = con.execute("SELECT ok, error FROM alert_deliveries WHERE attempts > 0").fetchall()
    assert not ok
    return error


def test_a_day_crossed_after_its_last_evaluation_fires_early_the_next_day(tmp_path, workload, receiver):
    # The check before midnight saw $0.60; spans of 23:59:30 took the day to $1.20. The checks
    # after midnight measured only the new day: the crossing was never told.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    workload.run(midnight - dt.timedelta(hours=2), ["0.30", "0.30"])
    check(workload, rules, midnight - dt.timedelta(seconds=50))  # 50%: told
    workload.run(midnight - dt.timedelta(seconds=30), ["0.30", "0.30"])  # $1.20 after it
    check(workload, rules, midnight + dt.timedelta(seconds=10))
    check(workload, rules, midnight + dt.timedelta(minutes=1))  # once
    told = [(b["window"]["key"], b["thresholds_crossed"], b["value_exact"]) for b in receiver.bodies]
    day = (midnight - dt.timedelta(days=1)).date().isoformat()
    assert told == [(day, [0.5], "0.6"), (day, [0.8, 1.0], "1.2")]
    assert receiver.bodies[1]["projection"] is None  # this month's would not be that day's
    # Past the grace, a day is left as it ended.
    workload.run(midnight - dt.timedelta(seconds=20), ["5"], feature="research")
    check(workload, rules, midnight + dt.timedelta(hours=7))
    assert len(receiver.bodies) == 2


def test_a_receiver_that_drips_holds_up_only_its_own_channel(tmp_path, workload, receiver):
    # One worker posted to every channel in turn, and urllib's timeout bounds each socket
    # read: a receiver sending a byte every 0.2 s held every channel for good (the healthy
    # one got nothing), counted nothing, and /healthz said ok.
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    closing = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            while not closing.wait(0.2):
                try:
                    conn.sendall(b"H")
                except OSError:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    path = tmp_path / "alerts.toml"
    path.write_text(
        f'[channels.slow]\ntype = "webhook"\nurl = "http://127.0.0.1:{server.getsockname()[1]}/hook"\n'
        'timeout = "1s"\nretries = 0\n\n'
        f'[channels.team]\ntype = "webhook"\nurl = "{receiver.url}"\ntimeout = "5s"\n\n'
        + DAY_BUDGET.replace('match = { feature = "research" }\n', "").replace('["ops"]', '["slow", "team"]'),
        encoding="utf-8",
    )
    rules = load_rules(path)
    for feature in ("a", "b", "c"):
        workload.run(NOW.replace(hour=8), ["1.50"], feature=feature)
    notifier = Notifier(str(workload.path))
    try:
        check(workload, rules, NOW, notifier)  # flushes: False (an assertion) if anything hangs
        assert len(receiver.bodies) == 3
        stats = notifier.stats()
        assert (stats["delivered"], stats["failed"], stats["queued"]) == (3, 3, 0)
    finally:
        notifier.stop()
        closing.set()
        server.close()
    with connect(workload.path, read_only=True) as con:
        outcomes = "SELECT channel, error FROM alert_deliveries WHERE NOT ok AND attempts > 0"
        failed = con.execute(outcomes).fetchall()
    assert [c for c, _ in failed] == ["slow"] * 3 and all("TimeoutError" in e for _, e in failed), failed


def test_too_little_data_keeps_a_firing_key_firing_until_the_data_decides(tmp_path, workload, receiver):
    # FIRING -> NO_DATA was silent: no resolve, and when errors came back, a second "firing"
    # with no "resolved" between.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", ROLLING.replace('"0s"', '"1h"'), receiver.url))
    workload.run(NOW, ["0.001"] * 10, errors=5)
    check(workload, rules, NOW + dt.timedelta(hours=1))  # 50%: fires
    workload.run(NOW + dt.timedelta(hours=20), ["0.001"] * 3)
    quiet = check(workload, rules, NOW + dt.timedelta(hours=25))  # 3 calls: too few to say
    assert [(r.state, r.changed) for r in quiet.evaluation.rows] == [("FIRING", False)]
    workload.run(NOW + dt.timedelta(hours=31), ["0.001"] * 10, errors=5)
    check(workload, rules, NOW + dt.timedelta(hours=32))  # bad again: still the same alert
    workload.run(NOW + dt.timedelta(hours=57), ["0.001"] * 10)
    check(workload, rules, NOW + dt.timedelta(hours=58))  # enough calls, no errors: resolved
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]


SPIKE = """
[[rules]]
name = "cost spike"
scope = "feature"
metric = "cost"
window = "day"
baseline = 7
thresholds = [3.0]
channels = ["ops"]
"""


def test_a_cost_spike_on_a_feature_used_some_days_fires(tmp_path, workload, receiver):
    # The median of 7 days of which 3 had calls was 0, and a limit of 0 is refused: a job
    # spending 100x its usual never fired. The days it ran are the baseline; a value with no
    # calls at all before still has none.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", SPIKE, receiver.url))
    for back in (2, 4, 6):
        workload.run(NOW - dt.timedelta(days=back), ["0.14"], feature="weekly")
    workload.run(NOW - dt.timedelta(hours=1), ["10"], feature="weekly")
    workload.run(NOW - dt.timedelta(hours=1), ["10"], feature="brand-new")
    rows = {r.scope_value: (r.state, r.limit) for r in check(workload, rules, NOW).evaluation.rows}
    assert rows == {"weekly": ("FIRING", Decimal("0.42")), "brand-new": ("NO_DATA", None)}  # 0.14 x 3
    assert [b["scope"]["value"] for b in receiver.bodies] == ["weekly"]


ZERO_BASELINE = """
[[rules]]
name = "unpriced spike"
scope = "feature"
metric = "unpriced_calls"
window = "day"
baseline = 7
channels = ["ops"]

[[rules]]
name = "error anomaly"
scope = "feature"
metric = "error_rate"
window = "day"
baseline = 7
channels = ["ops"]
"""


def test_a_spike_over_a_baseline_of_zero_fires(tmp_path, workload, receiver):
    # A week without one unpriced call or error is a baseline of 0, and 0 x 2 a limit of 0,
    # which was NO_DATA ("the limit is 0"): 50 calls of an unknown model, all failing, after
    # such a week never fired (a review). Any value above a baseline of 0 reaches it; a day
    # at 0 again stays OK.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", ZERO_BASELINE, receiver.url))
    for back in range(1, 8):
        workload.run(NOW - dt.timedelta(days=back), ["0.01"] * 3)
        workload.run(NOW - dt.timedelta(days=back), ["0.01"] * 3, feature="quiet")
    workload.run(NOW - dt.timedelta(hours=2), ["?"] * 50, errors=50)
    workload.run(NOW - dt.timedelta(hours=2), ["0.01"] * 3, feature="quiet")
    result = check(workload, rules, NOW)
    rows = {(r.rule, r.scope_value): (r.state, r.value, r.limit) for r in result.evaluation.rows}
    assert rows == {
        ("unpriced spike", "research"): ("FIRING", Decimal(50), Decimal(0)),
        ("unpriced spike", "quiet"): ("OK", Decimal(0), Decimal(0)),
        ("error anomaly", "research"): ("FIRING", Decimal(1), Decimal(0)),
        ("error anomaly", "quiet"): ("OK", Decimal(0), Decimal(0)),
    }
    assert sorted((b["rule"], b["scope"]["value"]) for b in receiver.bodies) == [
        ("error anomaly", "research"), ("unpriced spike", "research"),
    ]  # fmt: skip
    assert all(b["percent_used"] is None and b["limit_exact"] == "0" for b in receiver.bodies)


def test_days_without_calls_are_no_baseline_of_zero(tmp_path, workload, receiver):
    # A window without calls counted as $0: a weekly job's usual $2 fired every week (the
    # mean of 0, 0, 0, 0, 0, 0 and 2, times 3: $0.86), and a feature new yesterday fired on
    # its second day at its first day's cost. Too few days with calls: NO_DATA, saying so.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", SPIKE, receiver.url))
    workload.run(NOW - dt.timedelta(days=7), ["2"], feature="weekly")
    workload.run(NOW - dt.timedelta(hours=1), ["2"], feature="weekly")
    workload.run(NOW - dt.timedelta(days=1), ["1"], feature="new")
    workload.run(NOW - dt.timedelta(hours=1), ["1"], feature="new")
    rows = {r.scope_value: (r.state, r.reason) for r in check(workload, rules, NOW).evaluation.rows}
    assert rows == {
        "new": ("NO_DATA", "no baseline: 1 of the 7 windows before had calls, all priced, 3 needed"),
        "weekly": ("NO_DATA", "no baseline: 1 of the 7 windows before had calls, all priced, 3 needed"),
    }
    assert receiver.bodies == []


def test_a_baseline_window_with_fewer_than_min_calls_is_left_out(tmp_path, workload, receiver):
    # One 90 ms warm-up call (under min_calls) was a day of the p95 baseline: a normal day
    # at 220 ms fired against it.
    latency = LATENCY.replace("baseline = 7", "baseline = 3\nmin_calls = 5")
    rules = load_rules(rules_file(tmp_path / "alerts.toml", latency, receiver.url))
    workload.run(NOW - dt.timedelta(days=3, hours=1), ["0.001"], latency_ms=90)
    for day in (1, 2):
        workload.run(NOW - dt.timedelta(days=day, hours=1), ["0.001"] * 5, latency_ms=220)
    workload.run(NOW - dt.timedelta(hours=1), ["0.001"] * 5, latency_ms=220)
    (row,) = check(workload, rules, NOW).evaluation.rows
    assert (row.state, row.reason) == (
        "NO_DATA",
        "no baseline: 2 of the 3 windows before had 5 calls or more, 3 needed",
    )
    workload.run(NOW - dt.timedelta(days=3, hours=2), ["0.001"] * 4, latency_ms=220)
    (row,) = check(workload, rules, NOW).evaluation.rows
    assert (row.state, row.limit) == ("OK", Decimal(440))


def test_unpriced_calls_never_make_a_budget_ok(tmp_path, workload, receiver):
    # Calls of a model the prices do not know counted $0: 20 of them against a $1 budget read
    # "value 0, OK". Unknown is said; a known part over the limit still fires.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, receiver.url))
    workload.run(NOW.replace(hour=5), ["?"] * 20)
    workload.run(NOW.replace(hour=6), ["0.30"])
    rows = [(r.threshold, r.state, r.reason) for r in check(workload, rules, NOW).evaluation.rows]
    reason = "20 unpriced calls: the cost is at least 0.3"
    assert rows == [(Decimal("0.5"), "NO_DATA", reason), (Decimal("0.8"), "NO_DATA", reason),
                    (Decimal("1.0"), "NO_DATA", reason)]  # fmt: skip
    workload.run(NOW.replace(hour=7), ["0.30"])
    rows = [(r.threshold, r.state) for r in check(workload, rules, NOW).evaluation.rows]
    assert rows == [(Decimal("0.5"), "FIRING"), (Decimal("0.8"), "NO_DATA"), (Decimal("1.0"), "NO_DATA")]
    assert [b["value_exact"] for b in receiver.bodies] == ["0.6"]


def test_a_firing_its_cooldown_kept_quiet_is_told_once_the_cooldown_is_over(tmp_path, workload, receiver):
    # Fired, resolved (told), fired again within the cooldown (quiet): it kept firing for
    # hours and the last word anyone had was "resolved".
    rules = load_rules(rules_file(tmp_path / "alerts.toml", FLAPPING, receiver.url))
    workload.run(NOW - dt.timedelta(hours=23), ["0.30", "0.30"])
    check(workload, rules, NOW)  # fires
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=1))  # resolved: told
    workload.run(NOW + dt.timedelta(hours=1, minutes=10), ["0.40", "0.40"])
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=15))  # fires within 2h: quiet
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=59))  # still cooling
    assert len(receiver.bodies) == 2
    told = check(workload, rules, NOW + dt.timedelta(hours=2, minutes=1))
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies[2:]] == [("firing", "0.8")]
    assert [(e.state, e.notified) for e in told.evaluation.events] == [("FIRING", True)]
    for hours in (3, 6):  # told once
        check(workload, rules, NOW + dt.timedelta(hours=hours))
    assert len(receiver.bodies) == 3
    check(workload, rules, NOW + dt.timedelta(hours=26))  # its calls left the window
    assert [b["event"] for b in receiver.bodies[3:]] == ["resolved"]


def _fired_and_resolved_at_half(tmp_path, workload, receiver):
    """Thresholds 0.5 and 1.0 of $1, cooldown 2h: 0.5 fired at NOW and resolved (both told)."""
    two = FLAPPING.replace("budget = 0.50", "budget = 1.00\nthresholds = [0.5, 1.0]")
    rules = load_rules(rules_file(tmp_path / "alerts.toml", two, receiver.url))
    workload.run(NOW - dt.timedelta(hours=23), ["0.30", "0.30"])
    check(workload, rules, NOW)
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=1))
    return rules


def _higher_told_lower_quiet(tmp_path, workload, receiver, back: dt.timedelta):
    """`_fired_and_resolved_at_half`, then 1.2 at +1h15 (1.0 told, 0.5 quiet in its
    cooldown), 0.4 of it from a run at NOW - ``back`` that leaves the window 24 h after."""
    rules = _fired_and_resolved_at_half(tmp_path, workload, receiver)
    workload.run(NOW + dt.timedelta(hours=1, minutes=10), ["0.40", "0.40"])
    workload.run(NOW - back, ["0.40"])
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=15))
    return rules


def _higher_told_then_resolved(tmp_path, workload, receiver):
    """`_higher_told_lower_quiet`, then at +1h25 0.8: 1.0 resolved (told), 0.5 still quiet."""
    rules = _higher_told_lower_quiet(tmp_path, workload, receiver, dt.timedelta(hours=22, minutes=40))
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=25))
    return rules


def test_a_quiet_firing_is_not_told_after_a_higher_threshold_was(tmp_path, workload, receiver):
    # 0.5 fired and resolved; within its cooldown the cost passed 1.0 (told, 0.5 quiet);
    # when 0.5's cooldown ended, "firing 0.5" followed the more severe message (a review).
    rules = _fired_and_resolved_at_half(tmp_path, workload, receiver)
    workload.run(NOW + dt.timedelta(hours=1, minutes=10), ["0.40", "0.40", "0.40"])
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=15))
    check(workload, rules, NOW + dt.timedelta(hours=2, minutes=1))
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies] == [
        ("firing", "0.6"),
        ("resolved", "0"),
        ("firing", "1.2"),
    ]


def test_a_quiet_firing_is_told_once_the_higher_threshold_that_spoke_resolved(tmp_path, workload, receiver):
    # 1.0 was told, then resolved while 0.5 (kept quiet by its cooldown) still fired: 0.5
    # was never told, nor its resolve, and the last word anyone had was "resolved" (a review).
    rules = _higher_told_then_resolved(tmp_path, workload, receiver)
    check(workload, rules, NOW + dt.timedelta(hours=2, minutes=1))  # 0.5's cooldown over
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies] == [
        ("firing", "0.6"),
        ("resolved", "0"),
        ("firing", "1.2"),
        ("resolved", "0.8"),
        ("firing", "0.8"),
    ]


def test_a_higher_threshold_resolving_as_the_lower_cooldown_ends_lets_it_speak(tmp_path, workload, receiver):
    # Decided in the same evaluation: 0.5 was still silenced by 1.0's state before it, and
    # the last message heard was "resolved 0.8" while 0.5 fired (a review). Now the resolve,
    # then the firing still true.
    rules = _higher_told_lower_quiet(tmp_path, workload, receiver, dt.timedelta(hours=22))  # out at +2h
    check(workload, rules, NOW + dt.timedelta(hours=2, minutes=1))  # 0.8: 1.0 resolves, 0.5 cooled
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies][2:] == [
        ("firing", "1.2"),
        ("resolved", "0.8"),
        ("firing", "0.8"),
    ]


def test_a_higher_threshold_firing_again_quietly_does_not_speak_for_the_lower(tmp_path, workload, receiver):
    # 1.0 told, resolved (told), then fired again within its own cooldown (quiet): its state
    # was FIRING and its last told firing recent, so it silenced 0.5, and "resolved 0.8"
    # stood while both fired (a review).
    rules = _higher_told_then_resolved(tmp_path, workload, receiver)
    workload.run(NOW + dt.timedelta(hours=1, minutes=30), ["0.40"])
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=35))  # 1.2: 1.0 again, quiet
    check(workload, rules, NOW + dt.timedelta(hours=2, minutes=1))  # 0.5's cooldown over: told
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies][2:] == [
        ("firing", "1.2"),
        ("resolved", "0.8"),
        ("firing", "1.2"),
    ]


def _late_crossing(tmp_path, workload, receiver, cooldown: str):
    """A day's mean run cost fired at 21:05 (told) and resolved at 22:05 (told); a run at
    23:55 crosses again, found after midnight by the late pass (2.15 a run; the test prices
    double after 18:00, so each run costs twice what it is given). Returns the rules and
    the day's midnight."""
    per_run = FLAPPING.replace('metric = "cost"', 'metric = "cost_per_run"').replace('"24h"', '"day"')
    per_run = per_run.replace("budget = 0.50", "budget = 1.00").replace('"2h"', f'"{cooldown}"')
    rules = load_rules(rules_file(tmp_path / "alerts.toml", per_run, receiver.url))
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    workload.run(day + dt.timedelta(hours=21), ["1.20"])
    check(workload, rules, day + dt.timedelta(hours=21, minutes=5))  # 2.4 a run: fires
    workload.run(day + dt.timedelta(hours=22), ["0.10"])
    workload.run(day + dt.timedelta(hours=22), ["0.10"])
    check(workload, rules, day + dt.timedelta(hours=22, minutes=5))  # 0.8667: resolved
    workload.run(day + dt.timedelta(hours=23, minutes=55), ["3.00"])
    return rules, day


def test_a_late_crossing_kept_quiet_is_told_once_the_cooldown_is_over(tmp_path, workload, receiver):
    # Found inside the 4h cooldown: quiet. The late pass then skipped a firing key for good,
    # and "resolved" stood as the last word.
    rules, day = _late_crossing(tmp_path, workload, receiver, "4h")
    check(workload, rules, day + dt.timedelta(hours=24, minutes=10))  # late, cooling: quiet
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]
    check(workload, rules, day + dt.timedelta(hours=25))  # cooling until 01:05
    assert len(receiver.bodies) == 2
    for minutes in (90, 120):  # told once
        check(workload, rules, day + dt.timedelta(hours=24, minutes=minutes))
    assert [(b["event"], b["value_exact"], b["window"]["key"]) for b in receiver.bodies[2:]] == [
        ("firing", "2.15", day.date().isoformat())
    ]


def test_a_late_crossing_whose_cooldown_ends_after_the_late_hours_is_told_then(tmp_path, workload, receiver):
    # With a 10h cooldown it ends at 07:05, past the 6 hours the period just ended is
    # measured again, and the quiet firing was never told (a review of the fix above).
    rules, day = _late_crossing(tmp_path, workload, receiver, "10h")
    for hours in (24.2, 29, 31):  # quiet at 00:10, cooling until 07:05
        check(workload, rules, day + dt.timedelta(hours=hours))
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]
    for hours in (31.5, 33, 40):  # told once
        check(workload, rules, day + dt.timedelta(hours=hours))
    assert [(b["event"], b["value_exact"]) for b in receiver.bodies[2:]] == [("firing", "2.15")]


def test_a_rule_without_channels_records_a_firing_once(tmp_path, workload):
    # No channel, so no firing is ever told: the re-tell after a cooldown appended a row at
    # every evaluation, for ever (serve's watcher: one a minute per firing key).
    quiet = DAY_BUDGET.replace('channels = ["ops"]\n', "")
    rules = load_rules(rules_file(tmp_path / "alerts.toml", quiet, "http://127.0.0.1:9/unused"))
    workload.run(NOW.replace(hour=5), ["0.30", "0.30"])
    changes = [len(check(workload, rules, NOW + dt.timedelta(hours=h)).evaluation.events) for h in range(4)]
    assert changes == [1, 0, 0, 0]


def test_a_firing_no_one_was_sent_is_never_resolved_aloud(tmp_path, workload, receiver):
    # Found with --no-notify, then gone before an evaluation sent it: a "resolved" alone
    # told of a firing no one had heard of.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", FLAPPING, receiver.url))
    workload.run(NOW - dt.timedelta(hours=23), ["0.30", "0.30"])
    workload.flush()
    quiet = check_once(workload.path, rules, notifier=None, now=NOW)
    assert [r.state for r in quiet.evaluation.firing] == ["FIRING"]
    resolved = check(workload, rules, NOW + dt.timedelta(hours=1, minutes=1))
    assert [r.state for r in resolved.evaluation.rows if r.scope_value == "research"] == ["RESOLVED"]
    assert receiver.bodies == []


def test_a_late_crossing_whose_channel_was_down_is_sent_again(tmp_path, workload):
    # The redelivery took any day but the current one for old news: a crossing fired early
    # in the next day (the late path) was never sent again when its channel was down then.
    rx = Receiver(fail_first=3)  # the first round (1 + 2 retries) fails
    try:
        rules = load_rules(rules_file(tmp_path / "alerts.toml", DAY_BUDGET, rx.url))
        midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
        workload.run(midnight - dt.timedelta(seconds=30), ["1.20"])
        check(workload, rules, midnight + dt.timedelta(seconds=10))
        for minutes in (5, 30, 120):  # the channel is back
            check(workload, rules, midnight + dt.timedelta(minutes=minutes))
        assert [(b["window"]["key"], b.get("redelivered")) for b in rx.bodies] == [
            ((midnight - dt.timedelta(days=1)).date().isoformat(), True)
        ]
        # two days on, that day's news is old: nothing more
        check(workload, rules, midnight + dt.timedelta(days=1, hours=1))
        assert len(rx.bodies) == 1
    finally:
        rx.close()


def test_a_channel_that_hangs_does_not_use_up_the_others_room(receiver):
    # The bound counted a notification until its slowest channel was done: with one channel
    # that never answers, the healthy one got 11 of 30 and the rest were dropped for both.
    import socket
    import time

    from otel_costattr.alerts.rules import Channel

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts, never answers
    slow = Channel("slow", "webhook", f"http://127.0.0.1:{silent.getsockname()[1]}/", 0.2, 0, 0.05)
    team = Channel("team", "webhook", receiver.url, 5.0, 0, 0.05)
    notifier = Notifier(None, queue_size=10)
    try:
        for i in range(30):
            payload = {"event": "firing", "rule": "r", "scope": {"value": f"v{i}"}, "window": {"key": "k"}}
            assert notifier.submit(Notification(payload, [slow, team]))
            # As an evaluator hands them over: the dispatcher and the healthy channel keep up
            # (on a loaded machine, waiting on the dispatcher alone let team's own queue fill).
            deadline = time.monotonic() + 30
            while (notifier._queue.qsize() or len(receiver.bodies) <= i) and time.monotonic() < deadline:
                time.sleep(0.005)
        assert notifier.flush(60)
        assert len(receiver.bodies) == 30
        stats = notifier.stats()
        assert stats["delivered"] == 30 and stats["failed"] + stats["dropped"] == 30
    finally:
        notifier.stop()
        silent.close()


def test_a_notifier_started_again_after_a_stop_that_timed_out_delivers_everything():
    # stop() that timed out left the old threads alive and their queues holding the stop
    # marker: start() then refused every submit (the dispatcher still alive), or a
    # notification landed behind the marker and was never sent (flush never returned).
    import http.server
    import json
    import threading
    import time

    from otel_costattr.alerts.rules import Channel

    got = []

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.3)
            got.append(json.loads(body)["n"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    channel = Channel("ops", "webhook", f"http://127.0.0.1:{server.server_port}/", 3.0, 0, 0.05)

    def note(n: int) -> Notification:
        payload = {"n": n, "event": "resolved", "rule": "r", "scope": {"value": "v"}, "window": {"key": "k"}}
        return Notification(payload, [channel])

    try:
        for pause in (0.0, 0.4):  # the dispatcher still alive; only the channel's worker
            notifier = Notifier()
            got.clear()
            for i in range(3):
                assert notifier.submit(note(i))
            notifier.stop(0.1)
            time.sleep(pause)
            notifier.start()
            assert notifier.submit(note(99))
            assert notifier.flush(10), notifier.stats()
            assert sorted(got) == [0, 1, 2, 99]
            notifier.stop()
    finally:
        server.shutdown()
        server.server_close()


_EXIT_AFTER_STOP = """
import datetime as dt, sys
from otel_costattr.alerts.deliver import Notification, Notifier
from otel_costattr.alerts.rules import Channel
notifier = Notifier(sys.argv[1])
payload = {"event": "firing", "rule": "r", "scope": {"value": "v"}, "window": {"key": "2026-12-02"}}
channels = [Channel(f"c{i}", "webhook", sys.argv[2], 1.0, 0, 0.1) for i in range(4)]
notifier.submit(Notification(payload, channels, at=dt.datetime(2026, 12, 2, 12)))
notifier.stop(1.1)  # over as the attempts time out: the workers record their failures now
"""


def test_a_process_exiting_as_its_notifier_records_a_failure_does_not_abort(tmp_path):
    # Ctrl-C on `alerts watch` (or a host application's exit, past RunBudgetProcessor's
    # shutdown) while a receiver hung: stop() timed out as the channel workers recorded their
    # failures, and a worker's DuckDB connection, let go on a daemon thread as the interpreter
    # finalized, aborted the process ("FATAL: exception not rethrown", SIGABRT), nearly
    # every time in this set-up (a review). A write under way ends before stop() returns.
    import os
    import subprocess
    import sys

    db = tmp_path / "spans.duckdb"
    connect(db).close()
    receiver = Receiver()
    receiver.hold.clear()  # every post hangs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        for _ in range(3):
            proc = subprocess.run(
                [sys.executable, "-c", _EXIT_AFTER_STOP, str(db), receiver.url],
                capture_output=True, text=True, timeout=60, env=env,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr[-500:]
    finally:
        receiver.close()


def test_a_submit_while_the_notifier_starts_again_is_never_stranded(monkeypatch):
    # start() after stop() cleared the stop flag before swapping the queues: a submit in
    # between put its notification in the old queue, behind the stop marker, never sent
    # (flush never True). The window is widened here by a pause inside the swap.
    import threading
    import time

    from otel_costattr.alerts import deliver

    moved = deliver._moved

    def slow(old):
        new = moved(old)
        time.sleep(0.05)
        return new

    monkeypatch.setattr(deliver, "_moved", slow)
    payload = {"event": "resolved", "rule": "r", "scope": {"value": "v"}, "window": {"key": "k"}}
    notifier = Notifier()
    notifier.start()
    notifier.stop(1.0)
    starting = threading.Thread(target=notifier.start)
    starting.start()
    time.sleep(0.02)
    accepted = notifier.submit(Notification(payload, []))
    starting.join()
    assert notifier.flush(5) and notifier.stats()["queued"] == 0, (accepted, notifier.stats())
    notifier.stop()


def test_a_notification_accepted_as_the_notifier_stops_is_sent(monkeypatch):
    # stop() put its marker in the channels' queues as in the dispatcher's: a notification
    # the dispatcher handed over afterwards sat behind a channel's marker, never sent nor
    # counted (flush never True). The windows are widened here by pauses.
    import time

    from otel_costattr.alerts import deliver
    from otel_costattr.alerts.rules import Channel

    posted = []
    monkeypatch.setattr(deliver, "post", lambda channel, payload: posted.append(payload["rule"]))
    dispatch, serve = Notifier._dispatch, Notifier._serve_channel

    def slow_dispatch(self, note):
        time.sleep(0.1)
        return dispatch(self, note)

    def slow_end(self, q):
        serve(self, q)
        time.sleep(0.3)  # the worker took its marker; its thread has not ended yet

    monkeypatch.setattr(Notifier, "_dispatch", slow_dispatch)
    monkeypatch.setattr(Notifier, "_serve_channel", slow_end)
    channel = Channel("c", "webhook", "http://127.0.0.1:9/", 1.0, 0, 0.05)

    def note(rule: str) -> Notification:
        return Notification(
            {"event": "resolved", "rule": rule, "scope": {"value": "v"}, "window": {"key": "k"}}, [channel]
        )

    notifier = Notifier()
    assert notifier.submit(note("first")) and notifier.flush(5)
    flush = notifier.flush
    accepted = []

    def flush_then_a_submit(timeout=60.0):
        ok = flush(timeout)
        accepted.append(notifier.submit(note("second")))  # another thread's, in the window
        return ok

    notifier.flush = flush_then_a_submit
    notifier.stop(2.0)
    notifier.flush = flush
    assert accepted == [True] and posted == ["first", "second"], (posted, notifier.stats())


def test_a_receiver_that_redirects_is_a_failure_not_a_delivery(tmp_path, workload, caplog):
    """urllib followed a 302 as a GET without the alert, and the GET's 200 counted as
    delivered: recorded ok, never sent again, the alert lost (a review). A redirect is a
    failed attempt, named with where it points; the receiver's reason phrase, escapes
    included, reaches the log shown, never as escapes."""
    import http.server
    import threading

    seen: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(f"POST {self.path}")
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302, "Found \x1b[2J")
            self.send_header("Location", "/landing")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            seen.append(f"GET {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        error = _one_failed_delivery(tmp_path, workload, f"http://127.0.0.1:{server.server_address[1]}/hook")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["POST /hook"] * 3  # each attempt posted, none followed
    assert "HTTP Error 302" in error and "to a path on the same host (not shown)" in error
    assert "\x1b" not in error and "[U+001B]" in error
    assert "\x1b" not in caplog.text


def test_a_redirect_names_its_host_never_the_secret_in_its_url(tmp_path, workload, caplog):
    """A channel's http:// URL answered with a 301 to its https:// twin: the Location, the
    webhook's secret key in its path, was written whole in the log, in `alerts check`'s
    last error, in alert_deliveries and on /healthz (a review). Its scheme and host say
    where it points; its path and query are the secret's."""
    import http.server
    import threading

    secret = "T000/B000/XXXXSECRETKEYXXXX"

    class Moved(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(301)
            self.send_header("Location", f"https://hooks.example.com/services/{secret}?token={secret}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/services/{secret}"
        error = _one_failed_delivery(tmp_path, workload, url)
    finally:
        server.shutdown()
        server.server_close()
    assert "HTTP Error 301" in error and "'https://hooks.example.com/...'" in error
    assert "SECRETKEY" not in error and "SECRETKEY" not in caplog.text


def test_a_clock_stepped_back_changes_a_key_once_not_at_every_evaluation(tmp_path, workload, receiver):
    # A review: after a resolve, the evaluator's clock stepped back 50 minutes; each
    # evaluation then found the key's row from the "future" (the resolve) newest, changed it
    # to FIRING again and, with no cooldown, sent a firing every time; the resolve that
    # followed was never sent (the channel's last word stayed "firing"). Rows now never go
    # before the newest stored, so the key changes once and its resolve is told.
    rules = load_rules(rules_file(tmp_path / "alerts.toml", FLAPPING.replace('"2h"', '"0s"'), receiver.url))
    workload.run(NOW - dt.timedelta(hours=23, minutes=30), ["0.30", "0.30"])
    check(workload, rules, NOW)  # fires
    check(workload, rules, NOW + dt.timedelta(hours=1))  # the calls left the window: resolved
    stepped = [check(workload, rules, NOW + dt.timedelta(minutes=10 + m)) for m in range(4)]  # 50 min back
    assert [[e.state for e in r.evaluation.events] for r in stepped] == [["FIRING"], [], [], []]
    check(workload, rules, NOW + dt.timedelta(hours=1, minutes=5))
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved", "firing", "resolved"]


def test_the_last_delivery_failure_is_the_one_recorded_last(tmp_path):
    """The outcomes of one evaluation's notifications carry its time; the newest failure was
    any of them (a review: "last: drip" from the notifier, "last ... down" from the store)."""
    con = connect(tmp_path / "s.duckdb")
    at = dt.datetime(2026, 12, 1, 12, 0)
    for name in ("first", "second", "third"):
        record_deliveries(con, [Delivery(at, "r", "v", "w", "firing", name, False, 3, f"{name}: refused")])
    record_deliveries(con, [Delivery(at, "r", "v", "w", "firing", "up", True, 1, None)])
    failures = delivery_failures(con)
    assert (failures["failed"], failures["last_channel"], failures["last_error"]) == (
        3,
        "third",
        "third: refused",
    )
    assert delivery_failures(con, at + dt.timedelta(seconds=1))["last_channel"] is None


@pytest.mark.parametrize("header", ["2", "date", "asctime", "60"])
def test_a_429_is_retried_after_the_wait_it_asks_for(header):
    """A rate-limited receiver (Slack's 429) says how long to wait in Retry-After, seconds
    or an HTTP date: the backoff's 1, 2, 4 s spent every retry inside the limit (a review).
    With a 0.5 s backoff, the second attempt comes after the 2 s asked for, not before; an
    ask longer than the round's waits (0.5 + 1 + 2 s) ends the round, left to a later one
    (redelivery counts on no round outlasting its patience)."""
    import email.utils
    import http.server
    import threading
    import time

    from otel_costattr.alerts.rules import Channel

    seen: list[float] = []

    class Limited(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(time.monotonic())
            if len(seen) == 1:
                self.send_response(429)
                wait = "2" if header == "2" else email.utils.formatdate(time.time() + 3, usegmt=True)
                if header == "asctime":  # HTTP's third date format, GMT without saying so
                    wait = time.asctime(time.gmtime(time.time() + 3))
                if header == "60":
                    wait = "60"
                self.send_header("Retry-After", wait)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Limited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    channel = Channel("ops", "webhook", url, timeout=5.0, retries=3, backoff=0.5)
    notifier = Notifier()
    try:
        outcome = notifier._post_with_retries(channel, {"text": "over budget"})
    finally:
        notifier.stop()
        server.shutdown()
        server.server_close()
    if header == "60":
        assert outcome[:2] == (False, 1) and "Retry-After 60 s: left to a later round" in outcome[2]
        assert len(seen) == 1
        return
    assert outcome == (True, 2, None)
    assert len(seen) == 2 and seen[1] - seen[0] >= 1.5  # a lower bound: never fails for a slow machine
