"""Drive a real client SDK with one real instrumentation active; report what it emitted.

Runs inside a producer venv (see venvs.py), as a subprocess of tests/test_producers.py:

    python drive.py PRODUCER OUT.json [--db spans.duckdb]

PRODUCER is one of PRODUCERS below. The client SDKs find the fake endpoint through
OPENAI_BASE_URL / ANTHROPIC_BASE_URL (boto3: AWS_ENDPOINT_URL_BEDROCK_RUNTIME). With
``--host URL --model M`` an OpenAI producer makes one call (case "host") with the client's
``base_url`` set to URL, a real API's (Groq's, say), and M as the model: the instrumentation
sees that host as a user's would, while the request goes to the fake endpoint (`ToFake`, an
httpx transport). Each case runs under its own root span, so its spans share one trace id.
With --db, CostSpanProcessor prices the spans and DuckDBSpanExporter writes them to the
file, wired exactly as a user would wire them. OUT.json maps each case to its trace id and
the spans it produced (name, kind, attributes without message content).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr.spans.content import is_content_key

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
MESSAGES = [{"role": "user", "content": "What is the answer?"}]
# Bedrock's global cross-region inference profile of Claude Sonnet 4.5 (Anthropic's list price).
BEDROCK_MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
# case -> prompt: the fake answers each prompt with its own usage (fake_llm.BEDROCK_USAGE).
BEDROCK_PROMPTS = {"cache_write": "Write the cache.", "cache_read": "Read the cache."}


def _instrument_openai_v2(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)


def _instrument_openllmetry_openai(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)


def _instrument_openllmetry_anthropic(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=provider)


def _instrument_openinference(provider: TracerProvider) -> None:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)


def _instrument_openllmetry_and_openinference(provider: TracerProvider) -> None:
    _instrument_openllmetry_openai(provider)
    _instrument_openinference(provider)


def _instrument_botocore(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    BotocoreInstrumentor().instrument(tracer_provider=provider)


def _no_instrumentation(provider: TracerProvider) -> None:
    pass


def openai_cases(provider: TracerProvider) -> dict[str, Callable[[], None]]:
    import openai

    client = openai.OpenAI(max_retries=0)

    def nonstream() -> None:
        client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)

    def stream_usage() -> None:
        stream = client.chat.completions.create(
            model=OPENAI_MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        for _ in stream:
            pass

    def stream_no_usage() -> None:
        for _ in client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, stream=True):
            pass

    return {"nonstream": nonstream, "stream_usage": stream_usage, "stream_no_usage": stream_no_usage}


def host_cases(provider: TracerProvider, *, base_url: str, model: str) -> dict[str, Callable[[], None]]:
    """One call of ``model`` with the OpenAI client's base URL at another API's host."""
    import openai

    transport = ToFake(os.environ["OPENAI_BASE_URL"])
    client = openai.OpenAI(max_retries=0, base_url=base_url, http_client=transport.client())

    def host() -> None:
        client.chat.completions.create(model=model, messages=MESSAGES)

    return {"host": host}


class ToFake:
    """Sends every request to the fake endpoint instead of the host its URL names (what an
    /etc/hosts line would do, without root): scheme, host and port replaced, path kept."""

    def __init__(self, fake_base_url: str) -> None:
        import openai

        # openai 3.x talks through httpx2, 2.x through httpx: the client's own module.
        major = int(openai.__version__.split(".")[0])
        self.httpx = importlib.import_module("httpx2" if major >= 3 else "httpx")
        self.fake = self.httpx.URL(fake_base_url)
        self.inner = self.httpx.HTTPTransport()

    def client(self) -> Any:
        outer = self

        class Transport(self.httpx.BaseTransport):
            def handle_request(self, request: Any) -> Any:
                fake = outer.fake
                request.url = request.url.copy_with(scheme=fake.scheme, host=fake.host, port=fake.port)
                return outer.inner.handle_request(request)

        return self.httpx.Client(transport=Transport())


def anthropic_cases(provider: TracerProvider, *, sdk_spans: bool) -> dict[str, Callable[[], None]]:
    import anthropic

    # anthropic >= 1.14 traces its own calls (scope com.anthropic.sdk.python), on by default
    # whenever a global TracerProvider is set. Pass the provider explicitly, or switch it off.
    native = {"tracer_provider": provider} if sdk_spans else False
    client = anthropic.Anthropic(max_retries=0, open_telemetry=native)

    def nonstream() -> None:
        client.messages.create(model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES)

    def stream() -> None:
        events = client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES, stream=True
        )
        for _ in events:
            pass

    def stream_helper() -> None:
        with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=1024, messages=MESSAGES) as events:
            for _ in events.text_stream:
                pass

    return {"nonstream": nonstream, "stream": stream, "stream_helper": stream_helper}


def bedrock_cases(provider: TracerProvider) -> dict[str, Callable[[], None]]:
    """Bedrock Converse through boto3: a system prompt marked for the prompt cache (a
    cachePoint block), then one call that writes the cache and one that reads it; the
    same two through ConverseStream."""
    import boto3
    from botocore.config import Config

    # Region, dummy credentials and the endpoint come from the AWS_* environment (FakeLLM.env).
    client = boto3.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}))
    system = [{"text": "You answer questions."}, {"cachePoint": {"type": "default"}}]

    def converse(prompt: str, stream: bool) -> Callable[[], None]:
        def call() -> None:
            messages = [{"role": "user", "content": [{"text": prompt}]}]
            if not stream:
                client.converse(modelId=BEDROCK_MODEL, system=system, messages=messages)
                return
            answer = client.converse_stream(modelId=BEDROCK_MODEL, system=system, messages=messages)
            for _ in answer["stream"]:  # the usage comes last, in the metadata event
                pass

        return call

    cases = {case: converse(prompt, False) for case, prompt in BEDROCK_PROMPTS.items()}
    return cases | {f"{case}_stream": converse(prompt, True) for case, prompt in BEDROCK_PROMPTS.items()}


Cases = Callable[[TracerProvider], dict[str, Callable[[], None]]]
PRODUCERS: dict[str, tuple[Callable[[TracerProvider], None], Cases]] = {
    "openai-v2": (_instrument_openai_v2, openai_cases),
    "openllmetry-openai": (_instrument_openllmetry_openai, openai_cases),
    "openllmetry-anthropic": (
        _instrument_openllmetry_anthropic,
        functools.partial(anthropic_cases, sdk_spans=False),
    ),
    "anthropic-sdk": (_no_instrumentation, functools.partial(anthropic_cases, sdk_spans=True)),
    # What a user of OpenLLMetry with a global TracerProvider gets by default: both.
    "openllmetry-anthropic+anthropic-sdk": (
        _instrument_openllmetry_anthropic,
        functools.partial(anthropic_cases, sdk_spans=True),
    ),
    "openinference-openai": (_instrument_openinference, openai_cases),
    # Two instrumentations of one client: OpenInference's span nested in OpenLLMetry's, no
    # response id on OpenInference's to pair them by.
    "openllmetry-openai+openinference-openai": (_instrument_openllmetry_and_openinference, openai_cases),
    # The official botocore instrumentation: what opentelemetry-bootstrap installs beside boto3.
    "botocore": (_instrument_botocore, bedrock_cases),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("producer", choices=sorted(PRODUCERS))
    parser.add_argument("out", help="where to write the JSON report")
    parser.add_argument("--db", help="price the spans and land them in this DuckDB file")
    parser.add_argument("--host", help="an OpenAI producer: one call, the client's base_url this URL")
    parser.add_argument("--model", default=OPENAI_MODEL, help="the model of the --host call")
    args = parser.parse_args(argv)

    provider = TracerProvider()
    if args.db:
        from otel_costattr import CostSpanProcessor, DuckDBSpanExporter

        # Priced once per response even where two instrumentations report the same call.
        provider.add_span_processor(CostSpanProcessor(dedupe_response_ids=True))
        provider.add_span_processor(BatchSpanProcessor(DuckDBSpanExporter(args.db)))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))

    instrument, cases = PRODUCERS[args.producer]
    if args.host:
        if cases is not openai_cases:
            parser.error("--host: an OpenAI producer only")
        cases = functools.partial(host_cases, base_url=args.host, model=args.model)
    instrument(provider)
    tracer = provider.get_tracer("otel-costattr.tests.drive")
    trace_ids = {}
    for name, call in cases(provider).items():
        with tracer.start_as_current_span(f"case {name}") as root:
            trace_ids[name] = format(root.get_span_context().trace_id, "032x")
            call()
    provider.shutdown()  # flushes the BatchSpanProcessor into DuckDB

    report: dict[str, dict] = {name: {"trace_id": tid, "spans": []} for name, tid in trace_ids.items()}
    by_trace = {tid: name for name, tid in trace_ids.items()}
    for span in memory.get_finished_spans():
        case = by_trace[format(span.context.trace_id, "032x")]
        if span.parent is None:
            continue  # our own root span
        attrs = {k: v if not isinstance(v, tuple) else list(v) for k, v in span.attributes.items()}
        report[case]["spans"].append(
            {
                "name": span.name,
                "kind": span.kind.name,
                "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
                # Message text is customer data in real life; the tests never need it.
                "attributes": {k: v for k, v in sorted(attrs.items()) if not is_content_key(k)},
            }
        )
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
