"""Usage as three more instrumentations write it, billed as the provider bills it by the
processor (its compiled stamp from a shape's second span on), the exporter alone and
repricing alike (a review drove today's releases against a fake endpoint):

- Bedrock's usage counts inputTokens without the cache, and the botocore instrumentation
  (``gen_ai.system``) and OpenLLMetry's bedrock one (``gen_ai.provider.name``) copy it into
  the conventions' input key: read as including the cache, the cache was taken off it again;
- OpenInference's openai and google-genai instrumentations count audio under
  ``llm.token_count.*_details.audio``, billed at the text rates before;
- OpenLLMetry drops a Bedrock inference profile (``global.``) from the model id it reports:
  beside OpenInference's span of the same call, the two named ids the table prices apart,
  and the call was billed twice.

The attributes are those the instrumentations emitted (opentelemetry-instrumentation-botocore
0.66b2, opentelemetry-instrumentation-bedrock 0.62.4, openinference-instrumentation-openai
0.1.66, -google-genai 1.4.14, -bedrock 0.1.61)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, load_pricing, rollup
from otel_costattr.semconv import read_model_call

M = 1_000_000
GLOBAL_SONNET = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
BOTOCORE = "opentelemetry.instrumentation.botocore.bedrock-runtime"
OPENLLMETRY = "opentelemetry.instrumentation.bedrock"
OPENINFERENCE = "openinference.instrumentation.bedrock"


def botocore_converse(inp: int, read: int | None, write: int | None) -> dict:
    attrs = {
        "rpc.system": "aws-api",
        "rpc.method": "Converse",
        "gen_ai.system": "aws.bedrock",
        "gen_ai.request.model": GLOBAL_SONNET,
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": 300,
    }
    if read is not None:
        attrs["gen_ai.usage.cache_read.input_tokens"] = read
    if write is not None:
        attrs["gen_ai.usage.cache_creation.input_tokens"] = write
    return attrs


def openllmetry_converse(inp: int, read: int, write: int, model: str = GLOBAL_SONNET) -> dict:
    return {
        "gen_ai.provider.name": "aws.bedrock",
        "gen_ai.request.model": model,
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.total_tokens": inp + 300,
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": write,
    }


def openinference_converse(inp: int, read: int, write: int) -> dict:
    return {
        "openinference.span.kind": "LLM",
        "llm.provider": "aws",
        "llm.model_name": GLOBAL_SONNET,
        "llm.token_count.prompt": inp + read + write,  # OpenInference sums the cache in
        "llm.token_count.completion": 300,
        "llm.token_count.prompt_details.cache_read": read,
        "llm.token_count.prompt_details.cache_write": write,
    }


def sonnet(inp: int, read: int, write: int, scale: D = D(1)) -> D:
    """Claude Sonnet 4.5 on Bedrock's global profile: $3 input, $0.30 cache read, $3.75 cache
    write, $15 output per million tokens (``scale``: the in-region profiles' 1.1)."""
    return (inp * D(3) + read * D("0.3") + write * D("3.75") + 300 * D(15)) * scale / M


# (name, scope, attributes, the bill, its input tokens with the cache counted in)
CALLS = [
    ("botocore, a cache write", BOTOCORE, botocore_converse(3000, None, 2000), sonnet(3000, 0, 2000), 5000),
    ("botocore, a cache read", BOTOCORE, botocore_converse(5000, 1024, None), sonnet(5000, 1024, 0), 6024),
    ("botocore, a read larger", BOTOCORE, botocore_converse(50, 1000, 150), sonnet(50, 1000, 150), 1200),
    ("openllmetry, a write", OPENLLMETRY, openllmetry_converse(3000, 0, 2000), sonnet(3000, 0, 2000), 5000),
    ("openllmetry, a read", OPENLLMETRY, openllmetry_converse(5000, 1024, 0), sonnet(5000, 1024, 0), 6024),
    ("openinference", OPENINFERENCE, openinference_converse(3000, 0, 2000), sonnet(3000, 0, 2000), 5000),
    # OpenInference's audio counts: parts of the prompt and completion counts.
    (
        "openinference openai audio",
        "openinference.instrumentation.openai",
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o-audio-preview",
            "llm.token_count.prompt": 1000,
            "llm.token_count.completion": 500,
            "llm.token_count.total": 1500,
            "llm.token_count.prompt_details.cache_read": 0,
            "llm.token_count.prompt_details.audio": 800,
            "llm.token_count.completion_details.reasoning": 0,
            "llm.token_count.completion_details.audio": 400,
        },  # fmt: skip
        # text $2.50 in, $10 out; audio $40 in, $80 out
        (200 * D("2.5") + 800 * D(40) + 100 * D(10) + 400 * D(80)) / M,
        1000,
    ),
    (
        "openinference gemini audio",
        "openinference.instrumentation.google_genai",
        {
            "openinference.span.kind": "LLM",
            "llm.system": "vertexai",
            "llm.provider": "google",
            "llm.model_name": "gemini-2.5-flash",
            "llm.token_count.prompt": 1200,
            "llm.token_count.completion": 300,
            "llm.token_count.total": 1500,
            "llm.token_count.prompt_details.audio": 800,
        },  # fmt: skip
        (400 * D("0.3") + 800 * D(1) + 300 * D("2.5")) / M,  # $0.30 text, $1 audio in; $2.50 out
        1200,
    ),
]
IDS = [name for name, *_ in CALLS]


@pytest.mark.parametrize(("name", "scope", "attrs", "bill", "inp"), CALLS, ids=IDS)
def test_the_processor_stamps_the_bill_on_every_span_of_the_shape(tmp_path, name, scope, attrs, bill, inp):
    """Three spans of one shape: the first priced by the general path, the next by the
    shape's compiled stamp; every one carries the bill, and the store keeps it."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    db = tmp_path / "calls.duckdb"
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(db))))
    tracer = provider.get_tracer(scope)
    for _ in range(3):
        with provider.get_tracer("app").start_as_current_span("request"):
            tracer.start_span(name, attributes=attrs).end()
    provider.shutdown()
    stamped = [s.attributes for s in memory.get_finished_spans() if s.name == name]
    assert [(a["costattr.status"], a["gen_ai.usage.cost"]) for a in stamped] == [("priced", float(bill))] * 3
    (row,) = rollup("per_model", db=str(db), reprice=load_pricing(use_env=False))
    assert (row["calls"], row["usd"], row["input_tokens"]) == (3, 3 * bill, 3 * inp)
    if "audio" not in name:  # the store keeps no per-modality counts: repricing bills them as text
        assert row["usd_repriced"] == 3 * bill


@pytest.mark.parametrize(("name", "scope", "attrs", "bill", "inp"), CALLS, ids=IDS)
def test_the_exporter_alone_bills_the_same(tmp_path, name, scope, attrs, bill, inp):
    """A service without the processor: the store prices the spans itself, shape by shape."""
    db = tmp_path / "calls.duckdb"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(str(db))))
    tracer = provider.get_tracer(scope)
    for _ in range(3):
        tracer.start_span(name, attributes=attrs).end()
    provider.shutdown()
    (row,) = rollup("per_model", db=str(db))
    assert (row["calls"], row["usd"], row["input_tokens"]) == (3, 3 * bill, 3 * inp)


def test_the_conventions_input_stays_inclusive_for_other_providers():
    """The rule is Bedrock's: the same keys from another provider include the cache, as the
    conventions say (OpenLLMetry's anthropic spans sum it in)."""
    bedrock = botocore_converse(3000, None, 2000)
    assert read_model_call(bedrock).usage.input_includes_cache is False
    anthropic = {**bedrock, "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"}
    assert read_model_call(anthropic).usage.input_includes_cache is None  # inferred: inclusive here
    without_cache = botocore_converse(3000, None, None)
    assert read_model_call(without_cache).usage.input_includes_cache is None  # nothing to tell apart
    summed = openinference_converse(3000, 0, 2000)  # llm.token_count.prompt, not the conventions' key
    assert read_model_call({**summed, "gen_ai.system": "aws.bedrock"}).usage.input_includes_cache is None


@pytest.mark.parametrize("first", ["openllmetry", "openinference"])
def test_one_bedrock_call_traced_with_and_without_its_profile_is_billed_once(first):
    """OpenLLMetry's span names ``anthropic.claude-...`` (the table's in-region entry),
    OpenInference's, nested in it or around it, ``global.anthropic.claude-...``: one call."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    in_region = GLOBAL_SONNET[len("global.") :]
    spans = {
        "openllmetry": (OPENLLMETRY, openllmetry_converse(3000, 0, 2000, model=in_region)),
        "openinference": (OPENINFERENCE, openinference_converse(3000, 0, 2000)),
    }
    outer_scope, outer_attrs = spans[first]
    inner_scope, inner_attrs = spans["openinference" if first == "openllmetry" else "openllmetry"]
    with (
        provider.get_tracer("app").start_as_current_span("request"),
        provider.get_tracer(outer_scope).start_as_current_span("outer", attributes=outer_attrs),
    ):
        provider.get_tracer(inner_scope).start_span("inner", attributes=inner_attrs).end()
    provider.shutdown()
    calls = [s.attributes for s in memory.get_finished_spans() if s.name != "request"]
    assert sorted(a["costattr.status"] for a in calls) == ["duplicate", "priced"]
