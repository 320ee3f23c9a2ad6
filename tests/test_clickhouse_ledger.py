"""The settled calls (``costattr_calls_settled``) against the DuckDB store.

A settle writes each call whose answer can no longer change once, complete; the rollups read
those rows as stored, UNION ALL the typed rows no settle covered. Every state between settles
must give DuckDB's answers: rows arrived since, a span written again after its call was
settled, two settles racing from the same state, a settle that died after writing rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_workload
import pytest
import test_clickhouse_settle
from test_clickhouse import NOW, ROLLUPS, assert_agree, assert_cut_runs_agree
from test_clickhouse_settle import _agree, _settle, _store

from otel_costattr.clickhouse import ledger, parse_target, unstamped, walk
from otel_costattr.clickhouse.collector import insert_records
from otel_costattr.clickhouse.ledger import (
    CALLS_TABLE,
    MARKS_TABLE,
    UNSETTLED,
    ledger_params,
    read_chain,
    unsettled,
)
from otel_costattr.clickhouse.runner import contract, spans_relation
from otel_costattr.pricing.table import default_pricing
from otel_costattr.rollups.queries import rollup
from otel_costattr.rollups.whatif import whatif
from otel_costattr.sdk.seam_records import records_from_sdk
from otel_costattr.store.exporter import DuckDBSpanExporter

pytestmark = pytest.mark.chdb
workload = test_clickhouse_settle.workload  # the settle tests' fixture: one workload, both stores


def _calls(client: Any) -> int:
    return client.query(f"SELECT count() FROM {CALLS_TABLE}").result_rows[0][0]


def test_settled_calls_are_read_alone_and_once(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """After a settle every call is in the settled calls once, the typed rows are not read,
    and every rollup agrees."""
    duck, records = workload
    url, client = _store(chdb_dir, "ledger_all", records, typed=True)
    done = _settle(url)
    calls = client.query(
        "SELECT uniqExact(trace_id, span_id) FROM costattr_spans WHERE span_role = 'model_call'"
    )
    assert done.calls == _calls(client) == calls.result_rows[0][0]
    # Unfinished: the orphan call only (its parent is never stored), walked at read time.
    unfinished = client.query(f"SELECT span_id FROM {CALLS_TABLE} WHERE NOT final").result_rows
    orphans = [
        r
        for r in records
        if r.attributes.get("gen_ai.agent.name") is None
        and r.parent_span_id
        and r.parent_span_id not in {p.span_id for p in records}
        and _is_call(r)
    ]
    assert [s for (s,) in unfinished] == [r.span_id for r in orphans]
    assert read_chain(client).pending
    _agree(duck, url, ROLLUPS)
    # Once no call is unfinished, the typed rows are not read at all.
    client.command(f"ALTER TABLE {CALLS_TABLE} DELETE WHERE NOT final SETTINGS mutations_sync = 1")
    client.command(f"ALTER TABLE {MARKS_TABLE} UPDATE pending = false WHERE done SETTINGS mutations_sync = 1")
    assert unsettled(client, "costattr_spans", read_chain(client))[0] == "false"


def test_a_window_inside_a_run_keeps_its_root_when_settled(
    workload: tuple[str, list[Any]], chdb_dir: Path
) -> None:
    """The runs over the settled calls join the same roots as over the spans rows."""
    duck, records = workload
    url, _ = _store(chdb_dir, "ledger_cut", records, typed=True)
    _settle(url)
    assert_cut_runs_agree(duck, url)


def test_all_settled_reads_the_settled_calls_alone(tmp_path: Path, chdb_dir: Path) -> None:
    """With every call settled final (no orphan in the workload), the contract reads the
    settled calls alone, its typed part left out of the SQL, and every rollup agrees."""
    from otel_costattr.clickhouse.dialect import macros

    spans = clickhouse_workload.spans(default_pricing())
    ids = {s.context.span_id for s in spans}
    orphaned = {s.context.trace_id for s in spans if s.parent is not None and s.parent.span_id not in ids}
    assert orphaned  # the workload has orphans: their traces are left out here
    kept = [s for s in spans if s.context.trace_id not in orphaned]
    duck = str(tmp_path / "spans.duckdb")
    exporter = DuckDBSpanExporter(duck)
    exporter.export(kept)
    exporter.shutdown()
    url, client = _store(chdb_dir, "ledger_final", records_from_sdk(kept), typed=True)
    _settle(url)
    assert not read_chain(client).pending
    assert unsettled(client, "costattr_spans", read_chain(client))[0] == "false"
    target = parse_target(url)
    prelude, _ = contract(client, target, spans_relation(client, target), {})
    calls = macros(prelude(0))["costattr_calls"].body
    assert "FROM spans" not in calls and CALLS_TABLE in calls  # the typed part cut
    _agree(duck, url, ROLLUPS)


@pytest.fixture(params=["bound", "sql_walk", "unbound"])
def bound(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A reader binds the sets it found (traces, keys) and the walk's answers as values
    ("bound": the walk's traces and answers here in chunks of one value); past
    `walk.WALK_CALLS` it walks in SQL, the traces bound ("sql_walk"); past every limit it
    reads them by subqueries, and calls written again by `UNSETTLED` ("unbound": every limit
    made 0 here). Each must give DuckDB's answers."""
    if request.param == "bound":  # the walk's traces and answers in several chunks
        monkeypatch.setattr(unstamped, "CHUNK_BYTES", 100)  # a call, a trace id, a chunk
    if request.param == "sql_walk":
        monkeypatch.setattr(walk, "WALK_CALLS", 0)
    if request.param == "unbound":
        monkeypatch.setattr(walk, "WALK_CALLS", 0)
        monkeypatch.setattr(ledger, "BOUND_TRACES", 0)
        monkeypatch.setattr(ledger, "BOUND_KEYS", 0)
        monkeypatch.setattr(unstamped, "_BOUND_KEYS", 0)
    return str(request.param)


def test_a_bound_set_fits_in_one_http_field() -> None:
    """A ClickHouse server refuses a parameter over 128 KiB (http_max_field_value_size), and
    clickhouse-connect sends each as one field: the largest set a reader binds, rendered by
    clickhouse-connect itself, stays under it."""
    from clickhouse_connect.driver.binding import bind_query

    _, fields = bind_query(
        "SELECT {t:Array(String)}, {k:Array(Tuple(String, String))}",
        {"t": ["f" * 32] * ledger.BOUND_TRACES, "k": [("f" * 32, "f" * 16)] * ledger.BOUND_KEYS},
    )
    assert unstamped._BOUND_KEYS == ledger.BOUND_KEYS
    assert max(len(v) for v in fields.values()) < 128 * 1024


def _read_as_calls(client: Any, test: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    sql = "SELECT trace_id, span_id, _block_number FROM costattr_spans WHERE span_role = 'model_call' AND "
    sql += test
    return sorted(client.query(sql, parameters=params).result_rows)


def _same_as_unsettled(client: Any) -> None:
    """The reader's bound test reads the typed rows `UNSETTLED` reads, row for row."""
    test, params = unsettled(client, "costattr_spans", read_chain(client))
    whole = UNSETTLED.replace("{typed}", "costattr_spans")
    assert test != whole  # the bound form (this store holds few traces)
    got = [] if test == "false" else _read_as_calls(client, test, params)
    assert got == _read_as_calls(client, whole, ledger_params(read_chain(client)))


def test_a_query_between_two_settles(workload: tuple[str, list[Any]], chdb_dir: Path, bound: str) -> None:
    """Settled with a part of the spans (children before parents): the calls whose parent is
    missing are written unfinished; after the rest arrives they are walked at read time with
    the new rows, and the next settle finishes them."""
    duck, records = workload
    first = [r for i, r in enumerate(records) if i % 3 != 0 and i < len(records) * 3 // 4]
    url, client = _store(chdb_dir, f"ledger_between_{bound}", first, typed=True)
    _settle(url)
    assert read_chain(client).pending  # some calls' parents are not stored yet
    insert_records(client, [r for r in records if r not in first])
    if bound != "unbound":
        _same_as_unsettled(client)
    target = parse_target(url)
    _, params = contract(client, target, spans_relation(client, target), {})
    # The walk's answers bound; past WALK_CALLS a walk in SQL, its traces bound as values
    # or, past BOUND_TRACES, read from the calls it walks.
    assert ("costattr_walked_trace_id" in params) == (bound == "bound")
    assert ("costattr_walk_traces" in params) == (bound == "sql_walk")
    assert ("costattr_walk_lo" in params) == (bound != "bound")
    _agree(duck, url)
    # The rollups that read other windows than the one walked and priced (compare, forecast),
    # by day, and runs' trees.
    _agree(duck, url, ("compare", "forecast", "daily", "per_model"))
    for run in rollup("per_run", duck, limit=0)[::4]:
        trace = {"trace_id": run["trace_id"]}
        assert_agree(rollup("trace", duck, **trace), rollup("trace", url, **trace))
    # An empty answer is named from the settled calls alone (chDB names no column then).
    for name in ("per_feature", "reconcile", "runs_list"):
        want = rollup(name, duck, now=NOW, where={"user.id": "nobody"})
        assert_agree(want, rollup(name, url, now=NOW, where={"user.id": "nobody"}))
        assert not want and want.columns
    late = _settle(url)
    assert late.calls > 0
    _agree(duck, url, ROLLUPS)


def test_an_unfinished_call_written_on_two_days_is_read_from_both(
    workload: tuple[str, list[Any]], chdb_dir: Path
) -> None:
    """The orphan call (its parent is never stored) written twice before the settle, the copy
    a day later: its settled row keeps one start time, and the reader's bound test takes the
    times of its typed rows, so it reads both copies, as `UNSETTLED` does."""
    _, records = workload
    known = {r.span_id for r in records}
    orphan = next(r for r in records if _is_call(r) and r.parent_span_id and r.parent_span_id not in known)
    day = 86_400 * 10**9
    copy = orphan._replace(start_ns=orphan.start_ns + day, end_ns=orphan.end_ns + day)
    url, client = _store(chdb_dir, "ledger_two_days", records, [copy], typed=True)
    _settle(url)
    assert read_chain(client).pending
    test, params = unsettled(client, "costattr_spans", read_chain(client))
    read = _read_as_calls(client, test, params)
    assert [key for key in read if key[1] == orphan.span_id][1:]  # both copies
    _same_as_unsettled(client)


def _span(trace: str, span: str, parent: str | None, start_ns: int, attributes: dict[str, Any]) -> Any:
    from otel_costattr.spans.record import SpanRecord

    service = {"service.name": "app"}
    return SpanRecord(
        trace, span, parent, start_ns, start_ns + 10**6, "s", "INTERNAL", "UNSET", None, service, "app",
        None, None, attributes, (), (),
    )  # fmt: skip


def test_a_walk_between_settles_reaches_an_ancestor_a_day_earlier(chdb_dir: Path) -> None:
    """Between two settles a call without identity arrives whose only ancestor, the run's
    root (feature and agent), started a day earlier: the walk's bound start times must take
    it in (the first of the trace's spans, not of its calls)."""
    day, hour = 1_780_300_800 * 10**9, 3600 * 10**9
    usage = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.cost": "0.01",
             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}  # fmt: skip
    first = [_span("a" * 32, "c" * 16, None, day, {**usage, "app.feature": "F", "gen_ai.agent.name": "A"})]
    url, client = _store(chdb_dir, "ledger_walk_day", first, typed=True)
    _settle(url)
    root = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "B", "app.feature": "G"}
    later = [
        _span("b" * 32, "e" * 16, None, day - 24 * hour, root),
        _span("b" * 32, "d" * 16, "e" * 16, day + hour, usage),
    ]
    insert_records(client, later)
    _same_as_unsettled(client)
    got = {(row["feature"], row["calls"]) for row in rollup("per_feature", url, since=None, until=None)}
    assert got == {("F", 1), ("G", 1)}


def test_a_late_copy_of_a_settled_call_counts_once(
    workload: tuple[str, list[Any]], chdb_dir: Path, bound: str
) -> None:
    """An exporter retry after the settle: the copies are typed rows above the watermark whose
    calls are settled already; before and after the next settle they count once."""
    duck, records = workload
    url, client = _store(chdb_dir, f"ledger_copy_{bound}", records, typed=True)
    _settle(url)
    insert_records(client, records[::3])
    if bound != "unbound":
        _same_as_unsettled(client)
        assert "costattr_ledger_rewritten" in unsettled(client, "costattr_spans", read_chain(client))[1]
    _agree(duck, url)
    _settle(url)  # the copies are not written again (only the orphan call, still unfinished)
    last = read_chain(client).seq
    again = client.query(f"SELECT countIf(final) FROM {CALLS_TABLE} WHERE seq = {last}").result_rows[0][0]
    assert last > 1 and again == 0
    _agree(duck, url)


def test_racing_settles_count_once(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """Two settles that started from the same state both write the same calls: readers take
    the first done and leave the other's rows out."""
    duck, records = workload
    half = len(records) // 2
    url, client = _store(chdb_dir, "ledger_race", records[:half], typed=True)
    _settle(url)
    before = read_chain(client)
    insert_records(client, records[half:])
    _settle(url)
    _settle_from(client, before)  # the other settle, done second
    assert _calls(client) > len({(r.trace_id, r.span_id) for r in records if _is_call(r)})
    _agree(duck, url)


def test_a_settle_that_died_is_left_out(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """A settle that wrote its rows but never its done mark (killed), begun before the one
    readers now end with: its rows are not counted."""
    duck, records = workload
    half = len(records) // 2
    url, client = _store(chdb_dir, "ledger_died", records[:half], typed=True)
    _settle(url)
    client.command(
        f"INSERT INTO {MARKS_TABLE} (token, done, seq, after, watermark, pending) VALUES ('x', 0, 0, 0, 0, 0)"
    )
    dead = client.query(f"SELECT _block_number FROM {MARKS_TABLE} WHERE token = 'x'").result_rows[0][0]
    client.command(f"INSERT INTO {CALLS_TABLE} SELECT * REPLACE ({dead} AS seq) FROM {CALLS_TABLE}")
    insert_records(client, records[half:])
    _settle(url)
    assert dead in read_chain(client).orphans
    _agree(duck, url)


def _is_call(record: Any) -> bool:
    return any(k.startswith("gen_ai.usage") for k in record.attributes)


def _settle_from(client: Any, chain: Any) -> None:
    """A settle that read ``chain`` before another settle extended it (a race)."""
    from otel_costattr.clickhouse.settle import _record_calls

    assert _record_calls(client, "costattr_spans", chain) > 0


def test_repricing_reads_the_settled_calls(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """--reprice and whatif select their calls through the same contract: settled calls plus
    the typed rows that arrived since, each once."""
    duck, records = workload
    half = len(records) // 2
    url, client = _store(chdb_dir, "ledger_reprice", records[:half], typed=True)
    _settle(url)
    insert_records(client, records[half:] + records[:half:5])  # new spans and retry copies
    table = default_pricing()
    for name in ("per_feature", "per_run"):
        assert_agree(rollup(name, duck, now=NOW, reprice=table), rollup(name, url, now=NOW, reprice=table))
    expected, got = whatif(duck, model="gpt-4o-mini"), whatif(url, model="gpt-4o-mini")
    assert expected.rows and expected.rows[0]["selected_calls"] > 0
    assert_agree(expected.rows, got.rows)
