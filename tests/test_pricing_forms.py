"""An id's own form decides its host before any broad match rule (pricing/forms.py).

One table per class of id form: the id as a span reports it, the provider name on the span
(mostly none: the case the audit of issue 17 found priced at another host's rate), and the
entry it must resolve to, or None where it must stay unknown. Expected entries are typed in
by hand, never read back from the table.
"""

from __future__ import annotations

import pytest

from otel_costattr import load_pricing
from otel_costattr.pricing.forms import FORMS, UNPRICED, id_form

BEDROCK_SONNET_46 = ("aws", "regional.anthropic.claude-sonnet-4-6-v1:0")

CASES = {
    "bedrock": [
        # Vertex's broad Claude rules used to win (google is searched before aws).
        ("us.anthropic.claude-sonnet-4-6", None, BEDROCK_SONNET_46),
        ("anthropic.claude-sonnet-4-6", None, BEDROCK_SONNET_46),
        ("eu.anthropic.claude-sonnet-4-6", None, BEDROCK_SONNET_46),
        ("global.anthropic.claude-opus-4-6-v1", None, ("aws", "global.anthropic.claude-opus-4-6-v1:0")),
        ("global.anthropic.claude-opus-4-6-v1:0", None, ("aws", "global.anthropic.claude-opus-4-6-v1:0")),
        # Opus 4.1 on Bedrock is Anthropic's list price (aws falls back to anthropic), not
        # Vertex's claude-4-opus entry.
        ("us.anthropic.claude-opus-4-1-20250805-v1:0", None, ("anthropic", "claude-opus-4-1")),
        ("bedrock/us.anthropic.claude-sonnet-4-6", None, BEDROCK_SONNET_46),
        ("meta.llama3-1-70b-instruct-v1:0", None, ("aws", "meta.llama3-1-70b-instruct-v1:0")),
        ("openai.gpt-oss-120b-1:0", None, ("aws", "openai.gpt-oss-120b-1:0")),
        ("us.meta.llama3-1-405b-instruct-v1:0", None, None),  # not on Bedrock's table: no other host
    ],
    "bedrock-arn": [
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6",
         None, BEDROCK_SONNET_46),
        ("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-70b-instruct-v1:0",
         None, ("aws", "meta.llama3-1-70b-instruct-v1:0")),
        # custom and provisioned models: billed otherwise, never as the base model
        ("arn:aws:bedrock:us-east-1:123456789012:custom-model/anthropic.claude-3-haiku-20240307-v1:0/x1",
         None, None),
        ("arn:aws:bedrock:us-east-1:123456789012:custom-model/anthropic.claude-3-haiku-20240307-v1:0/x1",
         "aws.bedrock", None),
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123def", "aws.bedrock", None),
        ("arn:aws:bedrock:us-east-1:123456789012:imported-model/k2", None, None),
    ],
    "vertex": [
        ("claude-sonnet-4-5@20250929", None, ("anthropic", "claude-sonnet-4-5")),
        ("claude-3-5-sonnet-v2@20241022", None, ("anthropic", "claude-3-5-sonnet")),
        ("claude-opus-5@default", None, ("anthropic", "claude-opus-5")),  # Vertex = list price
        ("publishers/google/models/gemini-2.5-flash", None, ("google", "gemini-2.5-flash")),
        ("deepseek-v3.1-maas", None, None),  # Vertex-hosted DeepSeek: not DeepSeek's API price
        ("publishers/deepseek-ai/models/deepseek-r1-0528-maas", None, None),
    ],
    "ollama": [
        # self-hosted distills, not DeepSeek's paid API, whatever the provider says
        ("deepseek-r1:7b", None, None),
        ("deepseek-r1:32b", "ollama", None),
        ("deepseek-r1:671b", None, None),
        ("llama3.1:8b", None, None),
        ("qwen2.5:72b-instruct-q4_K_M", None, None),
        ("gpt-oss:20b", None, None),
        ("deepseek-r1", "ollama", None),  # a self-hosted server, whatever the id
        ("gpt-4o", "vllm", None),
    ],
    "unlisted-hosts": [
        # hosts reselling other makers' models at their own prices, not in the table: unknown,
        # not the maker's API price (a review)
        ("deepseek-r1", "fireworks", None),
        ("accounts/fireworks/models/deepseek-r1", "fireworks", None),
        ("DeepSeek-R1", "sambanova", None),
        ("mistral-large", "ibm.watsonx.ai", None),
        ("gpt-4o", "langchain", ("openai", "gpt-4o")),  # a framework's name: every provider
        ("deepseek-r1", None, ("deepseek", "deepseek-reasoner")),
    ],
    "openai-fine-tune": [
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None, ("openai", "ft:gpt-4o-mini")),  # not the base's
        # its own fine-tune rates (LiteLLM), not the base's
        ("ft:gpt-4.1-mini-2025-04-14:acme::abc123", None, ("openai", "ft:gpt-4.1-mini")),
        ("ft:gpt-5-mini-2025-08-07:acme::abc123", None, None),  # no fine-tune price: never the base's
        ("ft:gpt-4-0613:acme::abc123", None, ("openai", "gpt-4")),  # OpenAI's own ft: rule
    ],
    "together": [
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", None,
         ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")),
        ("deepseek-ai/DeepSeek-V4-Pro-0813", None, ("together", "deepseek-ai/DeepSeek-V4-Pro-0813")),
        ("deepseek-ai/DeepSeek-V3", None, None),  # not on Together's table: not DeepSeek's price
    ],
    "openrouter": [
        # vendors without a first-party entry: OpenRouter's own price, not another host's
        ("deepseek/deepseek-chat", None, ("openrouter", "deepseek/deepseek-chat")),
        ("openrouter/deepseek/deepseek-chat", None, ("openrouter", "deepseek/deepseek-chat")),
        ("meta-llama/llama-3.3-70b-instruct", None, ("openrouter", "meta-llama/llama-3.3-70b-instruct")),
        ("mistralai/mistral-large", None, ("openrouter", "mistralai/mistral-large")),
        ("qwen/qwen3-32b", None, ("openrouter", "qwen/qwen3-32b")),  # not Groq's qwen/qwen3-32b
        ("moonshotai/kimi-k2", None, ("openrouter", "moonshotai/kimi-k2")),
        ("z-ai/glm-4.6", None, ("openrouter", "z-ai/glm-4.6")),
        ("qwen/qwen3-32b", "groq", ("groq", "qwen/qwen3-32b")),  # the span's provider wins
        # first-party vendors: their list price, which OpenRouter passes through
        ("openai/gpt-4o", None, ("openai", "gpt-4o")),
        ("anthropic/claude-sonnet-4.5", None, ("anthropic", "claude-sonnet-4-5")),
    ],
    "plain": [  # no form: every provider, in table order
        ("gpt-4o", None, ("openai", "gpt-4o")),
        ("claude-sonnet-4-6", None, ("anthropic", "claude-sonnet-4-6")),
        ("deepseek-r1-0528", None, ("deepseek", "deepseek-reasoner")),
        ("gemini-2.5-pro", None, ("google", "gemini-2.5-pro")),
    ],
}  # fmt: skip

ROWS = [(form, *case) for form, cases in CASES.items() for case in cases]


@pytest.fixture(scope="module")
def table():
    return load_pricing(use_env=False)


@pytest.mark.parametrize(
    ("form", "model_id", "provider", "expected"), ROWS, ids=[f"{r[1]}@{r[2]}" for r in ROWS]
)
def test_id_form_decides_the_host(table, form, model_id, provider, expected):
    entry = table.resolve(model_id, provider=provider)
    assert (entry and (entry.provider, entry.id)) == expected


# One id per form, and the form it has.
FORM_OF = {
    "arn:aws:bedrock:us-east-1:1:custom-model/x": "bedrock-unpriced-arn",
    "arn:aws-us-gov:bedrock:us-gov-west-1:1:provisioned-model/x": "bedrock-unpriced-arn",
    "arn:aws:bedrock:eu-west-1:1:inference-profile/eu.anthropic.claude-sonnet-4-6": "bedrock-arn",
    "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0": "bedrock",
    "mistral.mistral-large-2402-v1:0": "bedrock",
    "ft:gpt-4o-mini-2024-07-18:acme::abc": "openai-fine-tune",
    "claude-opus-4-1@20250805": "vertex",
    "gemini-2.0-flash@001": "vertex",
    "Qwen/Qwen3.7-Max": "together",
    "deepseek/deepseek-chat": "openrouter",
    "openrouter/meta-llama/llama-3.3-70b-instruct": "openrouter",
    "qwen/qwen3-32b:free": "openrouter",
    "deepseek-r1:7b": "ollama",
    "library/llama3.1:8b": "ollama",
    "gpt-4o": None,
    "gpt-4o-mini-2024-07-18": None,
    "deepseek-r1-distill-llama-70b": None,
    "models/gemini-1.5-pro-002": None,
}


@pytest.mark.parametrize(("model_id", "name"), FORM_OF.items())
def test_id_forms(model_id, name):
    found = id_form(model_id)
    assert (found and found.name) == name


def test_every_form_has_an_example():
    assert {f.name for f in FORMS} <= set(FORM_OF.values())


def test_a_user_file_prices_an_unpriced_form_by_its_exact_id(tmp_path):
    arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model/anthropic.claude-3-haiku-20240307-v1:0/x1"
    path = tmp_path / "ours.toml"
    path.write_text(
        'provider = "ours"\nsource = "https://example.com"\nretrieved = 2026-12-01\n'
        f'[[model]]\nid = "haiku-custom"\nmatch = [{{ equals = "{arn.lower()}" }},'
        ' { equals = "deepseek-r1:7b" }]\n'
        "[[model.price]]\ninput = 1\noutput = 2\n",
        "utf-8",
    )
    mine = load_pricing([path], use_env=False)
    assert mine.resolve(arn).id == "haiku-custom"
    assert mine.resolve("deepseek-r1:7b").id == "haiku-custom"
    assert mine.resolve("deepseek-r1:32b") is None  # exact only: no rule widens to a tag
    assert id_form(arn).host == UNPRICED
