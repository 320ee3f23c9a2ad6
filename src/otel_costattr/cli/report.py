"""``report``: the rollups as one self-contained HTML file (`otel_costattr.report`)."""

from __future__ import annotations

import click

from .options import check_out, db_path, window_options
from .output import CLIError


@click.command()
@window_options(limit=100, group_by=False, where=False)
@click.option(
    "--out", metavar="FILE", default="costs.html", show_default=True, callback=check_out,
    help="where to write it",
)  # fmt: skip
@click.option(
    "--waterfalls",
    metavar="N",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="waterfalls of the N most expensive runs (a run with a jump or a loop always gets one)",
)
def report(db: str | None, out: str, limit: str, waterfalls: int, **win: str | None) -> None:
    """Write the rollups as one HTML file that opens offline: the overview against the period
    before, cost over time, per feature, agent, step and model, the tail, the runs (--limit,
    newest first) and waterfalls.

    \b
    Example:
      otel-costattr report --db spans.duckdb --days 30 --out costs.html
    """
    from ..report import ReportError, window, write_report  # here: the report formats with cli.output

    try:
        path = write_report(db_path(db), out, window(**win), runs=limit, waterfalls=waterfalls)
    except ReportError as e:
        raise CLIError(str(e)) from e
    click.echo(f"Wrote {path}")
