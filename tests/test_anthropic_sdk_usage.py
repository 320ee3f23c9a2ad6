"""The anthropic SDK's own spans (anthropic 2.x tracing) report 1-hour cache writes under
their own name: billed at the 1-hour rate by the processor, the exporter alone and
repricing alike."""

from __future__ import annotations

from decimal import Decimal as D

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sdk_store import priced_store

from otel_costattr import DuckDBSpanExporter, load_pricing, rollup

# As the SDK writes a Claude Sonnet 4.5 call: input excludes the cache (Anthropic's usage).
CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.response.model": "claude-sonnet-4-5-20250929",
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.cache_creation_input_tokens": 150,
    "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 0,
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 150,
}
# $3 input, $15 output, $6 a 1-hour cache write, per million tokens.
BILL = (100 * D(3) + 50 * D(15) + 150 * D(6)) / 1_000_000


def test_one_hour_cache_writes_are_billed_at_their_rate(tmp_path):
    for processor in (True, False):
        db = tmp_path / f"sdk-{processor}.duckdb"
        if processor:
            provider, tracer = priced_store(db)
        else:  # the exporter prices it (a service without the processor)
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(db))))
            tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("chat", attributes=CALL):
            pass
        provider.shutdown()
        (row,) = rollup("per_model", db=str(db), reprice=load_pricing())
        assert (row["usd"], row["usd_repriced"]) == (BILL, BILL), processor
