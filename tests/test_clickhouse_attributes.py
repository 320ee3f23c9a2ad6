"""The attributes kept as columns of the settled calls (`prelude.ATTRIBUTE_COLUMNS`).

ClickHouse reads a whole Map to read one key of it, so the keys rollups read most (the
identity keys users group by, reconcile's two) are also columns of the settled calls,
and the dialect reads the column for them. Every answer must stay DuckDB's: a key on some calls
only, an empty value, each key's own values (a column read for another key would show the
other's), a key that is not a column (read from the Map), ``--where`` on each. (A store
settled before the columns existed gets them when its settled calls are copied to the
current layout: ``test_clickhouse_layout.py``.)
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import clickhouse_workload
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from test_clickhouse import NOW, assert_agree
from test_clickhouse_settle import _settle, _store

from otel_costattr.clickhouse.dialect import translate
from otel_costattr.clickhouse.ledger import CALLS_TABLE
from otel_costattr.clickhouse.prelude import ATTRIBUTE_COLUMNS, calls_sql
from otel_costattr.pricing.table import default_pricing
from otel_costattr.rollups.catalog import query
from otel_costattr.rollups.queries import rollup
from otel_costattr.sdk.seam_records import records_from_sdk
from otel_costattr.store.exporter import DuckDBSpanExporter

pytestmark = pytest.mark.chdb

# Keys and their values: each key's values its own, so that reading one key's column for
# another changes the answer. "team.id" is not a column (read from the Map).
KEYS = {
    "user.id": ("u1", "u2"),
    "enduser.id": ("e1", "e2", "e3"),
    "app.tenant": ("acme", "globex"),
    "tenant.id": ("t9",),
    "session.id": ("s1", "s2"),
    "team.id": ("red", "blue"),
}


def _spans() -> list[Any]:
    app, side, memory = clickhouse_workload._providers(default_pricing())
    tracer = app.get_tracer("attributes")
    rng = random.Random(11)
    clock = clickhouse_workload._Clock(clickhouse_workload.DAY0_NS)
    n = 0
    for _ in range(12):
        root = tracer.start_span("workflow", attributes={"app.feature": "f"}, start_time=clock.tick())
        ctx = trace.set_span_in_context(root)
        for _ in range(3):
            n += 1
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 100 + n,
                "gen_ai.usage.output_tokens": 10 + n,
            }
            for key, values in KEYS.items():
                pick = rng.randrange(len(values) + 2)
                if pick < len(values):  # on some calls only
                    attrs[key] = values[pick]
                elif pick == len(values) and key != "team.id":
                    attrs[key] = ""  # an empty value
            if rng.random() < 0.5:  # the provider's own cost (reconcile: cost_source, computed_cost)
                attrs["llm.cost.total"] = 0.0001 * n
            span = tracer.start_span("chat", ctx, SpanKind.CLIENT, attributes=attrs, start_time=clock.tick())
            span.end(end_time=clock.tick(40))
        root.end(end_time=clock.tick())
    app.shutdown()
    side.shutdown()
    return list(memory.get_finished_spans())


@pytest.fixture(scope="module")
def stores(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Any, list[Any]]:
    """(the DuckDB file, the chDB URL, its client, the span records): the same spans, settled
    on the typed table."""
    spans = _spans()
    duck = str(tmp_path_factory.mktemp("duck") / "spans.duckdb")
    exporter = DuckDBSpanExporter(duck)
    exporter.export(spans)
    exporter.shutdown()
    records = records_from_sdk(spans)
    url, client = _store(chdb_dir, "attribute_columns", records, typed=True)
    _settle(url)
    return duck, url, client, records


def _cases() -> list[tuple[str, dict[str, Any]]]:
    cases: list[tuple[str, dict[str, Any]]] = [("reconcile", {"pct": 0}), ("reconcile", {"pct": 0.5})]
    for key, values in KEYS.items():
        cases.append(("per_group", {"group_by": key}))
        cases.append(("per_run", {"where": {key: values[0]}, "limit": 0}))
        cases.append(("reconcile", {"pct": 0, "where": {key: values[-1]}}))
    cases.append(("per_group", {"group_by": "model"}))
    cases.append(("top_runs", {"where": ["user.id=u2", "user.id=", "team.id=red"], "limit": 0}))
    return cases


def _agree(duck: str, url: str) -> None:
    for name, params in _cases():
        assert_agree(rollup(name, duck, now=NOW, **params), rollup(name, url, now=NOW, **params))


def test_the_workload_has_what_the_columns_must_get_right(stores: tuple[str, str, Any, list[Any]]) -> None:
    """Each key on some calls only, with an empty value on some, and provider costs."""
    duck, _, client, _ = stores
    for key in ATTRIBUTE_COLUMNS:
        if key.startswith("costattr."):
            continue
        got = client.query(
            "SELECT countIf(NOT mapContains(attributes, {k:String})),"
            " countIf(attributes[{k:String}] = ''), countIf(attributes[{k:String}] <> '')"
            " FROM {t:Identifier}",
            parameters={"k": key, "t": CALLS_TABLE},
        ).result_rows[0]
        assert all(got), (key, got)  # missing, empty and set
    assert len(rollup("reconcile", duck, pct=0)) >= 2


def test_rollups_over_the_columns_agree_with_duckdb(stores: tuple[str, str, Any, list[Any]]) -> None:
    duck, url, client, _ = stores
    stored = client.query(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = {t:String}"
        " AND default_kind = 'MATERIALIZED' AND startsWith(name, 'attr_')",
        parameters={"t": CALLS_TABLE},
    ).result_rows[0][0]
    assert stored == len(ATTRIBUTE_COLUMNS)
    _agree(duck, url)


def test_the_dialect_reads_the_column_for_a_kept_key() -> None:
    """per-group and reconcile name the column for a kept key; a key that is not kept is
    read from the Map."""
    sql = translate(query("reconcile"), calls_sql(), "spans")
    assert "WHERE attr_costattr_cost_source = 'provider'" in sql
    assert "toString(attr_costattr_computed_cost)" in sql
    # The key's value not known: a choice on the key, the Map for a key that is no column.
    group = translate(query("per_group"), calls_sql(), "spans")
    assert "= 'user.id', attr_user_id," in group and "= 'app.tenant', attr_app_tenant," in group
    assert "= 'team.id'" not in group and "mapContains((attributes), ifNull(" in group
    # Known (as the runner translates): that key's column alone, or the Map.
    for key, read in (("user.id", "(attr_user_id) AS value"), ("model", "(model) AS value")):
        assert read in translate(query("per_group"), calls_sql(), "spans", {"group_by": key})
    other = translate(query("per_group"), calls_sql(), "spans", {"group_by": "team.id"})
    assert "mapContains((attributes), ifNull(" in other


@pytest.mark.parametrize("name", ["per_feature", "per_group", "runs_list", "reconcile"])
def test_an_empty_answer_names_its_columns(stores: tuple[str, str, Any, list[Any]], name: str) -> None:
    """No rows, the same columns as DuckDB's (chDB gives a result without names then: the
    API's and the report's tables lost their headers; review of 2026-12-03)."""
    duck, url, _, _ = stores
    want = rollup(name, duck, now=NOW, where={"user.id": "nobody"})
    got = rollup(name, url, now=NOW, where={"user.id": "nobody"})
    assert not want and not got
    assert list(got.columns) == list(want.columns) and want.columns


def _side_calls(costs: list[Any], start: int) -> list[Any]:
    """Calls of a service without the processor, each with ``gen_ai.usage.cost`` as given
    (None: none; a dict: attributes set over the call's), 1 µs apart from ``start``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))  # no cost processor
    tracer = provider.get_tracer("side")
    for i, cost in enumerate(costs):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "app.feature": "side",
        }
        if isinstance(cost, dict):  # attributes of its own
            attrs.update(cost)
        elif cost is not None:
            attrs["gen_ai.usage.cost"] = cost
        tracer.start_span("chat", attributes=attrs, start_time=start + i * 1000).end(
            end_time=start + i * 1000 + 500
        )
    provider.shutdown()
    return list(memory.get_finished_spans())


_JUNE = 1_780_300_800 * 10**9 + 3600 * 10**9  # 2026-06-01 09:00 UTC


def test_a_cost_attribute_that_is_no_number_is_priced_from_tokens(chdb_dir: Path, tmp_path: Path) -> None:
    """A service without the processor stamping gen_ai.usage.cost as text or a bool: the
    DuckDB store trusts only a number and prices such a call from its tokens; ClickHouse,
    where the Collector keeps every attribute as text, took any text as a stamp ("abc" and
    "true" unpriced, as implausible). A number that is no cost (nan, which the Collector
    writes as "json: unsupported value: NaN"; a negative) or 0 beside billed tokens
    (OpenLIT's figure for a model it cannot price) is not believed either: priced from the
    tokens on both, as the processor prices it. A 0 a processor of ours left beside its
    unknown_model status (the producer's, not believed) is unpriced on both, not $0."""
    unknown = {"gen_ai.request.model": "nobody-knows-1", "gen_ai.usage.cost": 0.0}
    unknown.update({"costattr.status": "unknown_model", "costattr.pricing_version": "v"})
    # a model name the processor found cut at the value length limit (gpt-4o-mini at 6)
    cut = {"gen_ai.request.model": "gpt-4o", "costattr.model_cut": True, "costattr.status": "unknown_model"}
    spans = _side_calls(["abc", True, float("nan"), 0.25, None, 0.0, 0, -3.0, unknown, cut], _JUNE)
    expected = _both_agree(chdb_dir, tmp_path, "cost_text", spans, ("unpriced", "per_model", "per_feature"))
    assert [(r["cost_status"], r["calls"]) for r in expected["unpriced"]] == [("unknown_model", 1)] * 2
    assert sum(r["calls"] for r in expected["per_model"]) == 10


def _both_agree(
    chdb_dir: Path, tmp_path: Path, name: str, spans: list[Any], rollups: tuple[str, ...]
) -> dict[str, Any]:
    """The ``rollups`` of ``spans`` in a DuckDB store, checked equal on ClickHouse (databases
    ``name`` and ``name``_typed): on the Map columns, on the typed table, and after a settle."""
    duck = str(tmp_path / f"{name}.duckdb")
    exporter = DuckDBSpanExporter(duck)
    exporter.export(spans)
    exporter.shutdown()
    plain, _ = _store(chdb_dir, name, records_from_sdk(spans))
    typed, _ = _store(chdb_dir, f"{name}_typed", records_from_sdk(spans), typed=True)
    expected = {q: rollup(q, duck, now=NOW) for q in rollups}
    for url in (plain, typed):
        for q, rows in expected.items():
            assert_agree(rows, rollup(q, url, now=NOW))
    _settle(typed)
    for q, rows in expected.items():
        assert_agree(rows, rollup(q, typed, now=NOW))
    return expected


def test_a_count_in_no_form_the_collector_writes_is_invalid_on_both(chdb_dir: Path, tmp_path: Path) -> None:
    """A service without the processor sending its token counts as text: the DuckDB store
    calls such a call invalid usage; ClickHouse, where the Collector writes an integer as its
    digits, read ' 100', '+1000', '1_000', '1e3' and '1000.0' as counts too and priced them
    (a review: the one place the two stores disagreed on hostile values). The Collector's own
    rendering, '1000', stays a count there (README: what only the type told apart is lost)."""
    forms = [" 100", "+1000", "1_000", "1e3", "1000.0", "１０００"]  # the last: fullwidth digits
    spans = _side_calls([{"gen_ai.usage.input_tokens": text} for text in forms], _JUNE)
    expected = _both_agree(chdb_dir, tmp_path, "count_text", spans, ("unpriced", "per_model", "overview"))
    assert [(r["cost_status"], r["calls"]) for r in expected["unpriced"]] == [("invalid_usage", len(forms))]


def test_a_view_an_older_version_made_takes_this_versions_rules(chdb_dir: Path, caplog: Any) -> None:
    """`clickhouse init` makes the typed table's view with its version's SELECT, and CREATE
    IF NOT EXISTS kept it after an upgrade: new rows were typed by the old rules. The next
    settle gives the view this version's SELECT (its comment names the SELECT's digest)."""
    import re

    from otel_costattr.clickhouse.collector import insert_records
    from otel_costattr.clickhouse.prelude import spans_sql
    from otel_costattr.clickhouse.target import parse_target
    from otel_costattr.clickhouse.typed import MATERIALIZED_VIEW, view_comment

    url, client = _store(chdb_dir, "old_view", typed=True)
    target = parse_target(url)
    now = spans_sql(target.table)
    before = re.sub(
        r"\(toFloat64OrNull\(_cost_text\).*?AS _stamped", "_cost_text <> '' AS _stamped", now, flags=re.S
    )
    assert before != now  # the rule before b260008: any text was a stamp
    client.command(f"ALTER TABLE {MATERIALIZED_VIEW} MODIFY QUERY {before}")
    client.command(f"ALTER TABLE {MATERIALIZED_VIEW} MODIFY COMMENT ''")  # as views made before comments

    def status(span_id: str) -> str:
        return client.query(
            "SELECT cost_status FROM costattr_spans WHERE span_id = {s:String}", parameters={"s": span_id}
        ).result_rows[0][0]

    (old,) = records_from_sdk(_side_calls(["abc"], _JUNE))
    insert_records(client, [old])
    assert status(old.span_id) == "implausible"  # the old rule
    # A settle naming another ?table= must not move the view (and so ingestion) there.
    from otel_costattr.clickhouse.collector import create_table_sql

    client.command(create_table_sql("traces2"))
    with caplog.at_level("WARNING", logger="otel_costattr.clickhouse.runner"):
        _settle(url + "&table=traces2")  # reads traces2's Map columns: the typed table is not its
    assert "costattr_spans_mv fills it from another table than traces2" in caplog.text
    reads = (
        "SELECT dependencies_table FROM system.tables"
        " WHERE database = currentDatabase() AND name = 'otel_traces'"
    )
    assert client.query(reads).result_rows[0][0] == [MATERIALIZED_VIEW]
    _settle(url)
    comment = "SELECT comment FROM system.tables WHERE database = currentDatabase() AND name = {n:String}"
    assert client.query(comment, parameters={"n": MATERIALIZED_VIEW}).result_rows[0][0] == view_comment(
        target
    )
    (new,) = records_from_sdk(_side_calls(["abc"], _JUNE + 10**9))
    insert_records(client, [new])
    assert status(new.span_id) == "not_stamped"  # this version's: priced from its tokens
    assert status(old.span_id) == "implausible"  # a row typed before keeps what it was given
