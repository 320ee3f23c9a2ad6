"""Shared by tests (no tests here): a real TracerProvider with the cost processor exporting
into a real DuckDB file, and a gpt-4o chat call's attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter


def priced_store(db: Path, id_generator: IdGenerator | None = None) -> tuple[TracerProvider, Any]:
    """(provider, tracer): the processor prices, the exporter writes ``db`` (shut the
    provider down to have every span in the file). ``id_generator``: known trace ids."""
    provider = TracerProvider(id_generator=id_generator)
    provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(db))))
    return provider, provider.get_tracer("t")


def gpt4o_chat(**usage: int) -> dict[str, Any]:
    """A gpt-4o chat call's attributes with ``usage`` (gen_ai.usage.<name>)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        **{f"gen_ai.usage.{k}": v for k, v in usage.items()},
    }


def handoff(tracer: Any, caller: dict[str, Any], sub: dict[str, Any]) -> Any:
    """One run: agent span ``caller`` makes a gpt-4o call (1000 in, 100 out, $0.0035), then
    hands off to agent span ``sub``, which makes one (2000 in, 100 out, $0.006). Returns the
    root span (ended)."""
    with tracer.start_as_current_span("caller", attributes=caller) as root:
        with tracer.start_as_current_span(
            "chat", attributes=gpt4o_chat(input_tokens=1000, output_tokens=100)
        ):
            pass
        with (
            tracer.start_as_current_span("sub-agent", attributes=sub),
            tracer.start_as_current_span("chat", attributes=gpt4o_chat(input_tokens=2000, output_tokens=100)),
        ):
            pass
    return root
