"""µs per call of the cost engine, side by side with a dict multiply, in one process.

    python benchmarks/bench_cost.py [--rounds 41] [--calls 20000]

Every case runs once a round, in alternating order, so drift in machine speed hits them
alike; times are thread CPU time, per call, warmed. Cases (the call of
benchmarks/bench_processor.py: input with cache reads and writes, and output):

- ``dict multiply``: ``{k: usage[k] * rates[k] for k in 4 keys}``, the floor the issue names;
- ``compute_cost``: the public API, a `CallCost` back (issue 12's target: <= 1 µs);
- ``compute_cost+total``: the same and the exact Decimal total read;
- ``price_call``: the engine without the result object (the common path, `cost/price_code.py`);
- ``general path``: `general_price_call`, what every call took before the common path.

Reports the median and min µs of each and their ratios to the dict multiply and (medians of
per-round ratios) between the two paths. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from otel_costattr.cost import engine
from otel_costattr.cost.engine import Usage, compute_cost, price_call
from otel_costattr.pricing.table import load_pricing

# Before the common path (benchmarks/ab_bench.py runs this on older trees) price_call was all.
general_price_call = getattr(engine, "general_price_call", price_call)
TEST_PRICES = Path(__file__).resolve().parents[1] / "tests" / "data" / "test_prices.toml"
MODEL, PROVIDER = "acme-large-20260101", "acme"


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    loop = range(calls)
    start = time.thread_time_ns()
    for _ in loop:
        fn()
    return (time.thread_time_ns() - start) / calls / 1000


def cases() -> dict[str, Callable[[], object]]:
    table = load_pricing([TEST_PRICES], bundled=False, use_env=False)
    usage = Usage(50, 300, 1000, 150, input_includes_cache=False)
    ns = time.time_ns()
    counts = {"input": 50, "output": 300, "cache_read": 1000, "cache_write": 150}
    rates = {"input": 3, "output": 15, "cache_read": 1, "cache_write": 4}
    keys = tuple(counts)
    return {
        "dict multiply": lambda: {k: counts[k] * rates[k] for k in keys},
        "compute_cost": lambda: compute_cost(MODEL, usage, provider=PROVIDER, start_time=ns, table=table),
        "compute_cost+total": lambda: (
            compute_cost(MODEL, usage, provider=PROVIDER, start_time=ns, table=table).total
        ),
        "price_call": lambda: price_call(table, ns, MODEL, PROVIDER, None, usage),
        "general path": lambda: general_price_call(table, ns, MODEL, PROVIDER, None, usage),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds (default 41)")
    parser.add_argument("--calls", type=int, default=20000, help="calls per case a round (default 20000)")
    parser.add_argument("--json", action="store_true", help="one JSON line of medians (ab_bench.py)")
    args = parser.parse_args(argv)
    funcs = cases()
    for fn in funcs.values():  # warm caches and the specialising interpreter
        per_call_us(fn, 2000)
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    order = list(funcs)
    for rnd in range(args.rounds):
        for name in order if rnd % 2 == 0 else order[::-1]:
            samples[name].append(per_call_us(funcs[name], args.calls))
    base = samples["dict multiply"]
    ratios = {
        name: statistics.median(v / b for v, b in zip(values, base, strict=True))
        for name, values in samples.items()
    }
    if args.json:  # the ratios: the same dict multiply measured in each process, beside
        figures = {f"{name} us": statistics.median(values) for name, values in samples.items()}
        figures.update({f"{name} / dict": ratios[name] for name in samples if name != "dict multiply"})
        print(json.dumps(figures))
        return 0
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds x {args.calls} calls, CPU µs per call")
    print(f"{'case':<20}{'median':>8}{'min':>8}{'x dict (median)':>17}")
    for name, values in samples.items():
        print(f"{name:<20}{statistics.median(values):>8.3f}{min(values):>8.3f}{ratios[name]:>17.2f}")
    paths = [g / p for g, p in zip(samples["general path"], samples["price_call"], strict=True)]
    print(f"general path / price_call: {statistics.median(paths):.2f}x (median of per-round ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
