"""The token check of ``serve``, for programs and for browsers.

Programs send ``Authorization: Bearer <token>`` on every request (OTLP and API alike). A
browser following a link sends no header, so it gets one safe way in:

1. open any page once with ``?token=<token>`` (a GET or HEAD): the token is compared in
   constant time; when right, the answer is a 303 to the same URL without ``token`` and a
   cookie: HttpOnly (no script reads it), SameSite=Lax (sent on a top-level navigation from
   another site, such as an alert's link opened from Slack or webmail, never on another
   site's requests from script, forms posting or frames), Path=/, Secure over https,
   ``Max-Age`` `SESSION_SECONDS`. The cookie holds the time it was issued and an HMAC of
   that time under a key drawn at random when the server starts: never the token, so it
   cannot be replayed as the bearer token nor tested offline against guesses of it; the
   server refuses it once older than `SESSION_SECONDS`, and every cookie ends when the
   server restarts (open a page with ``?token=`` again);
2. the cookie is accepted for GET and HEAD only (pages and API reads, which change nothing):
   never for ``POST /v1/traces`` or any other write, so a cookie can read but never send spans.

The scheme of ``Authorization`` is read case-insensitively (RFC 9110: ``bearer`` is
``Bearer``). A wrong or missing token is a 401: OTLP's ``google.rpc.Status`` on ``/v1/traces``, a short
HTML page naming the way in for a browser (``Accept: text/html``), JSON otherwise. No answer
ever repeats a token (a ``Location`` included).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.responses import Response

from . import otlp_wire as wire

__all__ = [
    "COOKIE",
    "SESSION_SECONDS",
    "TOKEN_PARAM",
    "BearerAuth",
    "bearer_matches",
    "cookie_name",
    "export_refusal",
    "route_path",
]

COOKIE = "otel_costattr_session"
TOKEN_PARAM = "token"
SESSION_SECONDS = 7 * 24 * 3600  # a browser session's life: a week of alert links
_COOKIE_CONTEXT = b"otel-costattr dashboard cookie v2"
_SAFE_METHODS = ("GET", "HEAD")
EXPORT_PATHS = ("/v1/traces", "/v1/traces/")  # the OTLP receiver's, with and without a trailing slash
_BROWSER_401 = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Token needed</title>"
    "<h1>This server needs its token</h1><p>Open this page once as "
    "<code>?token=&lt;the server's token&gt;</code> appended to the address: the server checks it, "
    "keeps a session cookie for this site and takes the token out of the address.</p></html>"
)


def bearer_matches(value: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` value carries ``token``: the scheme in any case (RFC 9110),
    the token compared in constant time. The HTTP middleware and the gRPC receiver both ask."""
    scheme, _, credentials = value.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(b" "), token)


def cookie_name(scope: dict[str, Any]) -> str:
    """The session cookie's name at the port the request reached: a browser keeps cookies by
    host, not port, so two servers on one host under one name signed each other out (a
    review). ``COOKIE`` alone where the server has no port (a Unix socket)."""
    server = scope.get("server")
    port = server[1] if server and len(server) > 1 and isinstance(server[1], int) else None
    return COOKIE if port is None else f"{COOKIE}_{port}"


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> bytes:
    """This server's cookie from the ``Cookie`` headers (b'' when none)."""
    wanted = name.encode() + b"="
    for key, value in headers:
        if key != b"cookie":
            continue
        for part in value.split(b";"):
            part = part.strip()
            if part.startswith(wanted):
                return part[len(wanted) :]
    return b""


def _same_site_path(scope: dict[str, Any]) -> str:
    """The request's path as a same-site redirect target: never ``//host`` (another site),
    quoted again (ASGI's path is decoded): a tab, CR/LF or a character Latin-1 lacks would
    otherwise reach the Location header as itself (a browser drops '/%09/' to '//', h11
    refuses CR/LF, Starlette cannot encode '€')."""
    path = scope.get("path", "/")  # ASGI: the full path, root_path included
    root = scope.get("root_path", "")
    if root and path != root and not path.startswith(root + "/"):  # a proxy that strips it
        path = root + path
    return "/" + quote(path.lstrip("/\\"), safe=_PCHAR)


_PCHAR = "/-._~!$&'()*+,;=:@"  # RFC 3986's path characters, kept as they are


def route_path(scope: dict[str, Any]) -> str:
    """The request's path as the routes see it: without the ``root_path`` (``--base-url``'s
    path) when a proxy passed it on, so that ``/costs/v1/traces`` is the OTLP receiver's path
    too (its 401 was the API's JSON, not a ``google.rpc.Status`` in the request's type)."""
    path = scope.get("path", "/")
    root = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


def export_refusal(scope: dict[str, Any], code: int, message: str) -> tuple[bytes, str] | None:
    """A refusal of a request to the OTLP receiver (POST /v1/traces, under ``--base-url``'s
    path too) as OTLP wants every 4xx: a ``google.rpc.Status`` in the request's content type,
    with that type; None for a request elsewhere."""
    if route_path(scope) not in EXPORT_PATHS:
        return None
    found = dict(scope.get("headers", []))
    kind = wire.response_type(found.get(b"content-type", b"").decode("latin-1"))
    return wire.status_body(code, message, kind), kind


class BearerAuth:
    """Pure ASGI middleware: the rules of the module docstring, every comparison in constant
    time. Non-HTTP scopes (the lifespan) pass through."""

    def __init__(self, app: Any, token: str) -> None:
        if not token:
            raise ValueError("the token must not be empty")
        self.app = app
        self._token = token.encode()
        self._key = os.urandom(32)  # this process's: cookies end with it

    def cookie(self, issued: int | None = None) -> str:
        """A session cookie's value, issued now (or at ``issued``, epoch seconds)."""
        stamp = str(int(time.time()) if issued is None else issued)
        mac = hmac.new(self._key, _COOKIE_CONTEXT + b"|" + stamp.encode(), hashlib.sha256).hexdigest()
        return f"{stamp}.{mac}"

    def _session(self, value: bytes) -> bool:
        """Whether ``value`` is a cookie this process issued, less than `SESSION_SECONDS` ago."""
        stamp = value.partition(b".")[0]
        if not stamp.isdigit() or len(stamp) > 12:
            return False
        expected = self.cookie(int(stamp)).encode()
        age = time.time() - int(stamp)
        return hmac.compare_digest(value, expected) and -60 <= age < SESSION_SECONDS

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        given = b""
        for key, value in headers:
            if key == b"authorization":
                given = value
                break
        if bearer_matches(given, self._token):
            await self.app(scope, receive, send)
            return
        safe = scope.get("method") in _SAFE_METHODS and route_path(scope) not in EXPORT_PATHS
        if safe:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            offered = [v for k, v in query if k == TOKEN_PARAM]
            if offered:
                if len(offered) == 1 and hmac.compare_digest(offered[0].encode(), self._token):
                    await self._set_cookie(scope, query, receive, send)
                    return
            elif self._session(_cookie(headers, cookie_name(scope))):
                await self.app(scope, receive, send)
                return
        await self._refuse(scope, headers, receive, send)

    async def _set_cookie(
        self, scope: dict[str, Any], query: list[tuple[str, str]], receive: Any, send: Any
    ) -> None:
        rest = urlencode([(k, v) for k, v in query if k != TOKEN_PARAM])
        location = _same_site_path(scope) + (f"?{rest}" if rest else "")
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        response = Response(
            status_code=303,
            headers={
                "Location": location,
                "Set-Cookie": f"{cookie_name(scope)}={self.cookie()}; HttpOnly; SameSite=Lax; Path=/; "
                f"Max-Age={SESSION_SECONDS}{secure}",
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )
        await response(scope, receive, send)

    async def _refuse(
        self, scope: dict[str, Any], headers: list[tuple[bytes, bytes]], receive: Any, send: Any
    ) -> None:
        found = dict(headers)
        challenge = {"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"}
        if export := export_refusal(scope, wire.UNAUTHENTICATED, "missing or wrong bearer token"):
            response = Response(export[0], 401, media_type=export[1], headers=challenge)
        elif b"text/html" in found.get(b"accept", b""):
            response = Response(_BROWSER_401, 401, media_type="text/html", headers=challenge)
        else:
            response = Response(
                b'{"error": "missing or wrong bearer token"}', 401, media_type=wire.JSON, headers=challenge
            )
        await response(scope, receive, send)
