"""The CLI's one output layer and its exit codes, through click's CliRunner running the real
commands on a real DuckDB file (the shared workload), plus the installed script once."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_rollups_workload import build, trace_id

from otel_costattr.cli import cli
from otel_costattr.rollups.queries import rollup


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("cli-output") / "spans.duckdb"))


def invoke(*argv, columns: int | None = None):
    env = {"COLUMNS": str(columns)} if columns else {"COLUMNS": ""}
    return CliRunner().invoke(cli, [str(a) for a in argv], env=env, catch_exceptions=False)


# --- exit codes: 0 done, 1 a failure (Error: ...), 2 a usage error --------------------------


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["rollup", "stats"], 0),
        (["runs", "--limit", "1"], 0),
        (["trace", trace_id(1)], 0),
        (["store", "status"], 0),
        (["rollup", "stats", "--days", "-1"], 1),  # the library refuses the value
        (["trace", "f" * 32], 1),
        (["rollup", "nope"], 2),
        (["rollup", "stats", "--no-such-option"], 2),
        (["runs", "--format", "xml"], 2),
        (["trace"], 2),
    ],
)
def test_exit_codes(db, argv, code):
    result = invoke(*argv, "--db", db)
    assert result.exit_code == code, result.output
    if code == 1:
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    if code == 2:
        assert result.stderr.startswith("Usage: ")


def test_failures_outside_rollups_are_one_error_line(tmp_path):
    result = invoke("pricing", "show", "Nope-1")
    assert (result.exit_code, result.stdout) == (1, "")
    assert (
        result.stderr == "Error: unknown model 'Nope-1' (tried: nope-1); see 'otel-costattr pricing list'\n"
    )
    result = invoke("store", "status", "--db", tmp_path / "nothing.duckdb")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")


# --- formats --------------------------------------------------------------------------------


def test_csv_has_a_header_even_with_no_rows(db):
    result = invoke("rollup", "per-feature", "--db", db, "--feature", "no-such-feature", "--format", "csv")
    assert result.exit_code == 0
    assert result.stdout == "feature,runs,calls,input_tokens,output_tokens,usd,usd_per_run,unpriced_calls\n"


def test_json_times_carry_their_zone_and_money_its_exact_string(db):
    result = invoke("rollup", "top-runs", "--db", db, "--limit", "1", "--format", "json")
    (row,) = json.loads(result.stdout)
    assert row["trace_id"] == trace_id(2)
    assert row["start_time"].endswith("+00:00")  # stored times are UTC
    assert row["usd"] == 0.0455 and row["usd_exact"] == "0.0455"
    assert Decimal(row["usd_exact"]) == rollup("top_runs", db=db, limit=1)[0]["usd"]


def test_csv_times_carry_their_zone_too(db):
    result = invoke("rollup", "top-runs", "--db", db, "--limit", "1", "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["start_time"] == "2026-06-02T10:00:00+00:00" and row["usd"] == "0.0455"


def test_parquet_round_trip(db, tmp_path):
    out = tmp_path / "per_model.parquet"
    result = invoke("rollup", "per-model", "--db", db, "--format", "parquet", "--out", out)
    assert (result.exit_code, result.stdout) == (0, "")
    table = pq.read_table(out)
    expected = rollup("per_model", db=db)
    assert table.column_names == list(expected.columns)
    assert table.to_pylist() == expected  # money stays Decimal: exact
    stamped = tmp_path / "runs.parquet"
    invoke("runs", "--db", db, "--format", "parquet", "--out", stamped)
    assert str(pq.read_table(stamped).schema.field("start_time").type) == "timestamp[us, tz=UTC]"


def test_parquet_of_no_rows_keeps_the_columns(db, tmp_path):
    out = tmp_path / "none.parquet"
    invoke("rollup", "per-feature", "--db", db, "--feature", "none", "--format", "parquet", "--out", out)
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.column_names[0] == "feature"


def test_parquet_files_of_one_rollup_share_a_schema(db, tmp_path):
    """The types came from the values: an empty answer wrote every column as null, a window
    whose calls were all unpriced wrote usd as null, so the files of a daily export did not
    share a schema. A rollup's columns now have its SQL types whatever the rows hold."""
    schemas = []
    windows = (["--days", "36500"], ["--feature", "none"], ["--where", "model=no-such-model"])
    for i, window in enumerate(windows):
        out = tmp_path / f"{i}.parquet"
        result = invoke("rollup", "per-feature", "--db", db, *window, "--format", "parquet", "--out", out)
        assert result.exit_code == 0, result.output
        schemas.append(pq.read_schema(out))
    assert schemas[0] == schemas[1] == schemas[2]
    assert str(schemas[0].field("usd").type) == "decimal128(38, 12)"
    assert str(schemas[0].field("calls").type) == "int64"
    runs = tmp_path / "runs.parquet"
    empty = ("--since", "2000-01-01", "--until", "2000-01-02")
    invoke("runs", "--db", db, *empty, "--format", "parquet", "--out", runs)
    assert str(pq.read_schema(runs).field("start_time").type) == "timestamp[us, tz=UTC]"


def test_out_writes_any_format_to_a_file(db, tmp_path):
    out = tmp_path / "stats.json"
    result = invoke("rollup", "stats", "--db", db, "--format", "json", "--out", out)
    assert (result.exit_code, result.stdout) == (0, "")
    assert json.loads(out.read_text())[0]["calls"] == 24


# --- tables fit the terminal -----------------------------------------------------------------


def test_tables_fit_the_terminal_cutting_text_never_numbers(db):
    wide = invoke("runs", "--db", db).stdout.splitlines()
    assert max(map(len, wide)) > 120 and "…" not in "".join(wide)  # no COLUMNS, piped: never cut
    narrow = invoke("runs", "--db", db, columns=120).stdout.splitlines()
    assert max(map(len, narrow)) <= 120
    assert any("…" in line for line in narrow)
    # every number is shown whole: the last columns (duration, calls, usd) are as uncut
    data = len(wide) - 1
    assert [line.split()[-4:] for line in wide[1:]] == [line.split()[-4:] for line in narrow[-data:]]


def test_a_number_column_takes_its_header_on_two_lines_before_text_is_cut():
    # unpriced_calls and unpriced_tokens, never shortened, took 30 characters over values of
    # 1 and 6, and the text columns paid for them: start_time cut to "2026-12…".
    from otel_costattr.cli.output import Table, table_lines

    rows = [{"feature": "summarize-documents", "start_time": "2026-12-01 05:18:00", "unpriced_calls": 5,
             "unpriced_tokens": 83_080, "usd": Decimal("0.099986")}]  # fmt: skip
    table = Table(list(rows[0]), rows, money=("usd",))
    one = table_lines(table)
    assert one[0].split() == ["feature", "start_time", "unpriced_calls", "unpriced_tokens", "usd"]
    assert max(map(len, one)) == 84
    fitted = table_lines(table, width=71)
    assert fitted[0].split() == ["unpriced", "unpriced"] and fitted[1].split() == [
        "feature", "start_time", "calls", "tokens", "usd"
    ]  # fmt: skip
    assert fitted[2].split() == ["summarize-documents", "2026-12-01", "05:18:00", "5", "83,080", "$0.099986"]
    assert max(map(len, fitted)) == 71
    assert table_lines(table, width=84) == one  # it fits: one line, as it was
    narrow = table_lines(table, width=50)  # folded and cut: the text pays only the rest
    assert "…" in narrow[2] and narrow[2].split()[-3:] == ["5", "83,080", "$0.099986"]


def test_a_table_that_cannot_fit_still_shows_every_number(db):
    out = invoke("runs", "--db", db, columns=60).stdout.splitlines()
    header = 1 + (out[0].split()[-1] != "usd")  # a number column's header may take two lines
    assert out[header - 1].split()[-1] == "usd"
    assert all(line.split()[-1].startswith("$") for line in out[header:])


def test_trace_hides_cycle_broken_unless_a_row_has_it(db):
    assert "cycle_broken" not in invoke("trace", trace_id(1), "--db", db).stdout
    assert "cycle_broken" in invoke("trace", trace_id(7), "--db", db).stdout  # two spans in a cycle


# --- the installed script -----------------------------------------------------------------------


def test_the_installed_script(db):
    script = shutil.which("otel-costattr", path=str(Path(sys.executable).parent))
    assert script, "otel-costattr is not installed next to this Python"
    done = subprocess.run([script, "rollup", "stats", "--db", db, "--format", "csv"], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("provider,model,runs,calls,usd,")
    done = subprocess.run([script, "rolup"], capture_output=True, text=True)
    assert done.returncode == 2 and "Did you mean 'rollup'?" in done.stderr


def test_unpriced_counts_that_are_zero_everywhere_leave_the_table():
    # compare left out unpriced_calls but kept previous_unpriced_calls, zero in every row too
    from otel_costattr.cli.output import Table, table_lines

    rows = [{"key": "a", "calls": 2, "unpriced_calls": 0, "previous_unpriced_calls": 0}]
    header = table_lines(Table(list(rows[0]), rows))[0].split()
    assert header == ["key", "calls"]
    rows[0]["previous_unpriced_calls"] = 1
    assert "previous_unpriced_calls" in table_lines(Table(list(rows[0]), rows))[0].split()


def _features_store(path: Path, names: list[str]) -> Path:
    """A DuckDB store at ``path`` with one $0.50 call under each of the features ``names``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_costattr import DuckDBSpanExporter

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path)))
    tracer = provider.get_tracer("t")
    for name in names:
        with tracer.start_as_current_span("run", attributes={"app.feature": name}):
            call = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1,
                    "gen_ai.usage.cost": 0.5}  # fmt: skip
            with tracer.start_as_current_span("chat", attributes=call):
                pass
    provider.shutdown()
    return path


def test_csv_text_a_spreadsheet_would_run_is_marked_and_numbers_are_not(tmp_path, db):
    # Any OTLP client names features: "=HYPERLINK(...)" went into the cell as it was, and a
    # spreadsheet opening the file ran it. Money and counts, negative ones too, stay numbers.
    names = ['=HYPERLINK("http://x","y")', "+1+2", "-3+4", "@SUM(A1)", "\tx", "plain", "a=b"]
    path = _features_store(tmp_path / "names.duckdb", names)
    result = invoke("rollup", "per-feature", "--db", path, "--format", "csv")
    cells = {row["feature"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert sorted(cells) == sorted(["'" + n for n in names[:5]] + ["plain", "a=b"])
    assert {row["usd"] for row in cells.values()} == {"0.5"}
    # JSON keeps the names as they are
    result = invoke("rollup", "per-feature", "--db", path, "--format", "json")
    assert sorted(row["feature"] for row in json.loads(result.stdout)) == sorted(names)
    # a negative amount is a number, not text to mark
    result = invoke(
        "compare", "--since", "2026-06-05", "--until", "2026-06-09", "--db", db, "--format", "csv"
    )
    (research,) = [r for r in csv.DictReader(io.StringIO(result.stdout)) if r["value"] == "research"]
    assert research["change_usd"] == "-0.0635"


def test_no_progress_bar_reaches_standard_output(tmp_path):
    """DuckDB prints its progress bar to standard output, into a file too, for a query past
    progress_bar_time (2 s): `rollup ... --format json > file` on a large store was no JSON
    (a review). Every store connection turns it off; here a query made to show it at once."""
    script = (
        "import sys\n"
        "from otel_costattr.store.database import connect\n"
        "con = connect(sys.argv[1])\n"
        "con.execute('SET progress_bar_time = 0')\n"
        "con.execute('SELECT sum(i * i) FROM range(60000000) t(i)').fetchall()\n"
        "con.cursor().execute('SELECT sum(i * i) FROM range(60000000) t(i)').fetchall()\n"
    )
    argv = [sys.executable, "-c", script, str(tmp_path / "s.duckdb")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


def test_csv_keeps_carriage_returns_and_escapes_in_their_cells(tmp_path):
    """A feature holding a lone carriage return was written unquoted (Python 3.11's writer
    quotes only its own line terminator) and read back as two rows; one holding an ANSI escape
    lost it on stdout (click strips escapes from a pipe), so two features merged. The file
    and stdout now hold the same bytes, and every value reads back whole."""
    names = ["billing\rrefund", "\x1b[1mbold", "bold", "line\nbreak", "plain"]
    path = _features_store(tmp_path / "names.duckdb", names)
    stdout = invoke("rollup", "per-feature", "--db", path, "--format", "csv").stdout
    out = tmp_path / "f.csv"
    invoke("rollup", "per-feature", "--db", path, "--format", "csv", "--out", out)
    assert out.read_bytes().decode("utf-8") == stdout
    rows = list(csv.DictReader(io.StringIO(stdout, newline="")))
    assert sorted(row["feature"] for row in rows) == sorted(names)
    assert {row["usd"] for row in rows} == {"0.5"}


@pytest.mark.parametrize("command", [["rollup", "per-feature", "--format", "csv"], ["report"]])
def test_out_to_a_fifo_or_a_pipe_is_written_not_waited_on(db, tmp_path, command):
    """The check before the command opened --out to read its header: a FIFO, a pipe
    (`--out /dev/stdout | jq`) or a terminal waited for input for ever (a review)."""
    import os
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    script = str(Path(sys.executable).parent / "otel-costattr")
    argv = [script, *command, "--db", db, "--out"]
    done = subprocess.run([*argv, str(fifo)], capture_output=True, timeout=120)
    reader.join(10)
    assert done.returncode == 0, done.stderr
    assert fifo.is_fifo() and got and got[0]  # written into, and still a FIFO
    # a pipe: stdout itself
    done = subprocess.run([*argv, "/dev/stdout"], capture_output=True, timeout=120)
    assert done.returncode == 0 and done.stdout, done.stderr


def test_report_through_a_link_writes_its_target_and_keeps_its_mode(db, tmp_path):
    """The report was renamed over its path: a link became a file (its target left stale), a
    file lost its permissions (and, as root, /dev/null became a file: a review)."""
    import os

    target = tmp_path / "real.html"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.html"
    link.symlink_to(target)
    done = invoke("report", "--db", db, "--out", link)
    assert done.exit_code == 0, done.output
    assert link.is_symlink() and target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o640)
