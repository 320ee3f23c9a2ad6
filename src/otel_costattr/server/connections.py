"""The HTTP connections `serve` keeps: a deadline for each request's head, and room for them.

uvicorn (h11) waits for a request's head as long as bytes keep coming: clients sending a
header line a byte every few seconds held their connections for ever (a review: 1,100 of
them took every descriptor of a 1,024 limit; new exports and ``/healthz`` timed out, and
asyncio logged 362 MB of accept errors in a minute). `HeadDeadline` closes a connection
serving no request `HEAD_SECONDS` after it opened or after its last response: its next head
is not whole, or the body of a request answered without reading it (a 404) still drips in.
The bodies requests read have their own deadlines (`app._read_capped`).
`raise_descriptor_limit` lifts the process's soft limit on open files to its hard limit, as
servers do, so that it takes that many.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEAD_SECONDS", "HeadDeadline", "raise_descriptor_limit", "run"]

logger = logging.getLogger(__name__)

HEAD_SECONDS = 10.0  # an exporter's or a browser's head arrives at once


class HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection that serves no request ``head_seconds``
    after it opened or answered (a subclass may set another)."""

    head_seconds = HEAD_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request's head, on a connection kept alive

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_seconds, self._late)

    def _late(self) -> None:
        # No request being served: no whole head since the timer was armed (a head starts a
        # new cycle), or an answered request whose body still drips in (a 404 or 401 sent
        # before the body was read, with a Content-Length of a megabyte) and holds the
        # connection as a slow head would. A request being served has its own deadlines.
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


def raise_descriptor_limit() -> None:
    """Lift the soft limit on open files to the hard one (at most 65,536); never raises."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError) as e:  # Windows; a limit the system refuses
        logger.debug("otel-costattr: open files limit left as it is: %s", e)


def run(app: Any, host: str, port: int) -> None:
    """Serve ``app`` until stopped, as every ``serve`` does (over DuckDB or ClickHouse): the
    descriptor limit raised, a deadline on every request head. (The ClickHouse serve once
    called uvicorn itself and kept a head that never ended open for good.)"""
    import uvicorn

    raise_descriptor_limit()  # one descriptor a connection: the system's room, not 1,024
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, http=HeadDeadline)
