"""A negotiated first-party price stays the user's contract with that party: hosts that resell
its models at list price (a `fallback`: Azure for OpenAI, Vertex and Bedrock for Anthropic) keep
the list price. A review found an OpenAI file with `multiplier = 0.8` pricing Azure's gpt-4o
calls at $1.60 per million instead of $2.50, and an Anthropic one discounting Vertex and Bedrock
GovCloud. Real SDK spans through the processor and the DuckDB store, repriced in SQL too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, load_pricing, rollup
from otel_costattr.semconv import COST, PRICED_MODEL, REGION

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
TOKENS = 100_000  # under the 200k long-context tier

OPENAI = """
provider = "openai"
multiplier = 0.8
[[model]]
id = "gpt-4o"
match = [{ equals = "gpt-4o" }]
[[model.price]]
input = 2.5
output = 10
"""

ANTHROPIC = """
provider = "anthropic"
[[model]]
id = "claude-sonnet-4-5"
match = [{ starts_with = "claude-sonnet-4-5" }]
multiplier = 0.9
[[model.price]]
input = 3
output = 15
"""

CALLS = [  # (provider as the span names it, model as it reports it, extra attributes)
    ("openai", "gpt-4o", {}),
    ("azure.ai.openai", "gpt-4o", {}),
    ("anthropic", "claude-sonnet-4-5", {}),
    (
        "gcp.vertex_ai",
        "claude-sonnet-4-5@20250929",
        {"server.address": "europe-west1-aiplatform.googleapis.com"},
    ),
    ("aws.bedrock", "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", {}),
]


def _input_rate(table, provider: str, model: str) -> D:
    region = {"aws.bedrock": "us-gov-west-1", "gcp.vertex_ai": "europe-west1"}.get(provider)
    return table.quote(model, provider, None, START, region).rates.input


def test_resellers_keep_the_list_price(tmp_path):
    (tmp_path / "openai.toml").write_text(OPENAI)
    (tmp_path / "anthropic.toml").write_text(ANTHROPIC)
    files = [str(tmp_path / "openai.toml"), str(tmp_path / "anthropic.toml")]
    bundled, negotiated = load_pricing(use_env=False), load_pricing(files, use_env=False)
    rates = {(p, m): _input_rate(negotiated, p, m) for p, m, _ in CALLS}
    listed = {(p, m): _input_rate(bundled, p, m) for p, m, _ in CALLS}
    assert rates[("openai", "gpt-4o")] == D("2.0")  # the contract: 2.5 x 0.8
    assert rates[("anthropic", "claude-sonnet-4-5")] == D("2.7")  # 3 x 0.9
    for key in CALLS[1:2] + CALLS[3:]:
        assert rates[key[:2]] == listed[key[:2]], key
    assert [listed[key[:2]] for key in CALLS[1:2] + CALLS[3:]] == [D("2.5"), D("3.3"), D("3.6")]

    # On the span, in the store, and repriced in SQL with the same files.
    processor = CostSpanProcessor(negotiated)
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    spans = []
    for name, model, extra in CALLS:
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": name, "gen_ai.request.model": model,
                 "gen_ai.usage.input_tokens": TOKENS, "gen_ai.usage.output_tokens": 0, **extra}  # fmt: skip
        span = provider.get_tracer("t").start_span("chat", attributes=attrs, start_time=START)
        span.end(end_time=START + 10**9)
        spans.append(span)
    stamped = {
        (s.attributes["gen_ai.provider.name"], s.attributes["gen_ai.request.model"]): s.attributes
        for s in spans
    }
    for key, rate in rates.items():
        assert D(str(stamped[key][COST])) == rate / 10, key
    assert stamped[("gcp.vertex_ai", CALLS[3][1])][REGION] == "europe-west1"
    assert stamped[("aws.bedrock", CALLS[4][1])][REGION] == "us-gov"
    assert stamped[("azure.ai.openai", "gpt-4o")][PRICED_MODEL] == "gpt-4o"
    store = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=negotiated)
    store.export(spans)
    store.shutdown()
    rows = rollup("per_model", db=tmp_path / "s.duckdb", reprice=negotiated, since="2026-11-01")
    by_provider = {(r["provider"], r["model"]): r for r in rows}
    azure, vertex = (
        by_provider[("azure.ai.openai", "gpt-4o")],
        by_provider[("gcp.vertex_ai", "claude-sonnet-4-5")],
    )
    assert (azure["usd"], azure["usd_repriced"]) == (D("0.25"), D("0.25"))
    assert by_provider[("openai", "gpt-4o")]["usd_repriced"] == D("0.2")
    # SQL repricing leaves regions out (pricing/README.md): Vertex's list price, not the contract's.
    assert (vertex["usd"], vertex["usd_repriced"]) == (D("0.33"), D("0.3"))


def test_every_model_a_contract_prices_stays_at_list_for_the_hosts(tmp_path):
    """A review of the first form: a user's Azure alias of the negotiated gpt-4o took the
    contract's price while Azure's gpt-4o was at list, and ids the user's file added (a match
    rule, a model the table lacks) still reached Azure at the contract's price."""
    contract = OPENAI.replace(
        'match = [{ equals = "gpt-4o" }]', 'match = [{ equals = "gpt-4o" }, { equals = "gpt-4o-2026-01-15" }]'
    )
    contract += '[[model]]\nid = "gpt-9-preview"\nmatch = [{ equals = "gpt-9-preview" }]\n'
    contract += "[[model.price]]\ninput = 10\noutput = 40\n"
    deployment = 'provider = "azure"\n[[model]]\nid = "my-4o-deployment"\nalias_of = "gpt-4o"\n'
    gateway = 'provider = "my-gateway"\nfallback = ["openai"]\n'  # their own proxy, on their key
    files = []
    for name, text in (("openai.toml", contract), ("azure.toml", deployment), ("gateway.toml", gateway)):
        (tmp_path / name).write_text(text)
        files.append(str(tmp_path / name))
    table = load_pricing(files, use_env=False)
    rates = {
        (provider, model): _input_rate(table, provider, model)
        for provider in ("openai", "azure.ai.openai", "my-gateway")
        for model in ("gpt-4o", "gpt-4o-2026-01-15", "gpt-9-preview")
    }
    assert rates == {
        ("openai", "gpt-4o"): D("2.0"), ("openai", "gpt-4o-2026-01-15"): D("2.0"),
        ("openai", "gpt-9-preview"): D("8.0"),
        # Azure: list, whatever id the contract's file added: gpt-9-preview as written, x1.
        ("azure.ai.openai", "gpt-4o"): D("2.5"), ("azure.ai.openai", "gpt-4o-2026-01-15"): D("2.5"),
        ("azure.ai.openai", "gpt-9-preview"): D("10"),
        # A provider the user's own files define resells on their contract.
        ("my-gateway", "gpt-4o"): D("2.0"), ("my-gateway", "gpt-4o-2026-01-15"): D("2.0"),
        ("my-gateway", "gpt-9-preview"): D("8.0"),
    }  # fmt: skip
    assert _input_rate(table, "azure.ai.openai", "my-4o-deployment") == D("2.5")
    # Aliases in the contract's own file: their target's list price on Azure (a review).
    aliases = contract + '[[model]]\nid = "gpt-4o-contract"\nalias_of = "gpt-4o"\n'
    aliases += '[[model]]\nid = "team-mini"\nalias_of = "gpt-4o-mini"\nmultiplier = 0.5\n'
    (tmp_path / "openai.toml").write_text(aliases)
    table = load_pricing(files, use_env=False)
    pairs = [(p, m) for p in ("openai", "azure.ai.openai") for m in ("gpt-4o-contract", "team-mini")]
    assert [_input_rate(table, p, m) for p, m in pairs] == [D("2.0"), D("0.06"), D("2.5"), D("0.15")]


def test_whatif_from_a_negotiated_model_keeps_the_hosts_calls(tmp_path):
    """A review: `whatif --from-model gpt-4o` with the contract's file left out the Azure
    call (its entry the host's list copy, not OpenAI's)."""
    dated = "match = [{ equals = \"gpt-4o\" }, { regex = 'gpt-4o-\\d{4}-\\d{2}-\\d{2}' }]"
    (tmp_path / "openai.toml").write_text(OPENAI.replace('match = [{ equals = "gpt-4o" }]', dated))
    negotiated = load_pricing([str(tmp_path / "openai.toml")], use_env=False)
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(negotiated))
    spans = []
    for name in ("openai", "azure.ai.openai"):
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": name,
                 "gen_ai.request.model": "gpt-4o-2024-08-06",
                 "gen_ai.usage.input_tokens": TOKENS, "gen_ai.usage.output_tokens": 0}  # fmt: skip
        span = provider.get_tracer("t").start_span("chat", attributes=attrs, start_time=START)
        span.end(end_time=START + 10**9)
        spans.append(span)
    store = DuckDBSpanExporter(tmp_path / "s.duckdb", pricing=negotiated)
    store.export(spans)
    store.shutdown()
    from otel_costattr.rollups.whatif import whatif

    for reprice in ([], [str(tmp_path / "openai.toml")]):
        found = whatif(
            tmp_path / "s.duckdb", "gpt-4o-mini", from_model="gpt-4o", reprice=reprice, since="2026-11-01"
        )
        assert found.rows[0]["selected_calls"] == 2, reprice


BEDROCK_MODEL = """
provider = "aws"
[[model]]
id = "my-custom"
match = [{ equals = "my-custom" }]
[[model.price]]
input = 1
output = 1
"""

AZURE_DEPLOYMENT = """
provider = "azure"
[[model]]
id = "my-deploy"
alias_of = "gpt-4o"
"""


def _stamp_without_provider(table, model: str) -> dict:
    """What the processor stamps on a chat span that names no provider (hand-written spans)."""
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
             "gen_ai.usage.input_tokens": TOKENS, "gen_ai.usage.output_tokens": 0}  # fmt: skip
    span = provider.get_tracer("t").start_span("chat", attributes=attrs, start_time=START)
    span.end(end_time=START + 10**9)
    return dict(span.attributes)


def test_a_file_for_a_bundled_host_moves_no_call_to_it(tmp_path):
    # A review: one custom model in an `aws` file put Bedrock ahead of Anthropic in the search
    # for spans naming no provider, so Claude calls took Bedrock's regional entries, 10% dearer.
    (tmp_path / "bedrock.toml").write_text(BEDROCK_MODEL)
    table = load_pricing([str(tmp_path / "bedrock.toml")], use_env=False)
    claude = _stamp_without_provider(table, "claude-sonnet-4-5-20250929")
    assert (claude[PRICED_MODEL], D(str(claude[COST]))) == ("claude-sonnet-4-5", D("0.3"))  # 100k x $3
    mine = _stamp_without_provider(table, "my-custom")
    assert (mine[PRICED_MODEL], D(str(mine[COST]))) == ("my-custom", D("0.1"))


def test_the_order_of_the_files_chooses_no_price_for_a_call_naming_no_provider(tmp_path):
    # A review: an Azure deployment file listed before an OpenAI contract put Azure (list
    # price) ahead of OpenAI for spans naming no provider: the contract's discount was lost,
    # and the table's version differed with the order.
    (tmp_path / "azure.toml").write_text(AZURE_DEPLOYMENT)
    (tmp_path / "openai.toml").write_text(OPENAI)
    files = [str(tmp_path / "azure.toml"), str(tmp_path / "openai.toml")]
    tables = [load_pricing(files, use_env=False), load_pricing(files[::-1], use_env=False)]
    assert tables[0].version == tables[1].version
    for table in tables:
        stamped = _stamp_without_provider(table, "gpt-4o")
        assert D(str(stamped[COST])) == D("0.2"), table.files  # 100k x $2.5 x 0.8
        assert _stamp_without_provider(table, "my-deploy")[COST] == 0.25  # Azure's: list price
