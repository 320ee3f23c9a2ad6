"""Settled facts and repeated spans on ClickHouse, against the DuckDB store.

`otel-costattr clickhouse settle` keeps each call's walked identity and each unstamped call's
price in ``costattr_settled``; the rollups then walk and price at read time only what is not
settled. Answers must not change: every rollup agrees row for row with DuckDB when all is
settled, when rows (and parents) arrived after the settle, and when the Collector wrote spans
twice (an exporter retry), which both stores count once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import clickhouse_workload
import pytest
from test_clickhouse import NOW, ROLLUPS, assert_agree

from otel_costattr.cli import main
from otel_costattr.clickhouse import parse_target
from otel_costattr.clickhouse.client import connect
from otel_costattr.clickhouse.collector import create_table_sql, insert_records
from otel_costattr.clickhouse.runner import spans_relation
from otel_costattr.clickhouse.settle import SETTLED_TABLE, Settler, needs_walk, settle, settle_store
from otel_costattr.clickhouse.typed import initialise
from otel_costattr.clickhouse.unstamped import fetch_unstamped
from otel_costattr.pricing.table import default_pricing
from otel_costattr.rollups.queries import rollup
from otel_costattr.sdk.seam_records import records_from_sdk
from otel_costattr.store.exporter import DuckDBSpanExporter

pytestmark = pytest.mark.chdb

# The calls, the runs, the agents and steps, the tool spans, the unpriced, the attributes.
MAIN = ("per_feature", "per_run", "per_agent", "per_step", "step_jumps", "unpriced", "per_group", "top_runs")


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Any]]:
    """(the DuckDB file, the span records) of the ClickHouse tests' workload."""
    spans = clickhouse_workload.spans(default_pricing())
    duck = str(tmp_path_factory.mktemp("duck") / "spans.duckdb")
    exporter = DuckDBSpanExporter(duck)
    exporter.export(spans)
    exporter.shutdown()
    return duck, records_from_sdk(spans)


def _store(chdb_dir: Path, name: str, *batches: list[Any], typed: bool = False) -> tuple[str, Any]:
    """A fresh otel_traces in database ``name`` (the typed table first, with ``typed``), each
    batch one insert, as the Collector makes them."""
    url = f"chdb://{chdb_dir}?database={name}"
    target = parse_target(url)
    client = connect(target, create=True)
    client.command(create_table_sql())
    if typed:
        initialise(client, target, backfill=False)
    for batch in batches:
        insert_records(client, batch)
    return url, client


def _settle(url: str) -> Any:
    return settle_store(parse_target(url))


def _agree(duck: str, url: str, names: tuple[str, ...] | list[str] = MAIN) -> None:
    for name in names:
        assert_agree(rollup(name, duck, now=NOW), rollup(name, url, now=NOW))


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "map"])
def test_settled_store_agrees_and_walks_nothing(
    workload: tuple[str, list[Any]], chdb_dir: Path, typed: bool
) -> None:
    duck, records = workload
    url, client = _store(chdb_dir, f"settled_{'typed' if typed else 'map'}", records, typed=typed)
    target = parse_target(url)
    spans = spans_relation(client, target)
    assert needs_walk(client, spans, {}, settled=False)
    assert fetch_unstamped(client, target.table, spans, {})
    done = _settle(url)
    # the sidecar's 11 calls lack identity and cost; handoffs and orphans lack some
    assert done.identities >= 10 and done.prices >= 11
    assert (done.calls > 0) is typed  # the settled calls: on the typed table only
    assert _settle(url) == (0, 0, 0)  # idempotent: nothing left to settle
    # After the settle the rollups neither walk nor price (the orphan call's chain ends at
    # a parent never stored: it is walked, with the window of one run apart)
    assert fetch_unstamped(client, target.table, spans, {}, settled=SETTLED_TABLE) == []
    runs = [r["trace_id"] for r in rollup("per_run", duck, limit=0)]
    settled_runs = [t for t in runs if not needs_walk(client, spans, {"trace": t}, settled=True)]
    assert len(settled_runs) >= len(runs) - 2
    _agree(duck, url, ROLLUPS if typed else MAIN)
    for trace_id in runs[::10]:
        assert_agree(rollup("trace", duck, trace_id=trace_id), rollup("trace", url, trace_id=trace_id))


def test_half_settled_store_agrees(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """Settled with part of the spans (children before their parents, whole runs missing),
    then the rest inserted: the rollups agree before the next settle (the new rows and the
    calls whose parent came late are walked and priced at read time) and after it."""
    duck, records = workload
    first = [r for i, r in enumerate(records) if i % 3 != 0 and i < len(records) * 3 // 4]
    rest = [r for r in records if r not in first]
    url, client = _store(chdb_dir, "half", first, typed=True)
    early = _settle(url)
    insert_records(client, rest)
    target = parse_target(url)
    assert needs_walk(client, spans_relation(client, target), {}, settled=True)
    _agree(duck, url)
    late = _settle(url)
    assert late.identities > 0 and late.prices > 0  # the parents that came late, the new calls
    total = client.query(f"SELECT uniqExact(trace_id, span_id) FROM {SETTLED_TABLE} WHERE kind = 'identity'")
    assert total.result_rows[0][0] == early.identities + late.identities
    _agree(duck, url)


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "map"])
def test_a_span_written_twice_counts_once(
    workload: tuple[str, list[Any]], chdb_dir: Path, typed: bool
) -> None:
    """An exporter retry: some spans (calls stamped and not, agents, roots) inserted again in
    a later insert, and a few twice within one. Every rollup counts them once, settled or not."""
    duck, records = workload
    again = records[::4]
    url, client = _store(
        chdb_dir, f"twice_{'typed' if typed else 'map'}", records, again, records[1:40:7] * 2, typed=typed
    )
    stored = client.query("SELECT count() FROM otel_traces").result_rows[0][0]
    assert stored > len(records) + len(again)
    _agree(duck, url)
    _settle(url)
    _agree(duck, url, ROLLUPS if typed else MAIN)
    runs = [r["trace_id"] for r in rollup("per_run", duck, limit=0)]
    for trace_id in runs[::10]:
        assert_agree(rollup("trace", duck, trace_id=trace_id), rollup("trace", url, trace_id=trace_id))


def test_settle_races_append_equal_facts(workload: tuple[str, list[Any]], chdb_dir: Path) -> None:
    """Two settles that both found the same calls unsettled append the same facts twice: the
    readers count each once."""
    duck, records = workload
    url, client = _store(chdb_dir, "race", records, typed=True)
    target = parse_target(url)
    spans = spans_relation(client, target)
    settle(client, target, spans)
    client.command(f"INSERT INTO {SETTLED_TABLE} SELECT * FROM {SETTLED_TABLE}")  # the other settle's rows
    _agree(duck, url, ("per_feature", "per_agent", "unpriced"))


def test_cli_settle_and_the_servers_settler(
    workload: tuple[str, list[Any]], chdb_dir: Path, capsys: Any
) -> None:
    duck, records = workload
    url, _ = _store(chdb_dir, "cli_settle", records)
    assert main(["clickhouse", "settle", "--db", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("costattr_settled: ") and " 0 identities" not in out
    assert main(["clickhouse", "settle", "--db", url]) == 0
    assert capsys.readouterr().out == (
        "costattr_settled: 0 identities settled, 0 unstamped calls settled; "
        "costattr_calls_settled_v2: 0 calls written\n"
    )
    assert main(["clickhouse", "settle", "--db", f"chdb://{chdb_dir}?database=cli_settle&table=nope"]) == 1
    assert "nope" in capsys.readouterr().err
    # serve's Settler: settles on its thread, a failing store is logged, never raised
    url2, client2 = _store(chdb_dir, "served", records)
    settler = Settler(parse_target(url2), interval=0.05)
    broken = Settler(parse_target(f"chdb://{chdb_dir}?database=served&table=nope"), interval=0.05)
    settler.start()
    broken.start()
    deadline = time.monotonic() + 60
    while settler.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    settler.stop()
    broken.stop()
    assert settler.runs >= 2 and broken.runs == 0
    assert client2.query(f"SELECT count() FROM {SETTLED_TABLE}").result_rows[0][0] > 0
    with pytest.raises(ValueError, match="above 0"):
        Settler(parse_target(url2), interval=0)
