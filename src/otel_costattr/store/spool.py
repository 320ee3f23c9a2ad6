"""The spool: durable Parquet batches waiting for the database lock, and what became of them.

Layout, next to the database ``spans.duckdb``::

    spans.duckdb.spool/
        <time_ns>-<pid>-<seq>.parquet      pending batches, oldest first by name
        <time_ns>-<pid>-<seq>.arrow        the same as Arrow IPC files, left by the versions of
                                           2026-12-02 that wrote them (f6be598 to b291743):
                                           rewritten as Parquet by the next ingest
        .<name>.tmp                        a batch being written (never acknowledged)
        bad/<name>                         quarantined: DuckDB can never read it
        bad/<name>.reason                  why, one line
        events.jsonl                       the journal: drops, ingest errors, quarantines,
                                           a receiver's rejected spans and push-backs

A batch is acknowledged (the exporter returns SUCCESS) only once its file is complete, fsynced
and renamed to its final name. From then on only two things may happen to it: a commit moves
its spans into the table and the file is deleted, or a read-only check proves the file itself
unreadable and it is moved to ``bad/`` (and counted). Anything that goes wrong on the database
side (no space, I/O error, a failed commit, a lock) leaves it pending for the next try.

The journal is how processes that never meet tell ``otel-costattr store status`` what they
saw. Appends are single small ``O_APPEND`` writes (atomic between processes on a local
filesystem), best effort: a journal that cannot be written (the disk is full) is logged and
never raises. Writers rate-limit themselves, so it grows by a few lines a minute at worst.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: appends are not guarded against roll-over
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".spool"
PARQUET = ".parquet"
ARROW = ".arrow"  # written by some versions of 2026-12-02 only: converted (`convert_arrow`)
_SUFFIXES = (PARQUET, ARROW)
QUARANTINE = "bad"
JOURNAL = "events.jsonl"
_REASON = ".reason"
_STALE_TMP_SECONDS = 3600  # a temp spool file this old belongs to a writer that died
_JOURNAL_MAX_BYTES = 4 * 2**20  # then it is rolled over, carrying its totals forward
# Disk kept for the journal's lines when the disk fills (`keep_reserve`): a line is ~200 bytes.
RESERVE = "journal.reserve"
RESERVE_BYTES = 64 * 2**10
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_seq = itertools.count()


def spool_dir(path: str | os.PathLike[str]) -> Path:
    """Where batches wait for the write lock: ``<db path>.spool/``."""
    return Path(str(path) + SPOOL_SUFFIX)


def quarantine_dir(path: str | os.PathLike[str]) -> Path:
    """Where spool files DuckDB can never read are kept: ``<db path>.spool/bad/``."""
    return spool_dir(path) / QUARANTINE


def _spool_files(folder: Path, suffixes: tuple[str, ...] = _SUFFIXES) -> list[Path]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    # Names start with the time they were written, whatever their format: one order.
    return [folder / n for n in sorted(names) if n.endswith(suffixes)]


def pending_spool(path: str | os.PathLike[str]) -> list[Path]:
    """Spool files waiting to be ingested, oldest first (Arrow files of 2026-12-02 too: the
    ingest converts them first, `convert_arrow`)."""
    return _spool_files(spool_dir(path))


def quarantined(path: str | os.PathLike[str]) -> list[Path]:
    """Quarantined spool files, oldest first."""
    return _spool_files(quarantine_dir(path))


def spool_bytes(path: str | os.PathLike[str]) -> int:
    """Total size of the spool files waiting to be ingested."""
    total = 0
    for f in pending_spool(path):
        with contextlib.suppress(FileNotFoundError):  # ingested meanwhile
            total += f.stat().st_size
    return total


def file_rows(file: Path) -> int | None:
    """Rows in a spool file, from its footer alone; None when it cannot be read."""
    try:
        if file.name.endswith(ARROW):
            with ipc.open_file(file) as reader:
                return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        return pq.ParquetFile(file).metadata.num_rows
    except Exception:  # corrupt, vanished, unreadable: status only reports it
        return None


def write_spool(path: str | os.PathLike[str], table: pa.Table, *, fsync: bool = True) -> int:
    """Write ``table`` durably as a spool file of the database at ``path``; returns its size.
    The file appears under its final name only once complete (and fsynced, by default)."""
    folder = spool_dir(path)
    if not folder.is_dir():
        folder.mkdir(exist_ok=True)
    return _write(folder, f"{time.time_ns():020d}-{os.getpid()}-{next(_seq):08d}{PARQUET}", table, fsync)


def _write(folder: Path, name: str, table: pa.Table, fsync: bool) -> int:
    """Write ``table`` as the Parquet spool file ``folder/name``, complete under that name
    only (a temp file renamed); returns its size."""
    tmp = folder / f".{name}.tmp"
    try:
        with open(tmp, "wb") as f:
            # The cheapest encoding to write and read back, for a short-lived file: lz4, no
            # dictionaries, no statistics (measured: 1.6 µs a row to write, 3.0 with zstd).
            pq.write_table(
                table,
                f,
                compression="lz4",
                use_dictionary=False,
                write_statistics=False,
                store_schema=False,
            )
            f.flush()
            if fsync:
                os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _sync_folder(folder)
    return size


def _sync_folder(folder: Path) -> None:
    """fsync ``folder``, so that a file renamed into it keeps its name through a power cut or
    a kernel crash (a review: without it, an acknowledged batch could vanish on ext4 or xfs
    in the seconds after a SUCCESS or a 200). About 0.3 ms a file on these machines. A
    filesystem that cannot sync a folder (EINVAL) has done all it can; an I/O error raises:
    the batch is not known to be durable (the file stays, and a repeat is stored once)."""
    if os.name == "nt":  # no folder can be opened to sync there: NTFS journals renames
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def convert_arrow(path: str | os.PathLike[str], limit: int | None = None) -> int:
    """Rewrite as Parquet, under the same name and so in the same place in the order, each
    Arrow IPC spool file the versions of 2026-12-02 from f6be598 to b291743 wrote and left
    pending (a process killed before its ingest): after the revert to Parquet nothing read
    them, and their spans were missing from every answer. The Parquet file is complete and
    fsynced before the Arrow file goes; a crash between the two leaves both, and the span
    table stores each span once. Called by the ingest, under the write lock, for at most
    ``limit`` files. Returns how many were converted.

    Each file is converted in a child process when this process can start one (`_converter`):
    pyarrow's reader can crash on a corrupt IPC file (a review saw a segfault on one flipped
    bit), which must not take the application's process with it. Where it cannot (uWSGI, an
    embedded or frozen interpreter: ``sys.executable`` is not a Python that imports this
    package), the file is converted here, as the versions that wrote them read them. A file
    found invalid, or that crashes or hangs the child, is quarantined like any unreadable
    spool file and the rest goes on; a disk error is raised as OSError (the next ingest tries
    again). A file that hangs takes `_CONVERT_SECONDS` to be found out, under the write
    lock: a round starts no conversion past that time, and after a hang this process starts
    none for as long (the Parquet files go in meanwhile), so that a connect() waits for one
    at most."""
    global _resting_until
    folder = spool_dir(path)
    converted = 0
    ends = time.monotonic() + _CONVERT_SECONDS
    for file in _spool_files(folder, (ARROW,))[:limit]:
        now = time.monotonic()
        if now >= ends or now < _resting_until:
            break  # the rest in a later round
        target = folder / (file.name[: -len(ARROW)] + PARQUET)
        code, said = _in_child(file, target) if _converter() else _convert(file, target)
        if code == 0:
            file.unlink(missing_ok=True)
            converted += 1
        elif code == _DISK:
            raise OSError(f"{file}: {said}")
        elif code != _GONE:  # _GONE: another process took it meanwhile
            quarantine(path, file, said)
            if code == _HUNG:
                _resting_until = time.monotonic() + _CONVERT_SECONDS
    if converted:
        logger.warning("otel-costattr: rewrote %d Arrow spool files of an old version as Parquet", converted)
        record(path, "arrow_converted", files=converted)
    return converted


# Outcomes of a conversion (a child's exit code): done, the file's fault, the disk's, gone;
# and the child hung (the file's fault too).
_INVALID, _DISK, _GONE, _HUNG = 3, 4, 5, 6
_resting_until = 0.0  # no conversion starts before (monotonic): one hung (`convert_arrow`)
_CONVERT_SECONDS = 300
_PROBE_SECONDS = 60
_CONVERT = (
    "import sys; from otel_costattr.store.spool import _convert_one; sys.exit(_convert_one(*sys.argv[1:]))"
)
_converter_ok: bool | None = None  # whether sys.executable runs `_CONVERT` (`_converter`)
_PROBE_KILLS = 3  # probes killed by a signal in a row before sys.executable is taken for no Python
_probe_kills = 0


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _converter() -> bool:
    """Whether ``sys.executable`` is a Python that imports this package, so that a child can
    convert: asked once a process, with a bounded probe (never in a frozen application, whose
    executable is the application), and remembered unless the probe could not run this time
    (no descriptors, no memory: OSError; killed by a signal: OSError raised here), when the
    files wait for the next ingest. A program that exits with an error, or ignores ``-c`` and
    hangs, is not one; nor one killed by a signal `_PROBE_KILLS` times in a row (an
    application's binary that aborts on an option it does not know)."""
    global _converter_ok, _probe_kills
    if _converter_ok is None:
        if getattr(sys, "frozen", False) or not sys.executable:
            _converter_ok = False
        else:
            try:
                done = subprocess.run(
                    [sys.executable, "-c", "import otel_costattr.store.spool"], env=_child_env(),
                    capture_output=True, timeout=_PROBE_SECONDS, check=False,
                )  # fmt: skip
                if done.returncode < 0 and _probe_kills < _PROBE_KILLS - 1:
                    _probe_kills += 1  # killed (the OOM killer, a signal): ask again next time
                    raise OSError(f"the spool converter's probe was killed by signal {-done.returncode}")
                _converter_ok = done.returncode == 0
            except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError):
                _converter_ok = False  # no such program: sure
            except subprocess.TimeoutExpired:
                _converter_ok = False  # a program that ignores -c (an application's own binary)
        if not _converter_ok:
            logger.warning(
                "otel-costattr: %r cannot run a converter: spool files converted here", sys.executable
            )
    return _converter_ok


def _in_child(file: Path, target: Path) -> tuple[int, str]:
    """`_convert` in a child process. A child killed by a signal, or hung, is the file's
    doing; any other end the converter does not give (an exit 1: memory, the interpreter) is
    the environment's, and the file waits for the next ingest."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CONVERT, str(file), str(target)],
            env=_child_env(), capture_output=True, text=True, timeout=_CONVERT_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return _HUNG, f"reading it as Arrow did not end in {_CONVERT_SECONDS} s"
    except (OSError, ValueError) as e:  # the child could not start (descriptors, memory): try later
        return _DISK, f"cannot start the converter: {e}"
    said = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode in (0, _INVALID, _DISK, _GONE):
        return done.returncode, said
    if done.returncode < 0:
        return _INVALID, f"reading it as Arrow crashed the reader (signal {-done.returncode}): {said}"
    return _DISK, f"the converter ended with exit code {done.returncode}: {said}"


def _convert_one(source: str, target: str) -> int:
    """The child's main: `_convert`, its message on stderr, its outcome as the exit code."""
    code, said = _convert(Path(source), Path(target))
    if said:
        print(said, file=sys.stderr)
    return code


def _convert(source: Path, target: Path) -> tuple[int, str]:
    """The Arrow IPC file ``source`` written as the Parquet spool file ``target``: (0, ""),
    (`_INVALID`, why: the file's fault, it does not parse or holds what Parquet cannot),
    (`_DISK`, why: reading or writing failed) or (`_GONE`, "")."""
    try:
        with open(source, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return _GONE, ""
    except OSError as e:
        return _DISK, f"cannot read it: {e}"
    try:  # parsed from memory: from here on nothing is the disk's (pyarrow says OSError too)
        table = ipc.open_file(pa.py_buffer(data)).read_all()
        table.validate(full=True)  # every offset, length and UTF-8 string, before any scan
    except Exception as e:
        return _INVALID, f"not a readable Arrow IPC spool file: {type(e).__name__}: {e}"
    try:
        _write(target.parent, target.name, table, fsync=True)
    except OSError as e:
        return _DISK, f"cannot write {target}: {e}"
    except Exception as e:  # a value Parquet cannot store
        return _INVALID, f"not a readable Arrow IPC spool file: {type(e).__name__}: {e}"
    return 0, ""


def quarantine(path: str | os.PathLike[str], file: Path, reason: str) -> bool:
    """Move ``file`` to ``bad/`` with a one-line reason beside it, and journal it. False when
    the file was gone already (another process ingested or moved it)."""
    bad = quarantine_dir(path)
    rows = file_rows(file)
    try:
        bad.mkdir(exist_ok=True)
        os.replace(file, bad / file.name)
    except FileNotFoundError:
        return False
    one_line = " ".join(reason.split())
    with contextlib.suppress(OSError):  # the reason is a courtesy; the file is what counts
        (bad / (file.name + _REASON)).write_text(one_line + "\n")
    logger.error("otel-costattr: spool file %s cannot be ingested (%s); moved to %s", file, one_line, bad)
    record(path, "quarantined", file=file.name, spans=rows, reason=one_line)
    return True


def requeue(path: str | os.PathLike[str]) -> list[Path]:
    """Move every quarantined file back into the spool (for `store.repair`). Returns them."""
    moved = []
    for file in quarantined(path):
        target = spool_dir(path) / file.name
        try:
            os.replace(file, target)
        except FileNotFoundError:
            continue
        Path(str(file) + _REASON).unlink(missing_ok=True)
        moved.append(target)
    return moved


def quarantine_reason(file: Path) -> str | None:
    """The reason recorded when ``file`` was quarantined."""
    try:
        return Path(str(file) + _REASON).read_text().strip() or None
    except OSError:
        return None


def clean_stale_tmp(path: str | os.PathLike[str]) -> None:
    """Delete temp files of writers that died before renaming them (never acknowledged)."""
    folder = spool_dir(path)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    cutoff = time.time() - _STALE_TMP_SECONDS
    for entry in entries:
        if entry.name.endswith(".tmp"):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass


# -- the journal ------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _journal_lock(journal: Path, exclusive: bool) -> Iterator[None]:
    """The journal's lock: a roll-over takes it alone, so no line is lost in between, and so
    does an appender (``exclusive``), so that a line a full disk makes it write in two parts
    is never split by another's."""
    if fcntl is None:
        yield
        return
    fd = os.open(journal.with_name(JOURNAL + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            # Unlocked before the close: a child forked meanwhile shares this descriptor's
            # lock, and closing ours alone would leave it held for as long as the child lives
            # (every other appender, and every roll-over, waiting on it; a review).
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def keep_reserve(path: str | os.PathLike[str]) -> bool:
    """Make sure the spool holds its journal's reserve: `RESERVE_BYTES` of disk, allocated,
    that `record` frees when the disk is full so that the count of what could not be kept
    still reaches the journal (a full disk at shutdown lost it: the exporter's last round
    could not write its drops, and `store status` said none). Never raises: False when the
    reserve cannot be had now (the disk full already); `record` tries again after a line."""
    reserve = spool_dir(path) / RESERVE
    if reserve.exists():
        return True
    tmp = reserve.with_name(f".{RESERVE}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, RESERVE_BYTES)  # blocks, not a sparse file
            else:
                _write_all(fd, bytes(RESERVE_BYTES))
        finally:
            os.close(fd)
        os.replace(tmp, reserve)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    return True


def _free_reserve(journal: Path) -> bool:
    """Give the reserve's space back (the disk is full); True when there was one."""
    try:
        (journal.parent / RESERVE).unlink()
    except OSError:
        return False
    return True


def record(path: str | os.PathLike[str], event: str, **fields: Any) -> bool:
    """Append one event to the spool's journal. Never raises: False (and a log line) when it
    could not be written, so a caller keeping a count can try again later. A full disk gives
    up the spool's reserve (`keep_reserve`) for the line, and the reserve is taken again at
    the next line that finds room."""
    journal = spool_dir(path) / JOURNAL
    line = json.dumps({"time": _now(), "pid": os.getpid(), "event": event, **fields}, default=str)
    try:
        _append(journal, line)
    except OSError as e:
        logger.warning("otel-costattr: cannot write %s (%s): %s", journal, e, line)
        return False
    keep_reserve(path)
    return True


def _append(journal: Path, line: str) -> None:
    """Append ``line`` whole: a write the disk cuts short is finished, the reserve given up
    for it when the disk is full (once: another writer may have given it up just now, and
    its room is there all the same). A line an earlier writer left torn (the disk full, the
    process killed) is ended first, so that it spoils only itself."""
    if journal.exists() and journal.stat().st_size > _JOURNAL_MAX_BYTES:
        try:
            with _journal_lock(journal, exclusive=True):
                if journal.stat().st_size > _JOURNAL_MAX_BYTES:  # not rolled over meanwhile
                    _roll_over(journal)
        except OSError as e:  # no room for the carried totals: the line still goes in
            logger.debug("otel-costattr: cannot roll %s over: %s", journal, e)
    with _journal_lock(journal, exclusive=True):
        fd = os.open(journal, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = (line + "\n").encode()
            size = os.fstat(fd).st_size
            if size and os.lseek(fd, size - 1, os.SEEK_SET) >= 0 and os.read(fd, 1) != b"\n":
                # (lseek and read, not pread, which Windows lacks; O_APPEND writes at the end)
                data = b"\n" + data
            _write_all(fd, data, journal=journal, line=line)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes, *, journal: Path | None = None, line: str = "") -> None:
    """Write all of ``data`` (a short write is followed by the rest). With ``journal``, the
    first ENOSPC or EDQUOT gives up its reserve and tries again."""
    view = memoryview(data)
    freed = journal is None
    while view:
        try:
            written = os.write(fd, view)
        except OSError as e:
            if freed or e.errno not in _FULL:
                raise
            freed = True
            _free_reserve(journal)  # type: ignore[arg-type]
            logger.error("otel-costattr: %s: disk full; the journal's reserve used for: %s", journal, line)
            continue
        if written <= 0:
            raise OSError(errno.EIO, "write returned nothing")
        view = view[written:]


def _roll_over(journal: Path) -> None:
    """Replace a long journal with one line carrying its totals (what `status` sums)."""
    totals = _summarise(_read(journal))
    carry = {
        "time": _now(),
        "pid": os.getpid(),
        "event": "carried",
        "dropped": totals.dropped_spans,
        "rejected": totals.rejected_spans,
        "pushed_back": totals.pushed_back_requests,
        "incomplete": totals.incomplete_requests,
        "refused": totals.refused_requests,
        "repeated": totals.repeated_spans,
        "last_error": totals.last_error,
        "last_error_time": totals.last_error_time,
        "recovered_time": totals.recovered_time,  # a resolved error stays resolved
    }
    tmp = journal.with_name(f".{JOURNAL}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(carry) + "\n")
    os.replace(tmp, journal)


def _read(journal: Path) -> Iterator[dict[str, Any]]:
    try:
        text = journal.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                yield event


@dataclass
class JournalSummary:
    """What the journal says: spans dropped in all, the last ingest error and whether an
    ingest succeeded after it."""

    dropped_spans: int = 0
    rejected_spans: int = 0  # a receiver's partial_success: spans it could not keep
    pushed_back_requests: int = 0  # a receiver's 503 / UNAVAILABLE: the client retries
    incomplete_requests: int = 0  # a receiver's requests whose body never came whole
    refused_requests: int = 0  # a receiver's requests refused whole (400, 413, 415): not retried
    # Spans not stored because their (trace id, span id) was: retries, or colliding ids.
    repeated_spans: int = 0
    last_error: str | None = None
    last_error_time: str | None = None
    recovered_time: str | None = None
    events: int = 0
    quarantine_events: list[dict[str, Any]] = field(default_factory=list)


def _summarise(events: Iterator[dict[str, Any]]) -> JournalSummary:
    out = JournalSummary()
    for e in events:
        out.events += 1
        kind = e.get("event")
        if kind in ("dropped", "carried"):
            with contextlib.suppress(TypeError, ValueError):
                out.dropped_spans += int(e.get("spans", e.get("dropped", 0)) or 0)
            if kind == "carried" and e.get("last_error"):
                out.last_error, out.last_error_time = e["last_error"], e.get("last_error_time")
                out.recovered_time = e.get("recovered_time")
        if kind in ("receiver", "carried"):  # `serve`'s receiver, its counts since its last line
            with contextlib.suppress(TypeError, ValueError):
                out.rejected_spans += int(e.get("rejected", 0) or 0)
                out.pushed_back_requests += int(e.get("pushed_back", 0) or 0)
                out.incomplete_requests += int(e.get("incomplete", 0) or 0)
                out.refused_requests += int(e.get("refused", 0) or 0)
        if kind in ("repeated", "carried"):
            with contextlib.suppress(TypeError, ValueError):
                out.repeated_spans += int(e.get("spans", e.get("repeated", 0)) or 0)
        if kind == "ingest_error":
            out.last_error, out.last_error_time = str(e.get("error")), e.get("time")
            out.recovered_time = None
        elif kind == "ingest_recovered":
            out.recovered_time = e.get("time")
        elif kind == "quarantined":
            out.quarantine_events.append(e)
    return out


def journal_summary(path: str | os.PathLike[str]) -> JournalSummary:
    """Totals and the latest ingest error, read from the spool's journal."""
    return _summarise(_read(spool_dir(path) / JOURNAL))
