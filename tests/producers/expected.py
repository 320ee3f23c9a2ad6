"""Costs computed by hand from the vendors' list prices, for the fake endpoint's usage.

Deliberately not from the pricing table: the tests check the whole chain (producer ->
processor -> exporter -> DuckDB) against figures a person can redo on paper.
tests/test_producers.py also checks that the bundled table agrees with these list prices.
"""

from __future__ import annotations

from decimal import Decimal

# USD per million tokens, from the vendors' price pages.
LIST_PRICES = {
    # https://openai.com/api/pricing/
    "gpt-4o-mini": {"input": "0.15", "cache_read": "0.075", "output": "0.60"},
    # https://www.anthropic.com/pricing (cache_write: 5-minute cache write)
    "claude-sonnet-4-5": {"input": "3", "cache_read": "0.30", "cache_write": "3.75", "output": "15"},
    # https://aws.amazon.com/bedrock/pricing/ : Claude Sonnet 4.5 through Bedrock's global
    # cross-region inference profile is at Anthropic's list price (in-region profiles +10%).
    "global.anthropic.claude-sonnet-4-5": {"input": "3", "cache_read": "0.30", "cache_write": "3.75",
                                           "output": "15"},
}  # fmt: skip
MTOK = Decimal(1_000_000)


def list_cost(model: str, *, uncached: int, cache_read: int = 0, cache_write: int = 0,
              output: int) -> Decimal:  # fmt: skip
    """USD for disjoint token buckets (output includes reasoning: no separate rate here)."""
    rates = {k: Decimal(v) for k, v in LIST_PRICES[model].items()}
    total = (
        uncached * rates["input"]
        + cache_read * rates.get("cache_read", rates["input"])
        + cache_write * rates.get("cache_write", rates["input"])
        + output * rates["output"]
    )
    return total / MTOK


# OpenAI fake usage: prompt 1200 of which 1000 cached, completion 300 (200 of it reasoning).
# 200 x 0.15 + 1000 x 0.075 + 300 x 0.60 = 30 + 75 + 180 = 285 per Mtok
GPT_4O_MINI = list_cost("gpt-4o-mini", uncached=200, cache_read=1000, output=300)
# The same call when the producer does not report the cached tokens (openai-v2): all 1200
# input tokens at the input rate. 1200 x 0.15 + 300 x 0.60 = 360 per Mtok, +75 (+26.3 %).
GPT_4O_MINI_NO_CACHE_COUNT = list_cost("gpt-4o-mini", uncached=1200, output=300)

# Anthropic fake usage: 50 uncached, 1000 cache read, 150 cache write, 300 output.
# 50 x 3 + 1000 x 0.30 + 150 x 3.75 + 300 x 15 = 150 + 300 + 562.5 + 4500 = 5512.5 per Mtok
CLAUDE_SONNET_4_5 = list_cost("claude-sonnet-4-5", uncached=50, cache_read=1000, cache_write=150, output=300)
# OpenLLMetry's Anthropic streaming adds message_start's output_tokens (1) to message_delta's
# final count: 301 output tokens, one output token too many (+$0.000015).
CLAUDE_SONNET_4_5_OUTPUT_301 = list_cost(
    "claude-sonnet-4-5", uncached=50, cache_read=1000, cache_write=150, output=301
)

# Bedrock Converse fake usage (fake_llm.BEDROCK_USAGE): inputTokens is the uncached part, as
# Anthropic's input_tokens; the cache counts come on top.
# Writing the cache: 3000 uncached, 2000 cache write, 300 output.
# 3000 x 3 + 2000 x 3.75 + 300 x 15 = 9000 + 7500 + 4500 = 21000 per Mtok
BEDROCK_SONNET_4_5_CACHE_WRITE = list_cost(
    "global.anthropic.claude-sonnet-4-5", uncached=3000, cache_write=2000, output=300
)
# Reading it: 5000 uncached, 1024 cache read, 300 output.
# 5000 x 3 + 1024 x 0.30 + 300 x 15 = 15000 + 307.2 + 4500 = 19807.2 per Mtok
BEDROCK_SONNET_4_5_CACHE_READ = list_cost(
    "global.anthropic.claude-sonnet-4-5", uncached=5000, cache_read=1024, output=300
)
