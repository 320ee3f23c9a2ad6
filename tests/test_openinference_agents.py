"""OpenInference's agent spans (openinference.span.kind AGENT, its openai-agents
instrumentation) name the agent in ``agent.name``, never ``gen_ai.agent.name``: their calls
are the agent's in per-agent, with or without the processor, in DuckDB and in ClickHouse.
``agent.name`` elsewhere (ECS's APM agent, say) is no agent of ours."""

from __future__ import annotations

from decimal import Decimal as D

import clickhouse_workload
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, rollup

AGENT = {"openinference.span.kind": "AGENT", "agent.name": "triage", "graph.node.id": "triage"}
LLM = {
    "openinference.span.kind": "LLM",
    "llm.model_name": "gpt-4o",
    "llm.provider": "openai",
    "llm.token_count.prompt": 1000,
    "llm.token_count.completion": 100,
}
CALL_USD = (1000 * D("2.5") + 100 * D(10)) / 1_000_000  # gpt-4o


def spans(processor: bool) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agents"}))
    if processor:
        provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for agent in (AGENT, {"agent.name": "python", "app.feature": "f"}):  # the second: not an agent
        with tracer.start_as_current_span("agent", attributes=agent):
            for _ in range(2):  # a shape seen twice: the batch path maps it column by column
                with tracer.start_as_current_span("response", attributes=LLM):
                    pass
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.chdb
@pytest.mark.parametrize("processor", [True, False])
def test_calls_under_an_openinference_agent_are_its_calls(chdb_dir, tmp_path, processor):
    duck = str(tmp_path / "spans.duckdb")
    url = f"chdb://{chdb_dir}?database=oi_agents_{int(processor)}"
    clickhouse_workload.load(spans(processor), duck, url)
    for db in (duck, url):
        got = sorted(((r["agent"], r["calls"], r["usd"]) for r in rollup("per_agent", db=db)), key=str)
        assert got == sorted([("triage", 2, 2 * CALL_USD), (None, 2, 2 * CALL_USD)], key=str), db
