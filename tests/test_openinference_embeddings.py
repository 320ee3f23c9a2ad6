"""OpenInference's embedding spans name the model in ``embedding.model_name`` (no
``llm.model_name``): priced, and shown under that model, by the processor, by the exporter
alone (row by row and batch by batch), and by ClickHouse's pricing of unstamped calls."""

from __future__ import annotations

from decimal import Decimal as D

import clickhouse_workload
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_store import priced_store

from otel_costattr import DuckDBSpanExporter, rollup

# As openinference-instrumentation-openai 0.1.66 writes an embeddings call.
EMBEDDING = {
    "openinference.span.kind": "EMBEDDING",
    "embedding.model_name": "text-embedding-3-small",
    "llm.provider": "openai",
    "llm.system": "openai",
    "llm.token_count.prompt": 8000,
    "llm.token_count.total": 8000,
}
BILL = 8000 * D("0.02") / 1_000_000  # $0.02 per million input tokens


def test_an_openinference_embedding_is_priced_on_every_path(tmp_path):
    for processor in (True, False):
        db = tmp_path / f"embeddings-{processor}.duckdb"
        if processor:
            provider, tracer = priced_store(db)
        else:
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(db))))
            tracer = provider.get_tracer("t")
        for _ in range(3):  # the batch path learns the shape, then maps it column by column
            with tracer.start_as_current_span("CreateEmbeddings", attributes=EMBEDDING):
                pass
        provider.shutdown()
        (row,) = rollup("per_model", db=str(db))
        assert (row["model"], row["calls"], row["usd"], row["unpriced_calls"]) == (
            "text-embedding-3-small", 3, 3 * BILL, 0,
        ), processor  # fmt: skip


@pytest.mark.chdb
def test_clickhouse_prices_an_openinference_embedding_as_duckdb_does(chdb_dir, tmp_path):
    memory = InMemorySpanExporter()
    sidecar = TracerProvider(resource=Resource.create({"service.name": "sidecar"}))  # no processor
    sidecar.add_span_processor(SimpleSpanProcessor(memory))
    tracer = sidecar.get_tracer("t")
    with tracer.start_as_current_span("run", attributes={"app.feature": "search"}):
        for _ in range(3):
            with tracer.start_as_current_span("CreateEmbeddings", attributes=EMBEDDING):
                pass
    sidecar.shutdown()
    duck = str(tmp_path / "spans.duckdb")
    url = f"chdb://{chdb_dir}?database=embeddings"
    clickhouse_workload.load(list(memory.get_finished_spans()), duck, url)
    for db in (duck, url):
        (row,) = rollup("per_model", db=db)
        assert (row["model"], row["calls"], row["usd"]) == ("text-embedding-3-small", 3, 3 * BILL), db
