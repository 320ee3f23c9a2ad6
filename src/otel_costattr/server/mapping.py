"""What the receiver does with a decompressed body before it answers, in one place: decode it,
map its records to rows, write them as one fsynced spool file. `SpanSink` runs it in the
server process (``serve --workers 0``) or hands the body to a worker process (`pool`), whose
loop (`worker_main`) is here too, so that both paths are the same code.

A worker is a ``spawn``ed process that serves one pipe: it reads ``(kind, spool_full)`` and
the body's bytes, answers an `Outcome` tuple, and exits when the pipe closes (the server
stopped, or died: a kill -9 of the server leaves no worker behind, since the worker holds
only its own end). It builds its `SpanMapper` from a `WorkerConfig`, the server's exact
configuration: the pricing is loaded again from the same files and its digest must match
the server's, or the worker refuses to start.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..pricing.table import PriceTable, default_pricing, load_pricing
from ..spans.record import SpanRecord
from ..spans.rows import SpanMapper
from ..store.spool import write_spool
from . import otlp_wire as wire

logger = logging.getLogger(__name__)

__all__ = ["Accepted", "PricingFiles", "WorkerConfig", "map_and_spool", "map_records", "spool", "worker_main"]


@dataclass(frozen=True)
class Accepted:
    """What became of one request's spans: ``stored`` are on disk, ``rejected`` were not
    kept (their reasons in ``message``, for ``partial_success``)."""

    stored: int
    rejected: int
    message: str


@dataclass(frozen=True)
class PricingFiles:
    """A price table as the arguments of `load_pricing`: what a worker process loads again
    (a `PriceTable` holds locks and caches and does not cross a process boundary)."""

    files: tuple[str, ...] = ()
    bundled: bool = True
    use_env: bool = True

    def load(self) -> PriceTable:
        """The table; `PricingError` (a ValueError) naming file, model and field."""
        return load_pricing(list(self.files), bundled=self.bundled, use_env=self.use_env)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs to map and spool as the server would. ``pricing`` None is
    `default_pricing()`; ``digest`` is the server's table's, checked after loading."""

    path: str
    pricing: PricingFiles | None
    digest: str
    capture_content: bool
    fsync: bool


def map_and_spool(
    mapper: SpanMapper,
    path: str,
    records: Sequence[SpanRecord],
    rejected: int,
    message: str,
    fsync: bool,
) -> tuple[Accepted, int]:
    """Map ``records`` and write them as one durable spool file of the database at ``path``:
    what was stored and rejected, and the bytes written. OSError when the file cannot be
    written (nothing kept). ``mapper`` is not thread-safe: the caller holds its lock (a
    caller with threads maps under it and spools outside it: `map_records`, `spool`)."""
    table, accepted = map_records(mapper, records, rejected, message)
    return accepted, spool(path, table, fsync)


def map_records(
    mapper: SpanMapper, records: Sequence[SpanRecord], rejected: int, message: str
) -> tuple[pa.Table, Accepted]:
    """``records`` as rows, and what was stored and rejected once they are spooled."""
    errors = mapper.errors
    table = mapper.table(records)
    unmapped = mapper.errors - errors
    if unmapped:
        rejected += unmapped
        why = f"{unmapped} span{'s' if unmapped != 1 else ''} could not be mapped"
        message = f"{message}; {why}" if message else why
    return table, Accepted(table.num_rows, rejected, message)


def spool(path: str, table: pa.Table, fsync: bool) -> int:
    """Write mapped rows as one durable spool file (none for no rows); returns its bytes."""
    return write_spool(path, table, fsync=fsync) if table.num_rows else 0


# -- the worker process -------------------------------------------------------------------

# A request crosses the pipe as a head tuple (see `handle`) and the body's bytes; its outcome
# as a tuple: ("ok", stored, rejected, message, size),
# ("full",) when the spool was over its bound, or (exception name, message) for
# BadRequest / Unsupported / OSError / Exception (`pool` raises it again in the server).
Outcome = tuple[Any, ...]


def build_mapper(config: WorkerConfig) -> SpanMapper:
    """The server's mapper, rebuilt in a worker and warmed (decoder classes, pricing,
    pyarrow and Parquet), so the first request is not the slow one. ValueError when the
    pricing is not the server's."""
    table = config.pricing.load() if config.pricing is not None else default_pricing()
    if table.digest != config.digest:  # a price file changed since the server loaded it
        raise ValueError(
            f"the price table changed since the server loaded it ({table.digest} != {config.digest})"
        )
    mapper = SpanMapper(table, capture_content=config.capture_content)
    wire.decode(b"", wire.PROTOBUF)
    wire.decode(b"{}", wire.JSON)
    mapper.table([])
    import pyarrow.parquet  # noqa: F401 - the spool writer's first use imports it

    return mapper


def handle(mapper: SpanMapper, config: WorkerConfig, head: tuple[str, bool, bool], body: bytes) -> Outcome:
    """One body, ``head`` its (content type, whether it came by gRPC, whether the spool is
    full): decoded first (an undecodable body is a 400 even when the spool is full, as in the
    server), then mapped and spooled unless full (nothing to keep: a success all the same)."""
    content_type, grpc, full = head
    try:
        records, rejected, message = wire.decode(body, content_type, grpc=grpc)
        if full and records:  # a request with nothing to keep succeeds, full or not
            return ("full",)
        accepted, size = map_and_spool(mapper, config.path, records, rejected, message, config.fsync)
    except (wire.BadRequest, wire.Unsupported, wire.TooLarge) as e:
        return (type(e).__name__, str(e))
    except OSError as e:
        return ("OSError", e.strerror or str(e))
    except Exception as e:
        logger.exception("otel-costattr: a mapping worker failed on a trace export")
        return ("Exception", f"{type(e).__name__}: {e}")
    return ("ok", accepted.stored, accepted.rejected, accepted.message, size)


def worker_main(conn: Any, config: WorkerConfig) -> None:
    """A worker's life: build the mapper, say ``("ready", pid)`` (or ``("failed", why)``),
    then answer bodies until the pipe closes or brings None."""
    # Ctrl-C reaches the whole process group; the server decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        mapper = build_mapper(config)
    except Exception as e:
        conn.send(("failed", str(e) or type(e).__name__))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            head = conn.recv()
            if head is None:
                return
            body = conn.recv_bytes()
        except (EOFError, OSError):  # the server is gone
            return
        outcome = handle(mapper, config, head, body)
        del body
        try:
            conn.send(outcome)
        except OSError:
            return
