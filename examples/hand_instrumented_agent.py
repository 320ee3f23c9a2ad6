"""Example 1: an agent application instrumented by hand, then asked what it cost.

The workload `otel-costattr demo` simulates, written as plain application code: three
features (refund, research, summarize), agents that hand off to each other, a research loop
that sometimes never stops, a whole document stuffed into context, prompt caching reported
both ways (Anthropic's raw usage, OpenAI's), and an extraction service that runs without
the cost processor and calls a model the pricing table does not know.

    python examples/hand_instrumented_agent.py costs.duckdb
    otel-costattr rollup per-feature --db costs.duckdb

The model calls are faked (fixed seed, no network): replace `chat()` with your client and
record the usage it returns. Only the timing differs from the demo, which also simulates the
clock: the same seed gives the same calls and tokens.
"""

import random
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_costattr import rollup
from otel_costattr.display import money  # the CLI's money rule: six places under $1, else cents
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import IDENTITY_KEYS
from otel_costattr.store.exporter import DuckDBSpanExporter

db = sys.argv[1] if len(sys.argv) > 1 else "costs.duckdb"

# The application: CostSpanProcessor stamps gen_ai.usage.cost on each model call and copies
# app.feature and the agent's name down to every span started under them.
app_provider = TracerProvider(resource=Resource.create({"service.name": "support-and-research"}))
# The users and tenants your app knows go on the run's first span; identity_keys has the
# processor copy them down too, for `rollup per-group --group-by user.id` (or app.tenant).
app_provider.add_span_processor(CostSpanProcessor(identity_keys=(*IDENTITY_KEYS, "user.id", "app.tenant")))
app_provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
tracer = app_provider.get_tracer("examples.hand_instrumented_agent")

# Another service (another process in real life) traced WITHOUT the processor: its spans carry
# no feature or agent; the rollups find them through the parent chain.
worker_provider = TracerProvider(resource=Resource.create({"service.name": "extraction-worker"}))
worker_provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
worker_tracer = worker_provider.get_tracer("examples.hand_instrumented_agent")

rng = random.Random(20261116)  # the demo's seed: same calls, same tokens


def chat(provider, model, usage, tracer=tracer):
    """A model call. Call your client here, then record the usage it reported."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        **usage,
    }
    with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes):
        pass  # response = client.chat(...)


def tool(name):
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
    with tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes):
        pass  # run the tool


def agent(name, version):
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": name,
        "gen_ai.agent.version": version,
    }
    return tracer.start_as_current_span(f"invoke_agent {name}", attributes=attributes)


def workflow(feature):
    user, tenant = customer  # who this run is for
    attributes = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": feature,
        "app.feature": feature,
        "user.id": user,
        "app.tenant": tenant,
    }
    return tracer.start_as_current_span(f"invoke_workflow {feature}", attributes=attributes)


def refund():
    """Triage routes the ticket (an expensive model for a one-word answer), billing acts."""
    with workflow("refund"), agent("triage", "v1"):
        # Anthropic's raw usage, copied as is: input_tokens excludes the cached prompt.
        chat("anthropic", "claude-sonnet-4-5", {
            "gen_ai.usage.input_tokens": rng.randint(2500, 3500),
            "gen_ai.usage.cache_read_input_tokens": 2400,
            "gen_ai.usage.cache_creation_input_tokens": 0,
            "gen_ai.usage.output_tokens": 3,
        })  # fmt: skip
        with agent("billing", "v2"):  # the handoff: billing runs inside triage
            context = 1800 + rng.randint(0, 400)
            for name in ("lookup_order", "issue_refund", None):
                # OpenAI's usage: the cached prefix is part of input_tokens.
                chat("openai", "gpt-4o", {
                    "gen_ai.usage.input_tokens": context,
                    "gen_ai.usage.cache_read.input_tokens": 1024 if context > 2048 else 0,
                    "gen_ai.usage.output_tokens": rng.randint(60, 180),
                })  # fmt: skip
                if name:
                    tool(name)
                    context += rng.randint(300, 700)


def research(version, steps):
    """A loop whose context grows each step; the system prompt is cached."""
    system = 4000 if version == "v1" else 9000
    total_in = total_out = 0
    with workflow("research"), agent("researcher", version) as span:
        context = system + 600
        for step in range(steps):
            out = rng.randint(250, 600)
            chat("anthropic", "claude-sonnet-4-5", {
                "gen_ai.usage.input_tokens": context,  # inclusive, as OpenLLMetry reports it
                "gen_ai.usage.cache_read.input_tokens": 0 if step == 0 else system,
                "gen_ai.usage.cache_creation.input_tokens": system if step == 0 else 0,
                "gen_ai.usage.output_tokens": out,
            })  # fmt: skip
            total_in += context
            total_out += out
            if step < steps - 1:
                tool("web_search" if step % 2 == 0 else "read_page")
                context += out + rng.randint(1200, 2200)
        # The conventions recommend the summed usage on the agent span: it is never priced.
        span.set_attributes({"gen_ai.usage.input_tokens": total_in, "gen_ai.usage.output_tokens": total_out})


def summarize(document_tokens):
    """Plan, read the whole document into context, summarize; extraction runs elsewhere."""
    with workflow("summarize"), agent("summarizer", "v1"):
        plan = 1500 + rng.randint(0, 300)
        chat(
            "anthropic",
            "claude-haiku-4-5",
            {"gen_ai.usage.input_tokens": plan, "gen_ai.usage.output_tokens": 120},
        )
        tool("fetch_document")
        chat("anthropic", "claude-haiku-4-5", {  # the whole contract, untruncated
            "gen_ai.usage.input_tokens": plan + 120 + document_tokens,
            "gen_ai.usage.output_tokens": rng.randint(700, 1100),
        })  # fmt: skip
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "extract_entities"}
        with tracer.start_as_current_span("execute_tool extract_entities", attributes=attributes):
            headers = {}
            TraceContextTextMapPropagator().inject(headers)  # an HTTP call, in real life
            extraction_worker(headers, document_tokens)


def extraction_worker(headers, document_tokens):
    """The other service: a self-hosted model per chunk, then a cheap merge."""
    parent = TraceContextTextMapPropagator().extract(headers)
    with worker_tracer.start_as_current_span("POST /extract", context=parent, kind=SpanKind.SERVER,
                                             attributes={"http.request.method": "POST"}):  # fmt: skip
        chunks = max(1, document_tokens // 16000)
        for _ in range(chunks):
            chat("vllm", "acme-ner-7b", {
                "gen_ai.usage.input_tokens": 16000 + rng.randint(0, 500),
                "gen_ai.usage.output_tokens": rng.randint(300, 500),
            }, tracer=worker_tracer)  # fmt: skip
        chat("openai", "gpt-4o-mini", {
            "gen_ai.usage.input_tokens": 400 * chunks, "gen_ai.usage.output_tokens": 250,
        }, tracer=worker_tracer)  # fmt: skip


# A week of traffic: each day, one run of each feature, for five users of two tenants in turn.
CUSTOMERS = [
    ("u-ana", "acme"),
    ("u-ben", "acme"),
    ("u-chloe", "acme"),
    ("u-dev", "globex"),
    ("u-eli", "globex"),
]
for day in range(7):
    for slot in range(3):
        customer = CUSTOMERS[(3 * day + slot) % len(CUSTOMERS)]
        kind = (day + slot) % 3
        if kind == 0:
            refund()
        elif kind == 1:
            looping = day == 4 and slot == 0  # Friday morning's run never converges
            research("v1" if day < 3 else "v2", 12 if looping else rng.randint(2, 4))
        else:
            summarize(90_000 if rng.random() < 0.5 else 12_000)

worker_provider.shutdown()
app_provider.shutdown()  # flushes the exporters

for row in rollup("per_feature", db=db):
    print(f"{row['feature']:<10} {row['runs']:>3} runs  {row['calls']:>4} calls  {money(row['usd'])}")
print(f"more: otel-costattr demo, or otel-costattr rollup --list (then --db {db})")
