"""The start-up rules of the server: loopback by default, any other address only with a
token that is not blank; browser origins (CORS) and the base URL only as http(s) URLs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for anything else (0.0.0.0, names)."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bare_host(host: str) -> str:
    """``host`` as sockets take it: an IPv6 address without the brackets a URL gives it
    (``[::1]`` is ``::1``: bracketed twice, it failed deep in the server with a traceback).
    ValueError (one line) for brackets around anything else, or unmatched."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        inner = name[1:-1]
        try:
            if ipaddress.ip_address(inner).version == 6:
                return inner
        except ValueError:
            pass
        raise ValueError(f"--host {host}: brackets go around an IPv6 address only (as [::1])")
    if name.startswith("[") and "]:" in name:
        raise ValueError(f"--host {host}: an address only; the port goes in --port")
    if "[" in name or "]" in name:
        raise ValueError(f"--host {host}: unmatched brackets (an IPv6 address is given as ::1 or [::1])")
    return name


MIN_TOKEN = 16  # characters of a token guarding a server other machines reach


def clean_token(token: str | None) -> str | None:
    """The token as requests carry it: without the white space around it (a secret file's
    final newline: kept, no header could ever match it, and every export got a 401 that
    OTLP clients do not retry); ValueError (one line) for a character inside it that an
    ``Authorization`` header cannot carry (a space, a control, anything not ASCII) or a
    blank token (it would guard nothing)."""
    if token is None:
        return None
    token = token.strip()
    if not token:  # an empty secret file: never a server without its guard
        raise ValueError(
            "refusing a blank token: give a secret (--token or OTEL_COSTATTR_SERVE_TOKEN), or none at all"
        )
    bad = next((i for i, c in enumerate(token) if not "!" <= c <= "~"), None)
    if bad is not None:
        raise ValueError(
            f"refusing a token with {token[bad]!r} at position {bad + 1}: a request header cannot carry it;"
            " use printable ASCII, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return token


def check_bind(host: str, token: str | None) -> None:
    """Raise ValueError (one line) when ``host`` is not loopback and there is no token or one
    shorter than `MIN_TOKEN`, or when a token is given blank (it would guard nothing anyone
    could not guess). On loopback a short token is the user's own business."""
    if token is not None and not token.strip():
        raise ValueError("refusing a blank token: pass --token (or OTEL_COSTATTR_SERVE_TOKEN) with a secret")
    if not token and not is_loopback(host):
        raise ValueError(
            f"refusing to bind {host} without a token: other machines could read and write the store;"
            " pass --token (or OTEL_COSTATTR_SERVE_TOKEN), or bind 127.0.0.1"
        )
    if token and len(token) < MIN_TOKEN and not is_loopback(host):
        raise ValueError(
            f"refusing a token of {len(token)} characters on {host}: other machines could guess it;"
            f" use {MIN_TOKEN} or more, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )


def _http_url(value: str, what: str) -> SplitResult:
    """``value`` split, when it is an http(s) URL with a host; else ValueError naming ``what``."""
    try:
        if any(c.isspace() for c in value):
            raise ValueError("it has white space")
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- a bad port raises here
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected http(s)://host[:port]")
        if parts.username is not None or parts.password is not None:
            raise ValueError("it must not carry a user or password")
        if parts.query or parts.fragment:
            raise ValueError("it must not carry a query or fragment")
    except ValueError as e:
        raise ValueError(f"{what} {value!r}: {e}") from None
    return parts


def check_origins(origins: Iterable[str]) -> None:
    """Raise ValueError (one line) unless every origin is ``http(s)://host[:port]``: never
    ``*``, which would let any web page read costs and write spans through a visitor's browser
    (a loopback server without a token has nothing else guarding it)."""
    for origin in origins:
        if origin.strip() == "*":
            raise ValueError(
                "--cors-origin '*': refusing to let every web page read costs and send spans;"
                " name each origin (https://host[:port])"
            )
        if _http_url(origin, "--cors-origin").path:
            raise ValueError(f"--cors-origin {origin!r}: an origin is scheme, host and port (no path)")


def check_base_url(url: str) -> None:
    """Raise ValueError (one line) unless ``url`` is an http(s) URL with a host (the base of
    the links in alerts and pages: never ``javascript:``)."""
    _http_url(url, "--base-url")
