"""What RunBudgetProcessor adds to a model-call span's life, next to CostSpanProcessor alone.

    python benchmarks/bench_alerts.py [--reps 41] [--spans 1500]

Both cases run a chat span with usage (start, attributes, end) under a long-lived parent in
one trace, on a TracerProvider with the cost processor; "budget" adds the per-run budget
processor with one rule it never crosses (the common case: a sum and a comparison per call).
Batches alternate round by round so drift in machine speed hits both alike. Thread CPU time,
microseconds per span; "ratio" is the median of the per-round ratios. Never asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_costattr.alerts import RunBudgetProcessor, parse_rules
from otel_costattr.pricing.table import load_pricing
from otel_costattr.sdk.processor import CostSpanProcessor

TEST_PRICES = Path(__file__).resolve().parents[1] / "tests" / "data" / "test_prices.toml"
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
}
RULES = {
    "channels": {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    "rules": [
        {"name": "run", "scope": "run", "metric": "cost", "window": "run", "budget": 1e9, "channels": ["ops"]}
    ],
}


def _provider(with_budget: bool) -> tuple[TracerProvider, RunBudgetProcessor | None]:
    table = load_pricing([TEST_PRICES], bundled=False, use_env=False)
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    provider.add_span_processor(CostSpanProcessor(table))
    budget = RunBudgetProcessor(parse_rules(RULES)) if with_budget else None
    if budget is not None:
        provider.add_span_processor(budget)
    return provider, budget


def _batch(provider: TracerProvider, spans: int) -> float:
    tracer = provider.get_tracer("bench")
    parent = tracer.start_span("run")
    ctx = trace.set_span_in_context(parent)
    gc.disable()
    start = time.thread_time_ns()
    for _ in range(spans):
        tracer.start_span("chat acme-large", context=ctx, attributes=CHAT).end()
    elapsed = time.thread_time_ns() - start
    gc.enable()
    parent.end()
    return elapsed / spans / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=41)
    parser.add_argument("--spans", type=int, default=1500)
    args = parser.parse_args()
    cost_only, _ = _provider(False)
    with_budget, budget = _provider(True)
    times: dict[str, list[float]] = {"cost": [], "budget": []}
    for rep in range(args.reps):
        order = [("cost", cost_only), ("budget", with_budget)]
        for name, provider in order if rep % 2 else reversed(order):
            times[name].append(_batch(provider, args.spans))
    ratios = [b / c for b, c in zip(times["budget"], times["cost"], strict=True)]
    q = statistics.quantiles(ratios, n=4)
    print(f"reps {args.reps} x {args.spans} chat spans, thread CPU time per span")
    for name in times:
        print(f"  {name:<7} median {statistics.median(times[name]):6.2f} us   min {min(times[name]):6.2f} us")
    print(f"  ratio budget/cost: median {statistics.median(ratios):.3f} (p25-p75 {q[0]:.3f}-{q[2]:.3f})")
    assert budget is not None and budget.alerts == 0 and budget.errors == 0
    cost_only.shutdown()
    with_budget.shutdown()


if __name__ == "__main__":
    main()
