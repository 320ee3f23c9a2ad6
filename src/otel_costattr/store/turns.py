"""Turns at one store file between the readers and the writers of one process.

DuckDB keeps one database instance per file in a process and refuses to open it read-write
while a read-only connection to it is open there (and the other way round): "a different
configuration than existing connections", which reads as a lock conflict. A server whose
API and pages open a read-only connection per request kept its own ingester out: with two
clients polling, the spool never drained (a review: 0 to 39 spool files in 40 s), and the
spans it had acknowledged were missing from every answer until the readers paused.

`Turns` hands the file to readers together and to one writer at a time. A writer waiting
holds back readers that come after it, and the readers that waited for a writer go before
the next one: neither side can keep the other out. Other processes are kept apart by
DuckDB's file lock, as before (`database.connect` retries it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Turns", "TurnTimeout", "turns"]


class TurnTimeout(TimeoutError):
    """The turn did not come within the time allowed."""


class Turns:
    """Readers share the file; a writer has it alone. Phase-fair: a writer waiting holds back
    the readers that come after it, and when a writer's turn ends, the readers waiting then
    go in before any writer. Re-entrant for a writer's own thread (`database.writing` inside
    an ingest round); a reader must not ask to write."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0  # reading now
        self._writer: int | None = None  # the thread writing
        self._depth = 0
        self._writers_waiting = 0
        self._readers_waiting = 0
        self._readers_due = False  # a writer's turn ended with readers waiting: theirs next

    @contextmanager
    def reading(self, timeout: float, fail: Callable[[str], Exception] = TurnTimeout) -> Iterator[None]:
        """Read, among other readers; ``fail(message)`` is raised when no turn came in time."""
        with self._cond:
            self._readers_waiting += 1
            try:
                free = self._cond.wait_for(
                    lambda: self._writer is None and (not self._writers_waiting or self._readers_due), timeout
                )
            finally:
                self._readers_waiting -= 1
                if not self._readers_waiting:
                    self._readers_due = False  # every reader that waited is in (or gave up)
                    self._cond.notify_all()
            if not free:
                raise fail(f"no turn to read in {timeout:g}s: the store was being written")
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self, timeout: float, fail: Callable[[str], Exception] = TurnTimeout) -> Iterator[None]:
        """Write, alone; ``fail(message)`` is raised when no turn came in time."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                self._writers_waiting += 1
                try:
                    free = self._cond.wait_for(
                        lambda: self._writer is None and not self._readers and not self._readers_due, timeout
                    )
                finally:
                    self._writers_waiting -= 1
                if not free:
                    self._cond.notify_all()  # readers held back for this writer may go
                    raise fail(f"no turn to write in {timeout:g}s: the store was being read")
                self._writer = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._readers_due = self._readers_waiting > 0
                    self._cond.notify_all()


_turns: dict[str, Turns] = {}
_turns_guard = threading.Lock()


def turns(path: str) -> Turns:
    """The turns at the store file ``path`` in this process."""
    key = os.path.realpath(Path(path).expanduser())  # one store however spelled (a symlink)
    with _turns_guard:
        return _turns.setdefault(key, Turns())


def _forget() -> None:
    """In a forked child: no turn is held there (the threads holding them stayed in the
    parent), so it starts afresh. A writer's turn taken just before the fork, copied as held,
    left the child unable to ever write (a review: 0 of 40 children could)."""
    global _turns_guard
    _turns.clear()
    _turns_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
