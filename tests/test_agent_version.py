"""An agent's version belongs to its name: a sub-agent without a version of its own does not
take its caller's, on the processor's path as on the SQL walk (a service without it)."""

from __future__ import annotations

import contextlib

import duckdb
from opentelemetry import baggage, context
from sdk_store import handoff, priced_store

from otel_costattr import rollup

CALLER = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "A", "gen_ai.agent.version": "1.0"}
SUB = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "B"}


# An OpenInference model call, and the caller's identity as it arrives from upstream in Baggage.
OI_LLM = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
          "llm.token_count.prompt": 2000, "llm.token_count.completion": 100}  # fmt: skip
UPSTREAM = baggage.set_baggage("gen_ai.agent.version", "1.0", baggage.set_baggage("gen_ai.agent.name", "A"))


def per_agent(db) -> list[tuple]:
    """(agent, version, calls) of each per_agent row, sorted."""
    return sorted((r["agent"], r["agent_version"], r["calls"]) for r in rollup("per_agent", db=str(db)))


def test_a_sub_agent_does_not_take_its_callers_version(tmp_path):
    db = tmp_path / "agents.duckdb"
    provider, tracer = priced_store(db)
    handoff(tracer, CALLER, SUB)
    provider.shutdown()
    assert per_agent(db) == [
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
    assert per_agent(db) == [("A", "1.0", 1), ("B", None, 1)]


def _chat(tokens: int) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": tokens,
        "gen_ai.usage.output_tokens": 100,
    }


def test_a_sub_agent_named_after_its_span_started_does_not_keep_its_callers_version(tmp_path):
    # A review: the usual hand-written span, started plain and named right after, was given
    # A's name and version at start; the name was replaced, the version stayed, and B's calls
    # (and B's own row) went under A's version 1.0. Without the processor it was right.
    db = tmp_path / "late.duckdb"
    provider, tracer = priced_store(db)
    with tracer.start_as_current_span("invoke_agent A", attributes=CALLER):
        tracer.start_span("chat", attributes=_chat(1000)).end()
        with tracer.start_as_current_span("invoke_agent") as sub:
            sub.set_attribute("gen_ai.operation.name", "invoke_agent")
            sub.set_attribute("gen_ai.agent.name", "B")
            tracer.start_span("chat", attributes=_chat(2000)).end()
        with tracer.start_as_current_span("invoke_agent") as own:  # named, with a version of its own
            own.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "C",
                                "gen_ai.agent.version": "2"})  # fmt: skip
            tracer.start_span("chat", attributes=_chat(3000)).end()
        with tracer.start_as_current_span("tool") as tool:  # not renamed: A's, version and all
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tracer.start_span("chat", attributes=_chat(4000)).end()
    provider.shutdown()
    assert per_agent(db) == [("A", "1.0", 2), ("B", None, 1), ("C", "2", 1)]
    with duckdb.connect(str(db), read_only=True) as con:  # B's own span too
        agents = con.execute(
            "SELECT agent_name, agent_version FROM spans WHERE span_role = 'agent'"
        ).fetchall()
    assert sorted(agents) == [("A", "1.0"), ("B", None), ("C", "2")]


def test_an_openinference_agent_inside_a_genai_agent_keeps_its_own_name(tmp_path):
    # A review: an OpenInference AGENT span (agent.name, as its openai-agents instrumentation
    # writes) inside a hand-written invoke_agent span was given the caller's
    # gen_ai.agent.name, which the store reads first: its call went under the caller, at the
    # caller's version.
    db = tmp_path / "oi.duckdb"
    provider, tracer = priced_store(db)
    oi = provider.get_tracer("openinference.instrumentation.openai_agents")
    with tracer.start_as_current_span("invoke_agent A", attributes=CALLER):
        tracer.start_span("chat", attributes=_chat(1000)).end()
        with oi.start_as_current_span(
            "writer", attributes={"openinference.span.kind": "AGENT", "agent.name": "W"}
        ):
            oi.start_span("response", attributes=OI_LLM).end()
    provider.shutdown()
    assert per_agent(db) == [("A", "1.0", 1), ("W", None, 1)]


def test_a_version_a_renamed_span_sets_itself_is_kept_even_equal_to_its_callers(tmp_path):
    # The review of the fix above: B named itself after start and set version "1.0" itself,
    # the application's release, as its caller had: taken for the inherited one, dropped.
    db = tmp_path / "explicit.duckdb"
    provider, tracer = priced_store(db)
    with (
        tracer.start_as_current_span("invoke_agent A", attributes=CALLER),
        tracer.start_as_current_span("invoke_agent") as sub,
    ):
        sub.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "B",
                            "gen_ai.agent.version": "".join(["1", ".0"])})  # fmt: skip
        tracer.start_span("chat", attributes=_chat(2000)).end()
    provider.shutdown()
    assert per_agent(db) == [("B", "1.0", 1)]


def test_an_openinference_agent_named_late_or_under_baggage_keeps_its_calls(tmp_path):
    # The same review: an AGENT span given agent.name only after start (as OpenInference's
    # openai-agents processor does) took the caller's name and version; and with the
    # caller's identity in Baggage, the AGENT span's calls took it from there.
    db = tmp_path / "late.duckdb"
    provider, tracer = priced_store(db)
    oi = provider.get_tracer("openinference.instrumentation.openai_agents")
    late = {"openinference.span.kind": "AGENT"}  # agent.name comes later
    with (
        tracer.start_as_current_span("invoke_agent A", attributes=CALLER),
        oi.start_as_current_span("writer", attributes=late) as writer,
    ):
        oi.start_span("response", attributes=OI_LLM).end()
        writer.set_attribute("agent.name", "W")
    provider.shutdown()
    assert per_agent(db) == [("W", None, 1)]

    db = tmp_path / "baggage.duckdb"
    provider, tracer = priced_store(db)
    oi = provider.get_tracer("openinference.instrumentation.openai_agents")
    token = context.attach(UPSTREAM)
    try:
        with oi.start_as_current_span(
            "writer", attributes={"openinference.span.kind": "AGENT", "agent.name": "W"}
        ):
            oi.start_span("response", attributes=OI_LLM).end()
            with tracer.start_as_current_span("tool", attributes={"gen_ai.operation.name": "execute_tool"}):
                tracer.start_span("chat", attributes=_chat(1000)).end()  # under a tool span, too
    finally:
        context.detach(token)
    provider.shutdown()
    assert per_agent(db) == [("W", None, 2)]


def test_an_openinference_agent_named_late_under_baggage_keeps_its_calls(tmp_path):
    # A review: the AGENT span named after start (as the openai-agents instrumentation does)
    # under a caller whose identity came in Baggage: its calls took the caller's name and
    # version from the Baggage, at start, before the AGENT span had its name.
    db = tmp_path / "late.duckdb"
    provider, tracer = priced_store(db)
    oi = provider.get_tracer("openinference.instrumentation.openai_agents")
    token = context.attach(UPSTREAM)
    tool = {"gen_ai.operation.name": "execute_tool"}
    try:
        with oi.start_as_current_span("writer", attributes={"openinference.span.kind": "AGENT"}) as writer:
            oi.start_span("response", attributes=OI_LLM).end()
            with tracer.start_as_current_span("tool", attributes=tool):  # its calls a level down
                tracer.start_span("chat", attributes=_chat(1000)).end()
                writer.set_attribute("agent.name", "W")
                tracer.start_span("chat", attributes=_chat(3000)).end()  # started once it is named
        tracer.start_span("chat", attributes=_chat(4000)).end()  # after it: the caller's
    finally:
        context.detach(token)
    provider.shutdown()
    assert per_agent(db) == [("A", "1.0", 1), ("W", None, 3)]


def test_a_one_character_version_a_renamed_span_sets_itself_is_kept(tmp_path):
    # A review: CPython keeps one object of each one-character text, so B's own "2", equal
    # to its caller's, was taken for the inherited one and dropped, from B's calls too.
    db = tmp_path / "short.duckdb"
    provider, tracer = priced_store(db)
    versions = ("2", "A", "a", "\u4e00")
    for version in versions:
        caller = {**CALLER, "gen_ai.agent.name": f"caller {version}", "gen_ai.agent.version": version}
        with tracer.start_as_current_span("invoke_agent", attributes=caller):
            with tracer.start_as_current_span("invoke_agent") as sub:
                sub.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": version})
                sub.set_attribute("gen_ai.agent.version", version)
                tracer.start_span("chat", attributes=_chat(2000)).end()
            with tracer.start_as_current_span("invoke_agent") as plain:  # named, no version: none
                plain.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "plain"})
                tracer.start_span("chat", attributes=_chat(2000)).end()
    provider.shutdown()
    assert per_agent(db) == sorted([*((v, v, 1) for v in versions), ("plain", None, len(versions))])


def test_an_openinference_agent_never_named_leaves_its_calls_to_the_caller_from_baggage(tmp_path):
    # The review of the rule above: its calls no longer took the Baggage's agent at start,
    # and with the AGENT span as the process's root nothing above it carried the caller's:
    # the call had no agent at all, where under a plain root span it was the caller's.
    answers = []
    for root in (False, True):
        db = tmp_path / f"root-{root}.duckdb"
        provider, tracer = priced_store(db)
        oi = provider.get_tracer("openinference.instrumentation.openai_agents")
        token = context.attach(UPSTREAM)
        try:
            with contextlib.ExitStack() as stack:
                if root:
                    stack.enter_context(tracer.start_as_current_span("workflow"))
                stack.enter_context(
                    oi.start_as_current_span("writer", attributes={"openinference.span.kind": "AGENT"})
                )
                oi.start_span("response", attributes=OI_LLM).end()
        finally:
            context.detach(token)
        provider.shutdown()
        answers.append(per_agent(db))
    assert answers == [[("A", "1.0", 1)], [("A", "1.0", 1)]]
