"""``serve``: the shared backend: OTLP receiver (HTTP and gRPC) and the JSON API on one store."""

from __future__ import annotations

from collections.abc import Sequence

import click

from .. import settings
from .options import db_option, db_path, price_table, pricing_option
from .output import CLIError


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (others need --token)")
@click.option(
    "--port", default=4318, show_default=True, type=click.IntRange(0, 65535), help="OTLP/HTTP and API port"
)
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
    pricing: Sequence[str],
) -> None:
    """Receive OTLP spans from any process or language and answer cost questions over HTTP.

    OTLP/HTTP at POST /v1/traces, OTLP/gRPC on --grpc-port, the JSON API under /api/v1,
    OpenAPI docs at /docs. Needs: pip install 'otel-costattr[server]'.

    \b
    Example:
      otel-costattr serve --db spans.duckdb
      OTEL_COSTATTR_SERVE_TOKEN=s3cret otel-costattr serve --host 0.0.0.0
    """
    try:
        import uvicorn

        from ..server import SpanSink, check_bind, create_app
    except ImportError as e:
        raise CLIError(f"serve needs the server extra: pip install 'otel-costattr[server]' ({e})") from e
    try:
        check_bind(host, token)
        sink = SpanSink(db_path(db), pricing=price_table(pricing), capture_content=capture_content)
    except ValueError as e:
        raise CLIError(str(e)) from e
    services = []
    if grpc_port:
        from ..server.grpc_receiver import GrpcReceiver

        try:
            services.append(GrpcReceiver(sink, host, grpc_port, token=token))
        except (ValueError, RuntimeError) as e:
            raise CLIError(f"gRPC port {grpc_port}: {e}") from e
    shown = f"[{host}]" if ":" in host else host
    app = create_app(
        sink.path,
        token=token,
        sink=sink,
        base_url=base_url or f"http://{shown}:{port}",
        services=services,
        cors_origins=cors_origin,
    )
    click.echo(
        f"otel-costattr: receiving OTLP on http://{shown}:{port}/v1/traces"
        + (f" and gRPC {shown}:{grpc_port}" if grpc_port else "")
        + f", storing in {sink.path}",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
