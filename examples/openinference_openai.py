"""Example 4: Arize OpenInference's OpenAI instrumentation (openinference-instrumentation-openai).

OpenInference writes `ChatCompletion` spans of kind INTERNAL with `llm.*` attributes
(`llm.model_name`, `llm.token_count.prompt`, `...prompt_details.cache_read`, ...) and
`openinference.span.kind = LLM`. otel-costattr reads those as it reads the OTel GenAI ones.

    # from a clone (not on PyPI yet), in its venv (README: the first lines):
    .venv/bin/pip install -e . -r tests/producers/requirements-openinference.txt
    OPENAI_API_KEY=sk-... python examples/openinference_openai.py costs.duckdb
    # no key? start the tests' fake endpoint (127.0.0.1, canned answers), then the line above without it:
    python -u tests/producers/fake_llm.py > fake.env & sleep 1; . ./fake.env

OpenInference records prompts and completions on the spans by default (customer data): the
DuckDB exporter leaves them out unless asked; set OPENINFERENCE_HIDE_INPUTS=true and
OPENINFERENCE_HIDE_OUTPUTS=true to keep them off every other exporter too.
"""

import sys

import duckdb
from openai import OpenAI
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import trace
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
tracer = trace.get_tracer("examples.openinference_openai")
question = [{"role": "user", "content": "Classify this ticket."}]
agent = {"openinference.span.kind": "AGENT", "gen_ai.agent.name": "triage", "app.feature": "triage"}
with tracer.start_as_current_span("triage", attributes=agent):
    client.chat.completions.create(model="gpt-4o-mini", messages=question)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=question, stream=True, stream_options={"include_usage": True}
    )
    for _chunk in stream:
        pass

provider.shutdown()  # flush the spans into the file before reading it
with duckdb.connect(db, read_only=True) as con:
    for row in con.sql(
        "SELECT name, kind, response_model, input_tokens, cache_read_tokens, output_tokens,"
        " cost_usd FROM spans WHERE span_role = 'model_call' ORDER BY start_time"
    ).fetchall():
        print(*row, sep="\t")
