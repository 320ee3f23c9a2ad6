"""`otel-costattr store status` and `store repair`: what the spool holds, and a second chance
for quarantined files.

Status reads the spool folder and its journal without taking the database lock (so it
answers while a writer is stuck), then counts stored spans if the file can be opened
read-only within a short wait.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import database as store
from . import ingest, spool
from .schema import attribute_refill

logger = logging.getLogger(__name__)


@dataclass
class QuarantinedFile:
    """A spool file set aside because DuckDB cannot read it."""

    name: str
    spans: int | None
    bytes: int
    reason: str | None


@dataclass
class StoreStatus:
    """The state of a span store and its spool (see `status`)."""

    path: str
    stored_spans: int | None  # None: the database could not be opened right now
    stored_error: str | None
    pending_files: int
    pending_spans: int
    pending_bytes: int
    quarantined: list[QuarantinedFile] = field(default_factory=list)
    dropped_spans: int = 0
    # `serve`'s receiver: spans refused as malformed (told to the client in partial_success)
    # and requests answered 503 (the client retries): shown, not unhealthy (the store is fine).
    rejected_spans: int = 0
    pushed_back_requests: int = 0
    # Requests whose body never came whole, and requests refused whole (400, 413, 415: the
    # client does not retry, so their spans are lost there): shown, not unhealthy.
    incomplete_requests: int = 0
    refused_requests: int = 0
    # Spans not stored because a span with their trace and span id was: a retry's copy, or ids
    # that collide (a broken id generator). Shown, not unhealthy: retries are normal.
    repeated_spans: int = 0
    last_ingest_error: str | None = None
    last_ingest_error_time: str | None = None
    recovered_time: str | None = None
    # The file exists but cannot be read as a span store (truncated, not DuckDB, no `spans`
    # table). A lock held by a writer is not this: the store is busy, not broken.
    unreadable: bool = False
    # The store's schema against this version: "current", "upgrade" (an older version wrote
    # it: the next process that may write it upgrades it), "upgrade_blocked" (and this user
    # may not write it: every reader here refuses it), "newer" (a newer version upgraded it:
    # this version refuses it), or None (not opened).
    schema: str | None = None
    schema_note: str | None = None

    @property
    def healthy(self) -> bool:
        """The file opens and this version can read it, nothing quarantined, nothing dropped,
        and no ingest error since the last success."""
        unresolved = self.last_ingest_error is not None and self.recovered_time is None
        refused = self.schema in ("newer", "upgrade_blocked")
        return not (self.unreadable or refused or self.quarantined or self.dropped_spans or unresolved)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "path": self.path,
            "healthy": self.healthy,
            "schema": self.schema,
            "schema_note": self.schema_note,
            "stored_spans": self.stored_spans,
            "stored_error": self.stored_error,
            "pending_files": self.pending_files,
            "pending_spans": self.pending_spans,
            "pending_bytes": self.pending_bytes,
            "quarantined_files": len(self.quarantined),
            "quarantined": [q.__dict__ for q in self.quarantined],
            "dropped_spans": self.dropped_spans,
            "rejected_spans": self.rejected_spans,
            "pushed_back_requests": self.pushed_back_requests,
            "incomplete_requests": self.incomplete_requests,
            "refused_requests": self.refused_requests,
            "repeated_spans": self.repeated_spans,
            "last_ingest_error": self.last_ingest_error,
            "last_ingest_error_time": self.last_ingest_error_time,
            "recovered_time": self.recovered_time,
        }


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:
        return 0


def status(path: str | os.PathLike[str], *, lock_timeout: float = 2.0) -> StoreStatus:
    """Pending and quarantined spool files, spans dropped (from the journal: every process
    that exported to this file), the last ingest error, and the stored span count. Never
    ingests or migrates. Raises `store.StoreError` when ``path`` holds no store at all."""
    path = str(Path(path).expanduser().absolute())
    if not os.path.exists(path) and not spool.spool_dir(path).is_dir():
        raise store.StoreError(store.missing_database(path))
    pending = spool.pending_spool(path)
    journal = spool.journal_summary(path)
    stored, stored_error, unreadable = None, None, False
    schema, note = None, None
    if os.path.exists(path):
        try:
            con = store.connect(path, read_only=True, retry=lock_timeout, migrate=False, ingest=False)
            try:
                stored = con.execute("SELECT count(*) FROM spans").fetchone()[0]
                schema, note = _schema(con, path)
            finally:
                con.close()
        except store.LockTimeout as e:
            stored_error = " ".join(str(e).split())
        except (store.StoreError, duckdb.Error) as e:
            stored_error, unreadable = " ".join(str(e).split()), True
    return StoreStatus(
        path=path,
        stored_spans=stored,
        stored_error=stored_error,
        pending_files=len(pending),
        pending_spans=sum(spool.file_rows(f) or 0 for f in pending),
        pending_bytes=sum(_size(f) for f in pending),
        quarantined=[
            QuarantinedFile(f.name, spool.file_rows(f), _size(f), spool.quarantine_reason(f))
            for f in spool.quarantined(path)
        ],
        dropped_spans=journal.dropped_spans,
        rejected_spans=journal.rejected_spans,
        pushed_back_requests=journal.pushed_back_requests,
        incomplete_requests=journal.incomplete_requests,
        refused_requests=journal.refused_requests,
        repeated_spans=journal.repeated_spans,
        last_ingest_error=journal.last_error,
        last_ingest_error_time=journal.last_error_time,
        recovered_time=journal.recovered_time,
        unreadable=unreadable,
        schema=schema,
        schema_note=note,
    )


def _schema(con: duckdb.DuckDBPyConnection, path: str) -> tuple[str, str | None]:
    """`StoreStatus.schema` and what to say of it."""
    try:
        missing = store.pending_migrations(con)
    except store.NewerStore as e:
        return "newer", str(e)
    if not missing:
        return "current", None
    folder = os.path.dirname(path) or "."
    if os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK):
        return "upgrade", "written by an older otel-costattr: the next process that writes it upgrades it"
    return "upgrade_blocked", (
        "written by an older otel-costattr and not writable here: nothing of this version reads it"
        f" until a process that may write it opens it (otel-costattr store repair --db {path})"
    )


@dataclass
class RepairResult:
    """What `repair` did: files put back, files ingested, files quarantined again."""

    requeued: int
    ingested_files: int
    still_quarantined: list[QuarantinedFile]
    refilled_calls: int = 0  # model calls whose attribute columns an older exporter left empty


def repair(path: str | os.PathLike[str], *, lock_timeout: float = 10.0) -> RepairResult:
    """Put every quarantined spool file back in the spool and ingest the whole spool now,
    then fill the attribute columns an older version's exporter left empty on its calls
    (`schema.attribute_refill`). Files DuckDB still cannot read go back to quarantine with
    their reason. Raises
    `store.LockTimeout`, `ingest.IngestError` (the database cannot take them yet: they stay
    pending) or `store.StoreError`."""
    path = str(Path(path).expanduser().absolute())
    if not os.path.exists(path):
        raise store.StoreError(store.missing_database(path))
    requeued = spool.requeue(path)
    if spool.spool_dir(path).is_dir():  # a store no exporter ever spooled for has no journal
        spool.record(path, "repair", requeued=len(requeued))
    handled = 0
    with store.writing(path, retry=lock_timeout) as con:
        while True:
            n = ingest.ingest_spool(con, path, max_files=256)
            if not n:
                break
            handled += n
        # An exporter of a version before the attribute columns, still writing after this
        # version upgraded the store, left them empty on its calls: per-group, --where and
        # reconcile read those calls as having no user or tenant until they are filled.
        refilled = con.execute(attribute_refill()).fetchone()
    again = status(path, lock_timeout=0).quarantined
    return RepairResult(len(requeued), handled, again, int(refilled[0]) if refilled else 0)
