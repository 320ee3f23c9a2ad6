"""``serve``: the shared backend: OTLP receiver (HTTP and gRPC), the JSON API and the live
dashboard on one store, with the alert rules evaluated continuously when ``--alerts`` names them."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import click
from click.core import ParameterSource

from .. import settings
from ..alerts.rules import load_rules
from ..alerts.watch import AlertWatcher
from ..clickhouse.target import is_clickhouse_url
from ..store.database import StoreError
from .clickhouse import serve_clickhouse
from .options import db_path, duration_option, pricing_option, writing_db_option
from .output import CLIError

MAX_DEFAULT_WORKERS = 4  # each is a whole interpreter with the price table: memory, not speed


def default_workers() -> int:
    """A mapping worker per core the process may use (at most `MAX_DEFAULT_WORKERS`) when it
    may use two or more, else none. Measured on a quiet 2-core machine
    (benchmarks/bench_receiver.py --kinds http-pb-raw --workers 0 1 2 --clients 2): two
    producers sending at once got 34.8k spans/s with two workers, 21.5k with one, 21.6k with
    none; one producer (one request at a time) gets the same ~22k with one or two, bound by its
    request's latency. On one core a worker would only add the pipe and the context switches.
    The cores this process may use where the system says (Linux), else the machine's."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only: not macOS, not Windows
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return min(cores, MAX_DEFAULT_WORKERS) if cores >= 2 else 0


@click.command()
@writing_db_option("the spans it receives are stored in it")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (others need --token)")
@click.option(
    "--port", default=4318, show_default=True, type=click.IntRange(0, 65535),
    help="OTLP/HTTP and API port (0: a free one, printed at start)",
)  # fmt: skip
@click.option(
    "--grpc-port", default=4317, show_default=True, type=click.IntRange(0, 65535),
    help="OTLP/gRPC port (0: no gRPC)",
)  # fmt: skip
@click.option(
    "--token", envvar=settings.SERVE_TOKEN, default=None, show_envvar=True,
    help="bearer token every request must carry (needed to bind a non-loopback address)",
)  # fmt: skip
@click.option(
    "--base-url",
    default=None,
    help="the URL clients reach this server at (for links); default from host and port",
)
@click.option("--capture-content", is_flag=True, help="store prompt and completion text (off: never stored)")
@click.option(
    "--cors-origin", multiple=True, help="allow browser requests from this origin (repeatable; default none)"
)
@click.option(
    "--alerts", "alerts_path", default=None, metavar="FILE",
    help="evaluate these alert rules (alerts.toml) every --alerts-interval while serving",
)  # fmt: skip
@duration_option("--alerts-interval", default="60s", help="time between alert evaluations (50ms, 30s, 5m)")
@click.option(
    "--alerts-state", metavar="FILE",
    help="with a ClickHouse --db and --alerts: the local DuckDB file keeping the alert states",
)  # fmt: skip
@click.option("--no-dashboard", is_flag=True, help="no dashboard at / (it redirects to the API docs)")
@click.option(
    "--workers", default=None, type=click.IntRange(0, 64),
    help="processes that decode and map received spans beside the server (0: in the request threads;"
    " default: one per core, at most 4, with two cores or more; else 0)",
)  # fmt: skip
@pricing_option
def serve(
    db: str | None,
    host: str,
    port: int,
    grpc_port: int,
    token: str | None,
    base_url: str | None,
    capture_content: bool,
    cors_origin: Sequence[str],
    alerts_path: str | None,
    alerts_interval: float,
    alerts_state: str | None,
    no_dashboard: bool,
    workers: int | None,
    pricing: Sequence[str],
) -> None:
    """Receive OTLP spans from any process or language and answer cost questions over HTTP.

    OTLP/HTTP at POST /v1/traces, OTLP/gRPC on --grpc-port, the dashboard at /, the JSON
    API under /api/v1, OpenAPI docs at /docs. With --token, a browser opens the dashboard
    once as /?token=TOKEN (a session cookie then lets it read). --alerts evaluates alert
    rules continuously; their links point at --base-url. Needs the server extra (from a
    clone: pip install -e '.[server]'). With --db clickhouse://... (or chdb:///path), the API
    and the dashboard read that store and receive nothing: the OpenTelemetry Collector writes it
    (POST /v1/traces answers 501; --grpc-port, --capture-content, --pricing, --workers are
    refused; --alerts keeps its states in the --alerts-state file).

    \b
    Example:
      otel-costattr serve --db spans.duckdb
      OTEL_COSTATTR_SERVE_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))') \\
        otel-costattr serve --host 0.0.0.0
      otel-costattr serve --alerts alerts.toml --alerts-interval 30s
      otel-costattr serve --db clickhouse://default:secret@localhost:8123/otel
    """
    try:
        import uvicorn  # noqa: F401  (the [server] extra: said in one line when missing)

        from ..report.live import routes
        from ..server import Service, SpanSink, check_bind, clean_token, create_app
        from ..server.bind import bare_host, check_base_url, check_origins
        from ..server.mapping import PricingFiles
    except ImportError as e:
        raise CLIError(
            f"serve needs the server extra: pip install 'otel-costattr[server]' (from a clone: "
            f"pip install -e '.[server]') ({e})"
        ) from e
    given_base = base_url
    try:
        host = bare_host(host)
        token = clean_token(token)
        check_bind(host, token)
        check_origins(cors_origin)
        if given_base is not None:
            check_base_url(given_base)
        # As the exporter reads it: the flag turns capture on, the variable too; a bad value stops here.
        capture_content = settings.flag(settings.CAPTURE_CONTENT) or capture_content
    except ValueError as e:
        raise CLIError(str(e)) from e
    shown = f"[{host}]" if ":" in host else host
    # Every configuration mistake shows here, before anything is opened or bound.
    rules = load_rules(alerts_path) if alerts_path else None  # AlertRulesError: one line, exit 1
    clickhouse = is_clickhouse_url(db)  # the API and dashboard only: the Collector receives there
    if alerts_state is not None and not clickhouse:
        # A DuckDB store keeps its alert states in itself: the file would be silently unused.
        raise CLIError(
            "--alerts-state: only with a ClickHouse --db (a DuckDB store keeps its own alert states)"
        )
    if alerts_state is not None and rules is None:
        raise CLIError("--alerts-state: only with --alerts (it keeps the states of those rules)")
    if grpc_port and grpc_port == port and not clickhouse:
        raise CLIError(
            f"--grpc-port {grpc_port}: the same port as --port: OTLP/HTTP and OTLP/gRPC each need"
            " their own (--grpc-port 0: no gRPC)"
        )
    # --port 0: the port the system picks now, so the start-up lines and the links (alerts,
    # pages) name the port clients reach, not ":0".
    port = _check_port(host, port)
    base_url = (base_url or f"http://{shown}:{port}").rstrip("/")
    if grpc_port and not clickhouse:
        _check_port(host, grpc_port, "gRPC port")  # else grpc's own log line, then a vague error
    if clickhouse:
        given = click.get_current_context().get_parameter_source
        explicit_grpc = given("grpc_port") not in (ParameterSource.DEFAULT, None) and grpc_port != 0
        refused = {
            "--grpc-port": explicit_grpc,
            "--capture-content": capture_content,
            "--pricing": bool(pricing),  # prices what it receives; the rollups price with the bundled table
            "--workers": workers is not None,  # they map what it receives
        }
        watcher = None
        if rules is not None:  # measured in ClickHouse, states in the --alerts-state file
            if alerts_state is None:
                raise CLIError(
                    "--alerts: a ClickHouse store's alert states are kept in a local DuckDB file: "
                    "give --alerts-state FILE"
                )
            try:
                watcher = AlertWatcher(
                    str(db), rules, interval=alerts_interval, base_url=base_url, state=alerts_state
                )
            except StoreError as e:
                raise CLIError(f"--alerts-state: {e}") from e
        serve_clickhouse(
            str(db), host=host, port=port, token=token, base_url=base_url, cors_origin=cors_origin,
            no_dashboard=no_dashboard, refused=refused, watcher=watcher,
        )  # fmt: skip
        return
    try:
        sink = SpanSink(
            db_path(db),
            pricing=PricingFiles(tuple(pricing)),
            capture_content=capture_content,
            workers=default_workers() if workers is None else workers,
        )
        sink.start()  # the mapping workers, warm before the first request (lifespan: no-op)
    except ValueError as e:
        raise CLIError(str(e)) from e
    services: list[Service] = []
    watcher = None
    if rules is not None:
        watcher = AlertWatcher(sink.path, rules, interval=alerts_interval, base_url=base_url)
        services.append(watcher)
    if grpc_port:
        from ..server.grpc_receiver import GrpcReceiver

        try:
            services.append(GrpcReceiver(sink, host, grpc_port, token=token))
        except (ValueError, RuntimeError) as e:
            raise CLIError(f"gRPC port {grpc_port}: {e}") from e
    app = create_app(
        sink.path,
        token=token,
        sink=sink,
        base_url=base_url,
        extra_routes=() if no_dashboard else routes(sink.path, sink.pricing),
        services=services,
        cors_origins=cors_origin,
    )
    app.state.alerts = watcher  # /healthz shows its counters
    listening = f"http://{shown}:{port}"
    click.echo(
        f"otel-costattr: listening on {listening} (OTLP at /v1/traces, API at /api/v1, reference at /docs)"
        + (f" and gRPC {shown}:{grpc_port}" if grpc_port else "")
        + f", storing in {sink.path}"
        + (f"; links (alerts, pages) use {base_url}" if given_base is not None else ""),
        err=True,
    )
    if capture_content:
        click.echo("otel-costattr: prompt and completion text is stored (capture content is on)", err=True)
    if not no_dashboard:
        # The token itself is never printed: this line may end up in a log.
        how = f" (first visit: {base_url}/?token=<the token>)" if token else ""
        click.echo(f"otel-costattr: dashboard at {base_url}/{how}", err=True)
    if given_base is None and host.strip("[]") in ("0.0.0.0", "::"):
        click.echo(
            f"otel-costattr: note: links (alerts, pages) say {base_url}; pass --base-url with the"
            " address others reach this server at",
            err=True,
        )
    if rules is not None:
        click.echo(
            f"otel-costattr: alerts: {len(rules.rules)} rules from {alerts_path}, every {alerts_interval:g}s",
            err=True,
        )
    from ..server.connections import run

    run(app, host, port)


def _check_port(host: str, port: int, what: str = "port") -> int:
    """The port to serve on: ``port``, checked, or for 0 the free port the system picks.
    One ``Error:`` line when the HTTP (or gRPC) port cannot be bound (in use, not allowed),
    instead of uvicorn's log line and exit 3 after the start-up lines said all was well (or
    grpc's C-core log line before an error that does not say why). The probe is closed
    before the server binds: a port taken in between fails as any port in use would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as e:
            raise CLIError(f"{what} {port} on {host}: {e.strerror or e}") from e
        return int(probe.getsockname()[1])
