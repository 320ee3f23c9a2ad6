"""``whatif``, ``compare``, ``forecast``: the questions users ask beyond one rollup's table.
``whatif`` reprices (the Python API: `otel_costattr.whatif`); ``compare`` and ``forecast``
run the bundled rollups of those names with a default window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..display import visible, visible_lines
from ..rollups.explain import explain_empty, near, ungrouped
from ..rollups.queries import rollup
from ..rollups.whatif import whatif
from .options import db_option, db_path, pricing_option, window_options
from .output import Table, output
from .rollups import limit_note


@click.command("whatif")
@click.option("--model", "target", required=True, metavar="TARGET", help="the model to price the calls at")
@click.option("--provider", help="the target's provider, when its name is ambiguous")
@click.option(
    "--from", "from_model", metavar="MODEL", help="only calls of this model (as reported or priced)"
)
@click.option(
    "--step", metavar="N", type=click.IntRange(min=0),
    help="only calls at this agent step (0: the first call of each agent run)",
)  # fmt: skip
@window_options(limit=20, group_by=False)
@pricing_option
@output
def whatif_command(
    target: str,
    provider: str | None,
    from_model: str | None,
    db: str | None,
    where: Sequence[str],
    pricing: Sequence[str],
    **params: Any,
) -> Table:
    """What would these calls have cost on another model? Reprices the selected calls'
    stored tokens at the target's prices (cache and tiers applied): actual against what-if,
    in total, per feature and per run (the largest differences; --limit). An estimate: another
    model would tokenise and answer differently.

    \b
    Example:
      otel-costattr whatif --model gpt-4o-mini --agent triage --step 0 --db spans.duckdb
      otel-costattr whatif --model claude-haiku-4-5 --from claude-sonnet-4-5 --days 7
    """
    given = {k: v for k, v in params.items() if v is not None}
    answer = whatif(
        db_path(db), target, provider=provider, from_model=from_model, reprice=list(pricing),
        where=list(where), **given,
    )  # fmt: skip
    priced_as = answer.target.split("/", 1)[1]
    if priced_as != target:
        # A rule such as starts_with took a mistyped id for a known one ("gpt-5-nano-xyz"
        # priced as gpt-5-nano, said only in the title: a review), or a snapshot for its model.
        click.echo(
            visible_lines(f"Note: {target} is priced as {answer.target}, the entry the table matches it to"),
            err=True,
        )
    for row in answer.unpriceable:
        click.echo(
            visible(
                f"Not repriced: {row['calls']} call(s) of {row['model']} ({row['provider']}): "
                f"{row['cost_status']}, no usable token counts"
            ),
            err=True,
        )
    total = [row for row in answer.rows if row["level"] == "total"]
    if not any(row["calls"] for row in total):  # the window and filters hold no call: say why
        window = {k: v for k, v in given.items() if k not in ("step", "limit")}
        said = f"No calls: {explain_empty(db_path(db), window, where=list(where))}"
        click.echo(visible_lines(said), err=True)
    elif not sum(row["selected_calls"] or 0 for row in total):
        click.echo(visible_lines(f"No calls selected: {_none_selected(db, from_model, given)}"), err=True)
    if note := limit_note(sum(row["level"] == "run" for row in answer.rows), given.get("limit")):
        click.echo(note, err=True)
    title = f"What-if at {answer.target} prices: {answer.note}"
    return Table(columns=answer.rows.columns, rows=answer.rows, title=title, types=answer.rows.types)


def _none_selected(db: str | None, from_model: str | None, given: dict[str, Any]) -> str:
    """Why ``whatif`` selected no call among those of its window: which selection it was, and
    for ``--from`` the closest models the window holds (as `explain_empty` does for filters)."""
    asked = [f"--from {from_model}"] if from_model else []
    asked += [f"--step {given['step']}"] if given.get("step") is not None else []
    if not from_model:
        return f"no call of the window matches {' '.join(asked) or 'the selection'}"
    window = {k: v for k, v in given.items() if k != "step" and k != "limit"}
    models = sorted({str(r["model"]) for r in rollup("per_model", db=db_path(db), **window) if r["model"]})
    return f"no call of the window matches {' '.join(asked)} ({near(from_model, models)})"


def _grouped(name: str, db: str | None, where: Sequence[str], params: dict[str, Any]) -> Table:
    given = {k: v for k, v in params.items() if v is not None}
    rows = rollup(name, db=db_path(db), where=list(where), **given)
    if len(rows) <= 1 and not any(r["runs"] for r in rows):
        said = "No rows" if not rows else "No calls"  # beside a total row of zeros, not "no rows"
        click.echo(visible_lines(f"{said}: {explain_empty(db_path(db), given, where=list(where))}"), err=True)
    elif given.get("group_by") and (hint := ungrouped(rows, str(given["group_by"]).strip())):
        click.echo(visible_lines(f"Note: {hint}"), err=True)
    return Table(columns=rows.columns, rows=rows, types=rows.types)


@click.command("compare")
@window_options(limits=False)  # every value is shown
@output
def compare_command(db: str | None, where: Sequence[str], **params: Any) -> Table:
    """Is this period costing more than the last? This period (default: the last 7 days)
    against the one before it, of the same length, per feature (--group-by agent, model,
    user.id, ...): usd then and now, the change, the biggest movers first.

    \b
    Example:
      otel-costattr compare --days 7 --db spans.duckdb
      otel-costattr compare --since 2026-11-01 --until 2026-11-15 --group-by model
    """
    return _grouped("compare", db, where, params)


@click.command("forecast")
@db_option
@click.option(
    "--until", metavar="WHEN", help="as of this UTC date or time (default: now); its month is projected"
)
@click.option("--service", help="only spans of this service.name")
@click.option("--feature", help="only model calls attributed to this feature")
@click.option("--agent", help="only model calls attributed to this agent")
@click.option(
    "--where", multiple=True, metavar="KEY=VALUE", help="only model calls whose KEY is VALUE (repeatable)"
)
@click.option("--group-by", "group_by", metavar="KEY", help="project per this key instead of per feature")
@output
def forecast_command(db: str | None, where: Sequence[str], **params: Any) -> Table:
    """Where will this month end? Month to date and a linear month-end projection per feature
    (or --group-by KEY), beside last month's cost; month_elapsed says how much of the month
    the line stands on.

    \b
    Example:
      otel-costattr forecast --db spans.duckdb
      otel-costattr forecast --group-by app.tenant --until 2026-11-20
    """
    return _grouped("forecast", db, where, params)
