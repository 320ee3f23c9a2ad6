"""Regional prices: Bedrock GovCloud and Vertex AI regional endpoints (issue 17).

The region comes from the call (a ``us-gov.`` profile id, ``cloud.region`` / ``aws.region``,
the server address, the resource's ``cloud.region``); `pricing/_regions.toml` says what it
costs there; the span says which region priced it (``costattr.region``). Real TracerProvider,
real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, load_pricing
from otel_costattr.cost.engine import Usage, compute_cost, price_call, usd
from otel_costattr.pricing.model import PricingError
from otel_costattr.pricing.regions import parse_regions, region_from_address, region_of
from otel_costattr.semconv import COST, PRICED_MODEL, REGION

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
SONNET_BEDROCK = "anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


# (model, provider, region) -> (entry id, input rate, output rate, region applied)
QUOTES = [
    # GovCloud: 1.2x Anthropic's list price (3/15), by profile id or by region.
    ("us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", None, "us-gov", "3.6", "18", "us-gov"),
    (SONNET_BEDROCK, "aws.bedrock", "us-gov-west-1", "3.6", "18", "us-gov-west-1"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "aws.bedrock", "us-gov-east-1", "1.2", "6", "us-gov-east-1"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "aws.bedrock", "us-gov-west-1", "0.3", "1.5", "us-gov-west-1"),
    # Commercial regions: the in-region price aws.toml lists (+10%), no region stamped.
    (SONNET_BEDROCK, "aws.bedrock", "us-east-1", "3.3", "16.5", None),
    (SONNET_BEDROCK, "aws.bedrock", None, "3.3", "16.5", None),
    # Vertex: a regional endpoint +10%, the global endpoint at list price.
    ("claude-sonnet-4-5@20250929", "gcp.vertex_ai", "us-east5", "3.3", "16.5", "us-east5"),
    ("claude-sonnet-4-6", "gcp.vertex_ai", "europe-west1", "3.3", "16.5", "europe-west1"),
    ("claude-sonnet-4-5@20250929", "gcp.vertex_ai", "global", "3", "15", None),
    ("claude-sonnet-4-5@20250929", "gcp.vertex_ai", None, "3", "15", None),
    # Older Claude on Vertex, Anthropic's own API, other vendors: no regional price.
    ("claude-3-5-haiku@20241022", "gcp.vertex_ai", "us-east5", "0.8", "4", None),
    ("claude-sonnet-4-5", "anthropic", "us-east5", "3", "15", None),
    ("claude-sonnet-4-5", "anthropic", "us-gov-west-1", "3", "15", None),
    ("gpt-4o", "openai", "us-gov-west-1", "2.5", "10", None),
]


@pytest.mark.parametrize(("model", "provider", "region", "rate_in", "rate_out", "applied"), QUOTES)
def test_regional_quotes(bundled, model, provider, region, rate_in, rate_out, applied):
    quote = bundled.quote(model, provider, None, START, region)
    assert quote is not None
    assert (quote.rates.input, quote.rates.output) == (D(rate_in), D(rate_out))
    assert quote.region == applied
    # The entry keeps its id: costattr.model names the model, costattr.region the surcharge.
    assert quote.entry.id == bundled.quote(model, provider, None, START).entry.id


def test_regional_price_keeps_the_history_and_the_bucket_rule(bundled):
    usage = Usage(1000, 500, 200, input_includes_cache=True)
    _, _, parts, scale, _, _ = price_call(
        bundled, START, SONNET_BEDROCK, "aws.bedrock", None, usage, "us-gov"
    )
    # 800 uncached x 3.6 + 200 cache reads x 0.36 + 500 output x 18, per million: exact.
    assert usd(sum(parts), scale) == D("0.011952")
    plain = compute_cost("claude-sonnet-4-5", Usage(1000, 500, 200, input_includes_cache=True))
    assert plain.total * D("1.2") == D("0.011952")


ADDRESSES = [
    ("bedrock-runtime.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
    ("bedrock-runtime-fips.us-gov-east-1.amazonaws.com", "us-gov-east-1"),
    ("BEDROCK-RUNTIME.eu-west-1.amazonaws.com", "eu-west-1"),
    ("us-east5-aiplatform.googleapis.com", "us-east5"),
    ("aiplatform.googleapis.com", "global"),
    ("api.openai.com", None),
    ("x" * 500, None),
    (7, None),
    ("", None),
]


@pytest.mark.parametrize(("address", "region"), ADDRESSES)
def test_region_from_address(address, region):
    assert region_from_address(address) == region


def test_region_precedence():
    span = {"cloud.region": "us-gov-west-1", "aws.region": "us-east-1"}
    assert region_of("us-gov.anthropic.x", span, {"cloud.region": "eu"}, "aws") == "us-gov"
    assert region_of("anthropic.x", span, {"cloud.region": "eu"}, "aws") == "us-gov-west-1"
    assert region_of("anthropic.x", {"aws.region": "US-EAST-1"}, None, "aws") == "us-east-1"
    address = {"server.address": "us-east5-aiplatform.googleapis.com"}
    assert region_of("claude", address, {"cloud.region": "eu-west-1"}, "google") == "us-east5"
    assert region_of("claude", {}, {"cloud.region": "eu-west-1"}, "google") == "eu-west-1"
    assert region_of("claude", {"cloud.region": 5, "aws.region": ["x"]}, None, "google") is None


# The resource's cloud.region is where the app runs: it says where a call was served only when
# the app runs in the host's own cloud (cloud.provider absent: believed, as before).
RESOURCE_CLOUDS = [
    ({"cloud.provider": "aws", "cloud.region": "eu-west-1"}, "google", None),
    ({"cloud.provider": "gcp", "cloud.region": "europe-west1"}, "google", "europe-west1"),
    ({"cloud.provider": "GCP", "cloud.region": "europe-west1"}, "google", "europe-west1"),
    ({"cloud.provider": "gcp", "cloud.region": "us-gov-west-1"}, "aws", None),
    ({"cloud.provider": "aws", "cloud.region": "us-gov-west-1"}, "aws", "us-gov-west-1"),
    ({"cloud.provider": "azure", "cloud.region": "westeurope"}, "azure", "westeurope"),
    ({"cloud.provider": "aws", "cloud.region": "us-east-1"}, "anthropic", None),
    ({"cloud.provider": 7, "cloud.region": "us-east-1"}, "aws", None),
    ({"cloud.region": "eu-west-1"}, "google", "eu-west-1"),
]


@pytest.mark.parametrize(("resource", "host", "region"), RESOURCE_CLOUDS)
def test_the_resource_region_counts_only_in_the_hosts_own_cloud(resource, host, region):
    assert region_of("claude", {}, resource, host) == region
    # The span's own region is the call's, whatever cloud the app runs in.
    assert region_of("claude", {"cloud.region": "us-east5"}, resource, host) == "us-east5"


VERTEX_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "gcp.vertex_ai",
    "gen_ai.request.model": "claude-sonnet-4-5@20250929",
    "gen_ai.usage.input_tokens": 100_000,
    "gen_ai.usage.output_tokens": 0,
}


@pytest.mark.parametrize(
    ("resource", "usd", "region"),
    [
        ({"cloud.provider": "aws", "cloud.region": "eu-west-1"}, D("0.3"), None),  # the list price
        ({"cloud.provider": "gcp", "cloud.region": "europe-west1"}, D("0.33"), "europe-west1"),
        ({"cloud.region": "europe-west1"}, D("0.33"), "europe-west1"),
    ],
)
def test_an_app_in_another_cloud_pays_vertex_list_price_in_processor_and_store(
    bundled, tmp_path, resource, usd, region
):
    from otel_costattr import DuckDBSpanExporter, rollup

    spans = []
    for processor in (CostSpanProcessor(bundled), None):  # stamped in process, then unstamped
        provider = TracerProvider(resource=Resource.create(resource))
        memory = InMemorySpanExporter()
        if processor is not None:
            provider.add_span_processor(processor)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        provider.get_tracer("t").start_span("chat", attributes=VERTEX_CALL, start_time=START).end()
        spans += memory.get_finished_spans()
    assert spans[0].attributes[COST] == pytest.approx(float(usd), rel=1e-12)
    assert spans[0].attributes.get(REGION) == region
    assert COST not in spans[1].attributes
    db = tmp_path / "v.duckdb"
    store = DuckDBSpanExporter(db, pricing=bundled)
    store.export(spans)
    store.shutdown()
    assert rollup("stats", db=db)[0]["usd"] == 2 * usd  # the store prices the unstamped one alike


def _end_call(processor: CostSpanProcessor, attrs: dict, resource: Resource | None = None):
    provider = TracerProvider(resource=resource or Resource.create({}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer("t").start_span("chat", attributes=attrs, start_time=START)
    span.end()
    return memory.get_finished_spans()[0].attributes


BEDROCK_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "aws.bedrock",
    "gen_ai.request.model": SONNET_BEDROCK,
    "gen_ai.usage.input_tokens": 100_000,  # under every long-context tier
    "gen_ai.usage.output_tokens": 0,
}


@pytest.mark.parametrize(
    ("extra", "resource", "cost", "region"),
    [
        ({}, None, 0.33, None),
        ({"aws.region": "us-gov-west-1"}, None, 0.36, "us-gov-west-1"),
        ({"server.address": "bedrock-runtime.us-gov-east-1.amazonaws.com"}, None, 0.36, "us-gov-east-1"),
        ({}, {"cloud.region": "us-gov-west-1"}, 0.36, "us-gov-west-1"),
        ({"cloud.region": "us-east-1"}, {"cloud.region": "us-gov-west-1"}, 0.33, None),
    ],
)
def test_processor_stamps_the_regional_price(bundled, extra, resource, cost, region):
    processor = CostSpanProcessor(bundled)
    res = Resource.create(resource) if resource else None
    attrs = _end_call(processor, {**BEDROCK_CALL, **extra}, res)
    assert attrs[COST] == pytest.approx(cost, rel=1e-12)
    assert attrs.get(REGION) == region
    assert attrs[PRICED_MODEL] == "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert processor.stats()["priced"] == 1


def test_vertex_regional_endpoint_through_the_processor(bundled):
    attrs = _end_call(
        CostSpanProcessor(bundled),
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "gcp.vertex_ai",
            "gen_ai.request.model": "claude-sonnet-4-5@20250929",
            "server.address": "us-east5-aiplatform.googleapis.com",
            "gen_ai.usage.input_tokens": 100_000,
            "gen_ai.usage.output_tokens": 100_000,
        },
    )
    assert attrs[COST] == pytest.approx(0.33 + 1.65, rel=1e-12)
    assert attrs[REGION] == "us-east5"


BAD = [
    (b"[[region]]\nhost='aws'\nregions=['x']\nmodels=['m']\n", "region[0]: multiplier: required"),
    (b"[[region]]\nhost='aws'\nregions=['x']\nmodels=['m']\nmultiplier=0\n", "region[0]: multiplier:"),
    (b"[[region]]\nhost='aws'\nregions=['x']\nmodels=['m']\nmultiplier=nan\n", "region[0]: multiplier:"),
    (b"[[region]]\nhost='aws'\nregions=['x']\nmodels=['m']\nmultiplier=inf\n", "region[0]: multiplier:"),
    (b"[[region]]\nhost='aws'\nregions='x'\nmodels=['m']\nmultiplier=1\n", "region[0]: regions:"),
    (b"[[region]]\nhost='aws'\nregions=['x']\nmodels=['m']\nmultiplier=1\nrate=2\n", "region[0]: rate:"),
    (b"[[region]]\nhost='aws'\nregions=['x']\nmodels=7\nmultiplier=1\n", "region[0]: models:"),
    (b"regions = 1\n", "regions: unknown key"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_regions_file_names_the_rule_and_field(text, message):
    with pytest.raises(PricingError, match=re.escape(f"r.toml: {message}")):
        parse_regions("r.toml", text)


def test_a_rule_naming_an_unknown_model_fails_at_load(bundled):
    from otel_costattr.pricing.regions import RegionIndex

    rules = parse_regions(
        "r.toml", b"[[region]]\nhost='aws'\nregions=['x']\nmodels=['gpt-99']\nmultiplier=1.1\n"
    )
    with pytest.raises(PricingError, match=r"r.toml: region\[0\]: models: no model 'gpt-99' in 'aws'"):
        RegionIndex(rules, bundled._providers)
    rules = parse_regions("r.toml", b"[[region]]\nhost='nope'\nregions=['x']\nmodels=['m']\nmultiplier=1\n")
    with pytest.raises(PricingError, match=r"region\[0\]: host: unknown provider 'nope'"):
        RegionIndex(rules, bundled._providers)
