"""What a new user sees in the table format (issue: CLI output defects): trees that read at
100 columns, duration headed as such, one money rule, fractions as percentages, unpriced
columns hidden alike everywhere, and the pricing commands' edge cases. Real commands through
click's CliRunner on a real DuckDB file (the shared workload)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from click.testing import CliRunner
from test_rollups_workload import build, trace_id

from otel_costattr.cli import cli, main
from otel_costattr.cli.output import UNPRICED
from otel_costattr.display import money


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("cli-tables") / "spans.duckdb"))


def invoke(*argv, columns: int | None = None):
    env = {"COLUMNS": str(columns) if columns else ""}
    return CliRunner().invoke(cli, [str(a) for a in argv], env=env, catch_exceptions=False)


def table(*argv, columns: int | None = None) -> list[str]:
    done = invoke(*argv, columns=columns)
    assert done.exit_code == 0, done.output
    return done.stdout.splitlines()


# --- 1. a trace reads at 100 columns, what every span shares said once ------------------------


@pytest.mark.parametrize("n", [2, 3])  # runs of one agent and feature
def test_a_trace_fits_100_columns_with_names_whole(db, n):
    lines = table("trace", trace_id(n), "--db", db, columns=100)
    assert max(map(len, lines)) <= 100 and "…" not in "".join(lines)
    assert lines[0].startswith("started 2026-06-0") and "agent researcher  feature research" in lines[0]
    header = lines[1].split()
    assert header[0] == "name" and not {"agent", "feature", "start_time", "span_id"} & set(header)
    assert sum("researcher" in line for line in lines) == 2  # the line above, the agent's span name


def test_a_trace_keeps_the_agent_column_when_agents_differ(db):
    lines = table("trace", trace_id(1), "--db", db)  # triage hands off to billing
    assert "agent" in lines[1].split() and "agent " not in lines[0] and "feature refund" in lines[0]
    assert "3 model calls, every one priced" in lines[0]


def test_a_trace_with_an_unpriced_call_says_so_and_keeps_cost_status(db):
    run = json.loads(invoke("runs", "--db", db, "--format", "json", "--limit", "0").stdout)
    unpriced = next(r for r in run if r["unpriced_calls"])
    lines = table("trace", unpriced["trace_id"], "--db", db)
    assert "cost_status" in lines[1].split()
    assert f"{unpriced['unpriced_calls']} unpriced ({unpriced['unpriced_tokens']:,} tokens" in lines[0]


def test_json_of_a_trace_keeps_every_column(db):
    rows = json.loads(invoke("trace", trace_id(2), "--db", db, "--format", "json").stdout)
    kept = {"agent", "feature", "start_time", "span_id", "step", "subtree_calls", "duration_ms"}
    assert kept <= set(rows[0])


# --- 2. duration ------------------------------------------------------------------------------


def test_duration_is_headed_duration_in_tables_and_stays_ms_in_json_and_csv(db):
    for lines in (table("runs", "--db", db), table("trace", trace_id(2), "--db", db)):
        header = next(line for line in lines if line.split()[0] in ("trace_id", "name")).split()
        assert "duration" in header and "duration_ms" not in header
    assert "duration_ms" in json.loads(invoke("runs", "--db", db, "--format", "json").stdout)[0]
    assert "duration_ms" in invoke("runs", "--db", db, "--format", "csv").stdout.splitlines()[0].split(",")


# --- 3. one money rule ------------------------------------------------------------------------


def test_money_is_one_rule_per_amount():
    assert [money(Decimal(v)) for v in ("0.0148", "0.134170", "0.00000015", "1.081665", "1234.5")] == [
        "$0.014800", "$0.134170", "<$0.000001", "$1.08", "$1,234.50"]  # fmt: skip
    # A saving (whatif's change) reads as money with a sign in front, not "$-0.045030".
    assert [money(Decimal(v)) for v in ("-0.04503", "-1234.5")] == ["-$0.045030", "-$1,234.50"]
    # Places by what the amount rounds to (it was $1.000000); an amount that rounds to nothing
    # says it is not zero (it was $0.000000 for $1e-12: a cost shown as none), zero has no sign.
    assert [money(Decimal(v)) for v in ("0.9999995", "0.9999994", "-0.0000004", "-0.0000005")] == [
        "$1.00", "$0.999999", "-<$0.000001", "-$0.000001"]  # fmt: skip
    assert [money(Decimal(v)) for v in ("0", "-0", "1E-12", "0.0000005")] == [
        "$0.000000", "$0.000000", "<$0.000001", "$0.000001"]  # fmt: skip


def _usd_by_model(lines: list[str], model_col: str) -> dict[str, str]:
    header = lines[0].split()
    return {line.split()[header.index(model_col)]: line.split()[header.index("usd")] for line in lines[1:]}


def test_the_same_amount_reads_the_same_in_every_command(db):
    per_model = _usd_by_model(table("rollup", "per-model", "--db", db), "model")
    per_group = _usd_by_model(table("rollup", "per-group", "--group-by", "model", "--db", db), "value")
    assert per_model and per_model == {m: per_group[m] for m in per_model}
    exact = {r["model"]: r["usd_exact"] for r in json.loads(
        invoke("rollup", "per-model", "--db", db, "--format", "json").stdout)}  # fmt: skip
    assert per_model == {m: "-" if v is None else money(Decimal(v)) for m, v in exact.items()}


def test_an_amount_reads_the_same_whatever_else_the_column_holds(db):
    alone = _usd_by_model(table("rollup", "per-feature", "--feature", "research", "--db", db), "feature")
    among = _usd_by_model(table("rollup", "per-feature", "--db", db), "feature")  # with $0.000150
    assert alone["research"] == among["research"] == "$0.063500"


# --- 4. fractions -----------------------------------------------------------------------------


def test_forecast_shows_the_month_elapsed_as_a_percentage(db):
    lines = table("forecast", "--db", db, "--until", "2026-06-02")
    rows = json.loads(invoke("forecast", "--db", db, "--until", "2026-06-02", "--format", "json").stdout)
    col = lines[0].split().index("month_elapsed")
    assert lines[1].split()[col] == f"{rows[0]['month_elapsed']:.1%}" == "3.3%"


# --- 5. unpriced columns: hidden when zero in every row, in every command ---------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["rollup", "per-feature", "--feature", "research"],
        ["rollup", "per-model", "--feature", "research"],
        ["rollup", "per-group", "--group-by", "model", "--feature", "research"],
        ["runs", "--feature", "research"],
        ["compare", "--feature", "research", "--since", "2026-06-01", "--until", "2026-06-09"],
        ["forecast", "--feature", "research", "--until", "2026-06-09"],
    ],
)
def test_all_zero_unpriced_columns_are_hidden_alike(db, argv):
    rows = json.loads(invoke(*argv, "--db", db, "--format", "json").stdout)
    zero = [c for c in UNPRICED if c in rows[0] and not any(r[c] for r in rows)]
    assert zero, "the window should have no unpriced call"
    assert not set(zero) & set(table(*argv, "--db", db)[0].split())


def test_unpriced_columns_show_when_a_row_has_one(db):
    assert "unpriced_calls" in table("rollup", "per-feature", "--db", db)[0].split()


# --- 6, 7. pricing ----------------------------------------------------------------------------


def test_pricing_list_of_an_unknown_provider_is_a_usage_error():
    done = invoke("pricing", "list", "--provider", "opnai")
    assert done.exit_code == 2
    assert "unknown provider 'opnai'. Did you mean 'openai'? Known: anthropic, aws," in done.stderr
    assert invoke("pricing", "list", "--provider", "aws.bedrock").exit_code == 0  # as spans name it


def test_pricing_diff_shows_no_rate_where_we_have_none(tmp_path):
    # Bedrock Claude 3 Opus: no cache rates in our table (cache tokens billed at input, 15)
    path = tmp_path / "litellm.json"
    path.write_text(json.dumps({"bedrock/anthropic.claude-3-opus-20240229-v1:0": {
        "litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 1.5e-05,
        "output_cost_per_token": 7.5e-05, "cache_read_input_token_cost": 1.5e-06}}))  # fmt: skip
    lines = table("pricing", "diff", str(path))
    row = next(line for line in lines if "cache_read" in line)
    assert re.search(r"cache_read\s+-\s+1\.5$", row), row
    rows = json.loads(invoke("pricing", "diff", str(path), "--format", "json").stdout)
    assert [(r["rate"], r["ours_usd"], r["theirs_usd_exact"]) for r in rows] == [("cache_read", None, "1.5")]


def test_a_table_never_sends_control_characters_to_the_terminal(tmp_path, capsys):
    # Span data comes from any OTLP client through serve: a feature holding an escape
    # sequence cleared the screen of whoever ran `rollup per-feature` on a terminal, a line
    # break split a row, and a bidi override reversed the rest of the line.
    from otel_costattr.display import visible

    assert visible("plain name") == "plain name"
    assert visible("\x1b[2Jx\r\ny\u202ez\x9b") == "[U+001B][2Jx[U+000D][U+000A]y[U+202E]z[U+009B]"
    assert visible("a\u2028b\u2029c\u200ed\u200fe\u061cf") == (
        "a[U+2028]b[U+2029]c[U+200E]d[U+200F]e[U+061C]f"
    )
    words = "caf\u00e9 \u4e2d\u6587 \u05e9\u05dc\u05d5\u05dd"  # letters of any script stay
    assert visible(words) == words
    from sdk_store import gpt4o_chat, priced_store

    db = tmp_path / "s.duckdb"
    provider, tracer = priced_store(db)
    with tracer.start_as_current_span("run", attributes={"app.feature": "\x1b[2J\x1b[31mpwned\r\nx\u202e"}):
        tracer.start_span("chat", attributes=gpt4o_chat(input_tokens=10, output_tokens=1)).end()
    provider.shutdown()
    for argv in (["rollup", "per-feature"], ["runs"]):
        assert main([*argv, "--db", str(db)]) == 0
        out = capsys.readouterr().out
        assert "[U+001B][2J[U+001B][31mpwned[U+000D][U+000A]x[U+202E]" in out, argv
        assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert main(["rollup", "per-feature", "--db", str(db), "--format", "json"]) == 0
    assert "\\u001b[2J" in capsys.readouterr().out  # data formats keep the value exact
    # The hints beside an empty answer name stored values too (a review of the above).
    assert main(["rollup", "per-feature", "--db", str(db), "--feature", "pwn"]) == 0
    err = capsys.readouterr().err
    assert "[U+001B][2J" in err and "\r" not in err and "\u202e" not in err, err
    assert "[U+000A]No" not in err and len(err.strip().splitlines()) >= 2  # the hint's lines stay lines
    assert "[U+000A]" not in err.split("known:")[0], err


def test_a_share_is_rounded_as_written_not_as_stored_in_binary():
    # compare's change_share of an exact -0.7915 showed -79.1%: the float is -0.79149999...
    from otel_costattr.display import cell

    assert [cell("change_share", v) for v in (-0.7915, 0.0005, 1 / 3, 0.125)] == [
        "-79.2%",
        "0.0%",
        "33.3%",
        "12.5%",
    ]
    assert cell("change_share", float("inf")) == "inf%"


def test_wide_characters_keep_the_columns_aligned():
    # A review: a feature named in Chinese (two terminal columns a character) shifted every
    # column after it, and a fullwidth name cut to fit overflowed its column.
    import unicodedata

    from otel_costattr.cli.output import Table, table_lines

    rows = [{"feature": "客服", "calls": 3, "usd": Decimal("1.5")},
            {"feature": "refunds", "calls": 12, "usd": Decimal("0.25")},
            {"feature": "ｆｕｌｌｗｉｄｔｈ　ｎａｍｅ", "calls": 1, "usd": None}]  # fmt: skip

    def columns(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    for width in (None, 30):
        lines = table_lines(Table(columns=["feature", "calls", "usd"], rows=rows), width=width)
        assert len({columns(line) for line in lines[1:]}) == 1, lines  # each row ends in its usd
        ends = {
            columns(line[: line.index(str(n)) + len(str(n))])
            for line, n in zip(lines[1:], (3, 12, 1), strict=True)
        }
        assert len(ends) == 1, lines  # the calls column right-aligned in one place
        if width is not None:
            assert max(columns(line) for line in lines) <= width, lines
