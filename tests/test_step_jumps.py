"""step-jumps compares a call with the same agent's previous call that read a known input:
never with a refused call (no usage, stored with 0 tokens) nor with a sub-agent's calls; and
the CLI's json carries no NaN or Infinity."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode
from sdk_store import gpt4o_chat, priced_store

from otel_costattr import DuckDBSpanExporter, rollup
from otel_costattr.cli import cli

AGENT_A = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "A"}
AGENT_B = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "B"}


def _call(tracer, tokens: int | None, agent: str) -> None:
    attrs = gpt4o_chat() if tokens is None else gpt4o_chat(input_tokens=tokens, output_tokens=10)
    with tracer.start_as_current_span("chat", attributes={**attrs, "gen_ai.agent.name": agent}) as span:
        if tokens is None:  # a 429: no usage
            span.set_status(Status(StatusCode.ERROR, "rate limited"))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "jumps.duckdb"
    provider, tracer = priced_store(path)
    with tracer.start_as_current_span("retry run", attributes=AGENT_A):
        _call(tracer, 50_000, "A")
        _call(tracer, None, "A")  # refused
        _call(tracer, 50_000, "A")  # the retry: no jump
    with tracer.start_as_current_span("handoff run", attributes=AGENT_A):
        _call(tracer, 30_000, "A")
        with tracer.start_as_current_span("sub-agent", attributes=AGENT_B):
            _call(tracer, 2_000, "B")
        _call(tracer, 32_000, "A")  # A's context grew by 2k: no jump
    with tracer.start_as_current_span("zero run", attributes=AGENT_A):
        _call(tracer, 0, "A")  # priced, 0 input: no multiple of it is a jump (ClickHouse
        _call(tracer, 50_000, "A")  # refused the rollup dividing by it)
    with tracer.start_as_current_span("stuffed run", attributes=AGENT_A):
        _call(tracer, 2_000, "A")
        _call(tracer, 60_000, "A")  # the one jump
    provider.shutdown()
    return path


def test_only_a_real_jump_is_reported(db):
    rows = rollup("step_jumps", db=str(db))
    assert [(r["agent"], r["prev_input_tokens"], r["input_tokens"]) for r in rows] == [("A", 2_000, 60_000)]


def test_json_output_has_no_nan_or_infinity(tmp_path):
    """stats over calls a producer stamped $0 (a free tier): usd_share is 0/0, which JSON
    cannot carry: null, as the HTTP API writes it; csv leaves the cell empty."""
    db = tmp_path / "free.duckdb"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(db))))
    tracer = provider.get_tracer("t")
    free = {**gpt4o_chat(input_tokens=100, output_tokens=10), "gen_ai.request.model": "in-house-free"}
    with (
        tracer.start_as_current_span("run", attributes={"app.feature": "f"}),
        tracer.start_as_current_span("chat", attributes={**free, "gen_ai.usage.cost": 0.0}),
    ):
        pass
    provider.shutdown()
    out = CliRunner().invoke(cli, ["rollup", "stats", "--db", str(db), "--format", "json"])
    assert out.exit_code == 0, out.output

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    rows = json.loads(out.output, parse_constant=refuse)
    assert rows and all(r["usd_share"] is None for r in rows)
    out = CliRunner().invoke(cli, ["rollup", "stats", "--db", str(db), "--format", "csv"])
    assert "nan" not in out.output.lower()
