"""A newer snapshot of a known model is priced at the request model's price, marked, listed.

Issue 17: a response model the table does not list yet (``gpt-4o-mini-2025-01-01`` served for
a request of ``gpt-4o-mini``) made the call ``unknown_model`` and its cost vanished from every
total. Now it is priced at the request model, ``costattr.model_source=request`` is stamped,
and the ``approximations`` rollup lists it. Real TracerProvider, real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_costattr import CostSpanProcessor, DuckDBSpanExporter, load_pricing, rollup
from otel_costattr.cli import main
from otel_costattr.pricing.resolve import snapshot_of
from otel_costattr.semconv import COST, COST_STATUS, MODEL_SOURCE, PRICED_MODEL

START = int(dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9


@pytest.fixture(scope="module")
def bundled():
    return load_pricing(use_env=False)


SNAPSHOTS = [
    ("gpt-4o-mini-2025-01-01", "gpt-4o-mini", True),
    ("gpt-4o-mini-20250101", "gpt-4o-mini", True),
    ("GPT-4o-mini-2025-01-01", "gpt-4o-mini", True),
    ("mistral-large-2607", "mistral-large", True),
    ("gemini-9-pro-001", "gemini-9-pro", True),
    ("claude-x@20260101", "claude-x", True),
    ("some-model-v2", "some-model", True),
    ("gpt-4o-mini-foo", "gpt-4o-mini", False),  # not a date or a version: another model
    ("gpt-4o-mini-2025-01-01-preview", "gpt-4o-mini", False),
    ("gpt-4o-mini", "gpt-4o-mini", False),  # no suffix
    ("gpt-4o", "gpt-4o-mini", False),
    ("gpt-4o-mini-2025-01-01", "", False),
    ("gpt-4o-mini-2025-01-01", None, False),
    (7, "gpt", False),
]


@pytest.mark.parametrize(("response", "request_model", "expected"), SNAPSHOTS)
def test_snapshot_of(response, request_model, expected):
    assert snapshot_of(response, request_model) is expected


def test_approximate_only_when_the_response_is_unknown_and_the_request_known(bundled):
    assert bundled.approximate("gpt-4o-mini-2025-01-01", "gpt-4o-mini", "openai") == "gpt-4o-mini"
    assert bundled.approximate("gpt-4o-mini-2024-07-18", "gpt-4o-mini", None) is None  # known itself
    assert bundled.approximate("gpt-99-2025-01-01", "gpt-99", None) is None  # neither known
    assert bundled.approximate("gpt-4o-mini-2025-01-01", "gpt-4o-mini", "ollama") is None  # self-hosted


def call(request_model, response_model, provider="openai"):
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request_model,
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    if response_model is not None:
        attrs["gen_ai.response.model"] = response_model
    return attrs


def test_a_new_snapshot_is_priced_marked_and_listed(bundled, tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    processor = CostSpanProcessor(bundled)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("test")
    spans = []
    for request_model, response_model in [
        ("gpt-4o-mini", "gpt-4o-mini-2025-01-01"),  # approximated
        ("gpt-4o-mini", "gpt-4o-mini-2025-01-01"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),  # known: priced as itself, no mark
        ("gpt-99", "gpt-99-2025-01-01"),  # neither known: stays unknown
        ("gpt-4o-mini", "gpt-4o-mini-custom"),  # not a snapshot form: stays unknown
    ]:
        span = tracer.start_span("chat", start_time=START, attributes=call(request_model, response_model))
        span.end(end_time=START + 10**9)
        spans.append(span)
    provider.shutdown()

    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
    first = spans[0].attributes
    assert (first[COST], first[COST_STATUS], first[PRICED_MODEL], first[MODEL_SOURCE]) == (
        0.00021, "priced", "gpt-4o-mini", "request",
    )  # fmt: skip
    assert MODEL_SOURCE not in spans[2].attributes and spans[2].attributes[COST] == 0.00021
    for unknown in spans[3:]:
        assert unknown.attributes[COST_STATUS] == "unknown_model" and COST not in unknown.attributes
    assert processor.stats()["priced"] == 3 and processor.stats()["unknown_model"] == 2

    store = DuckDBSpanExporter(db, pricing=bundled)
    store.export(spans)
    store.shutdown()
    rows = rollup("approximations", db=db)
    assert [
        (r["model_source"], r["response_model"], r["request_model"], r["priced_model"], r["calls"], r["usd"])
        for r in rows
    ] == [("request", "gpt-4o-mini-2025-01-01", "gpt-4o-mini", "gpt-4o-mini", 2, D("0.00042"))]
    assert rollup("stats", db=db)[0]["usd"] == D("0.00063")  # the approximated calls count
    assert main(["rollup", "approximations", "--db", str(db), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["response_model"], r["calls"], r["usd_exact"]) for r in listed] == [
        ("gpt-4o-mini-2025-01-01", 2, "0.00042")
    ]
