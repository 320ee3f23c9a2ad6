"""`MappingPool`: the worker processes that decode, map and spool for `SpanSink`
(``serve --workers N``), so that this work, which holds the GIL, runs beside the server's
request handling and its ingester instead of taking turns with them.

Each worker serves one pipe, one request at a time (`mapping.worker_main`); a request thread
takes an idle worker, sends the body, and waits for the outcome. Workers are new interpreters
(not forks: the server has threads, which ``fork`` would copy mid-lock), started with the
server and warmed before it answers anything. A worker that dies mid-request costs that
request a 503 (`WorkerLost`: the client retries; what the worker had not renamed into the
spool is no row) and is replaced in the background; ``lost`` counts them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, Pipe

from .mapping import Outcome, WorkerConfig

logger = logging.getLogger(__name__)

_START_TIMEOUT = 120.0  # seconds for a worker to import and warm up (a loaded 2-core machine)
_WAIT = 30.0  # seconds a request waits for a free worker before a 503
_ANSWER = 120.0  # seconds a worker may take over one request before it is taken for hung


class WorkerLost(RuntimeError):
    """The request was not done: its worker died, or none was free in time (retry)."""


class _Worker:
    __slots__ = ("conn", "process", "ready")

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process, self.conn = process, conn
        self.ready = False  # warm: it said so

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def end(self, timeout: float) -> None:
        """Make the process exit: its pipe closed (EOF ends its loop), then SIGKILL if it
        has not after ``timeout``."""
        self.conn.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# A new interpreter, not multiprocessing's spawn: that one runs the parent's main module
# again in the child (a script without a __main__ guard would start workers recursively,
# and `python -m pytest` or an application would be imported for nothing). The first
# message sets sys.path as the server's (its PYTHONPATH, a checkout's src), the second is
# the `WorkerConfig`.
_BOOT = (
    "import sys; from multiprocessing.connection import Connection; c = Connection(int(sys.argv[1]));"
    " sys.path[:] = c.recv(); from otel_costattr.server.mapping import worker_main; worker_main(c, c.recv())"
)


def _bound_sends(conn: Connection, seconds: float) -> None:
    """Bound each write to ``conn`` (a socketpair end) by ``seconds``: a body larger than the
    socket's buffers blocks until the worker reads it, for ever if the worker hangs; past the
    bound the write fails (an OSError: the worker is taken for lost, `MappingPool.run`)."""
    with contextlib.suppress(OSError, ValueError):  # not a socket (another platform's pipe)
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        try:
            whole = int(seconds)
            bound = struct.pack("ll", whole, int((seconds - whole) * 1e6))  # struct timeval
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, bound)
        finally:
            sock.close()  # the option stays with the socket, shared by every descriptor of it


class MappingPool:
    """``size`` worker processes built from ``config``. `start` before `run`, `stop` at the end."""

    def __init__(
        self, config: WorkerConfig, size: int, *, wait: float = _WAIT, answer: float = _ANSWER
    ) -> None:
        if size < 1:
            raise ValueError(f"a mapping pool needs at least one worker, not {size}")
        self._config = config
        self.size = size
        self._wait = wait
        self._answer = answer  # seconds a worker may take over a request before it is ended
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.started = False
        self.lost = 0  # workers that died (each answered its request with a 503)

    @property
    def live(self) -> int:
        """Workers running and warm now (fewer than ``size`` while a lost one is replaced)."""
        return len(self.pids)

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running and warm (for a look from outside)."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.ready and w.alive]

    def start(self) -> None:
        """Start every worker and wait until each is warm. ValueError (one line) when one
        cannot start, the pricing it loads being other than the server's, say."""
        with self._lock:
            self._closed = False
        started: list[_Worker] = []
        try:
            for _ in range(self.size):  # they warm up side by side
                started.append(self._spawn())
            for worker in started:
                self._ready(worker)
        except Exception:
            for worker in started:
                self._forget(worker)
                worker.end(1.0)
            raise
        for worker in started:
            self._idle.put(worker)
        self.started = True

    def run(self, head: tuple[str | None, bool, bool], body: bytes) -> Outcome:
        """``body`` through a worker (`mapping.handle`). Raises `WorkerLost` when it died
        before answering, or no worker was free for ``wait`` seconds."""
        deadline = time.monotonic() + self._wait
        while True:
            try:
                worker = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise WorkerLost(f"no mapping worker was free for {self._wait:g} s") from None
            if worker.alive:
                break
            self._lose(worker)  # died while idle: no request was lost, try the next one
        try:
            worker.conn.send(head)
            worker.conn.send_bytes(body)
            answered = worker.conn.poll(self._answer)
            outcome = worker.conn.recv() if answered else None
        except (BlockingIOError, TimeoutError):  # the body not taken within the bound
            answered = False
        except (EOFError, OSError):
            answered = None
        if not answered:  # died, or hung: ended either way (`_lose`), its request not done
            self._lose(worker)
            raise WorkerLost(
                "a mapping worker died during the request"
                if answered is None
                else f"a mapping worker did not answer in {self._answer:g} s"
            ) from None
        self._idle.put(worker)
        return outcome

    def stop(self, timeout: float = 5.0) -> None:
        """End every worker (each finishes the request it has, if any, within ``timeout``)."""
        with self._lock:
            self._closed, self.started = True, False
            workers = list(self._workers)
            self._workers.clear()
        while not self._idle.empty():  # ended below: a later start must not hand them out
            self._idle.get_nowait()
        for worker in workers:
            worker.end(timeout)

    # -- workers come and go ------------------------------------------------------------

    def _spawn(self) -> _Worker:
        ours, theirs = Pipe()
        _bound_sends(ours, self._answer)
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:  # no process (EAGAIN, EMFILE): our end too
            ours.close()
            raise
        finally:
            theirs.close()  # only the worker holds its end: our death is its EOF
        ours.send(sys.path)
        ours.send(self._config)
        worker = _Worker(process, ours)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _ready(self, worker: _Worker) -> None:
        conn = worker.conn
        if not conn.poll(_START_TIMEOUT):
            raise ValueError(f"a mapping worker did not start in {_START_TIMEOUT:g} s")
        try:
            said = conn.recv()
        except EOFError:
            raise ValueError(f"a mapping worker exited at start (code {worker.process.wait(5)})") from None
        if said[0] != "ready":
            raise ValueError(f"a mapping worker could not start: {said[1]}")
        worker.ready = True

    def _forget(self, worker: _Worker) -> bool:
        with self._lock:
            known = worker in self._workers
            self._workers.discard(worker)
            return known and not self._closed

    def _lose(self, worker: _Worker) -> None:
        replace = self._forget(worker)
        with self._lock:
            self.lost += 1
        worker.end(1.0)
        logger.error(
            "otel-costattr: a mapping worker died (exit code %s); starting another", worker.process.returncode
        )
        if replace:
            threading.Thread(target=self._replace, name="otel-costattr-mapper-start", daemon=True).start()

    def _replace(self) -> None:
        """Start a worker in place of a lost one; retried with backoff while it cannot start."""
        delay = 1.0
        while True:
            with self._lock:
                if self._closed:
                    return
            worker = None
            try:
                worker = self._spawn()
                self._ready(worker)
            except Exception as e:  # a spawn that failed (EAGAIN) is retried as a start that did
                if worker is not None:
                    self._forget(worker)
                    worker.end(1.0)
                logger.error("otel-costattr: %s; trying again in %.0f s", e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            with self._lock:
                closed = self._closed
            if closed:
                worker.end(1.0)
            else:
                self._idle.put(worker)
            return
