"""The settled calls' layout (one partition per day of the call) and its migration.

A window (the report's and the dashboard's 7 days) must read its days' parts only, so the
settled calls are partitioned by the call's day (`ledger.LAYOUT`). Stores settled before
hold them in the first layout (``costattr_calls_settled``, ordered by call only), which the
next settle copies (`ledger.install`). Answers must stay DuckDB's: a window whose bounds
fall on midnight, a run across midnight, a call at the epoch, a store spread over more days
than one INSERT may write by default; a store of the first layout before and after its
settle, a migration cut short (its copy left behind, or the old table left beside the new),
two settles copying at once, calls settled after the migration.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import clickhouse_workload
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from test_clickhouse import assert_agree
from test_clickhouse_settle import _settle, _store

from otel_costattr.clickhouse import ledger
from otel_costattr.clickhouse.collector import insert_records
from otel_costattr.clickhouse.ledger import (
    _COPY_PREFIX,
    CALLS_TABLE,
    COLUMNS,
    LEGACY_CALLS_TABLE,
    ledger_exists,
)
from otel_costattr.clickhouse.prelude import ATTRIBUTE_COLUMNS, attribute_value
from otel_costattr.clickhouse.target import parse_target
from otel_costattr.clickhouse.typed import TYPED_TABLE
from otel_costattr.pricing.table import default_pricing
from otel_costattr.rollups.queries import rollup
from otel_costattr.sdk.seam_records import records_from_sdk
from otel_costattr.store.exporter import DuckDBSpanExporter

pytestmark = pytest.mark.chdb

MIDNIGHT = dt.datetime(2026, 6, 2)  # the boundary the windows below fall on
_MIDNIGHT_NS = int(MIDNIGHT.replace(tzinfo=dt.timezone.utc).timestamp()) * 10**9
_DAY_NS = 86_400 * 10**9
DAYS = 120  # one run a day: more days than an INSERT writes by default (100 partitions)
NOW = MIDNIGHT + dt.timedelta(days=DAYS)
# The windows: bounds on midnight exactly, a microsecond off it, one day, and none.
WINDOWS: list[dict[str, Any]] = [
    {"since": MIDNIGHT},
    {"until": MIDNIGHT},
    {"since": MIDNIGHT - dt.timedelta(microseconds=1), "until": MIDNIGHT + dt.timedelta(microseconds=1)},
    {"since": MIDNIGHT, "until": MIDNIGHT + dt.timedelta(days=1)},
    {"since": dt.datetime(1970, 1, 1), "until": dt.datetime(1970, 1, 2)},
    {},
]
WINDOWED = ("per_group", "runs_list", "per_run", "top_runs", "reconcile", "per_feature", "daily", "stats")


def _spans() -> list[Any]:
    """Runs whose calls fall on either side of MIDNIGHT (one call a microsecond before, one
    at it, one after; a run that crosses it, its root the day before), one run a day for
    DAYS days, and one run at the epoch (time zero); some calls from the service without
    the processor (walked, priced)."""
    app, side, memory = clickhouse_workload._providers(default_pricing())
    tracers = (app.get_tracer("layout"), side.get_tracer("layout"))
    n = 0

    def run(start: int, offsets: list[int]) -> None:
        nonlocal n
        n += 1
        root = tracers[0].start_span(
            "workflow",
            attributes={"app.feature": ("a", "b")[n % 2], "user.id": f"u{n % 3}"},
            start_time=start,
        )
        ctx = trace.set_span_in_context(root)
        for i, offset in enumerate(offsets):
            tracer = tracers[(n + i) % 3 == 0]
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100 + n,
                "gen_ai.usage.output_tokens": 10 + i,
            }
            if i % 2:
                attrs["llm.cost.total"] = 0.0001 * n  # the provider's cost (reconcile)
            call = tracer.start_span(
                "chat", ctx, SpanKind.CLIENT, attributes=attrs, start_time=start + offset
            )
            call.end(end_time=start + offset + 1000)
        root.end(end_time=start + max(offsets) + 2000)

    us = 1000
    run(_MIDNIGHT_NS - 5 * 60 * 10**9, [5 * 60 * 10**9 - us, 5 * 60 * 10**9, 5 * 60 * 10**9 + us])
    run(_MIDNIGHT_NS - us, [0, us, 2 * us])  # the root and its first call before midnight
    run(_MIDNIGHT_NS, [0, 10**9])  # starts at midnight exactly
    for day in range(DAYS):
        run(_MIDNIGHT_NS + day * _DAY_NS + 3_600 * 10**9, [10**6, 2 * 10**6])
    run(0, [0, us])  # at the epoch: its first call at time zero
    app.shutdown()
    side.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Any]]:
    """(the DuckDB file, the span records)."""
    spans = _spans()
    duck = str(tmp_path_factory.mktemp("duck") / "layout.duckdb")
    exporter = DuckDBSpanExporter(duck)
    exporter.export(spans)
    exporter.shutdown()
    return duck, records_from_sdk(spans)


def _agree(duck: str, url: str) -> None:
    for name in WINDOWED:
        for window in WINDOWS:
            want, got = rollup(name, duck, now=NOW, **window), rollup(name, url, now=NOW, **window)
            try:
                assert_agree(want, got)
            except AssertionError as e:
                raise AssertionError(f"{name} {window}: {e}") from None


def _partitions(client: Any) -> set[str]:
    return {
        row[0]
        for row in client.query(
            "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase()"
            " AND table = {t:String} AND active",
            parameters={"t": CALLS_TABLE},
        ).result_rows
    }


def _tables(client: Any) -> set[str]:
    found = client.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    return {name for (name,) in found.result_rows}


def _batches(records: list[Any]) -> list[list[Any]]:
    """``records`` as the Collector inserts them: a few minutes each, never 100 days at once
    (otel_traces is partitioned by day too)."""
    return [records[i : i + 30] for i in range(0, len(records), 30)]


def test_the_settled_calls_are_partitioned_by_day(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """One settle writes calls of DAYS + 3 days (more partitions than an INSERT takes by
    default); each day is a partition; windows on midnight agree with DuckDB."""
    duck, records = workload
    url, client = _store(chdb_dir, "layout_days", *_batches(records), typed=True)
    assert _settle(url).calls > 0
    keys = client.query(
        "SELECT partition_key, sorting_key FROM system.tables WHERE database = currentDatabase()"
        " AND name = {t:String}",
        parameters={"t": CALLS_TABLE},
    ).result_rows
    assert keys == [("toDate(start_time)", "trace_id, span_id")]
    days = _partitions(client)
    assert {"1970-01-01", "2026-06-01", "2026-06-02"} <= days and len(days) == DAYS + 2
    _agree(duck, url)


def _first_layout(client: Any, drop: bool = True) -> int:
    """Make the settled calls of ``client``'s store as a settle of the first layout left them
    (ordered by call, one partition, before the attribute columns), and unless ``drop`` is
    false, drop the new table: returns their count."""
    names = ", ".join((*COLUMNS, "seq", "final"))
    client.command(
        f"CREATE TABLE {LEGACY_CALLS_TABLE} ENGINE = MergeTree ORDER BY (trace_id, span_id)"
        f" AS SELECT {names} FROM {CALLS_TABLE}"
    )
    if drop:
        client.command(f"DROP TABLE {CALLS_TABLE}")
    return client.query(f"SELECT count() FROM {LEGACY_CALLS_TABLE}").result_rows[0][0]


def _rows(client: Any, table: str) -> list[tuple[Any, ...]]:
    return client.query(
        f"SELECT trace_id, span_id, seq, final, cost_usd, feature FROM {table} ORDER BY ALL"
    ).result_rows


def _check_migrated(client: Any, rows: list[tuple[Any, ...]]) -> None:
    """The first layout's rows, each once, in the new layout, every attribute column written
    (in the parts, equal to the Map's value); nothing else left behind."""
    assert _rows(client, CALLS_TABLE) == rows
    tables = _tables(client)
    assert LEGACY_CALLS_TABLE not in tables and not [t for t in tables if t.startswith(_COPY_PREFIX)]
    differ = " OR ".join(f"{c} IS DISTINCT FROM {attribute_value(k)}" for k, c in ATTRIBUTE_COLUMNS.items())
    bad, with_user = client.query(
        f"SELECT countIf({differ}), countIf(attr_user_id IS NOT NULL) FROM {CALLS_TABLE}"
    ).result_rows[0]
    assert bad == 0 and with_user > 0
    written = client.query(
        "SELECT uniqExact(column) FROM system.parts_columns WHERE database = currentDatabase()"
        " AND table = {t:String} AND active AND has({c:Array(String)}, column)",
        parameters={"t": CALLS_TABLE, "c": list(ATTRIBUTE_COLUMNS.values())},
    ).result_rows[0][0]
    assert written == len(ATTRIBUTE_COLUMNS)
    assert len(_partitions(client)) == DAYS + 2


def test_a_store_of_the_first_layout_is_migrated_by_the_next_settle(
    workload: tuple[str, list[Any]], chdb_dir: Path
) -> None:
    """Before: read as never settled (the first layout is not read), answers DuckDB's. The
    next settle (nothing new to settle) copies the calls and drops the old table."""
    duck, records = workload
    url, client = _store(chdb_dir, "layout_first", *_batches(records), typed=True)
    _settle(url)
    rows = _rows(client, CALLS_TABLE)
    assert _first_layout(client) == len(rows)
    assert not ledger_exists(client, parse_target(url))
    _agree(duck, url)
    assert _settle(url).calls == 0
    _check_migrated(client, rows)
    _agree(duck, url)


def test_a_migration_cut_short_is_finished(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """A settle that died while copying (its copy half full, the old table there): the next
    one copies again and drops the dead copy. One that died after the rename, before the
    drop: the next one drops the old table, and the calls are not copied twice."""
    duck, records = workload
    url, client = _store(chdb_dir, "layout_cut", *_batches(records), typed=True)
    _settle(url)
    rows = _rows(client, CALLS_TABLE)
    _first_layout(client)
    dead = f"{_COPY_PREFIX}dead"
    client.command(f"CREATE TABLE {dead} AS {LEGACY_CALLS_TABLE}")
    client.command(f"INSERT INTO {dead} SELECT * FROM {LEGACY_CALLS_TABLE} LIMIT 7")
    _settle(url)
    _check_migrated(client, rows)
    # Renamed, not dropped: the old table still beside the new one.
    _first_layout(client, drop=False)
    _settle(url)
    assert _rows(client, CALLS_TABLE) == rows and LEGACY_CALLS_TABLE not in _tables(client)
    _agree(duck, url)


def test_two_settles_copying_at_once(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """Two settles copy the first layout at once. The other one renames its copy first, drops
    this one's (a leftover to it) and settles calls that arrived meanwhile; this one's rename
    then fails: it goes on with the installed table, which keeps the other's calls."""
    from otel_costattr.clickhouse.settle import _record_calls

    duck, records = workload
    half = len(records) // 2
    url, client = _store(chdb_dir, "layout_race", *_batches(records[:half]), typed=True)
    _settle(url)
    _first_layout(client)
    copies: list[str] = []

    class Racing:
        """This settle's client: the other settle runs whole just before its rename."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def command(self, sql: str, **kw: Any) -> Any:
            if sql.startswith("RENAME TABLE ") and sql.endswith(f" TO {CALLS_TABLE}"):
                copies.append(sql.split()[2])
                assert copies[0] in _tables(client)
                for batch in _batches(records[half:]):
                    insert_records(client, batch)
                assert _settle(url).calls > 0  # the other settle
                assert copies[0] not in _tables(client)  # dropped as a leftover
                self.after = _rows(client, CALLS_TABLE)
            return self.inner.command(sql, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    racing = Racing(client)
    assert _record_calls(racing, "costattr_spans") == 0  # nothing left for it to settle
    assert len(copies) == 1 and _rows(client, CALLS_TABLE) == racing.after
    assert not [t for t in _tables(client) if t.startswith(_COPY_PREFIX) or t == LEGACY_CALLS_TABLE]
    _agree(duck, url)


def test_calls_settled_after_the_migration(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """A store of the first layout that settled half the spans: the rest arrive (and a late
    copy of a settled call); the settle that migrates then settles them, once each."""
    duck, records = workload
    half = len(records) // 2
    url, client = _store(chdb_dir, "layout_after", *_batches(records[:half]), typed=True)
    _settle(url)
    _first_layout(client)
    for batch in _batches(records[half:] + records[:3]):
        insert_records(client, batch)
    assert _settle(url).calls > 0
    calls = client.query(
        "SELECT uniqExact(trace_id, span_id) FROM costattr_spans WHERE span_role = 'model_call'"
    ).result_rows[0][0]
    rows, counted = client.query(
        f"SELECT count(), uniqExact(trace_id, span_id) FROM {CALLS_TABLE} WHERE final"
    ).result_rows[0]
    assert rows == counted <= calls  # each call settled once, the late copies' too
    _agree(duck, url)


def _calls(db: str) -> int:
    return sum(row["calls"] for row in rollup("per_feature", db, now=NOW))


def test_a_call_written_again_on_the_next_day_counts_once(
    workload: tuple[str, list[Any]], chdb_dir: Path
) -> None:
    """The Collector writes a span again with another Timestamp (a retry's copy a moment
    later, past midnight): the look for it must not take the day for a key, else the copy is
    settled too and the call counts twice, for good."""
    duck, records = workload
    before = min(
        (r for r in records if r.name == "chat" and 10**18 < r.start_ns < _MIDNIGHT_NS),
        key=lambda r: _MIDNIGHT_NS - r.start_ns,
    )
    assert _MIDNIGHT_NS - before.start_ns <= 10**6  # the call a microsecond before midnight
    shift = _MIDNIGHT_NS - before.start_ns + 20_000
    again = before._replace(start_ns=before.start_ns + shift, end_ns=before.end_ns + shift)
    url, client = _store(chdb_dir, "layout_retimed", *_batches(records), typed=True)
    _settle(url)
    insert_records(client, [again])
    assert _calls(url) == _calls(duck)  # read between two settles
    _settle(url)
    assert _calls(url) == _calls(duck)
    rows, counted = client.query(
        f"SELECT count(), uniqExact(trace_id, span_id) FROM {CALLS_TABLE} WHERE final"
    ).result_rows[0]
    assert rows == counted


def _engine(client: Any, table: str) -> str:
    return client.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows[0][0]


def test_settled_calls_expire_with_the_typed_rows(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """`clickhouse init --ttl-days`: the settled calls take the typed table's TTL at the next
    settle, so a call settled while young expires with its spans (the run at the epoch here,
    settled before the typed table has a TTL, as calls are settled before they grow old) and
    a rollup stops counting it; a TTL taken off the typed table goes here too."""
    duck, records = workload
    epoch = sum(1 for r in records if r.name == "chat" and r.start_ns < 10**18)
    assert epoch == 2
    url, client = _store(chdb_dir, "layout_ttl", *_batches(records), typed=True)
    _settle(url)
    assert _calls(url) == _calls(duck)
    # As `init --ttl-days 3650` makes it (the 2026 runs stay until 2036).
    client.command(f"ALTER TABLE {TYPED_TABLE} MODIFY TTL toDateTime(start_time) + toIntervalDay(3650)")
    _settle(url)
    assert "TTL toDateTime(start_time) + toIntervalDay(3650)" in _engine(client, CALLS_TABLE)
    for table in (TYPED_TABLE, CALLS_TABLE):
        client.command(f"OPTIMIZE TABLE {table} FINAL")  # what the merges do in time
    stale = f"SELECT count() FROM {CALLS_TABLE} WHERE start_time < toDateTime64('2000-01-01', 6, 'UTC')"
    assert client.query(stale).result_rows[0][0] == 0
    assert _calls(url) == _calls(duck) - epoch
    client.command(f"ALTER TABLE {TYPED_TABLE} REMOVE TTL")
    _settle(url)
    assert " TTL " not in _engine(client, CALLS_TABLE)


def test_a_ttl_the_settled_calls_cannot_take_is_logged(
    workload: tuple[str, list[Any]],
    chdb_dir: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TTL a user wrote on the typed table over a column the settled calls lack: the settle
    says so in the log, once (`serve` settles every minute), gives the settled calls its plain
    deletes alone (a clause WHERE over a typed column left out) or, with none, takes off the
    TTL they had (an earlier one of the typed table's would expire them before their spans),
    and still settles."""
    monkeypatch.setattr(ledger, "_TTL_REFUSED", set())
    duck, records = workload
    url, client = _store(chdb_dir, "layout_ttl_foreign", *_batches(records), typed=True)
    # Expires nothing here until 2038 (the epoch run); no further: DateTime ends in 2106.
    ttl = "toDateTime(start_time) + toIntervalDay(25000)"
    client.command(f"ALTER TABLE {TYPED_TABLE} MODIFY TTL {ttl}")
    _settle(url)
    assert f"TTL {ttl}" in _engine(client, CALLS_TABLE)
    shorter = "toDateTime(start_time) + toIntervalDay(20000)"  # not a call younger than 54 years
    conditional = f"{shorter} WHERE span_role = 'no such role'"
    client.command(f"ALTER TABLE {TYPED_TABLE} MODIFY TTL {ttl}, {conditional}")
    with caplog.at_level("WARNING", logger="otel_costattr.clickhouse.ledger"):
        _settle(url)
        insert_records(client, records[:1])  # something new for the next settle to do
        _settle(url)
    said = [r for r in caplog.records if "TTL" in r.getMessage() and CALLS_TABLE in r.getMessage()]
    assert len(said) == 1
    assert _engine(client, CALLS_TABLE).count(" TTL ") == 1  # the plain delete alone
    assert f"TTL {ttl} SETTINGS" in _engine(client, CALLS_TABLE)
    client.command(f"ALTER TABLE {TYPED_TABLE} MODIFY TTL {conditional}")
    _settle(url)
    assert " TTL " not in _engine(client, CALLS_TABLE)
    assert _calls(url) == _calls(duck)


def test_a_migration_that_fails_leaves_no_copy_behind(
    workload: tuple[str, list[Any]], chdb_dir: Path
) -> None:
    """A copy whose merge fails (a timeout on a large table) is dropped: `serve` retries the
    settle every minute, and each try left a full copy of the settled calls."""
    from otel_costattr.clickhouse.settle import _record_calls

    _, records = workload
    url, client = _store(chdb_dir, "layout_fails", *_batches(records[:60]), typed=True)
    _settle(url)
    _first_layout(client)

    class TimesOutOnMerge:  # the real client, but its OPTIMIZE fails as on a timeout
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def command(self, sql: str, **kw: Any) -> Any:
            if sql.startswith("OPTIMIZE"):
                raise RuntimeError("Timeout exceeded")
            return self.inner.command(sql, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    for _ in range(2):
        with pytest.raises(RuntimeError):
            _record_calls(TimesOutOnMerge(client), "costattr_spans")
    assert not [t for t in _tables(client) if t.startswith(_COPY_PREFIX)]
    assert LEGACY_CALLS_TABLE in _tables(client)  # nothing lost: tried again next time


def test_calls_an_older_settle_wrote_after_the_migration_are_copied_over(
    workload: tuple[str, list[Any]], chdb_dir: Path
) -> None:
    """A settle of an older version that ran after the migration made the first layout's
    table again: its rows of settles this version never wrote are copied over before the
    table is dropped."""
    _, records = workload
    url, client = _store(chdb_dir, "layout_older", *_batches(records[:60]), typed=True)
    _settle(url)
    _first_layout(client, drop=False)
    seq = client.query(f"SELECT max(seq) FROM {CALLS_TABLE}").result_rows[0][0]
    client.command(f"ALTER TABLE {LEGACY_CALLS_TABLE} UPDATE seq = {seq + 1000} WHERE 1")
    older = client.query(f"SELECT count() FROM {LEGACY_CALLS_TABLE}").result_rows[0][0]
    before = client.query(f"SELECT count() FROM {CALLS_TABLE}").result_rows[0][0]
    _settle(url)
    assert LEGACY_CALLS_TABLE not in _tables(client)
    copied = client.query(f"SELECT count() FROM {CALLS_TABLE} WHERE seq = {seq + 1000}").result_rows[0][0]
    assert copied == older > 0
    assert client.query(f"SELECT count() FROM {CALLS_TABLE}").result_rows[0][0] >= before + older


def test_init_backfills_more_days_than_an_insert_may(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """``clickhouse init`` on a store of DAYS + 2 days: the backfill of the typed table (one
    INSERT, partitioned by day) and the first settle both write every day."""
    from otel_costattr.clickhouse.typed import initialise

    duck, records = workload
    url, client = _store(chdb_dir, "layout_init", *_batches(records))
    target = parse_target(url)
    assert initialise(client, target) == len(records)
    assert _settle(url).calls > 0 and len(_partitions(client)) == DAYS + 2
    _agree(duck, url)
