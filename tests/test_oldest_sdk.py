"""The oldest OpenTelemetry SDK pyproject.toml accepts (1.30, before the SDK had _on_ending):
the processor falls back to hooking each span's end() and prices exactly as on the current
SDK, in a venv of its own (tests/producers/requirements-oldest-sdk.txt)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest
from producers.venvs import REPO, VenvBuildError, clean_env, ensure_venv

# Builds virtualenvs (minutes on a cold pip cache): `pytest -m 'not slow'` skips it locally.
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, logging
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.version import __version__
    from otel_costattr import CostSpanProcessor, load_pricing

    logs = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: logs.append(record.getMessage())
    logging.getLogger("otel_costattr").addHandler(handler)
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # registered first
    processor = CostSpanProcessor(load_pricing(["tests/data/test_prices.toml"], bundled=False))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("oldest")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", "app.feature": "f"}
    with tracer.start_as_current_span("agent", attributes=agent):
        for _ in range(2):
            tracer.start_span("chat", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-large",
                "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cache_read_input_tokens": 1000,
                "gen_ai.usage.cache_creation_input_tokens": 150,
            }).end()
    print(json.dumps({
        "sdk": __version__,
        "mode": processor._hook.mode,
        "logs": logs,
        "stats": processor.stats(),
        "spans": [dict(s.attributes) for s in exporter.get_finished_spans()],
    }))
    """
)


def test_oldest_supported_sdk_prices_through_the_fallback_hook():
    try:
        python = ensure_venv("oldest-sdk")
    except VenvBuildError as e:
        pytest.fail(f"could not build the oldest-SDK venv: {e}", pytrace=False)
    done = subprocess.run(
        [str(python), "-c", SCRIPT], env=clean_env(), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["sdk"] == "1.30.0" and found["mode"] == "closure" and found["logs"] == []
    chat = [s for s in found["spans"] if s["gen_ai.operation.name"] == "chat"]
    # Raw Anthropic usage (input exclusive of the cache) at the fixture's prices since 2026-06-01.
    assert [s["gen_ai.usage.cost"] for s in chat] == [0.003675, 0.003675]
    assert [s["gen_ai.agent.step"] for s in chat] == [0, 1]
    assert all(s["app.feature"] == "f" and s["gen_ai.agent.name"] == "a" for s in chat)
    assert found["stats"]["priced"] == 2 and found["stats"]["unhooked"] == 0
