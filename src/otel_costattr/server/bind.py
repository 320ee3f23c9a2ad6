"""The bind rule: loopback by default; any other address only with a token."""

from __future__ import annotations

import ipaddress

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


def check_bind(host: str, token: str | None) -> None:
    """Raise ValueError (one line) when ``host`` is not loopback and there is no token."""
    if not token and not is_loopback(host):
        raise ValueError(
            f"refusing to bind {host} without a token: other machines could read and write the store;"
            " pass --token (or OTEL_COSTATTR_SERVE_TOKEN), or bind 127.0.0.1"
        )
