"""Id forms: what the shape of a model id says about who served it, before any match rule.

A span that names no provider still says a lot through its model id: a Bedrock id
(``us.anthropic.claude-sonnet-4-6``, ``meta.llama3-70b-instruct-v1:0``) was served by Bedrock,
an id with a Vertex version (``claude-sonnet-4-5@20250929``) by Vertex AI, a Together id
(``meta-llama/Llama-3.3-70B-Instruct-Turbo``: capital letters) by Together, a lower-case
``vendor/model`` (``deepseek/deepseek-chat``) by OpenRouter, an ``ft:`` id by OpenAI. The
table's match rules are written per provider and some are broad (Vertex's Claude entries match
any id containing the model name), so searching every provider in table order priced such ids
at another host's rate. `id_form()` names the host first; `PriceTable.resolve()` then searches
that host and its declared fallbacks only, as if the span had named it.

Some forms are never an API's list price: an Ollama ``name:tag`` (``deepseek-r1:7b`` is a
self-hosted distill, not DeepSeek's API), a Bedrock custom-model or provisioned-throughput ARN
(billed per model unit hour, not per token). These are `UNPRICED`: only an exact ``equals``
rule on the whole id (a user price file's) prices them. A span whose provider names a
self-hosted server (`SELF_HOSTED`) is unknown unless a price file claims that provider name
(``otel_names = ["ollama"]``); so is one naming a host that resells other makers' models at
its own prices, which the bundled table does not list (`UNLISTED_HOSTS`: Fireworks, watsonx).

`FORMS` is the one list of forms, in the order tried; tests/test_pricing_forms.py holds a
table of ids and the entry each must resolve to (or that it must stay unknown).
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A host id of FORMS that means "not an API price: exact user rules only".
UNPRICED = "(unpriced)"

# Provider names (gen_ai.provider.name, gen_ai.system) of servers people run themselves.
SELF_HOSTED = frozenset(
    {"ollama", "vllm", "lmstudio", "lm_studio", "llama.cpp", "llama_cpp", "localai", "tgi"}
)
# Provider names of hosts that serve other makers' models at prices of their own, which the
# bundled table does not list: a call there is unknown, not another host's list price (a
# review: `fireworks` deepseek-r1 priced at DeepSeek's API rate, `ibm.watsonx.ai`
# mistral-large at Mistral's). A name the span gives that is neither a host the table knows
# nor one of these (a framework's: `langchain`, `litellm`) still searches every provider.
UNLISTED_HOSTS = frozenset(
    {
        "ibm.watsonx.ai", "watsonx", "watsonx.ai", "ibm_watsonx", "fireworks", "fireworks_ai",
        "fireworks.ai", "fireworksai", "sambanova", "cerebras", "replicate", "huggingface", "nvidia",
        "hugging_face", "deepinfra", "nvidia_nim", "nim", "databricks", "snowflake", "cloudflare",
        "workers_ai", "hyperbolic", "novita", "baseten", "anyscale", "octoai", "lepton", "nebius",
        "friendli", "siliconflow", "dashscope", "alibaba_cloud", "lambda", "featherless",
    }
)  # fmt: skip

_BEDROCK_VENDORS = (
    "anthropic|meta|amazon|mistral|cohere|ai21|deepseek|openai|qwen|writer|moonshot|moonshotai"
    "|minimax|nvidia|google|twelvelabs|stability"
)
# OpenRouter's vendor slugs (lower case, as OpenRouter spells every id).
_OPENROUTER_VENDORS = (
    "openai|anthropic|google|x-ai|deepseek|meta-llama|mistralai|qwen|moonshotai|z-ai|cohere"
    "|perplexity|amazon|microsoft|nvidia|minimax|nousresearch|baidu|inception"
)


class IdForm(NamedTuple):
    """One recognised form: ``pattern`` (searched on the id as reported, case kept), the
    pricing provider that serves it (or `UNPRICED`), and why."""

    name: str
    pattern: re.Pattern[str]
    host: str
    why: str


def _form(name: str, pattern: str, host: str, why: str) -> IdForm:
    return IdForm(name, re.compile(pattern), host, why)


FORMS: tuple[IdForm, ...] = (
    _form(
        "bedrock-unpriced-arn",
        r"^arn:aws[a-z-]*:bedrock:[^:]*:[^:]*:(custom-model|provisioned-model|imported-model)/",
        UNPRICED,
        "a custom, imported or provisioned Bedrock model: billed by the hour or at the custom"
        " model's own rate, never at the base model's list price",
    ),
    _form("bedrock-arn", r"^arn:aws[a-z-]*:bedrock:", "aws", "any other Bedrock ARN (inference profile)"),
    _form(
        "bedrock",
        rf"^(bedrock/)?((us|eu|apac|au|jp|ca|in|global|us-gov)\.)?({_BEDROCK_VENDORS})\.[a-z0-9]",
        "aws",
        "Bedrock model ids and inference profiles: [region.]vendor.model[-vN:M]",
    ),
    _form("openai-fine-tune", r"^ft:", "openai", "an OpenAI fine-tune (ft:base:org::id): OpenAI's own rules"),
    _form(
        "vertex",
        r"(@(\d{8}|\d{3}|latest|default)$)|(-maas$)|(^(projects/[^/]+/locations/[^/]+/)?publishers/)",
        "google",
        "Vertex AI versions (@20250929, @001), model-as-a-service ids and resource names",
    ),
    _form(
        "together",
        r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]*[A-Z][A-Za-z0-9._-]*$",
        "together",
        "org/Model with capitals (meta-llama/Llama-3.3-70B-Instruct-Turbo, deepseek-ai/DeepSeek-V3)",
    ),
    _form(
        "openrouter",
        rf"^(openrouter/)?({_OPENROUTER_VENDORS})/[a-z0-9][a-z0-9.:_-]*$",
        "openrouter",
        "OpenRouter's lower-case vendor/model (deepseek/deepseek-chat, meta-llama/llama-3.3-70b-instruct)",
    ),
    _form(
        "ollama",
        r"^([A-Za-z0-9._-]+/)?[A-Za-z0-9][A-Za-z0-9._-]*:(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9._-]*$",
        UNPRICED,
        "an Ollama name:tag (deepseek-r1:7b, llama3.1:8b): a model run on your own hardware",
    ),
)


def id_form(model: str) -> IdForm | None:
    """The first form of `FORMS` that ``model`` (as reported, surrounding blanks removed) has,
    or None: a plain id, which every provider may price."""
    model = model.strip()
    for form in FORMS:
        if form.pattern.search(model):
            return form
    return None
