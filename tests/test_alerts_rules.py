"""The rule file: the issue's minimal file as written, and exact one-line errors naming the
file, the rule and the field. The Slack message made from a payload."""

# ruff: noqa: E501 (the expected messages are exact one-line strings, kept whole to be read)
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from otel_costattr.alerts import AlertRulesError, build_payload, load_rules, slack_message
from otel_costattr.alerts.windows import window_bounds

MINIMAL = """
[channels.ops]
type = "webhook"                 # or "slack"
url = "http://127.0.0.1:8080/hook"

[[rules]]
name = "research daily budget"
scope = "feature"                # run | feature | agent | model | service | any identity key
match = { feature = "research" } # optional filters
metric = "cost"
window = "day"                   # run | 24h | 7d | day | month
timezone = "UTC"
budget = 1.00                    # USD
thresholds = [0.5, 0.8, 1.0]     # fractions of the budget; each fires once per window
channels = ["ops"]

[[rules]]
name = "run budget"
scope = "run"
metric = "cost"
window = "run"
budget = 0.25                    # thresholds default to [1.0]
channels = ["ops"]
"""


def test_the_issue_file_is_accepted_as_written(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    rules = load_rules(path)
    daily, run = rules.rules
    assert daily.thresholds == (Decimal("0.5"), Decimal("0.8"), Decimal("1.0"))
    assert daily.budget == Decimal("1.00") and daily.match == (("feature", "research"),)
    assert [daily.limit(t) for t in daily.thresholds] == [Decimal("0.5"), Decimal("0.8"), Decimal("1")]
    assert run.thresholds == (Decimal(1),) and run.limit(Decimal(1)) == Decimal("0.25")
    assert rules.channels["ops"].url == "http://127.0.0.1:8080/hook"


RULE = """
[channels.ops]
type = "webhook"
url = "http://127.0.0.1:8080/hook"

[[rules]]
name = "r"
scope = "feature"
metric = "cost"
window = "day"
budget = 1.0
channels = ["ops"]
"""

BAD = [
    ('scope = "feature"', 'scope = "team name"',
     "rule 'r': field 'scope': expected run, feature, agent, model, service or an attribute key such as "
     "'user.id', got 'team name'"),
    ('metric = "cost"', 'metric = "dollars"',
     "rule 'r': field 'metric': expected one of cost, cost_per_run, calls, error_rate, p95_latency, "
     "unpriced_calls, got 'dollars'"),
    ('window = "day"', 'window = "week"',
     "rule 'r': field 'window': expected one of run, 24h, 7d, day, month, got 'week'"),
    ('budget = 1.0', 'budget = -1.0', "rule 'r': field 'budget': expected USD from 10^-12 to 10^12, got -1.0"),
    ('budget = 1.0', 'budget = "1.0"', "rule 'r': field 'budget': expected USD from 10^-12 to 10^12, got '1.0'"),
    ('budget = 1.0', 'budget = 1e-30', "rule 'r': field 'budget': expected USD from 10^-12 to 10^12, got 1e-30"),
    ('channels = ["ops"]', 'channels = ["pager"]', "rule 'r': field 'channels': no channel named 'pager' (defined: ops)"),
    ('[channels.ops]\ntype = "webhook"\nurl = "http://127.0.0.1:8080/hook"\n', '',
     "rule 'r': field 'channels': no channel named 'ops' (none is defined)"),  # was "(defined: none defined)"
    ('channels = ["ops"]', 'channels = ["ops", "ops"]',
     "rule 'r': field 'channels': a channel is listed twice: ['ops', 'ops']"),
    ('window = "day"', 'window = "day"\ntimezone = "Mars/Olympus"',
     "rule 'r': field 'timezone': unknown time zone 'Mars/Olympus' (an IANA name such as 'UTC' or 'Europe/Paris')"),
    ('window = "day"', 'window = "day"\ntimezone = "America"',  # an area: a folder of the tz database
     "rule 'r': field 'timezone': unknown time zone 'America' (an IANA name such as 'UTC' or 'Europe/Paris')"),
    ('budget = 1.0', 'budget = 1.0\nthresholds = [0.5, 0.5]',
     "rule 'r': field 'thresholds': a threshold is listed twice: [0.5, 0.5]"),
    ('budget = 1.0', 'budget = 1.0\nthreshold = [0.5]',
     "rule 'r': field 'threshold': unknown (expected one of baseline, budget, channels, cooldown, lookback, "
     "match, metric, min_calls, name, notify_resolved, scope, thresholds, timezone, window)"),
    ('budget = 1.0', 'budget = 1.0\nbaseline = 7', "rule 'r': field 'baseline': give a budget or a baseline, not both"),
    ('metric = "cost"\nwindow = "day"\nbudget = 1.0', 'metric = "p95_latency"\nwindow = "day"',
     "rule 'r': field 'thresholds': required without a budget or a baseline (absolute values)"),
    ('metric = "cost"', 'metric = "error_rate"',
     "rule 'r': field 'budget': a budget is in USD: only for metric cost or cost_per_run, not 'error_rate'"),
    ('window = "day"', 'window = "run"', "rule 'r': field 'window': 'run' needs scope = 'run', not 'feature'"),
    ('budget = 1.0', 'budget = 1.0\nlookback = "3650d"',
     "rule 'r': field 'lookback': out of range: '3650d' (from above 0s to at most 400d)"),
    ('budget = 1.0', 'budget = 1.0\ncooldown = "3650d"',
     "rule 'r': field 'cooldown': out of range: '3650d' (from 0s to at most 400d)"),
    ('budget = 1.0', 'budget = 1.0\ncooldown = "soon"',
     "rule 'r': field 'cooldown': expected a duration such as '30s', '5m', '24h' or '7d', got 'soon'"),
    ('name = "r"\n', '', "rule #1: field 'name': required: a non-empty text of at most 200 characters"),
    # A share of calls never exceeds 1: an absolute error_rate threshold above it never fires.
    ('metric = "cost"\nwindow = "day"\nbudget = 1.0', 'metric = "error_rate"\nwindow = "24h"\nthresholds = [0.2, 1.5]',
     "rule 'r': field 'thresholds': error_rate is a fraction from 0 to 1: a threshold above 1 never fires, got [0.2, 1.5]"),
    # Only a run rule reads how far back runs are looked for: elsewhere it was silently ignored.
    ('budget = 1.0', 'budget = 1.0\nlookback = "24h"',
     "rule 'r': field 'lookback': only for window 'run' (how far back runs are read), not 'day'"),
    ('type = "webhook"', 'type = "email"', "channel 'ops': field 'type': expected 'webhook' or 'slack', got 'email'"),
    # The URL quoted to its host (a webhook's secret is in its path, query or credentials),
    # with why it is refused.
    ('url = "http://127.0.0.1:8080/hook"', 'url = "file:///etc/passwd"',
     "channel 'ops': field 'url': expected an http:// or https:// URL (another scheme), got 'file:///...'"),
    *[('url = "http://127.0.0.1:8080/hook"', f'url = "{url}"',
       f"channel 'ops': field 'url': expected an http:// or https:// URL ({why}), got '{shown}'")
      for url, why, shown in (
          ("http://exa mple.com/hook", "a space or control character at position 11 of 24", "http://***/..."),
          # what is not plainly a host is not shown: a newline in it, a full-width '@'
          ("https://hooks.example\\nxoxb-S3CR3T/x", "a space or control character at position 22 of 35",
           "https://***/..."),
          ("http://admin:hunter2\uff20hooks.example:443/x", "a port out of range or not a number, or a malformed host",
           "http://***/..."),
          ("https://hooks.example/T/B/K\\n", "a space or control character at position 28 of 28", "https://hooks.example/..."),
          ("http://127.0.0.1:abc/hook", "a port out of range or not a number, or a malformed host", "http://127.0.0.1:***/..."),
          ("http://127.0.0.1:99999/x", "a port out of range or not a number, or a malformed host", "http://127.0.0.1:99999/..."),
          ("http://u:p@ss@[::1/x", "a port out of range or not a number, or a malformed host", "http://***/..."),
          ("https://", "no host", "https://"),
          # an '@' anywhere: where the host ends cannot be told, so none of it is shown
          ("http://bot:12/34@hooks.example/x ", "a space or control character at position 33 of 33",
           "http://***/..."),
          ("https://hooks.example/x?to=ops@example.com&token=S3CR3T ",
           "a space or control character at position 56 of 56", "https://***/..."))],
    # no scheme (a pasted token, or a later "://" in its query): nothing of it shown
    *[('url = "http://127.0.0.1:8080/hook"', f'url = "{url}"',
       f"channel 'ops': field 'url': expected an http:// or https:// URL (another scheme), "
       f"got a text of {len(url)} characters (not shown)")
      for url in ("hooks.example/T0/SECRET?next=https://x", "xoxb-1234-S3CR3T")],
    # urllib sends no user or password from a URL: every post failed ("Name or service not known").
    ('url = "http://127.0.0.1:8080/hook"', 'url = "http://bot:s3cret@127.0.0.1:8080/hook"',
     "channel 'ops': field 'url': a user or password in the URL is never sent (every post would fail): "
     "put the receiver's token in its path or query"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "message"), BAD)
def test_bad_rule_files_are_rejected_with_exact_messages(tmp_path, old, new, message):
    path = tmp_path / "alerts.toml"
    assert old in RULE
    path.write_text(RULE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(AlertRulesError) as caught:
        load_rules(path)
    assert str(caught.value) == f"{path}: {message}"


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(AlertRulesError, match=r"missing.toml: cannot read: No such file or directory$"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rules]\n", encoding="utf-8")
    with pytest.raises(AlertRulesError, match=r"bad.toml: not valid TOML: "):
        load_rules(bad)
    bad.write_text(
        '[channels.ops]\ntype = "slack"\nurl = "https://hooks.slack.invalid/x"\n', encoding="utf-8"
    )
    with pytest.raises(AlertRulesError, match=r"bad.toml: rules: expected at least one \[\[rules\]\] entry$"):
        load_rules(bad)


def test_calendar_windows_follow_the_time_zone(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(RULE.replace('window = "day"', 'window = "day"\ntimezone = "America/New_York"'), "utf-8")
    (rule,) = load_rules(path).rules
    now = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.timezone.utc)  # still Dec 1 in New York
    start, end, key = window_bounds(rule, now)
    assert (
        key == "2026-12-01" and start == dt.datetime(2026, 12, 1, 5, 0) and end == dt.datetime(2026, 12, 2, 3)
    )
    assert window_bounds(rule, now, back=1)[2] == "2026-11-30"


def _payload(tmp_path, scope_value, value, threshold, **extra):
    """The payload of RULE firing at noon on 2026-12-02 with ``value`` against ``threshold``."""
    path = tmp_path / "alerts.toml"
    path.write_text(RULE, encoding="utf-8")
    (rule,) = load_rules(path).rules
    at = dt.datetime(2026, 12, 2, 12)
    return build_payload(
        event="firing", rule=rule, scope_value=scope_value, window_key="2026-12-02", start=at, end=at,
        value=Decimal(value), threshold=Decimal(threshold), limit=Decimal(threshold), at=at, **extra,
    )  # fmt: skip


def test_the_slack_message_is_escaped_text_plus_blocks(tmp_path):
    payload = _payload(
        tmp_path, "<@here> & co", "1.5", "1",
        top={"runs": [{"trace_id": "ab" * 16, "usd": Decimal("1.5"), "calls": 3}]},
        projection=(Decimal("45"), dt.datetime(2027, 1, 1)),
    )  # fmt: skip
    message = slack_message(payload)
    assert message["text"] == (
        "[FIRING] r: feature=&lt;@here&gt; &amp; co cost $1.50, limit $1.00 (150% of the budget $1.00), "
        "window day 2026-12-02"
    )
    # percent_used is of the budget: at a threshold of 80% it is not the limit's (it said
    # "cost $0.90, limit $0.80 (90% of the limit)"); with no budget, of the limit.
    at_80 = slack_message(_payload(tmp_path, "f", "0.9", "0.8"))["text"]
    assert "cost $0.90, limit $0.80 (90% of the budget $1.00)" in at_80
    # a vast overrun is written out, not in exponent form ("3.5075e+08%": a review)
    assert slack_message({**payload, "percent_used": 350750000.0})["text"].count("(350,750,000% of the") == 1
    assert message["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": message["text"]}}
    context = message["blocks"][1]["elements"][0]["text"]
    assert context == f"Month-end projection: $45.00\nTop runs: {'ab' * 16} $1.50"
    assert "<@here>" not in str(message)


def test_a_slack_message_stays_within_slacks_3000_characters_a_block(tmp_path):
    # Slack answers 400 to a block whose text passes 3,000 characters: a 3,000-character
    # scope value (720 of '<svc>&' escaped to 2,029 more) was never delivered, and re-sent.
    value = "<svc>&" * 500
    name = "&" * 400
    top = {kind: [{key: f"{name}{i}", "usd": Decimal(1), "calls": 1} for i in range(5)]
           for kind, key in (("runs", "trace_id"), ("features", "feature"), ("models", "model"))}  # fmt: skip
    message = slack_message(_payload(tmp_path, value, "1.5", "1", top=top))
    section = message["blocks"][0]["text"]["text"]
    context = message["blocks"][1]["elements"][0]["text"]
    assert len(section) <= 3000 and len(context) <= 3000
    assert section.startswith("[FIRING] r: feature=&lt;svc&gt;&amp;&lt;svc&gt;") and "…" in section
    assert "&amp;…" in context and "&am…" not in context  # cut between entities, never inside one
    short = slack_message(_payload(tmp_path, "<svc>&", "1.5", "1"))["text"]
    assert "feature=&lt;svc&gt;&amp; cost" in short  # a short value as it was


README = Path(__file__).parent.parent / "README.md"


def _readme_block(kind: str, first_line: str) -> str:
    text = README.read_text(encoding="utf-8")
    for block in re.findall(rf"```{kind}\n(.*?)```", text, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"no ```{kind} block starting {first_line!r} in the README")


def test_the_readme_rule_file_loads(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text(_readme_block("toml", "# alerts.toml"), encoding="utf-8")
    rules = load_rules(path)
    assert [r.name for r in rules.rules] == [
        "research daily budget", "run budget", "per-user monthly spend", "latency degradation", "error spike",
    ]  # fmt: skip
    assert set(rules.channels) == {"ops", "team"}


def test_the_readme_payload_has_the_fields_the_code_sends(tmp_path):
    documented = json.loads(_readme_block("json", '{\n  "version": 1'))
    sent = _payload(
        tmp_path, "research", "0.6", "0.5", base_url="http://x", projection=(Decimal(1), dt.datetime(2027, 1, 1)),
        top={"runs": [{"trace_id": "t", "usd": Decimal(1), "calls": 1, "unpriced_calls": 0}]},
    )  # fmt: skip
    assert list(documented) == list(sent)
    assert list(documented["window"]) == list(sent["window"])
    assert set(documented["projection"]) == set(sent["projection"])
    assert list(documented["top"]["runs"][0]) == list(sent["top"]["runs"][0])


def test_a_rule_file_is_read_as_a_price_file_is(tmp_path):
    # One reader for hand-edited files: a BOM is dropped, bytes that are not UTF-8 say so.
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert [r.name for r in load_rules(path).rules] == ["research daily budget", "run budget"]
    path.write_bytes(b'[channels.ops]\ntype = "\xff"\n')
    with pytest.raises(AlertRulesError, match=f"^{re.escape(str(path))}: not UTF-8 text$"):
        load_rules(path)


def test_an_error_rate_of_1_and_a_multiple_of_the_baseline_stay_allowed(tmp_path):
    path = tmp_path / "alerts.toml"
    rate = 'metric = "error_rate"\nwindow = "24h"\n'
    for tail in ("thresholds = [1.0]", "baseline = 7\nthresholds = [2.0]"):
        path.write_text(
            RULE.replace('metric = "cost"\nwindow = "day"\nbudget = 1.0', rate + tail), encoding="utf-8"
        )
        assert load_rules(path).rules[0].metric == "error_rate"


def test_a_url_given_as_a_list_or_table_is_not_quoted(tmp_path):
    """A channel's url as a list (several URLs?) or a table quoted the Slack key whole."""
    for value in ('["https://hooks.slack.com/services/T0/B0/S3CR3TKEY"]',
                  '{ value = "https://hooks.slack.com/services/T0/B0/S3CR3TKEY" }'):  # fmt: skip
        path = tmp_path / "alerts.toml"
        path.write_text(
            RULE.replace('url = "http://127.0.0.1:8080/hook"', f"url = {value}", 1), encoding="utf-8"
        )
        with pytest.raises(AlertRulesError) as caught:
            load_rules(path)
        assert "S3CR3T" not in str(caught.value) and "(not shown)" in str(caught.value)


def test_a_rule_file_nested_past_the_parser_fails_in_one_line(tmp_path):
    # tomllib raises RecursionError (not TOMLDecodeError) on a few thousand nested arrays.
    bad = tmp_path / "deep.toml"
    bad.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(AlertRulesError, match=r"deep.toml: not valid TOML: nested too deeply$"):
        load_rules(bad)
