"""OTLP onwards: the cost reaches an OTLP/HTTP backend on model-call spans, never on agents.

A stdlib receiver on 127.0.0.1 (tests/producers/otlp_receiver.py) decodes the exporter's
ExportTraceServiceRequest protobuf, as a collector would.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from producers import expected
from producers.otlp_receiver import OTLPReceiver
from producers.venvs import clean_env

from otel_costattr import CostSpanProcessor

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "otlp_and_duckdb.py"

CLAUDE_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.response.model": "claude-sonnet-4-5-20250929",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_creation.input_tokens": 150,
    "gen_ai.usage.output_tokens": 300,
}
GPT_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.reasoning.output_tokens": 200,
}
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}


@pytest.fixture
def receiver():
    with OTLPReceiver() as r:
        yield r


def by_name(spans: list[dict]) -> dict[str, dict]:
    named = {s["name"]: s for s in spans}
    assert len(named) == len(spans), [s["name"] for s in spans]
    return named


def test_cost_reaches_the_otlp_backend(receiver):
    provider = TracerProvider()
    # The exporter registered first, as an existing setup would have it: the cost is stamped
    # inside span.end(), before any processor sees the span.
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint, timeout=10))
    )
    provider.add_span_processor(CostSpanProcessor())
    tracer = provider.get_tracer("test_otlp")
    with tracer.start_as_current_span("invoke_agent support", attributes=AGENT) as agent:
        with tracer.start_as_current_span("chat claude", kind=SpanKind.CLIENT) as span:
            span.set_attributes(CLAUDE_CALL)
        with tracer.start_as_current_span("chat gpt", kind=SpanKind.CLIENT, attributes=GPT_CALL):
            pass
        with tracer.start_as_current_span("lookup_order"):
            pass
        # Summed usage on the agent span (the conventions recommend it): must not be priced.
        agent.set_attributes({"gen_ai.usage.input_tokens": 2400, "gen_ai.usage.output_tokens": 600})
    provider.shutdown()

    assert receiver.errors == []
    assert set(receiver.content_types) == {"application/x-protobuf"}
    spans = by_name(receiver.spans)
    assert set(spans) == {"invoke_agent support", "chat claude", "chat gpt", "lookup_order"}
    claude, gpt = spans["chat claude"]["attributes"], spans["chat gpt"]["attributes"]
    assert Decimal(repr(claude["gen_ai.usage.cost"])) == expected.CLAUDE_SONNET_4_5
    assert Decimal(repr(gpt["gen_ai.usage.cost"])) == expected.GPT_4O_MINI
    assert claude["costattr.status"] == gpt["costattr.status"] == "priced"
    assert (claude["costattr.model"], gpt["costattr.model"]) == ("claude-sonnet-4-5", "gpt-4o-mini")
    assert claude["gen_ai.agent.name"] == "support"  # identity inherited from the agent
    for name in ("invoke_agent support", "lookup_order"):
        attrs = spans[name]["attributes"]
        assert not any(k.startswith(("gen_ai.usage.cost", "costattr.")) for k in attrs), name


def test_otlp_example_sends_cost_and_writes_duckdb(receiver, tmp_path):
    db = tmp_path / "costs.duckdb"
    env = clean_env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.traces_endpoint)
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(db)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert receiver.errors == []
    # says where the calls went (a review: it printed nothing)
    assert done.stdout.startswith(f"2 model calls sent over OTLP and written to {db}")

    spans = by_name(receiver.spans)
    chat = {n: s["attributes"] for n, s in spans.items() if n.startswith("chat ")}
    assert {n: Decimal(repr(a["gen_ai.usage.cost"])) for n, a in chat.items()} == {
        "chat claude-sonnet-4-5-20250929": expected.CLAUDE_SONNET_4_5,
        "chat gpt-4o-mini-2024-07-18": expected.GPT_4O_MINI,
    }
    agent = spans["invoke_agent support"]
    assert agent["attributes"]["gen_ai.usage.input_tokens"] == 2400
    assert "gen_ai.usage.cost" not in agent["attributes"]
    assert {s["resource"]["service.name"] for s in spans.values()} == {"support-bot"}

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT name, span_role, cost_usd, cost_source, feature FROM spans ORDER BY name"
        ).fetchall()
    assert rows == [
        ("chat claude-sonnet-4-5-20250929", "model_call", expected.CLAUDE_SONNET_4_5, "span",
         "refunds"),
        ("chat gpt-4o-mini-2024-07-18", "model_call", expected.GPT_4O_MINI, "span", "refunds"),
        ("invoke_agent support", "agent", None, None, "refunds"),
    ]  # fmt: skip
