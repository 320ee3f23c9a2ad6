"""µs per warmed cost computation, side by side with genai-prices' calc_price.

    pip install genai-prices   # development only, never a runtime dependency
    python benchmarks/bench_pricing.py [--rounds 15] [--calls 20000]

Both price the same call (Claude Sonnet 4.5 with cache reads and writes) in the same
process, interleaved round by round, so machine noise hits both alike. Times are thread CPU
time (other processes on the machine add less noise than to wall time). Reports the median
µs per call of each and their ratio. Our figure includes reading the exact Decimal total.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from otel_costattr import Usage, compute_cost, load_pricing

MODEL = "claude-sonnet-4-5-20250929"
PROVIDER = "anthropic"
WHEN = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
WHEN_NS = int(WHEN.timestamp()) * 10**9


def per_call_us(fn, calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        fn()
    return (time.thread_time_ns() - start) / calls / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=20000, help="calls per round")
    args = parser.parse_args()

    table = load_pricing(use_env=False)
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150)

    def ours():
        return compute_cost(MODEL, usage, provider=PROVIDER, start_time=WHEN_NS, table=table).total

    candidates = {"otel-costattr compute_cost": ours}
    try:
        import genai_prices

        gp_usage = genai_prices.Usage(
            input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=150
        )

        def theirs():
            return genai_prices.calc_price(
                gp_usage, MODEL, provider_id=PROVIDER, genai_request_timestamp=WHEN
            ).total_price

        print(f"ours {ours()} USD, genai-prices {theirs()} USD (same call)")
        candidates["genai-prices calc_price"] = theirs
    except ImportError:
        print("genai-prices not installed: measuring otel-costattr alone")

    for fn in candidates.values():  # warm caches
        per_call_us(fn, 2000)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, fn in candidates.items():
            samples[name].append(per_call_us(fn, args.calls))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, median in medians.items():
        print(f"{name:<28} median {median:8.2f} µs/call  (min {min(samples[name]):.2f})")
    if len(medians) == 2:
        ours_us, theirs_us = medians.values()
        print(f"ratio: genai-prices / otel-costattr = {theirs_us / ours_us:.1f}x")


if __name__ == "__main__":
    main()
