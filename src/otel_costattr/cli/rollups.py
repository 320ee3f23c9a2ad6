"""``rollup``, ``runs`` and ``trace``: the bundled queries, with help text read from their
``-- @about`` / ``-- @param`` headers (the catalogue), never typed here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..display import visible_lines
from ..rollups.catalog import query, rollups
from ..rollups.errors import UnknownRollup
from ..rollups.explain import carries, explain_empty, find_trace, ungrouped
from ..rollups.params import WINDOW_PARAMS
from ..rollups.queries import Rows, rollup
from .options import db_option, db_path, did_you_mean, price_table, reprice_options, window_options
from .output import CLIError, Record, Table, output

# Shown in the table only when some row has a value: repricing, and a cut parent cycle.
_SPARSE = ("usd_repriced", "subtree_usd_repriced", "cycle_broken")


class RollupName(click.ParamType):
    """A bundled rollup's name (``per-feature`` or ``per_feature``); an unknown one is a usage
    error naming the closest."""

    name = "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return query(str(value)).name
        except UnknownRollup as e:
            names = [n.replace("_", "-") for n in rollups()]
            self.fail(f"{e}.{did_you_mean(str(value).replace('_', '-'), names)}", param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        names = (query(n) for n in rollups())
        return [CompletionItem(q.cli_name, help=q.about) for q in names if q.cli_name.startswith(incomplete)]


class TraceId(click.ParamType):
    """32 hex digits, any case (stored lower case), or a unique prefix of 4 or more."""

    name = "TRACE_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        trace_id = str(value).strip().lower()
        if not 4 <= len(trace_id) <= 32 or any(c not in "0123456789abcdef" for c in trace_id):
            self.fail(f"not a trace id (32 hex digits, or the first 4 or more): {value!r}", param, ctx)
        return trace_id


def _pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expects NAME=VALUE, got {item!r}", ctx, param)
        params[key.strip().replace("-", "_")] = value
    return params


def _option_for(p: Any) -> str:
    options = {"limit": "--limit N", "group_by": "--group-by KEY"}
    return options.get(p.name, f"--param {p.name}=...")


def _default(p: Any) -> str:
    if p.required:
        return "required"
    return f"default {p.default:g}" if isinstance(p.default, float) else f"default {p.default}"


def catalogue() -> list[dict[str, Any]]:
    """Every bundled rollup with what it answers and the parameters beyond the window."""
    out = []
    for name in rollups():
        q = query(name)
        extra = [p for p in q.params if p.name not in WINDOW_PARAMS]
        out.append(
            {
                "name": q.cli_name,
                "about": q.about,
                "params": [{"option": _option_for(p), "help": p.help, "default": _default(p)} for p in extra],
            }
        )
    return out


def _catalogue_text() -> str:
    lines = []
    items = catalogue()
    width = max(len(item["name"]) for item in items) + 2  # the abouts in one column
    for item in items:
        lines.append(f"{item['name']:<{width}}{item['about']}")
        lines += [f"{'':<{width}}{p['option']}  {p['help']} ({p['default']})" for p in item["params"]]
    return "\n".join(lines)


class RollupCommand(click.Command):
    """``rollup``'s help ends with the catalogue: each rollup's name and its ``@about`` line."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        with formatter.section("Rollups (from queries/*.sql)"):
            formatter.write_dl([(item["name"], item["about"]) for item in catalogue()])


def _run(
    name: str, db: str | None, reprice: bool, pricing: Sequence[str], where: Sequence[str] = (), **params: Any
) -> Rows:
    """Run the rollup; an empty answer gets, on stderr, what the store holds (`explain_empty`)."""
    table = price_table(pricing) if (reprice or pricing) else None
    given = {k: v for k, v in params.items() if v is not None}
    rows = rollup(name, db=db_path(db), reprice=table, where=list(where), **given)
    # stats and overview always answer a total row: of zero calls, it is no answer either.
    nothing = not rows or (name in ("stats", "overview") and not any(row["calls"] for row in rows))
    if nothing and name != "trace":
        said = "No rows" if not rows else "No calls"  # beside a total row of zeros, not "no rows"
        click.echo(visible_lines(f"{said}: {explain_empty(db_path(db), given, where=list(where))}"), err=True)
    elif given.get("group_by"):
        key = str(given["group_by"]).strip()
        # A rollup that groups by itself (per-group, compare, forecast: not the generic
        # --group-by) has a row for every call of its own window; another may hold some only.
        whole = not query(name).groups
        carried = None if whole else lambda: carries(db_path(db), key, given, list(where))
        if hint := ungrouped(rows, key, carried):
            click.echo(visible_lines(f"Note: {hint}"), err=True)
    if name in _LISTS:
        limit = given.get("limit", next(p.default for p in query(name).params if p.name == "limit"))
        if note := limit_note(len(rows), limit):
            click.echo(note, err=True)
    return rows  # type: ignore[no-any-return]


# Lists of runs cut at a limit by default (100, 20 for `runs`): a store of 5,000 runs
# showed its first 100 and no word of the rest (a review). top-runs asks for the top N.
_LISTS = ("per_run", "runs_list")


def limit_note(runs: int, limit: Any) -> str | None:
    """What to say on stderr when ``runs`` runs listed may have been cut at ``limit`` (0: none)."""
    try:
        reached = int(limit) > 0 and runs >= int(limit)
    except (TypeError, ValueError):
        return None
    return f"Note: {runs} runs, the limit: there may be more (--limit 0 lists them all)" if reached else None


def _table(rows: Rows, *, tree: bool = False) -> Table:
    return Table(columns=rows.columns, rows=rows, sparse=_SPARSE, tree=tree, types=rows.types)


@click.command(cls=RollupCommand)
@click.argument("name", type=RollupName(), required=False)
@click.option("--list", "show_list", is_flag=True, help="list the rollups and their parameters")
@window_options(limited="runs (rollups taking a limit)")
@click.option(
    "--param", "param", multiple=True, metavar="NAME=VALUE", callback=_pairs,
    help="a parameter the rollup declares (e.g. min_ratio=3); repeatable",
)  # fmt: skip
@reprice_options
@output
def rollup_command(
    name: str | None, show_list: bool, param: dict[str, str], **options: Any
) -> Table | Record:
    """Run a bundled rollup over the spans in a store (a DuckDB file, or ClickHouse).

    \b
    Example:
      otel-costattr rollup per-feature --db spans.duckdb --days 7
      otel-costattr rollup step-jumps --param min_ratio=3 --format json
    """
    if show_list:
        return Record(data={"rollups": catalogue()}, text=_catalogue_text())
    if name is None:
        raise click.UsageError("name a rollup (see 'otel-costattr rollup --list')")
    clash = sorted(set(param) & {*options, "db", "reprice", "pricing", "where"})
    if clash:  # e.g. --param group-by=x: an option of its own (it raised a TypeError)
        option = clash[0].replace("_", "-")
        raise click.UsageError(f"--param {option}: use --{option} instead")
    rows = _run(name, **options, **param)
    return _table(rows, tree=name == "trace")


@click.command()
@window_options(limit=20, group_by=False)
@reprice_options
@output
def runs(**options: Any) -> Table:
    """The latest runs (traces): agent, feature, duration, calls, cost, unpriced calls.

    \b
    Example:
      otel-costattr runs --db spans.duckdb --agent researcher --limit 5
    """
    rows = _run("per_run", **options)
    return _table(rows)


@click.command()
@click.argument("trace_id", type=TraceId())
@db_option
@reprice_options
@output
def trace(trace_id: str, db: str | None, reprice: bool, pricing: Sequence[str]) -> Table:
    """One run as a tree: each span's own cost and its subtree's (TRACE_ID: the id, or its
    first digits when no other stored run starts with them).

    \b
    Example:
      otel-costattr trace 4bf92f3577b34da6a3ce929d0e0e4736 --db spans.duckdb
      otel-costattr trace 4bf92f --db spans.duckdb
    """
    if len(trace_id) < 32:
        trace_id = find_trace(db_path(db), trace_id)
    rows = _run("trace", db, reprice, pricing, trace_id=trace_id)
    if not rows:
        raise CLIError(f"no spans for trace {trace_id} in {db_path(db)}")
    return _table(rows, tree=True)
