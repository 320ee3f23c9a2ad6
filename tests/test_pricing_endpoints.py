"""The endpoint names the host that billed a call (pricing/endpoints.py): the OpenAI client
against Groq, OpenRouter or Azure is priced at that host's prices, with the processor and
without it, and stored under that host's name, so that repricing finds the same entry."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, rollup
from otel_costattr.pricing.endpoints import endpoint_host, served_by

# Groq's llama-3.3-70b-versatile: $0.59 / $0.79 a million; OpenAI's table has no such model.
GROQ_USD = Decimal("1000") * Decimal("0.59") / 10**6 + Decimal("100") * Decimal("0.79") / 10**6


def _call(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        **extra,
    }


def _openinference(provider: str, model: str) -> dict[str, Any]:
    return {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.provider": provider,
        "llm.model_name": model,
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 100,
    }


CASES = {
    # openai-v2: the host name
    "server.address": (_call("llama-3.3-70b-versatile", **{"server.address": "api.groq.com"}), "groq"),
    # OpenLLMetry: the client's base URL
    "api_base": (
        _call("llama-3.3-70b-versatile", **{"gen_ai.openai.api_base": "https://API.groq.com/openai/v1/"}),
        "groq",
    ),
    # OpenInference: llm.provider, its guess from the host, beside llm.system "openai"
    "llm.provider": (_openinference("groq", "llama-3.3-70b-versatile"), "groq"),
}


def _store(path: str, processor: bool, spans: dict[str, dict[str, Any]]) -> None:
    provider = TracerProvider()
    if processor:
        provider.add_span_processor(CostSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(DuckDBSpanExporter(path)))
    tracer = provider.get_tracer("t")
    for name, attrs in spans.items():
        tracer.start_span(name, attributes=attrs).end()
    provider.shutdown()


@pytest.mark.parametrize("processor", [True, False], ids=["processor", "exporter alone"])
def test_the_openai_client_against_groq_is_priced_at_groqs_prices(tmp_path, processor):
    path = str(tmp_path / "spans.duckdb")
    _store(path, processor, {name: attrs for name, (attrs, _) in CASES.items()})
    con = duckdb.connect(path, read_only=True)
    rows = con.execute("SELECT name, provider, cost_status, cost_usd FROM spans ORDER BY name").fetchall()
    con.close()
    assert rows == [(name, host, "priced", GROQ_USD) for name, (_, host) in sorted(CASES.items())]
    # Repricing finds the entry by the stored provider: the same cost, not unknown.
    (model,) = rollup("per_model", path, reprice=[])
    assert (model["provider"], model["usd_repriced"]) == ("groq", GROQ_USD * 3)


def _one_call(tmp_path, attrs: dict[str, Any], columns: str) -> tuple[Any, ...]:
    """``columns`` of the row the processor and the exporter make of one call."""
    path = str(tmp_path / "spans.duckdb")
    _store(path, True, {"chat": attrs})
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(f"SELECT {columns} FROM spans").fetchone()
    finally:
        con.close()


def test_openrouter_through_the_openai_client_is_openrouters_call(tmp_path):
    # Claude Sonnet 4.5 on OpenRouter: Anthropic's $3 / $15 a million.
    attrs = _call("anthropic/claude-sonnet-4.5", **{"server.address": "openrouter.ai"})
    row = _one_call(tmp_path, attrs, "provider, cost_status, cost_usd, priced_model")
    assert row == ("openrouter", "priced", Decimal("0.0045"), "claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("api.groq.com", "groq"),
        ("API.GROQ.COM", "groq"),
        ("https://user@api.deepseek.com:443/v1?x=1", "deepseek"),
        ("myres.openai.azure.com", "azure"),
        ("openai.azure.com", None),  # no resource: no Azure endpoint
        ("evil-openai.azure.com.example", None),
        ("us-east5-aiplatform.googleapis.com", "google"),
        ("bedrock-runtime.us-east-1.amazonaws.com", "aws"),
        ("bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "aws"),
        ("runtime.sagemaker.us-east-1.amazonaws.com", None),  # a model the user hosts
        ("api.moonshot.cn", None),  # bills in yuan
        # hosts the table has no prices for: named, so that their calls are unknown
        ("api.fireworks.ai", "fireworks"),
        ("https://integrate.api.nvidia.com/v1", "nvidia_nim"),
        ("us-south.ml.cloud.ibm.com", "ibm.watsonx.ai"),
        ("ml.cloud.ibm.com", None),
        ("api.openai.com.", "openai"),
        ("localhost", None),
        ("litellm.internal:4000", None),  # a gateway: the span's own provider stands
        ("", None),
        ("x" * 3000 + ".api.groq.com", None),
        (7, None),
        (["api.groq.com"], None),
    ],
)
def test_endpoint_hosts(address, host):
    assert endpoint_host(address) == host


def test_llm_provider_names_the_host_only_beside_the_openai_client():
    # OpenInference's OpenAI instrumentation: llm.system "openai" is the client.
    assert served_by("openai", "groq", None) == "groq"
    # smolagents and haystack: llm.provider "openai" for any OpenAI-compatible server, beside
    # the maker's llm.system; the maker stands.
    assert served_by("google", "openai", None) == "google"
    # A host the bundled table does not price (Fireworks): the client's name stands, as before.
    assert served_by("openai", "fireworks", None) == "openai"
    assert served_by(None, "aws", None) == "aws"  # llm.provider alone: the last spelling ranked
    # One host, one name: llm.provider's spelling is the pricing provider's id, as an address's.
    assert served_by("openai", "xai", None) == served_by("openai", None, "api.x.ai") == "x-ai"
    assert served_by("openai", "mistralai", None) == "mistral"
    # The endpoint wins over llm.provider beside the client.
    assert served_by("openai", "groq", "api.together.xyz") == "together"
    # A span that names its host keeps its name (and the rules it already had): the endpoint
    # is read only for no provider or the OpenAI client.
    assert served_by("gcp.vertex_ai", None, "europe-west1-aiplatform.googleapis.com") == "gcp.vertex_ai"
    assert served_by("anthropic", None, "bedrock-runtime.eu-west-1.amazonaws.com") == "anthropic"
    assert served_by(None, None, "bedrock-runtime.eu-west-1.amazonaws.com") == "aws"


@pytest.mark.parametrize("system", [None, "openai"])
def test_a_call_to_a_host_the_table_does_not_price_is_unknown(tmp_path, system):
    # A review: deepseek-r1 at api.sambanova.ai on a span naming no provider was priced at
    # DeepSeek's own API rate, $0.000322. The endpoint names the host, as it names Groq.
    attrs = _call("DeepSeek-R1", **{"server.address": "api.sambanova.ai"})
    attrs.pop("gen_ai.system")
    if system is not None:
        attrs["gen_ai.system"] = system
    row = _one_call(tmp_path, attrs, "provider, cost_status, cost_usd")
    assert row == ("sambanova", "unknown_model", None)


def test_an_unknown_endpoint_leaves_the_span_priced_as_before(tmp_path):
    gpt = _call("gpt-4o", **{"server.address": "llm-gateway.corp.example"})
    # gpt-4o: 1000 * 2.5 + 100 * 10 a million
    assert _one_call(tmp_path, gpt, "provider, cost_usd") == ("openai", Decimal("0.0035"))


ADDRESSES = [
    "api.groq.com", "API.GROQ.COM", "https://user@api.deepseek.com:443/v1?x=1", "http://openrouter.ai",
    "myres.openai.azure.com", "openai.azure.com", "evil-openai.azure.com.example",
    "us-east5-aiplatform.googleapis.com", "bedrock-runtime.us-east-1.amazonaws.com",
    "bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "bedrock-runtime.cn-north-1.amazonaws.com.cn",
    "runtime.sagemaker.us-east-1.amazonaws.com", "api.moonshot.cn", "api.openai.com.", "localhost",
    "litellm.internal:4000", "", "x" * 3000 + ".api.groq.com", "api.groq.com#frag", "a@b@api.x.ai/",
    "api.deepsee\u212a.com",  # the Kelvin sign: "k" to Python's lower(), not to ClickHouse's
    "https://api.groq.com/" + "\u00e9" * 1100,  # within the limit in characters, not in bytes
    "https://api.fireworks.ai/inference/v1", "us-south.ml.cloud.ibm.com", "ml.cloud.ibm.com",
]  # fmt: skip


@pytest.mark.chdb
def test_clickhouse_names_the_same_host(chdb_dir):
    """The Collector's rows get the provider the DuckDB store stores (`_spans.sql`'s
    provider: the same steps in SQL), for each address, as a host name and as a base URL,
    and OpenInference's llm.provider beside each client name."""
    from otel_costattr.clickhouse import parse_target
    from otel_costattr.clickhouse.client import connect
    from otel_costattr.clickhouse.prelude import _provider
    from otel_costattr.semconv import PROVIDER_KEYS, stored_provider

    client = connect(parse_target(f"chdb://{chdb_dir}?database=endpoints"), create=True)
    spans = [
        {"gen_ai.system": "openai", key: a}
        for a in ADDRESSES
        for key in ("server.address", "gen_ai.openai.api_base")
    ]
    spans += [
        {"llm.system": s, "llm.provider": p}
        for s in ("openai", "google", "")
        for p in ("groq", "openai", "fireworks", "xai", "")
    ]
    # a span naming its host keeps its name; llm.provider alone beside an address
    spans += [
        {"gen_ai.provider.name": "gcp.vertex_ai", "server.address": "us-east5-aiplatform.googleapis.com"},
        {"gen_ai.system": "", "llm.provider": "groq", "server.address": "api.together.xyz"},
        {"gen_ai.system": "", "llm.provider": "groq"},
        {"llm.provider": "groq", "server.address": "api.together.xyz"},
    ]
    pairs = "arrayZip({keys:Array(Array(String))}, {values:Array(Array(String))})"
    sql = (
        f"SELECT {_provider()} FROM (SELECT mapFromArrays(t.1, t.2) AS _a FROM"
        f" (SELECT arrayJoin({pairs}) AS t))"
    )
    bound = {"keys": [list(a) for a in spans], "values": [list(a.values()) for a in spans]}
    got = [row[0] for row in client.query(sql, parameters=bound).result_rows]
    # A missing key is '' on ClickHouse; the DuckDB store passes the first spelling present
    # (an empty one too), without the empty keys as with them.
    for kept in (lambda v: True, lambda v: v != ""):
        expected = []
        for attrs in spans:
            present = {k: v for k, v in attrs.items() if kept(v)}
            first = next((present[k] for k in PROVIDER_KEYS if k in present), None)
            expected.append(stored_provider(present, first) or None)
        assert [g or None for g in got] == expected
