"""``store status`` and ``store repair``: the span store's health, and putting it right."""

from __future__ import annotations

from typing import Any

import click

from ..store.maintenance import repair, status
from .options import duckdb_option, duckdb_path
from .output import Record, output


@click.group()
def store() -> None:
    """The span store's health: pending, quarantined and dropped spans.

    \b
    Example:
      otel-costattr store status --db spans.duckdb --check
    """


def _quarantined_spans(files: Any) -> str:
    """The spans the quarantined files hold, and how many files hold a count no one can read
    (a truncated file: "0 spans" read as nothing lost, a review)."""
    counted = _count(sum(q.spans or 0 for q in files), "span")
    unknown = sum(q.spans is None for q in files)
    if not unknown:
        return counted
    return f"{counted} and those of {_count(unknown, 'file')} whose count cannot be read"


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB"


@store.command("status")
@duckdb_option("opened read-only, waiting 2 s while a writer holds it (the spool is read even then)")
@click.option(
    "--check", is_flag=True,
    help="exit 3 when the file cannot be read (or this version refuses it) or anything is"
    " quarantined, dropped or failing"
    " (for cron and health checks; a file that is not there is an error, exit 1)",
)  # fmt: skip
@output
def store_status(db: str | None, check: bool) -> Record:
    """Spool files waiting, files quarantined, spans dropped, the last ingest error.

    \b
    Example:
      otel-costattr store status --db spans.duckdb
    """
    st = status(duckdb_path(db, "store status"))
    stored = f"{'UNREADABLE' if st.unreadable else 'unknown'} ({st.stored_error})"
    if st.stored_spans is not None:
        stored = _count(st.stored_spans, "span")
    error = "none"
    if st.last_ingest_error:
        after = f"; ingesting again since {st.recovered_time}" if st.recovered_time else "; not resolved"
        error = f"{st.last_ingest_error_time}: {st.last_ingest_error}{after}"
    schema = {"current": "current", "upgrade": "older (upgraded when next written)"}.get(
        st.schema or "", f"REFUSED ({st.schema_note})" if st.schema_note else "unknown"
    )
    lines = [
        ("database", st.path),
        ("schema", schema),
        ("stored", stored),
        ("pending", f"{_count(st.pending_files, 'file')}, {_count(st.pending_spans, 'span')}"
                    f" ({_size(st.pending_bytes)})"),
        ("quarantined", f"{_count(len(st.quarantined), 'file')}, {_quarantined_spans(st.quarantined)}"
         + (" (otel-costattr store repair retries them)" if st.quarantined else "")),
        ("dropped", _count(st.dropped_spans, "span")),
        *(
            [("repeated", f"{_count(st.repeated_spans, 'span')} not stored: their trace and span id were"
                          " (a retry's copy, or a file ingested again after a crash; or colliding ids,"
                          " from a broken id generator)")]
            if st.repeated_spans else []
        ),
        *(
            [("received", f"{_count(st.rejected_spans, 'span')} rejected as malformed, "
                          f"{_count(st.pushed_back_requests, 'request')} pushed back (503, retried), "
                          f"{st.refused_requests:,} refused whole (400/413/415, not retried), "
                          f"{st.incomplete_requests:,} never sent whole")]
            if st.rejected_spans or st.pushed_back_requests or st.refused_requests
            or st.incomplete_requests else []
        ),
        ("last ingest error", error),
    ]  # fmt: skip
    text = [f"{label:<18} {value}" for label, value in lines]
    text += [f"  {q.name}: {q.reason or 'reason not recorded'}" for q in st.quarantined]
    return Record(data=st.as_dict(), text="\n".join(text), exit_code=3 if check and not st.healthy else 0)


@store.command("repair")
@duckdb_option("opened read-write, waiting --lock-timeout for a writer")
@click.option(
    "--lock-timeout", type=float, default=10.0, show_default=True, metavar="SECONDS",
    help="how long to wait for a writer holding the database",
)  # fmt: skip
@click.pass_context
def store_repair(ctx: click.Context, db: str | None, lock_timeout: float) -> None:
    """Put quarantined spool files back and ingest them, and fill the attribute columns an
    older exporter left empty on its calls; exit 1 if some file still cannot be read.

    \b
    Example:
      otel-costattr store repair --db spans.duckdb --lock-timeout 30
    """
    result = repair(duckdb_path(db, "store repair"), lock_timeout=lock_timeout)
    click.echo(f"requeued {result.requeued} quarantined files; ingested {result.ingested_files} spool files")
    if result.refilled_calls:
        click.echo(
            f"filled the attribute columns of {result.refilled_calls:,} model calls an older exporter"
            " wrote without them (user, tenant, session: per-group and --where read them now)"
        )
    for q in result.still_quarantined:
        click.echo(f"still quarantined: {q.name}: {q.reason or 'reason not recorded'}")
    ctx.exit(1 if result.still_quarantined else 0)


def _count(n: int, noun: str) -> str:
    """``n`` and its noun, singular for one: "1 span", "2,048 spans" (it said "1 spans")."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
