"""compare and forecast against the shared hand-computed workload (tests/test_rollups_workload.py:
T1 refund 06-01 $0.0141, T2-T4 research 06-02..06-04 $0.0455 / $0.0135 / $0.0045, T5 summarize
06-05 $0.00015 (2 unpriced calls), T6 refund 06-06 $0.0007, T7 and T8 no feature 06-07 / 06-08
$0.00015 / $0.0003; every day at 09:00 or 10:00 UTC)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from test_rollups_workload import TOTAL_USD, build

from otel_costattr.cli import main
from otel_costattr.rollups.errors import RollupParamError
from otel_costattr.rollups.queries import rollup

D = Decimal


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("trends") / "spans.duckdb")


def test_compare_with_the_previous_period(db):
    # this period 06-05..06-09 (4 days): T5-T8 = $0.0013; the one before, 06-01..06-05: T1-T4 = $0.0776
    rows = rollup("compare", db=db, since="2026-06-05", until="2026-06-09")
    total = rows[0]
    # T5's 2 unpriced calls lie in this period: the total's change is unknown, not -$0.0763
    assert (total["level"], total["previous_usd"], total["usd"], total["change_usd"]) == (
        "total", D("0.0776"), D("0.0013"), None,
    )  # fmt: skip
    assert (total["previous_runs"], total["runs"], total["unpriced_calls"]) == (4, 4, 2)
    # the biggest movers first: research gone (-$0.0635), refund -$0.0134, then the new ones
    # (summarize's, with T5's unpriced calls, unknown)
    assert [(r["value"], r["change_usd"]) for r in rows[1:]] == [
        ("research", D("-0.0635")), ("refund", D("-0.0134")), (None, D("0.00045")),
        ("summarize", None),
    ]  # fmt: skip
    refund = rows[2]
    assert (refund["previous_usd"], refund["usd"]) == (D("0.0141"), D("0.0007"))
    assert refund["change_share"] == pytest.approx(-0.0134 / 0.0141)
    assert rows[1]["usd"] is None and rows[4]["previous_usd"] is None and rows[4]["change_share"] is None


def test_compare_by_model_over_the_last_days(db):
    now = dt.datetime(2026, 6, 9)  # --days 4 then means the same window
    rows = rollup("compare", db=db, days=4, now=now, group_by="model")
    assert rows[0]["usd"] == D("0.0013") and rows[0]["key"] == "model"
    haiku = next(r for r in rows if r["value"] == "claude-haiku-4-5")
    assert (haiku["previous_usd"], haiku["usd"], haiku["previous_calls"]) == (D("0.0635"), None, 15)
    last_week = rollup("compare", db=db, now=now)  # by default the last 7 days: 06-02..06-09
    assert last_week == rollup("compare", db=db, since="2026-06-02", until=now)
    assert last_week[0]["previous_usd"] == D("0.0141")  # T1 only, 05-26..06-02
    # A length without a start counts back from --until, not from now: "the 7 days before the
    # 5th" (it was now - 7 days, after the 5th: a refusal naming a since never given).
    later = dt.datetime(2026, 7, 1)
    before_5th = rollup("compare", db=db, until="2026-06-05", now=later)
    assert before_5th == rollup("compare", db=db, since="2026-05-29", until="2026-06-05")
    assert before_5th[0]["usd"] == D("0.0776")  # T1-T4
    assert rollup("compare", db=db, days=4, until="2026-06-09", now=later, group_by="model") == rows
    assert rollup("per_feature", db=db, days=4, until="2026-06-09", now=later) == rollup(
        "per_feature", db=db, since="2026-06-05", until="2026-06-09"
    )
    with pytest.raises(RollupParamError, match="since .* must be before until"):
        rollup("compare", db=db, since="2026-06-05", until="2026-06-01", now=now)


def test_forecast_month_end(db):
    # as of 06-10 00:00, 9 of June's 30 days have passed: projected = month to date / 0.3
    rows = rollup("forecast", db=db, until="2026-06-10")
    total = rows[0]
    assert (total["month_to_date_usd"], total["projected_usd"], total["month_elapsed"]) == (
        TOTAL_USD, D("0.263"), pytest.approx(0.3),
    )  # fmt: skip
    assert total["last_month_usd"] is None and total["runs"] == 8
    # research's calls begin on 06-02 (none in May): projected from that day, 8 of its 29 days
    research = rows[1]
    assert (research["value"], research["projected_usd"]) == ("research", D("0.0635") * 29 / 8)
    # the same as research filtered alone (a review: the row and the filter disagreed)
    alone = rollup("forecast", db=db, until="2026-06-10", feature="research")[0]
    assert alone["projected_usd"] == research["projected_usd"]
    # as of 06-03 12:00 (2.5 of 30 days): T1, T2, T3 (06-03 10:00) = $0.0731, x 12 = $0.8772
    early = rollup("forecast", db=db, until="2026-06-03T12:00")[0]
    assert early["month_to_date_usd"] == D("0.0731") and early["projected_usd"] == D("0.8772")


def test_forecast_with_last_month(db):
    # as of 07-15: June is last month, July has nothing yet
    total = rollup("forecast", db=db, until="2026-07-15")[0]
    assert (total["last_month_usd"], total["month_to_date_usd"], total["projected_usd"]) == (
        TOTAL_USD,
        None,
        None,
    )
    # June's cost is its priced part: T5's 2 unpriced calls are counted beside it, as this
    # month's are (last_month_usd alone read as the whole month: a review)
    assert (total["last_month_unpriced_calls"], total["unpriced_calls"]) == (2, 0)


def test_compare_and_forecast_commands(capsys, db):
    code = main(
        ["compare", "--since", "2026-06-05", "--until", "2026-06-09", "--db", str(db), "--format", "json"]
    )
    out, err = capsys.readouterr()
    rows = {r["value"]: r for r in json.loads(out)[1:]}
    assert (code, err) == (0, "") and rows["research"]["change_usd_exact"] == "-0.0635"
    assert (rows["summarize"]["change_usd"], rows["summarize"]["change_usd_exact"]) == (None, None)
    code = main(
        ["forecast", "--until", "2026-06-10", "--group-by", "agent", "--db", str(db), "--format", "json"]
    )
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert (code, rows[0]["projected_usd_exact"], rows[1]["value"]) == (0, "0.263", "researcher")
    code = main(["compare", "--since", "2027-01-01", "--until", "2027-01-08", "--db", str(db)])
    out, err = capsys.readouterr()
    assert code == 0 and err.startswith(
        "No calls: the store holds 8 runs (24 model calls)"
    )  # beside the total row


def test_compare_shows_no_made_up_change_for_a_value_unpriced_in_both_periods(db, capsys):
    # acme-ner-7b has no price and runs only this period: no usd then or now, so no change
    # (NULL, shown "-"), never $0; the others keep their change as before.
    rows = rollup("compare", db=db, since="2026-06-05", until="2026-06-09", group_by="model")
    unpriced = next(r for r in rows if r["value"] == "acme-ner-7b")
    assert (unpriced["previous_usd"], unpriced["usd"], unpriced["change_usd"]) == (None, None, None)
    assert unpriced["unpriced_calls"] == 1
    gone = next(r for r in rows if r["value"] == "claude-haiku-4-5")
    assert (gone["usd"], gone["change_usd"]) == (None, D("-0.0635"))
    args = ["compare", "--db", str(db), "--since", "2026-06-05", "--until", "2026-06-09"]
    assert main([*args, "--group-by", "model", "--format", "json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["value"] == "acme-ner-7b")
    assert (row["change_usd"], row["change_usd_exact"]) == (None, None)


def test_compare_counts_unpriced_calls_per_period(db):
    # 06-06..06-07 against 06-05..06-06: T5's 2 unpriced calls lie in the period before, none in this
    rows = rollup("compare", db=db, since="2026-06-06", until="2026-06-07")
    total = rows[0]
    assert (total["previous_unpriced_calls"], total["unpriced_calls"]) == (2, 0)
    summarize = next(r for r in rows if r["value"] == "summarize")
    counts = summarize["previous_unpriced_calls"], summarize["unpriced_calls"], summarize["calls"]
    assert counts == (2, 0, 0)


def test_compare_never_reads_a_period_of_unpriced_calls_as_a_drop_to_zero(tmp_path, table):
    """A feature priced last week whose calls this week are all of a model the prices do not
    know (a switch the table has not caught up with) showed change -$0.80, -100%."""
    from alerts_helpers import Workload

    until = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    work = Workload(tmp_path / "s.duckdb", table)
    work.run(until - dt.timedelta(days=10), ["0.40", "0.40"], feature="research")
    work.run(until - dt.timedelta(days=2), ["?", "?", "?"], feature="research")
    work.run(until - dt.timedelta(days=9), ["0.10"], feature="gone")
    work.run(until - dt.timedelta(days=9), ["0.10"], feature="steady")
    work.run(until - dt.timedelta(days=3), ["0.10"], feature="steady")
    work.close()
    rows = rollup("compare", db=tmp_path / "s.duckdb", since="2026-11-25", until="2026-12-02")
    got = {r["value"]: (r["previous_usd"], r["usd"], r["unpriced_calls"], r["change_usd"], r["change_share"])
           for r in rows}  # fmt: skip
    assert got == {
        None: (D("1.0"), D("0.1"), 3, None, None),  # the total: unknown, as research's is
        "research": (D("0.8"), None, 3, None, None),
        "gone": (D("0.1"), None, 0, D("-0.1"), -1.0),  # no calls this week: it did cost 0
        "steady": (D("0.1"), D("0.1"), 0, D("0"), 0.0),
    }
    # By model the unknown model's row is unknown, and so the total again
    by_model = rollup(
        "compare", db=tmp_path / "s.duckdb", since="2026-11-25", until="2026-12-02", group_by="model"
    )
    assert [r["change_usd"] for r in by_model if r["level"] == "total"] == [None]


def test_forecast_of_a_store_begun_this_month_stands_on_its_days(tmp_path, table):
    """A store whose first call is on the 20th projected $1.20 of one day over the 20 days
    before it too: $1.86 for a month ending near $14.40 (a review). With a call the month
    before, the month is projected from its start, as before."""
    from alerts_helpers import Workload

    work = Workload(tmp_path / "s.duckdb", table)
    work.run(dt.datetime(2026, 12, 20, 9, tzinfo=dt.timezone.utc), ["0.30"] * 4)  # under the 200k tier
    work.flush()
    total = rollup("forecast", db=tmp_path / "s.duckdb", until="2026-12-21")[0]
    # 1 day of the 12 from the 20th to the month's end: $1.20 x 12
    assert (total["month_to_date_usd"], total["projected_usd"]) == (D("1.2"), D("14.4"))
    assert total["month_elapsed"] == pytest.approx(1 / 31)
    work.run(dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc), ["0.10"])
    work.close()
    total = rollup("forecast", db=tmp_path / "s.duckdb", until="2026-12-21")[0]
    assert (total["projected_usd"], total["last_month_usd"]) == (D("1.2") * 31 / 20, D("0.1"))
    assert total["month_elapsed"] == pytest.approx(20 / 31)
