"""What CostSpanProcessor adds to a span's life (start, 10 attributes, end).

    python benchmarks/bench_processor.py [--reps 61] [--spans 1500]

Cases, each a child of a long-lived plain parent span (so the parent lookup is paid, as in
an application), all in one process with repetitions interleaved (one batch of every case,
then the next round, in alternating order) so drift in machine speed hits them alike:

- chat: a model-call span with usage, priced at end;
- plain: a span with no GenAI attribute at all.

Each runs on the bare SDK (a TracerProvider with no processor) and with the processor, in
its two ways of running inside ``end()`` (ending: the SDK's _on_ending, the default;
closure: a per-span hook, the fallback; see sdk/seam.py), and with
``dedupe_response_ids=False`` (nodedupe, ending: the default before 2026-12-05, when the
duplicate check was turned on).
Times are thread CPU time (other processes on the machine add less noise than to wall
time), in microseconds per span; ratios are taken round by round against the bare SDK
("ratio": their median), and between the fastest batches ("min ratio": what is left when
the noise of a shared machine, which only ever adds time, is least).
"engine" is the pricing work alone per chat span through the public API (read_model_call +
compute_cost + float); "hot path" is what the processor runs for it (the function compiled
for the span's keys, float included: the same rules, without the intermediate objects).
With --exporting, every provider, the bare one too, first gets what an application that
exports has: a BatchSpanProcessor (its exporter does nothing), so the ratio is against
an SDK that sends its spans somewhere rather than one that drops them.
Targets (issue 12): chat <= 1.10x bare, plain <= 1.03x. Never asserts on time. With --json, one
line of medians, for benchmarks/ab_bench.py (this tree against another commit).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from otel_costattr.cost.compiled import price_attributes
from otel_costattr.cost.engine import compute_cost
from otel_costattr.pricing.table import PriceTable, load_pricing
from otel_costattr.sdk import seam
from otel_costattr.sdk.processor import ROLE_KEYS, CostSpanProcessor
from otel_costattr.semconv import RESPONSE_ID, read_model_call

TEST_PRICES = Path(__file__).resolve().parents[1] / "tests" / "data" / "test_prices.toml"

CHAT_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.response.model": "acme-large-20260101",
    "gen_ai.response.id": "msg_0123456789",
    "gen_ai.response.finish_reasons": ("end_turn",),
    "gen_ai.usage.input_tokens": 50,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read_input_tokens": 1000,
    "gen_ai.usage.cache_creation_input_tokens": 150,
}
PLAIN_ATTRS = {
    "http.request.method": "GET",
    "url.full": "https://example.invalid/a/b?c=d",
    "url.scheme": "https",
    "server.address": "example.invalid",
    "server.port": 443,
    "http.response.status_code": 200,
    "network.protocol.version": "1.1",
    "user_agent.original": "bench/1.0",
    "http.route": "/a/b",
    "client.address": "127.0.0.1",
}
VARIANTS = ("bare", "ending", "closure", "nodedupe")


class NullExporter(SpanExporter):
    """Takes every batch and does nothing with it (--exporting)."""

    def export(self, spans):  # noqa: ANN001, ANN201 - the SDK's signature
        return SpanExportResult.SUCCESS


def make_tracer(variant: str, table: PriceTable, exporting: bool = False):
    provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False)
    if exporting:
        provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    if variant == "nodedupe":
        proc = CostSpanProcessor(table, dedupe_response_ids=False)
        provider.add_span_processor(proc)
    elif variant != "bare":
        proc = CostSpanProcessor(table)
        if variant != "ending":  # "ending" is the processor's default, as an application gets it
            # Benchmark only: choose the way.
            proc._use_hook(seam.EndHook(proc._before_end, ROLE_KEYS, proc, mode=variant))
        provider.add_span_processor(proc)
    tracer = provider.get_tracer("bench")
    parent = tracer.start_span("GET /a/b", attributes={"http.route": "/a/b"})
    return tracer, trace.set_span_in_context(parent)


_response_numbers = itertools.count()


def lifecycle(tracer, parent_context, attrs: dict, n: int) -> float:
    """CPU microseconds per span: start under ``parent_context``, set attrs, end. A
    ``gen_ai.response.id`` in ``attrs`` is replaced by a fresh one on each span, as each real
    response has its own (the processor prices a response id once per trace)."""
    items = tuple((k, v) for k, v in attrs.items() if k != RESPONSE_ID)
    fresh = RESPONSE_ID in attrs
    ids = [f"msg_{next(_response_numbers):012d}" for _ in range(n)] if fresh else []
    token = context.attach(parent_context)
    try:
        start = time.thread_time()
        for i in range(n):
            span = tracer.start_span("span")
            for key, value in items:
                span.set_attribute(key, value)
            if fresh:
                span.set_attribute(RESPONSE_ID, ids[i])
            span.end()
        return (time.thread_time() - start) / n * 1e6
    finally:
        context.detach(token)


def engine(table: PriceTable, n: int) -> float:
    """CPU microseconds per chat span for the pricing work alone."""
    start_ns = time.time_ns()
    start = time.thread_time()
    for _ in range(n):
        call = read_model_call(CHAT_ATTRS)
        cost = compute_cost(
            call.model,
            call.usage,
            provider=call.provider,
            start_time=start_ns,
            service_tier=call.service_tier,
            table=table,
        )
        cost.total_float  # noqa: B018 - the conversion is part of the cost
    return (time.thread_time() - start) / n * 1e6


def hot_path(table: PriceTable, n: int) -> float:
    """CPU microseconds per chat span for the pricing work as the processor does it."""
    start_ns = time.time_ns()
    start = time.thread_time()
    for _ in range(n):
        price_attributes(CHAT_ATTRS, start_ns, table.cached_quote, table.quote)
    return (time.thread_time() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=61, help="interleaved rounds (default 61)")
    parser.add_argument("--spans", type=int, default=1500, help="spans per batch (default 1500)")
    parser.add_argument("--json", action="store_true", help="one JSON line of medians (ab_bench.py)")
    parser.add_argument(
        "--exporting", action="store_true", help="every provider also has a BatchSpanProcessor (see above)"
    )
    args = parser.parse_args(argv)

    table = load_pricing([TEST_PRICES], bundled=False, use_env=False)
    kinds = {"chat": CHAT_ATTRS, "plain": PLAIN_ATTRS}
    tracers = {v: make_tracer(v, table, args.exporting) for v in VARIANTS}
    cases = [(k, v) for k in kinds for v in VARIANTS]
    times: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    engine_times: list[float] = []
    hot_times: list[float] = []
    for kind, variant in cases:  # warm up caches and the specialising interpreter
        lifecycle(*tracers[variant], kinds[kind], args.spans)
    gc.collect()
    for rep in range(args.reps):
        for kind, variant in cases if rep % 2 == 0 else cases[::-1]:
            times[(kind, variant)].append(lifecycle(*tracers[variant], kinds[kind], args.spans))
        engine_times.append(engine(table, args.spans))
        hot_times.append(hot_path(table, args.spans))

    if args.json:
        figures = {f"{k} {v} us": statistics.median(times[(k, v)]) for k, v in cases}
        for kind, variant in cases:
            pairs = zip(times[(kind, variant)], times[(kind, "bare")], strict=True)
            figures[f"{kind} {variant} ratio"] = statistics.median(s / b for s, b in pairs)
        figures["engine us"], figures["hot path us"] = map(statistics.median, (engine_times, hot_times))
        print(json.dumps(figures))
        return 0
    print(f"python {sys.version.split()[0]}, {args.reps} rounds x {args.spans} spans, CPU us per span")
    header = f"{'case':<7}{'variant':<10}{'median':>8}{'min':>8}{'ratio':>8}{'ratio p25-p75':>16}"
    print(f"{header}{'min ratio':>11}")
    for kind in kinds:
        bare = times[(kind, "bare")]
        for variant in VARIANTS:
            samples = times[(kind, variant)]
            ratios = sorted(s / b for s, b in zip(samples, bare, strict=True))
            q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
            print(
                f"{kind:<7}{variant:<10}{statistics.median(samples):>8.2f}{min(samples):>8.2f}"
                f"{statistics.median(ratios):>8.3f}{f'{q1:.3f}-{q3:.3f}':>16}"
                f"{min(samples) / min(bare):>11.3f}"
            )
    print(f"{'engine':<17}{statistics.median(engine_times):>8.2f}{min(engine_times):>8.2f}")
    print(f"{'hot path':<17}{statistics.median(hot_times):>8.2f}{min(hot_times):>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
