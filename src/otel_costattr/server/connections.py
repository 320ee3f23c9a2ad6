"""The HTTP connections `serve` keeps: a deadline for each request's head, and room for them.

uvicorn (h11) waits for a request's head as long as bytes keep coming: clients sending a
header line a byte every few seconds held their connections for ever (a review: 1,100 of
them took every descriptor of a 1,024 limit; new exports and ``/healthz`` timed out, and
asyncio logged 362 MB of accept errors in a minute). `HeadDeadline` closes a connection
whose head is not whole `HEAD_SECONDS` after it opened or after its last response. Bodies
have their own deadlines (`app._read_capped`). `raise_descriptor_limit` lifts the process's
soft limit on open files to its hard limit, as servers do, so that it takes that many.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEAD_SECONDS", "HeadDeadline", "raise_descriptor_limit"]

logger = logging.getLogger(__name__)

HEAD_SECONDS = 10.0  # an exporter's or a browser's head arrives at once


class HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not whole within
    ``head_seconds`` (a subclass may set another)."""

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
        # IDLE: no whole request head since the timer was armed (a head arriving moves it on).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
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
