"""One workload of real SDK spans for the ClickHouse tests and benchmark (no tests here).

Two TracerProviders: service ``app`` runs the CostSpanProcessor (costs stamped, identity
copied down), service ``sidecar`` does not (its calls arrive without cost or identity). The
spans are exported to DuckDB by our own exporter and laid out in chDB as the Collector's
clickhouse exporter writes ``otel_traces``; every rollup must then agree.

What it holds, per trace (deterministic times, spread over four days):
  * a workflow root with app.feature, an agent (two names, two versions) and 1-8 chat calls
    over several models, with inclusive cache usage (gen_ai.usage.cache_read.input_tokens),
    Anthropic's raw exclusive names (cache_read_input_tokens), reasoning tokens;
  * tool spans between calls, some followed by a jump in input tokens (step_jumps);
  * every fifth trace: a handoff to a nested agent whose calls take its name;
  * every fourth trace: a sidecar entry span (no identity) with a call under it, two hops
    below the agent (attributed by walking up; priced where the cost is missing); every
    eighth, two more spans without identity in between (four hops); the others, a call
    below a tool run inside another call's span (the walk goes through the model call);
  * Bedrock calls whose input count excludes the cache; counts sent as odd text;
  * an unknown model, an invalid usage, an agent span repeating its children's usage, a
    response model priced at its request model, a provider-reported cost unlike ours, a
    prompt (content: neither store keeps it);
  * user.id on the roots of most traces (copied onto their calls: --group-by, --where);
  * one trace with many calls (a loop), a call whose parent never arrived, a lone root call.
"""

from __future__ import annotations

import random
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from otel_costattr.pricing.table import PriceTable
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import IDENTITY_KEYS

DAY0_NS = 1_780_300_800 * 10**9  # 2026-06-01T08:00:00Z
MS = 10**6

MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
)


class _Clock:
    def __init__(self, start: int) -> None:
        self.now = start

    def tick(self, ms: int = 7) -> int:
        self.now += ms * MS + 13  # never two spans at the same instant
        return self.now


def _providers(table: PriceTable) -> tuple[Any, Any, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    app = TracerProvider(resource=Resource.create({"service.name": "app"}), shutdown_on_exit=False)
    app.add_span_processor(CostSpanProcessor(table, identity_keys=(*IDENTITY_KEYS, "user.id")))
    app.add_span_processor(SimpleSpanProcessor(memory))
    # A resource detector's region: a Vertex call from the sidecar is priced at its regional rate.
    where = {"service.name": "sidecar", "cloud.provider": "gcp", "cloud.region": "us-east5"}
    side = TracerProvider(resource=Resource.create(where), shutdown_on_exit=False)
    side.add_span_processor(SimpleSpanProcessor(memory))
    return app, side, memory


def _usage(rng: random.Random, provider: str, n: int, jump: bool) -> dict[str, Any]:
    inp = rng.randint(200, 4000) * (30 if jump else 1)
    attrs: dict[str, Any] = {
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": rng.randint(10, 900),
    }
    if provider == "anthropic" and n % 3 == 0:  # raw names: input excludes the cache
        attrs["gen_ai.usage.cache_read_input_tokens"] = rng.randint(0, 3000)
        attrs["gen_ai.usage.cache_creation_input_tokens"] = rng.randint(0, 500)
    elif provider == "anthropic" and n % 3 == 1:  # a mix: the write by its raw name
        attrs["gen_ai.usage.cache_read.input_tokens"] = rng.randint(0, 3000)
        attrs["gen_ai.usage.cache_creation_input_tokens"] = rng.randint(0, 500)
    elif n % 4 == 1:  # the conventions' names: input includes the cache
        attrs["gen_ai.usage.cache_read.input_tokens"] = rng.randint(0, inp)
    if n % 11 == 5:  # an empty response model: the request model's
        attrs["gen_ai.response.model"] = ""
    if n % 13 == 6:  # a cost the provider reported wins over ours, and over a bare figure
        attrs["llm.cost.total"] = 0.0042
        if n % 2:
            attrs["gen_ai.usage.cost"] = 0.0099
    elif n % 13 == 7:
        attrs["gen_ai.usage.cost.amount"], attrs["gen_ai.usage.cost.currency"] = 0.0125, "USD"
    elif n % 13 == 8:  # a bare figure in another currency is never taken for USD
        attrs["gen_ai.usage.cost"], attrs["gen_ai.usage.cost.currency"] = 0.0099, "EUR"
    elif n % 13 == 9:  # someone's own estimate is no provider's charge
        attrs["gen_ai.usage.cost"], attrs["gen_ai.usage.cost.source"] = 0.0099, "local"
    if provider == "openai" and n % 5 == 2:
        attrs["gen_ai.usage.reasoning.output_tokens"] = rng.randint(0, attrs["gen_ai.usage.output_tokens"])
    return attrs


def spans(table: PriceTable, traces: int = 40, seed: int = 7) -> list[Any]:
    """The finished SDK spans of the workload (both services)."""
    rng = random.Random(seed)
    app, side, memory = _providers(table)
    ta, ts = app.get_tracer("workload"), side.get_tracer("workload")
    clock = _Clock(DAY0_NS)
    features = ("refund", "research", "summarize")
    n = 0

    def started(tracer: Any, ctx: Any, provider: str, model: str, *, jump: bool = False, **extra: Any) -> Any:
        nonlocal n
        n += 1
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                 "gen_ai.request.model": model, **_usage(rng, provider, n, jump), **extra}  # fmt: skip
        return tracer.start_span(
            f"chat {model}", ctx, SpanKind.CLIENT, attributes=attrs, start_time=clock.tick()
        )

    def call(tracer: Any, ctx: Any, provider: str, model: str, *, jump: bool = False, **extra: Any) -> None:
        span = started(tracer, ctx, provider, model, jump=jump, **extra)
        span.end(end_time=clock.tick(rng.randint(50, 900)))

    for t in range(traces):
        clock.now = DAY0_NS + (t % 4) * 86_400 * 10**9 + t * 60 * 10**9
        identity = {"app.feature": features[t % 3], **({"user.id": f"u{t % 3}"} if t % 7 else {})}
        root = ta.start_span("workflow", attributes=identity, start_time=clock.tick())
        rctx = trace.set_span_in_context(root)
        agent_name = ("triage", "researcher")[t % 2]
        agent = ta.start_span(
            f"invoke_agent {agent_name}", rctx,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent_name,
                        "gen_ai.agent.version": ("v1", "v2")[(t // 2) % 2]},
            start_time=clock.tick(),
        )  # fmt: skip
        actx = trace.set_span_in_context(agent)
        calls = 18 if t == 3 else 1 + (t * 5) % 8
        for i in range(calls):
            provider, model = MODELS[(t + i) % len(MODELS)]
            if i and i % 3 == 0:
                tool = ta.start_span(
                    "execute_tool fetch", actx,
                    attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "fetch"},
                    start_time=clock.tick(),
                )  # fmt: skip
                tool.end(end_time=clock.tick(30))
            call(ta, actx, provider, model, jump=(i % 3 == 0 and i > 0 and t % 2 == 0))
        if t % 5 == 0:  # a handoff: the nested agent's calls are its own
            sub = ta.start_span(
                "invoke_agent billing", actx,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "billing"},
                start_time=clock.tick(),
            )  # fmt: skip
            call(ta, trace.set_span_in_context(sub), "openai", "gpt-4o-mini")
            sub.end(end_time=clock.tick())
        if t % 4 == 0:  # the sidecar: entry span without identity, a call below it
            entry = ts.start_span("POST /extract", actx, SpanKind.SERVER, start_time=clock.tick())
            below = [entry]
            if t % 8 == 0:  # deeper: two more spans without identity (attribution walks 4 up)
                for name in ("extract", "chunk"):
                    up = trace.set_span_in_context(below[-1])
                    below.append(ts.start_span(name, up, start_time=clock.tick()))
            call(ts, trace.set_span_in_context(below[-1]), "openai", "gpt-4o")
            if t % 8 == 4:  # a tool run inside a call's span makes a call of its own: the walk
                # goes through the model call to the agent above (it stopped there)
                outer = started(ts, trace.set_span_in_context(below[-1]), "openai", "gpt-4o")
                tool = ts.start_span("execute_tool lookup", trace.set_span_in_context(outer),
                                     start_time=clock.tick())  # fmt: skip
                call(ts, trace.set_span_in_context(tool), "openai", "gpt-4o-mini")
                tool.end(end_time=clock.tick())
                outer.end(end_time=clock.tick())
            for span in reversed(below):
                span.end(end_time=clock.tick())
        if t == 6:
            call(ta, actx, "acme", "acme-ner-7b")  # unknown model
            call(ta, actx, "openai", "gpt-4o", **{"gen_ai.usage.output_tokens": -5})  # invalid usage
            # A count sent as text: the processor says invalid_usage; the Collector's text no
            # longer shows why, so ClickHouse takes the processor's word (clickhouse/unstamped.py).
            call(ta, actx, "openai", "gpt-4o", **{"gen_ai.usage.input_tokens": "1200"})
            # a newer snapshot the table lacks: priced at the request model (approximations)
            call(ta, actx, "openai", "gpt-4o-mini", **{"gen_ai.response.model": "gpt-4o-mini-2025-01-01"})
            call(ta, actx, "openai", "gpt-4o", **{"llm.cost.total": 0.5})  # the provider's cost (reconcile)
            call(ta, actx, "openai", "gpt-4o", **{"gen_ai.input.messages": "secret"})  # content: never kept
            call(ts, actx, "gcp.vertex_ai", "claude-sonnet-4-5")  # the resource's region: +10%
            # The OpenAI client against other hosts: the endpoint names who billed, priced and
            # stored as that host on both stores (pricing/endpoints.py).
            for tracer in (ta, ts):
                call(tracer, actx, "openai", "llama-3.3-70b-versatile", **{"server.address": "api.groq.com"})
                base = {"gen_ai.openai.api_base": "https://openrouter.ai/api/v1/"}
                call(tracer, actx, "openai", "anthropic/claude-sonnet-4.5", **base)
                call(tracer, actx, "openai", "llama-3.1-8b-instant", **{"llm.provider": "groq"})
            # Bedrock's input count excludes the cache, as the botocore and OpenLLMetry
            # instrumentations copy it (semconv.EXCLUSIVE_INPUT_PROVIDER).
            cached = {
                "gen_ai.usage.cache_creation.input_tokens": 2000,
                "gen_ai.usage.cache_read.input_tokens": 500,
            }
            for tracer in (ta, ts):
                call(tracer, actx, "aws.bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                     **cached)  # fmt: skip
            # Counts sent as text the Collector would never write for a number (an empty one
            # beside the older spelling's, a leading zero): invalid usage on both stores; the
            # double -0.0 (which it writes "-0") is a valid 0 on both.
            odd_counts = (
                {"gen_ai.usage.input_tokens": "", "gen_ai.usage.prompt_tokens": 1234},
                {"gen_ai.usage.input_tokens": "00100"},
                {"gen_ai.usage.output_tokens": -0.0},
            )
            for odd in odd_counts:
                call(ts, actx, "openai", "gpt-4o", **odd)
            # An empty provider spelling is none: the next one names it, priced and stored.
            for tracer in (ta, ts):
                call(tracer, actx, "", "claude-haiku-4-5", **{"gen_ai.system": "anthropic"})
            # An empty currency is none (the Collector's "" for a missing key): the figure stands.
            empty = {"gen_ai.usage.cost": 0.0031, "gen_ai.usage.cost.currency": ""}
            call(ts, actx, "openai", "gpt-4o", **empty)
            # A bare 0 beside no usage is anyone's figure from no tokens: unpriced, never $0.
            bare = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o", "gen_ai.usage.cost": 0}  # fmt: skip
            for tracer in (ta, ts):
                tracer.start_span("chat gpt-4o", actx, attributes=bare, start_time=clock.tick()).end(
                    end_time=clock.tick(100)
                )
            # No token counts, the provider's charge known: it wins, stamped or not.
            for tracer, reported in ((ta, {"llm.cost.total": 0.0031}), (ts, {"llm.cost.total": 0.0029}),
                                     (ts, {"gen_ai.usage.cost": 0.0027})):  # fmt: skip
                attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                         "gen_ai.request.model": "gpt-4o", **reported}  # fmt: skip
                tracer.start_span("chat gpt-4o", actx, attributes=attrs, start_time=clock.tick()).end(
                    end_time=clock.tick(100)
                )
        agent.set_attribute("gen_ai.usage.input_tokens", 123456)  # a summed usage: never counted
        agent.end(end_time=clock.tick())
        root.end(end_time=clock.tick())

    # A call whose parent never arrived (another process), and a lone root call.
    missing = SpanContext(0xABC0FFEE, 0xDEAD, is_remote=True, trace_flags=TraceFlags(1))
    call(ts, trace.set_span_in_context(NonRecordingSpan(missing)), "openai", "gpt-4o-mini")
    call(ta, None, "anthropic", "claude-haiku-4-5")
    app.shutdown()
    side.shutdown()
    return list(memory.get_finished_spans())


def load(spans: list[Any], duck: str, url: str) -> None:
    """``spans`` into both stores: the DuckDB file ``duck`` through our exporter, the chDB
    ``url`` laid out as the Collector's clickhouse exporter writes ``otel_traces``."""
    from otel_costattr.clickhouse import parse_target
    from otel_costattr.clickhouse.client import connect
    from otel_costattr.clickhouse.collector import create_table_sql, insert_records
    from otel_costattr.sdk.seam_records import records_from_sdk
    from otel_costattr.store.exporter import DuckDBSpanExporter

    exporter = DuckDBSpanExporter(duck)
    exporter.export(spans)
    exporter.shutdown()
    client = connect(parse_target(url), create=True)
    client.command(create_table_sql())
    insert_records(client, records_from_sdk(spans))
