"""``whatif`` says so when its selection matches no call of the window (a review found it
printed 25 rows of zeros and nothing else), and refuses a negative step."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_rollups_workload import build

from otel_costattr.cli import cli
from otel_costattr.rollups.explain import explain_empty


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("whatif-selection") / "spans.duckdb"))


def invoke(*argv: str):
    return CliRunner().invoke(cli, list(argv), env={"COLUMNS": ""}, catch_exceptions=False)


def test_an_unknown_from_model_is_named_with_the_closest(db):
    result = invoke("whatif", "--model", "claude-haiku-4-5", "--from", "claude-sonet-4-5", "--db", db)
    assert result.exit_code == 0, result.output
    said = "No calls selected: no call of the window matches --from claude-sonet-4-5 ("
    assert result.stderr.startswith(said)
    assert "(closest: claude-haiku-4-5, claude-sonnet-4-5)" in result.stderr  # as explain_empty names them


def test_a_step_no_call_reached_is_named(db):
    result = invoke("whatif", "--model", "claude-haiku-4-5", "--step", "999", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stderr == "No calls selected: no call of the window matches --step 999\n"


def test_a_selection_that_matches_says_nothing_and_a_negative_step_is_refused(db):
    result = invoke("whatif", "--model", "claude-haiku-4-5", "--step", "0", "--db", db)
    assert result.exit_code == 0 and "No calls selected" not in result.stderr
    result = invoke("whatif", "--model", "claude-haiku-4-5", "--step", "-1", "--db", db)
    assert result.exit_code == 2 and "'--step': -1 is not in the range x>=0" in result.stderr


def test_a_filter_that_matches_nothing_is_named_with_the_closest(db):
    # A new user's review: --feature reserch gave a total row of zeros and "no call of the
    # window matches the selection", where a rollup names the closest feature stored.
    result = invoke("whatif", "--model", "gpt-4o-mini", "--feature", "reserch", "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("No calls: the store holds ")
    assert "feature 'reserch': closest: research" in result.stderr
    result = invoke("whatif", "--model", "gpt-4o-mini", "--feature", "reserch", "--step", "0", "--db", db)
    assert "feature 'reserch': closest: research" in result.stderr
    assert "No calls selected" not in result.stderr


def test_values_stored_that_hold_no_call_together_say_so(db):
    """A review: ``--where user.id=u1 --where app.tenant=globex``, both stored, answered
    "user.id = 'u1': closest: u1, u3, u4", as if u1 were a typo. It is the filters together
    (or the window) that hold no call."""
    lines = explain_empty(db, {"feature": "research", "agent": "summarizer"}).splitlines()[1:]
    assert lines == [
        "feature 'research': stored, but no call of the window has it with the other filters",
        "agent 'summarizer': stored, but no call of the window has it with the other filters",
    ]
    where = ["app.feature=reserch", "app.feature=research"]  # either
    lines = explain_empty(db, {"since": "2027-01-01"}, where=where).splitlines()
    assert lines[1:] == ["app.feature = 'reserch' or 'research': stored, but no call of the window has it"]
    lines = explain_empty(db, {"feature": "reserch"}).splitlines()
    assert lines[1:] == ["feature 'reserch': closest: research"]


def test_a_list_of_runs_cut_at_its_limit_says_so(db):
    """A review: runs, runs-list and whatif stopped at their default limit (20, 100, 20
    runs) with no word of the rest. The workload has 8 runs."""
    for argv, said in (
        (("runs", "--limit", "3"), True),
        (("runs", "--limit", "8"), True),  # reached: there may be more
        (("runs", "--limit", "9"), False),
        (("rollup", "runs-list", "--limit", "0"), False),
        (("rollup", "runs-list", "--limit", "2"), True),
        (("rollup", "top-runs", "--limit", "3"), False),  # the top N: asked for
        (("whatif", "--model", "gpt-4o-mini", "--limit", "2"), True),
        (("whatif", "--model", "gpt-4o-mini"), False),
    ):
        result = invoke(*argv, "--db", db)
        assert result.exit_code == 0, result.output
        note = "runs, the limit: there may be more (--limit 0 lists them all)\n"
        assert result.stderr.endswith(note) is said, (argv, result.stderr)
