"""An agent's version belongs to its name: a sub-agent without a version of its own does not
take its caller's, on the processor's path as on the SQL walk (a service without it)."""

from __future__ import annotations

from opentelemetry import baggage, context
from sdk_store import handoff, priced_store

from otel_costattr import rollup

CALLER = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "A", "gen_ai.agent.version": "1.0"}
SUB = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "B"}


def test_a_sub_agent_does_not_take_its_callers_version(tmp_path):
    db = tmp_path / "agents.duckdb"
    provider, tracer = priced_store(db)
    handoff(tracer, CALLER, SUB)
    provider.shutdown()
    rows = rollup("per_agent", db=str(db))
    assert sorted((r["agent"], r["agent_version"], r["calls"]) for r in rows) == [
        ("A", "1.0", 1),
        ("B", None, 1),
    ]


def test_a_sub_agents_calls_do_not_take_the_callers_version_from_baggage(tmp_path):
    """The caller's identity arrived in W3C Baggage (from an upstream service): the calls
    under B take B's name from B's span, and no version from the baggage beside it."""
    db = tmp_path / "baggage.duckdb"
    provider, tracer = priced_store(db)
    upstream = baggage.set_baggage("gen_ai.agent.version", "1.0")
    upstream = baggage.set_baggage("gen_ai.agent.name", "A", upstream)
    token = context.attach(upstream)
    try:
        handoff(tracer, {"gen_ai.operation.name": "invoke_agent", "app.feature": "f"}, SUB)
    finally:
        context.detach(token)
    provider.shutdown()
    got = sorted((r["agent"], r["agent_version"], r["calls"]) for r in rollup("per_agent", db=str(db)))
    assert got == [("A", "1.0", 1), ("B", None, 1)]
