"""Example 3: OpenLLMetry's Anthropic instrumentation (opentelemetry-instrumentation-anthropic).

OpenLLMetry writes an `anthropic.chat` span per call. Its `gen_ai.usage.input_tokens` is
the sum of Anthropic's uncached input, cache reads and cache writes (the OTel convention),
with the cache counts beside it, so each bucket is priced at its own rate.

    # from a clone (not on PyPI yet), in its venv (README: the first lines):
    .venv/bin/pip install -e . -r tests/producers/requirements-openllmetry.txt
    ANTHROPIC_API_KEY=sk-ant-... python examples/openllmetry_anthropic.py costs.duckdb
    # no key? start the tests' fake endpoint (127.0.0.1, canned answers), then the line above without it:
    python -u tests/producers/fake_llm.py > fake.env & sleep 1; . ./fake.env

Known gap (0.62.4): a streamed call reports one output token too many (it adds the
`output_tokens: 1` of message_start to the final count), so it costs one output token more.

Double counting: the anthropic SDK (1.14 and later) traces its own calls too, on by default
once a global TracerProvider is set (`anthropic.messages.create` spans, scope
com.anthropic.sdk.python). With OpenLLMetry active as well, every call gives two priced
spans. Keep one: here `open_telemetry=False` on the client (or ANTHROPIC_OPEN_TELEMETRY=false);
or drop OpenLLMetry and let the SDK's own spans be priced.
"""

import sys

import duckdb
from anthropic import Anthropic
from opentelemetry import trace
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter

db = sys.argv[1] if len(sys.argv) > 1 else "costs.duckdb"
provider = TracerProvider()
provider.add_span_processor(CostSpanProcessor())
provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(db)))
trace.set_tracer_provider(provider)
AnthropicInstrumentor().instrument()

client = Anthropic(open_telemetry=False)  # OpenLLMetry's spans only: see above
tracer = trace.get_tracer("examples.openllmetry_anthropic")
question = [{"role": "user", "content": "Summarise this contract."}]
agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "legal", "app.feature": "contracts"}
with tracer.start_as_current_span("invoke_agent legal", attributes=agent):
    client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=question)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, messages=question) as stream:
        for _text in stream.text_stream:
            pass

provider.shutdown()  # flush the spans into the file before reading it
with duckdb.connect(db, read_only=True) as con:
    for row in con.sql(
        "SELECT name, response_model, input_tokens, cache_read_tokens, cache_write_tokens,"
        " output_tokens, cost_usd FROM spans WHERE span_role = 'model_call' ORDER BY start_time"
    ).fetchall():
        print(*row, sep="\t")
