"""Regional rules in a user's own price file (issue 17): the format of `pricing/_regions.toml`.

A user file may hold ``[[region]]`` rules alone, or beside its own provider and models; its
rules are tried before the bundled ones; a mistake fails at load in one line naming the file,
the rule and the field. Real TracerProvider through the processor, files on disk (also through
``OTEL_COSTATTR_PRICING_FILES``). Expected rates are worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal as D

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr import CostSpanProcessor, load_pricing
from otel_costattr.pricing.model import PricingError
from otel_costattr.semconv import COST, PRICED_MODEL, REGION

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
SONNET_BEDROCK = "anthropic.claude-sonnet-4-5-20250929-v1:0"

# Azure OpenAI's data-zone deployments: +10% (LiteLLM's azure/eu/... keys); the user names the
# regions their deployments serve from.
AZURE_EU = """
[[region]]
host = "azure"
regions = ["swedencentral", "westeurope"]
multiplier = 1.1
source = "https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/"
models = ["gpt-4o"]
"""


def _file(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_regions_only_user_file_prices_the_region(tmp_path):
    table = load_pricing([_file(tmp_path, "zones.toml", AZURE_EU)], use_env=False)
    eu = table.quote("gpt-4o", "azure.ai.openai", None, START, "swedencentral")
    assert (eu.rates.input, eu.rates.output, eu.rates.cache_read) == (D("2.75"), D(11), D("1.375"))
    assert eu.region == "swedencentral" and eu.entry.id == "gpt-4o"
    elsewhere = table.quote("gpt-4o", "azure.ai.openai", None, START, "eastus")
    assert (elsewhere.rates.input, elsewhere.region) == (D("2.5"), None)
    # Another host in that region (OpenAI's own API) is not an Azure deployment.
    assert table.quote("gpt-4o", "openai", None, START, "swedencentral").region is None
    assert "+local." in table.version  # the user's file is part of the table's identity


def test_a_user_rule_wins_over_the_bundled_one(tmp_path):
    # The bundled GovCloud rule bills Sonnet 4.5 at 1.2x Anthropic's price ($3.6 in); a
    # negotiated GovCloud rate of 1.25x replaces it for this user.
    text = """
[[region]]
host = "aws"
regions = ["us-gov-*"]
multiplier = 1.25
models = { "regional.anthropic.claude-sonnet-4-5-20250929-v1:0" = "anthropic/claude-sonnet-4-5" }
"""
    table = load_pricing([_file(tmp_path, "gov.toml", text)], use_env=False)
    quote = table.quote(SONNET_BEDROCK, "aws.bedrock", None, START, "us-gov-west-1")
    assert (quote.rates.input, quote.rates.output) == (D("3.75"), D("18.75"))
    bundled = load_pricing(use_env=False).quote(SONNET_BEDROCK, "aws.bedrock", None, START, "us-gov-west-1")
    assert bundled.rates.input == D("3.6")


def test_rules_beside_the_users_own_models_through_the_environment(tmp_path, monkeypatch):
    text = """
provider = "acme"
otel_names = ["acme"]

[[model]]
id = "acme-1"
match = [{ equals = "acme-1" }]
[[model.price]]
input = 1
output = 2

[[region]]
host = "acme"
regions = ["eu-*"]
multiplier = 1.5
models = ["acme-1"]
"""
    monkeypatch.setenv("OTEL_COSTATTR_PRICING_FILES", os.pathsep.join([_file(tmp_path, "acme.toml", text)]))
    processor = CostSpanProcessor(load_pricing())
    provider = TracerProvider(resource=Resource.create({}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme",
             "gen_ai.request.model": "acme-1",
             "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 1_000_000}  # fmt: skip
    for region in ("eu-west-1", "us-east-1"):
        span = provider.get_tracer("t").start_span("chat", attributes={**attrs, "cloud.region": region},
                                                   start_time=START)  # fmt: skip
        span.end()
    eu, us = (s.attributes for s in memory.get_finished_spans())
    assert (eu[COST], eu[REGION], eu[PRICED_MODEL]) == (pytest.approx(4.5, rel=1e-12), "eu-west-1", "acme-1")
    assert (us[COST], us.get(REGION)) == (pytest.approx(3.0, rel=1e-12), None)


RULE = "[[region]]\nhost='aws'\nregions=['x']\n"
BAD = [
    (RULE + "models=['m']\n", "region[0]: multiplier: required"),
    (RULE + "models=['m']\nmultiplier=0\n", "region[0]: multiplier:"),
    (RULE + "models=['m']\nmultiplier=1\nrate=2\n", "region[0]: rate: unknown key"),
    ("region = 3\n", "region: must be an array of tables"),
    (RULE + "models=['gpt-99']\nmultiplier=1.1\n", "region[0]: models: no model 'gpt-99' in 'aws'"),
    (RULE.replace("aws", "nope") + "models=['m']\nmultiplier=1\n", "region[0]: host: unknown provider"),
    # a provider file beside its rules is checked as before
    ("provider = 'acme'\nbogus = 1\n" + RULE + "models=['m']\nmultiplier=1\n", "bogus: unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_user_rule_fails_at_load_in_one_line(tmp_path, text, message):
    path = _file(tmp_path, "mine.toml", text)
    with pytest.raises(PricingError) as e:
        load_pricing([path], use_env=False)
    assert str(e.value).startswith(f"{path}: {message}")
    assert "\n" not in str(e.value)


# --- what the store and SQL repricing do with regions (documented in pricing/README.md) -------

GOV_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "aws.bedrock",
    "gen_ai.request.model": "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "gen_ai.usage.input_tokens": 100_000,  # under the >200k tier
    "gen_ai.usage.output_tokens": 0,
}


def test_the_exporter_prices_a_call_arriving_unpriced_at_its_regional_rate_as_well(tmp_path):
    from otel_costattr import DuckDBSpanExporter, rollup

    table = load_pricing(use_env=False)
    spans = []
    for processor in (CostSpanProcessor(table), None):  # priced in process, then arriving unpriced
        provider = TracerProvider(resource=Resource.create({}))
        memory = InMemorySpanExporter()
        if processor is not None:
            provider.add_span_processor(processor)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        span = provider.get_tracer("t").start_span("chat", attributes=GOV_CALL, start_time=START)
        span.end()
        spans += memory.get_finished_spans()
    db = tmp_path / "c.duckdb"
    store = DuckDBSpanExporter(db, pricing=table)
    store.export(spans)
    store.shutdown()
    # GovCloud is 1.2x Anthropic's $3 list price ($0.36 for 100k tokens): the processor stamped
    # it, and the exporter prices the span that arrived unpriced the same way. SQL repricing
    # knows no region: Bedrock's in-region price, $3.30 per million (+10%).
    stats = rollup("stats", db=db, reprice=table)[0]
    assert (stats["usd"], stats["usd_repriced"]) == (D("0.36") + D("0.36"), D("0.33") + D("0.33"))


def test_pricing_check_accepts_region_rules(tmp_path, capsys):
    from otel_costattr.cli import main

    path = _file(tmp_path, "zones.toml", AZURE_EU)
    assert main(["pricing", "check", path]) == 0
    assert capsys.readouterr().out == f"{path}: ok (1 region rule)\n"
    bad = _file(tmp_path, "bad.toml", RULE + "models=['m']\n")
    assert main(["pricing", "check", bad]) == 1
    assert capsys.readouterr().err == f"Error: {bad}: region[0]: multiplier: required\n"


def test_two_user_rules_for_one_call_fail_naming_the_later(tmp_path):
    """A review loaded two files pricing Azure gpt-4o in swedencentral at 1.1x and 1.3x: the
    order of the files chose $2.75 or $3.25, and `pricing check` said ok."""
    eu = _file(tmp_path, "eu.toml", AZURE_EU)
    dearer = _file(
        tmp_path,
        "dearer.toml",
        AZURE_EU.replace('"westeurope"', '"germanywestcentral"').replace("1.1", "1.3"),
    )
    for first, later in ((eu, dearer), (dearer, eu)):
        with pytest.raises(PricingError) as info:
            load_pricing([first, later], use_env=False)
        assert str(info.value) == (
            f"{later}: region[0]: regions: 'swedencentral' is also priced by {first}: region[0] for"
            " 'azure' model 'gpt-4o': the order of the files would choose"
        )
    # Within one file, and through a wildcard.
    twice = _file(
        tmp_path, "twice.toml", AZURE_EU + AZURE_EU.replace('["swedencentral", "westeurope"]', '["sweden*"]')
    )
    with pytest.raises(PricingError, match=r"twice.toml: region\[1\]: regions: 'swedencentral' is also"):
        load_pricing([twice], use_env=False)
    # Wildcards that meet only in a region neither spells out (a review: the order of the
    # files chose 3.6 or 4.5 for europe-west1).
    for first, second in ((["us-*"], ["*-east-1"]), (["europe-*"], ["*-west1"])):
        rules = AZURE_EU.replace('["swedencentral", "westeurope"]', str(first).replace("'", '"'))
        rules += AZURE_EU.replace('["swedencentral", "westeurope"]', str(second).replace("'", '"'))
        with pytest.raises(PricingError, match=r"region\[1\]: regions: '(us-east-1|europe-west1)' is also"):
            load_pricing([_file(tmp_path, "wild.toml", rules)], use_env=False)
    # Rules that cannot meet load: other regions, other models, a region one excludes.
    apart = AZURE_EU + AZURE_EU.replace('"swedencentral", "westeurope"', '"eastus"')
    apart += AZURE_EU.replace('"gpt-4o"', '"gpt-4o-mini"')
    apart += AZURE_EU.replace(
        '["swedencentral", "westeurope"]', '["*"]\nexclude = ["swedencentral", "westeurope", "eastus"]'
    ).replace('"gpt-4o"', '"gpt-4o", "gpt-4o-mini"')
    table = load_pricing([_file(tmp_path, "apart.toml", apart)], use_env=False)
    assert table.quote("gpt-4o", "azure.ai.openai", None, START, "eastus").rates.input == D("2.75")
    # A user's rule still replaces a bundled one (test_a_user_rule_wins_over_the_bundled_one).


def test_region_patterns_meet_where_fnmatch_says():
    from fnmatch import fnmatchcase

    from otel_costattr.pricing.regions import _common

    cases = [
        ("us-*", "*-east-1", True), ("us-*", "eu-*", False), ("east?us", "east us", True),
        ("[!]x", "[!]x", True), ("[!]]*", "a*", True), ("[]]x", "]x", True), ("[ab]x", "cx", False),
    ]  # fmt: skip
    for a, b, meet in cases:
        found = _common(a, b)
        assert (found is not None) == meet, (a, b, found)
        assert found is None or (fnmatchcase(found, a) and fnmatchcase(found, b)), (a, b, found)
