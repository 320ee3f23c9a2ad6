"""HEAD answered as GET without the body (RFC 9110, 9.3.2).

FastAPI's routes take only the methods they declare, so ``HEAD /healthz`` (what many uptime
monitors and load balancers send) and a HEAD on any API read or page was 405. `HeadAsGet`
hands a HEAD request to the app as its GET and passes on the status and headers, the
``Content-Length`` included, with an empty body. A route that takes no GET answers 405 as
before. GET reads change nothing, so HEAD is exactly as safe (the token and the cookie rules
of `auth` treat both alike).
"""

from __future__ import annotations

from typing import Any

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """ASGI middleware: a HEAD request runs as a GET whose body is not sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the body's parts are not sent; its end is, once
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class RootPath:
    """ASGI middleware: requests come through a reverse proxy at ``root`` (the path of
    ``--base-url``, ``/costs``): the scope's ``root_path`` says so unless the server set one,
    so that the pages' links, forms and redirects stay under it (they began at ``/``, and
    every click left ``/costs``: a review). Routing strips it from a path that carries it,
    and takes a path the proxy stripped as it is."""

    def __init__(self, app: Any, root: str) -> None:
        self.app = app
        self.root = root

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            scope = {**scope, "root_path": self.root}
        await self.app(scope, receive, send)
