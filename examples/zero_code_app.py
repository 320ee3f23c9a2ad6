"""Example 6, the application: not one line of OpenTelemetry or otel-costattr in it.

Run it through `opentelemetry-instrument` as examples/zero_code.sh does; the official OpenAI
instrumentation, the cost processor and the DuckDB exporter are all switched on from the
environment.
"""

from openai import OpenAI

client = OpenAI()
question = [{"role": "user", "content": "Where is my parcel?"}]
client.chat.completions.create(model="gpt-4o-mini", messages=question)
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=question, stream=True, stream_options={"include_usage": True}
)
for _chunk in stream:
    pass
print("done")
