"""Example 5: keep sending traces to your OTLP backend, with the cost on them, and a DuckDB file.

CostSpanProcessor stamps `gen_ai.usage.cost` on each model-call span inside `span.end()`, so
every exporter on the provider sees it: here an OTLP/HTTP (protobuf) exporter to your
collector and the DuckDB exporter. Agent spans may carry their children's summed usage (the
conventions recommend it); they are never priced, so a backend summing the attribute over a
trace does not count anything twice.

    .venv/bin/pip install -e '.[otlp]'   # from a clone (not on PyPI yet); OTLP is an extra
    # a collector listening on http://localhost:4318, or point the exporter elsewhere:
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces \
        python examples/otlp_and_duckdb.py costs.duckdb

The model-call spans are written by hand here, so the example runs without an LLM; spans
from any instrumentation (examples 2-4) get the same treatment.
"""

import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter

db = sys.argv[1] if len(sys.argv) > 1 else "costs.duckdb"
provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
provider.add_span_processor(CostSpanProcessor())
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from OTEL_* env
provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("examples.otlp_and_duckdb")

CALLS = [
    # (provider, model billed, input incl. cache, cache read, cache write, output)
    ("anthropic", "claude-sonnet-4-5-20250929", 1200, 1000, 150, 300),
    ("openai", "gpt-4o-mini-2024-07-18", 1200, 1000, 0, 300),
]
agent_attrs = {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "support",
    "app.feature": "refunds",
}
with tracer.start_as_current_span("invoke_agent support", attributes=agent_attrs) as agent:
    for system, model, inp, read, write, out in CALLS:
        with tracer.start_as_current_span(f"chat {model}", kind=trace.SpanKind.CLIENT) as span:
            # ... call the model here; then record what it reported:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": system,
                    "gen_ai.request.model": model,
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.cache_read.input_tokens": read,
                    "gen_ai.usage.cache_creation.input_tokens": write,
                    "gen_ai.usage.output_tokens": out,
                }
            )
    # The agent's own usage is the sum of its calls: recorded, never priced.
    agent.set_attributes(
        {
            "gen_ai.usage.input_tokens": sum(c[2] for c in CALLS),
            "gen_ai.usage.output_tokens": sum(c[5] for c in CALLS),
        }
    )

provider.shutdown()  # flushes both exporters
print(f"{len(CALLS)} model calls sent over OTLP and written to {db}; see them with:")
print(f"  otel-costattr rollup per-feature --db {db} --days 1")
