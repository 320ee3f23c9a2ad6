"""What the sibling check (`sdk/calls.Siblings`) costs a model call's span end, off and on.

    python benchmarks/bench_siblings.py [--calls 20000] [--rounds 5] [--parents 1]

Off (no OpenInference imported beside another GenAI instrumentation) it is one attribute
test in the shape's stamp function; on, every call is kept by its parent to pair its
siblings with. Each round measures, in one process and alternated, CPU time per span end
of chat calls with a response id, the check off and then on (the modules it looks for
stood in by empty ones), after warm-up. ``--parents``: how many parent spans the calls are
spread over (1: a batch fanned out under one span, the check's dearest case).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from bench_processor import CHAT_ATTRS, TEST_PRICES  # noqa: E402  the processor benchmark's chat span

from otel_costattr import CostSpanProcessor  # noqa: E402
from otel_costattr.pricing.table import load_pricing  # noqa: E402
from otel_costattr.semconv import RESPONSE_ID  # noqa: E402

T0 = 1_800_000_000 * 10**9
CALL = {key: value for key, value in CHAT_ATTRS.items() if key != RESPONSE_ID}  # each call its own id
ARMING = ("openinference.instrumentation", "anthropic")


def per_end(calls: int, parents: int, armed: bool) -> tuple[float, bool]:
    """CPU microseconds a span end over ``calls`` chat spans, and whether the check was on."""
    added = [name for name in ARMING if armed and name not in sys.modules]
    for name in added:
        sys.modules[name] = types.ModuleType(name)
    try:
        table = load_pricing([str(TEST_PRICES)], bundled=False, use_env=False)
        provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
        processor = CostSpanProcessor(table)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("sdk")
        roots = [trace.set_span_in_context(tracer.start_span("run", start_time=T0)) for _ in range(parents)]
        for i in range(200):  # compiles the shape (and arms the check), then warms it
            warm = tracer.start_span("warm", context=roots[0], attributes={**CALL, RESPONSE_ID: f"w{i}"})
            warm.end()
        spans = []
        for i in range(calls):
            attrs = {**CALL, RESPONSE_ID: f"msg_{i}"}
            start = T0 + i * 1000
            spans.append(
                tracer.start_span("call", context=roots[i % parents], attributes=attrs, start_time=start)
            )
        begin = time.thread_time()
        for i, span in enumerate(spans):
            span.end(T0 + i * 1000 + 500)
        return (time.thread_time() - begin) / calls * 1e6, processor._siblings.active
    finally:
        for name in added:
            del sys.modules[name]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parents", type=int, default=1)
    args = parser.parse_args()
    off, on = [], []
    for _ in range(args.rounds):
        took, active = per_end(args.calls, args.parents, armed=False)
        assert not active
        off.append(took)
        took, active = per_end(args.calls, args.parents, armed=True)
        assert active
        on.append(took)
    off_median, on_median = statistics.median(off), statistics.median(on)
    print(f"span end, check off: {off_median:.2f} us (rounds {', '.join(f'{x:.2f}' for x in off)})")
    print(f"span end, check on:  {on_median:.2f} us (rounds {', '.join(f'{x:.2f}' for x in on)})")
    print(f"on / off: {on_median / off_median:.2f}x; calls {args.calls} over {args.parents} parent span(s)")


if __name__ == "__main__":
    main()
