"""``clickhouse``: set up a ClickHouse span store (the Collector's ``otel_traces``) for the
rollups. The rollups themselves need nothing but ``--db clickhouse://...``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click

from .output import CLIError


@click.group("clickhouse")
def clickhouse() -> None:
    """A ClickHouse store: the OpenTelemetry Collector's otel_traces table.

    \b
    Example:
      otel-costattr clickhouse init --db clickhouse://default:secret@localhost:8123/otel
      otel-costattr rollup per-feature --db clickhouse://default:secret@localhost:8123/otel
    """


@clickhouse.command("init")
@click.option(
    "--db",
    required=True,
    metavar="URL",
    help="clickhouse://user:password@host:8123/database or chdb:///path "
    "(?table=NAME when the Collector's traces_table_name is not otel_traces)",
)
@click.option(
    "--ttl-days",
    type=click.IntRange(min=1),
    default=None,
    help="drop typed rows (and, at each settle, settled calls) older than this many days"
    " (match the Collector's ttl; at most 10000: ClickHouse's DateTime ends in 2106)",
)
@click.option("--no-backfill", is_flag=True, help="do not copy the spans already in the table")
def init(db: str, ttl_days: int | None, no_backfill: bool) -> None:
    """Create the typed table the rollups read instead of the Map columns (several times
    faster), and the materialized view that fills it as the Collector inserts; then settle
    the calls already there (see settle).

    A span inserted while the existing ones are copied lands twice in the typed table; the
    rollups count each (trace id, span id) once.

    \b
    Example:
      otel-costattr clickhouse init --db clickhouse://default:secret@localhost:8123/otel --ttl-days 30
    """  # noqa: D301
    from ..clickhouse.client import connect
    from ..clickhouse.settle import settle_store
    from ..clickhouse.typed import MATERIALIZED_VIEW, TYPED_TABLE, check_ttl_days, initialise, older_spans

    with _errors(db):
        target = _target(db)
        check_ttl_days(ttl_days)  # before the database is made
        # The store must hold the Collector's table already: a folder or a database init
        # made would be left behind by the "no table" refusal that follows.
        client = connect(target)
        rows = initialise(client, target, ttl_days=ttl_days, backfill=not no_backfill)
        click.echo(f"{TYPED_TABLE}: {rows} rows; {MATERIALIZED_VIEW} fills it from {target.table}")
        if ttl_days and (older := older_spans(client, target, ttl_days)):
            click.echo(
                f"note: {older} spans in {target.table} started more than --ttl-days {ttl_days} days ago:"
                f" {TYPED_TABLE} does not keep them, and the rollups leave them out"
                f" (give {target.table} the same TTL: the Collector's ttl; or a longer --ttl-days)",
                err=True,
            )
        _said(settle_store(target))


@clickhouse.command("settle")
@click.option(
    "--db", required=True, metavar="URL", help="clickhouse://user:password@host:8123/database or chdb:///path"
)
def settle(db: str) -> None:
    """Settle, once, what the rollups would otherwise work out at every query: the feature
    and agent of calls that lack them (walked up their ancestors, kept once they can no
    longer change) and the cost of calls stored without one. Idempotent and incremental (only
    calls not settled yet), safe beside the Collector's inserts and another settle. With the
    typed table (init), each call whose answer can no longer change is also written once,
    complete, to costattr_calls_settled_v2 (partitioned by day: a window reads its days), which
    rollups then read without a join; the first settle after an upgrade copies the settled
    calls of an older layout there (costattr_calls_settled, then dropped). Writes only our own
    tables (costattr_settled, costattr_calls_settled_v2, costattr_settle_marks). Run it from
    cron; serve --db clickhouse:// runs it every minute.

    \b
    Example:
      otel-costattr clickhouse settle --db clickhouse://default:secret@localhost:8123/otel
    """  # noqa: D301
    from ..clickhouse.settle import settle_store

    with _errors(db):
        _said(settle_store(_target(db)))


def _target(db: str) -> Any:
    from ..clickhouse.target import masked, parse_target

    target = parse_target(db)
    if target is None:
        raise ValueError(f"--db {masked(db)}: not a ClickHouse URL (clickhouse://... or chdb:///path)")
    return target


def _said(done: Any) -> None:
    from ..clickhouse.ledger import CALLS_TABLE
    from ..clickhouse.settle import SETTLED_TABLE

    said = f"{SETTLED_TABLE}: {done.identities} identities settled, {done.prices} unstamped calls settled"
    click.echo(f"{said}; {CALLS_TABLE}: {done.calls} calls written")


@contextlib.contextmanager
def _errors(db: str) -> Iterator[None]:
    """The store's errors as one ``Error:`` line."""
    from ..clickhouse.client import ClickHouseError, server_line

    try:
        yield
    except (ValueError, ClickHouseError) as e:
        raise CLIError(str(e)) from e
    except Exception as e:  # the server's own error, one line
        raise CLIError(f"{db.split('@')[-1]}: {server_line(e)}") from e


def serve_clickhouse(
    db: str,
    *,
    host: str,
    port: int,
    token: str | None,
    base_url: str,
    cors_origin: tuple[str, ...] | list[str],
    no_dashboard: bool,
    refused: dict[str, bool],
    watcher: Any = None,
) -> None:
    """``serve --db clickhouse://...``: the API and dashboard over ClickHouse, read-only (the
    Collector receives there: `otel_costattr.clickhouse.serving`). ``refused``: the options
    given that only a receiving server honours (each refused in one line, before binding).
    ``watcher``: the `alerts.watch.AlertWatcher` of ``--alerts``, run in the app's lifespan."""
    from ..clickhouse.serving import check_store, read_only_app

    for option, given in refused.items():
        if given:
            raise CLIError(
                f"{option}: a ClickHouse store is written by the OpenTelemetry Collector; "
                "serve only reads it (drop the option)"
            )
    try:
        target, typed = check_store(db)
    except ValueError as e:
        raise CLIError(str(e)) from e
    if not typed:  # a review: every dashboard page took 14-21 s on a small chDB store
        click.echo(
            f"otel-costattr: note: no typed table in {target.display()}: every query reads "
            f"{target.table}'s Map columns, about 1.5 s of CPU each however few the spans, and a "
            f"dashboard page runs several. Run `otel-costattr clickhouse init --db URL` once to "
            "make them fast.",
            err=True,
        )
    app = read_only_app(
        db,
        token=token,
        base_url=base_url,
        dashboard=not no_dashboard,
        cors_origins=cors_origin,
        services=[watcher] if watcher is not None else [],
    )
    app.state.alerts = watcher  # /healthz shows its counters
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"otel-costattr: reading {target.display()} ({target.table}), read-only: OTLP goes to the "
        f"Collector (POST http://{shown}:{port}/v1/traces answers 501); API at {base_url}/api/v1 "
        f"(reference: {base_url}/docs)",
        err=True,
    )
    if not no_dashboard:
        how = f" (first visit: {base_url}/?token=<the token>)" if token else ""
        click.echo(f"otel-costattr: dashboard at {base_url}/{how}", err=True)
    from ..server.connections import run

    run(app, host, port)
