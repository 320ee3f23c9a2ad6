"""The ``otel-costattr`` command line, on click.

One command group (`cli`); one module per command group (``pricing``, ``rollups``, ``store``,
``demo``); one output layer (`output.output`: ``--format table|json|csv|parquet``). Library
code raises specific exceptions; `Group.invoke` alone turns them into ``Error: ...`` with exit
code 1. Usage errors exit 2, an unknown command with the closest name. Every command's help
carries an example (a test walks the tree).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import settings
from ..alerts.rules import AlertRulesError
from ..demo import DemoError
from ..pricing.model import PricingError
from ..rollups.errors import RollupError
from ..store.database import StoreError
from ..version import __version__
from .alerts import alerts
from .clickhouse import clickhouse
from .demo import demo
from .options import did_you_mean
from .output import CLIError
from .pricing import price, pricing
from .questions import compare_command, forecast_command, whatif_command
from .report import report
from .rollups import rollup_command, runs, trace
from .serve import serve
from .store import store

__all__ = ["CLIError", "cli", "main"]

# What the library raises for a bad input or a failure the user can act on: one line, exit 1.
FAILURES = (RollupError, PricingError, StoreError, DemoError, AlertRulesError)


class Group(click.Group):
    """A command group that suggests the closest command and turns library failures into
    ``Error: <message>`` (exit 1) in one place."""

    group_class = type  # sub-groups (pricing, store) are of this class too

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            if args and self.get_command(ctx, args[0]) is None and not args[0].startswith("-"):
                hint = did_you_mean(args[0], self.list_commands(ctx))
                raise click.UsageError(e.message.rstrip(".") + "." + hint, ctx) from None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        # Bad configuration stops every command at start, in one line, even one that would
        # not have read it this time (help still shows).
        if ctx.parent is None and not set(ctx.args) & set(ctx.help_option_names):
            try:
                settings.check()
            except ValueError as e:
                raise CLIError(str(e)) from e
        try:
            return super().invoke(ctx)
        except FAILURES as e:
            raise CLIError(_as_typed(str(e))) from e
        except BrokenPipeError:  # `otel-costattr ... | head`: the reader has what it wanted
            sys.stdout = click.utils.PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
            ctx.exit(0)


def _as_typed(message: str) -> str:
    from ..rollups.catalog import as_typed  # the catalogue is read only for a failure

    return as_typed(message)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="otel-costattr", message="%(prog)s %(version)s")
def cli() -> None:
    """Cost attribution for OpenTelemetry GenAI spans.

    \b
    Example:
      otel-costattr demo
      otel-costattr rollup per-feature --db spans.duckdb --days 7
    """
    # clickhouse-connect logs a warning for a connection it then raises about; the command
    # says it once, as its one Error line (clickhouse.client names the reason).
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)


cli.add_command(pricing)
cli.add_command(price)
cli.add_command(rollup_command, "rollup")
cli.add_command(runs)
cli.add_command(trace)
cli.add_command(store)
cli.add_command(demo)
cli.add_command(alerts)
cli.add_command(whatif_command, "whatif")
cli.add_command(compare_command, "compare")
cli.add_command(forecast_command, "forecast")
cli.add_command(serve)
cli.add_command(report)
cli.add_command(clickhouse)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otel-costattr`` command: run `cli` on ``argv`` (default: the
    process arguments) and return the exit status instead of exiting, so a caller (and the
    tests) can call it like a function."""
    try:
        cli.main(args=None if argv is None else [str(a) for a in argv], prog_name="otel-costattr")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0
