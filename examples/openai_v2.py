"""Example 2: the official OpenAI instrumentation (opentelemetry-instrumentation-openai-v2).

The instrumentation writes a `chat gpt-4o-mini` CLIENT span per call with the usage the API
returned; CostSpanProcessor prices it and stamps `gen_ai.usage.cost`; the DuckDB exporter
lands it in a file you can query.

    # from a clone (not on PyPI yet), in its venv (README: the first lines):
    .venv/bin/pip install -e . -r tests/producers/requirements-openai-v2.txt
    OPENAI_API_KEY=sk-... python examples/openai_v2.py costs.duckdb
    # no key? start the tests' fake endpoint (127.0.0.1, canned answers), then the line above without it:
    python -u tests/producers/fake_llm.py > fake.env & sleep 1; . ./fake.env

Known gap (openai-v2 2.4b0): it reports neither cached nor reasoning tokens, so cached
prompt tokens are priced at the full input rate (see README, "Covered producers").
Streams carry usage only with `stream_options={"include_usage": True}`.
"""

import sys

import duckdb
from openai import OpenAI
from opentelemetry import trace
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter

db = sys.argv[1] if len(sys.argv) > 1 else "costs.duckdb"
provider = TracerProvider()
provider.add_span_processor(CostSpanProcessor())
provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument()

client = OpenAI()
tracer = trace.get_tracer("examples.openai_v2")
question = [{"role": "user", "content": "Where is my parcel?"}]
agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "app.feature": "support"}
with tracer.start_as_current_span("invoke_agent support", attributes=agent):
    client.chat.completions.create(model="gpt-4o-mini", messages=question)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=question, stream=True, stream_options={"include_usage": True}
    )
    for _chunk in stream:
        pass

provider.shutdown()  # flush the spans into the file before reading it
with duckdb.connect(db, read_only=True) as con:
    for row in con.sql(
        "SELECT name, response_model, input_tokens, output_tokens, cost_usd FROM spans"
        " WHERE span_role = 'model_call' ORDER BY start_time"
    ).fetchall():
        print(*row, sep="\t")
