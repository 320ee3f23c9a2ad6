"""``otel-costattr pricing diff OTHER.json``: our table against LiteLLM's and genai-prices'
formats, on small files written here with figures chosen by hand."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from otel_costattr import load_pricing
from otel_costattr.cli import main
from otel_costattr.pricing.foreign import compare, coverage, read_foreign
from otel_costattr.pricing.model import PricingError

LITELLM = {
    "sample_spec": {"mode": "chat", "input_cost_per_token": 0},  # no provider: skipped
    # gpt-4o-mini: ours $0.15 / $0.60 / $0.075 cache read: all agree
    "gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1.5e-07,
                    "output_cost_per_token": 6e-07, "cache_read_input_token_cost": 7.5e-08},
    # gpt-4o: ours $2.50 in; this file says $2.60
    "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2.6e-06,
               "output_cost_per_token": 1e-05},
    # a Bedrock key with LiteLLM's provider prefix and a region segment
    "bedrock/us-east-1/meta.llama3-1-70b-instruct-v1:0": {
        "litellm_provider": "bedrock", "mode": "chat", "input_cost_per_token": 7.2e-07,
        "output_cost_per_token": 7.2e-07},
    "gpt-99": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06,
               "output_cost_per_token": 2e-06},
    "acme/big": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1e-06,
                 "output_cost_per_token": 2e-06},
    "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
                               "input_cost_per_token": 2e-08},  # not chat: skipped
}  # fmt: skip

GENAI_PRICES = [
    {"id": "anthropic", "models": [
        {"id": "claude-haiku-4-5", "prices": {"input_mtok": 1, "output_mtok": 5, "cache_read_mtok": 0.1}},
        {"id": "claude-sonnet-4-6", "prices": [
            {"prices": {"input_mtok": 3, "output_mtok": 15}},
            {"constraint": {"start_date": "2030-01-01"}, "prices": {"input_mtok": {"base": 2, "tiers": []},
                                                                    "output_mtok": 15}},
        ]},
    ]},
]  # fmt: skip


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


def write(tmp_path, data, name="other.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_litellm_file_compared_model_by_model(bundled, tmp_path):
    fmt, prices = read_foreign(write(tmp_path, LITELLM))
    assert fmt == "litellm"
    assert {p.key: p.model for p in prices} == {
        "gpt-4o-mini": "gpt-4o-mini", "gpt-4o": "gpt-4o", "gpt-99": "gpt-99", "acme/big": "big",
        "bedrock/us-east-1/meta.llama3-1-70b-instruct-v1:0": "meta.llama3-1-70b-instruct-v1:0",
    }  # fmt: skip
    got = {d.foreign.key: (d.entry, d.status, d.fields) for d in compare(bundled, prices)}
    assert got == {
        "gpt-4o-mini": ("openai/gpt-4o-mini", "same", ()),
        "gpt-4o": ("openai/gpt-4o", "differs", (("input", D("2.5"), D("2.6")),)),
        "bedrock/us-east-1/meta.llama3-1-70b-instruct-v1:0": (
            "aws/meta.llama3-1-70b-instruct-v1:0",
            "same",
            (),
        ),
        "gpt-99": (None, "unknown", ()),
        "acme/big": (None, "other-provider", ()),
    }
    assert coverage(bundled, compare(bundled, prices)) == {"aws": (1, 1), "openai": (3, 2)}


def test_genai_prices_file_uses_the_newest_price_and_base_rates(bundled, tmp_path):
    fmt, prices = read_foreign(write(tmp_path, GENAI_PRICES))
    assert fmt == "genai-prices"
    got = {d.foreign.key: (d.status, d.fields) for d in compare(bundled, prices)}
    assert got == {
        "anthropic/claude-haiku-4-5": ("same", ()),
        "anthropic/claude-sonnet-4-6": ("differs", (("input", D("3"), D("2")),)),
    }


def test_the_command_lists_differences_and_unknowns(tmp_path, capsys):
    path = write(tmp_path, LITELLM)
    assert main(["pricing", "diff", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [
        (r["model"], r["status"], r["rate"], r["ours_usd_exact"], r["theirs_usd_exact"]) for r in rows
    ] == [
        ("gpt-4o", "differs", "input", "2.5", "2.6"),
        ("gpt-99", "unknown", None, None, None),
    ]
    assert main(["pricing", "diff", str(path)]) == 0
    title = capsys.readouterr().out.splitlines()[0]
    assert "(litellm, 5 chat models)" in title and "2 same, 1 differ, 1 unknown here" in title
    assert "major providers: 3 of 4 resolve (75.0%)" in title


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('"a string"', "neither a LiteLLM price map"),
        ('[{"models": []}]', "not a genai-prices data.json"),
    ],
)
def test_a_bad_file_is_one_error_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, "utf-8")
    assert main(["pricing", "diff", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    with pytest.raises(PricingError):
        read_foreign(path)
