"""The Host check of a server without a token: a defence against DNS rebinding.

Without a token, ``serve`` binds loopback only, and any program on the machine may read and
write. A web page may not (no CORS), but a page served from a name its owner then points at
127.0.0.1 (DNS rebinding) is, to the browser, the same origin as the server: it could read
the costs and send spans through a visitor's browser. Such requests carry that name in their
``Host`` header, so a server without a token answers only requests whose Host is a loopback
name or address, or the host of ``--base-url`` (what a reverse proxy in front forwards):
421 Misdirected Request otherwise, with a line saying what to pass. With a token, the token
guards every request (a rebound page has no cookie for this origin), and Host is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import otlp_wire as wire
from .auth import export_refusal
from .bind import is_loopback

__all__ = ["HostCheck"]


def host_name(value: str) -> str:
    """The name of a Host header's value, without its port, lower case ('[::1]:4318' -> '::1')."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostCheck:
    """Pure ASGI middleware: HTTP requests whose Host is not loopback nor one of ``allowed``
    get 421. A request without Host (HTTP/1.0) passes: browsers always send one."""

    def __init__(self, app: Any, allowed: Iterable[str] = ()) -> None:
        self.app = app
        self._allowed = frozenset(host_name(h).rstrip(".") for h in allowed if h)

    def allows(self, host: str) -> bool:
        name = host_name(host).rstrip(".")
        return name in self._allowed or is_loopback(name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            hosts = [v for k, v in scope.get("headers", []) if k == b"host"]
            if hosts and not all(self.allows(v.decode("latin-1")) for v in hosts):
                message = (
                    b"otel-costattr: this server answers only requests for localhost (it has no"
                    b" token); to reach it by another name, pass --base-url with that name, or"
                    b" --token\n"
                )
                body, kind = message, b"text/plain; charset=utf-8"
                if export := export_refusal(scope, wire.INVALID_ARGUMENT, message.decode().strip()):
                    body, kind = export[0], export[1].encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 421,
                        "headers": [
                            (b"content-type", kind),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
