"""``demo``: a simulated multi-agent workload traced into a DuckDB file, and where its money goes
(printed, and written as an HTML report beside the database)."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
from pathlib import Path

import click

from .. import demo as workload
from ..display import money
from ..rollups.queries import rollup
from .output import CLIError, Table, table_lines, terminal_width

_DEMO_COLUMNS = {  # narrower tables, so the demo fits one screen
    "per_agent": ("agent", "agent_version", "runs", "calls", "usd", "usd_per_run", "unpriced_calls"),
    "top_runs": ("trace_id", "agent", "feature", "start_time", "calls", "usd", "unpriced_calls"),
    "unpriced": ("cost_status", "provider", "model", "calls", "input_tokens", "output_tokens", "features"),
}
_SECTIONS = (
    ("What each feature costs", "per_feature", {}),
    ("Per agent and version", "per_agent", {}),
    (
        "The research loop, step by step (context grows; one run never stops)",
        "per_step",
        {"feature": "research"},
    ),
    ("The most expensive runs", "top_runs", {"limit": 5}),
    ("Calls without a price (never counted as $0, listed instead)", "unpriced", {}),
)


@click.command()
@click.option(
    "--db", metavar="PATH",
    help="where to write it (default: otel-costattr-demo.duckdb; a previous demo file is replaced);"
    " the HTML report goes beside it, the same name with .html",
)  # fmt: skip
def demo(db: str | None) -> None:
    """Trace a simulated multi-agent workload into a DuckDB file and show where the money goes.

    \b
    Example:
      otel-costattr demo --db demo.duckdb
    """
    started = time.perf_counter()
    shown = db or workload.DEFAULT_PATH  # as typed, for the commands printed below
    try:
        info = workload.run_demo(shown)
    except (ValueError, OSError) as e:  # an unwritable path: the exporter refuses it at start
        raise CLIError(str(e)) from e
    path = info["path"]
    total = rollup("stats", db=path)[0]
    echo = click.echo
    echo(
        f"Simulated {info['runs']} agent runs ({info['first_day']} to {info['last_day']}) through "
        f"CostSpanProcessor and DuckDBSpanExporter into {shown}\n"
        f"{total['calls']} model calls, {money(total['usd'])} in total, "
        f"{total['unpriced_calls']} calls without a price.\n"
    )
    width = terminal_width()
    for title, name, params in _SECTIONS:
        echo(f"== {title}  [otel-costattr rollup {name.replace('_', '-')}]")
        rows = rollup(name, db=path, **params)
        columns = _DEMO_COLUMNS.get(name, rows.columns)  # type: ignore[attr-defined]
        echo("\n".join(table_lines(Table(columns=columns, rows=rows), width=width)))
        echo()
    top = rollup("top_runs", db=path, limit=1)[0]["trace_id"]
    from ..report import Window, write_report  # here: the report formats with cli.output

    week = Window(
        since=dt.datetime.combine(info["first_day"], dt.time()),
        until=dt.datetime.combine(info["last_day"] + dt.timedelta(days=1), dt.time()),
    )
    page = write_report(path, Path(path).with_suffix(".html"), week)
    echo(f"The same as a page (charts, tables, waterfalls; opens offline): {page}\n")
    cmd = _command()
    echo("Next:")
    echo(f"  {cmd} trace {top} --db {shown}")
    echo(f"  {cmd} rollup per-model --agent triage --db {shown}  (routing on an expensive model)")
    echo(f"  {cmd} whatif --model claude-haiku-4-5 --agent triage --db {shown}  (on a small one?)")
    echo(f"  {cmd} rollup step-jumps --db {shown}  (a whole document stuffed into context)")
    echo(f"  {cmd} rollup loops --db {shown}  (runs with far more calls than their agent's median)")
    echo(f"  {cmd} rollup per-group --group-by app.tenant --db {shown}  (per tenant; user.id: per user)")
    echo(f"  {cmd} rollup --list")
    echo(f"  {cmd} report --db {shown} --days 7 --out costs.html  (the report, any window)")
    echo(f"(done in {time.perf_counter() - started:.1f} s)")


def _command() -> str:
    """How to type ``otel-costattr`` again: the bare name when it is on PATH, else the path it
    was started by (the README's ``.venv/bin/otel-costattr``), so the suggestions run as shown."""
    invoked = sys.argv[0] if sys.argv else ""
    if shutil.which("otel-costattr") or not invoked.endswith("otel-costattr"):
        return "otel-costattr"
    return invoked
