"""8 threads x 5,000 model calls: exact counts, exact cost totals, no step lost or repeated."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import AGENT_STEP, COST

THREADS = 8
CALLS = 5_000
BEFORE = 1_772_366_400 * 10**9  # 2026-03-01T12:00Z: acme-large at $3 in / $15 out per Mtok


def call_attributes(i: int) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "acme-large",
        "gen_ai.usage.input_tokens": 1000 + i % 7,  # costs vary with i, so totals mean something
        "gen_ai.usage.output_tokens": 100,
    }


def exact_cost(i: int) -> Decimal:
    return (Decimal(1000 + i % 7) * 3 + Decimal(100) * 15) / 10**6


def run_threads(target) -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            barrier.wait()
            target(n)
        except BaseException as e:  # surfaced below: a thread's exception must fail the test
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


_PROVIDERS: dict[int, TracerProvider] = {}


def pipeline(table, **options):
    provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = CostSpanProcessor(table, **options)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("threads")
    _PROVIDERS[id(tracer)] = provider
    return tracer, exporter, processor


def processor_provider(tracer) -> TracerProvider:
    """The provider `pipeline` made ``tracer`` from."""
    return _PROVIDERS[id(tracer)]


def test_threads_each_with_an_agent(table):
    tracer, exporter, processor = pipeline(table)

    def work(n: int) -> None:
        agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": f"agent-{n}"}
        with tracer.start_as_current_span("agent", attributes=agent):
            for i in range(CALLS):
                tracer.start_span("chat", attributes=call_attributes(i), start_time=BEFORE).end()

    run_threads(work)
    calls = exporter.get_finished_spans()
    calls = [s for s in calls if s.name == "chat"]
    assert len(calls) == THREADS * CALLS
    assert processor.stats() == {
        "priced": THREADS * CALLS,
        "unknown_model": 0,
        "no_usage": 0,
        "invalid_usage": 0,
        "duplicate": 0,
        "internal_errors": 0,
        "unhooked": 0,
        "unstamped": 0,
        "spans": THREADS * (CALLS + 1),  # the calls and each thread's agent span, none lost
    }
    # Every float on a span is the exact Decimal, correctly rounded: sum them back exactly.
    total = sum(Decimal(repr(s.attributes[COST])) for s in calls)
    assert total == THREADS * sum(exact_cost(i) for i in range(CALLS))
    steps: dict[str, list[int]] = {}
    for s in calls:
        steps.setdefault(s.attributes["gen_ai.agent.name"], []).append(s.attributes[AGENT_STEP])
    assert steps == {f"agent-{n}": list(range(CALLS)) for n in range(THREADS)}


def test_threads_sharing_one_agent(table):
    tracer, exporter, processor = pipeline(table)
    agent = tracer.start_span("agent", attributes={"gen_ai.operation.name": "invoke_agent"})
    shared = trace.set_span_in_context(agent)
    per_thread = CALLS // 10

    def work(n: int) -> None:
        token = context.attach(shared)
        try:
            for i in range(per_thread):
                with tracer.start_as_current_span("chat") as span:  # numbered at end
                    span.set_attributes(call_attributes(i))
        finally:
            context.detach(token)

    run_threads(work)
    agent.end()
    steps = Counter(s.attributes[AGENT_STEP] for s in exporter.get_finished_spans() if s.name == "chat")
    assert sorted(steps) == list(range(THREADS * per_thread)) and set(steps.values()) == {1}
    assert processor.stats()["priced"] == THREADS * per_thread


def test_one_api_call_seen_by_every_thread_is_priced_once(table):
    tracer, exporter, processor = pipeline(table, dedupe_response_ids=True)
    run = trace.set_span_in_context(tracer.start_span("run"))  # one trace for every thread
    provider = processor_provider(tracer)

    def work(n: int) -> None:
        instrumentation = provider.get_tracer(f"instrumentation {n}")
        for i in range(500):  # call i, instrumented once in each thread, by an instrumentation each
            attrs = {**call_attributes(i), "gen_ai.response.id": f"msg_{i}"}
            instrumentation.start_span("chat", context=run, attributes=attrs, start_time=BEFORE).end()

    run_threads(work)
    spans = exporter.get_finished_spans()
    priced = Counter(s.attributes["gen_ai.response.id"] for s in spans if COST in s.attributes)
    assert priced == Counter({f"msg_{i}": 1 for i in range(500)})
    assert processor.stats()["priced"] == 500 and processor.stats()["duplicate"] == 500 * (THREADS - 1)


def test_a_span_started_while_its_thread_makes_an_agents_counter_does_not_hang(table, monkeypatch):
    """The processor's lock guards an agent's first step counter. Code run while it is held
    on this thread (a finalizer the collector runs on an allocation, a signal handler) may
    start the first child of another agent, which takes the lock again: a plain Lock hung
    the thread for ever there."""
    from otel_costattr.sdk import processor as processor_module

    tracer, exporter, _ = pipeline(table)
    other = tracer.start_span("agent b", attributes={"gen_ai.operation.name": "invoke_agent"})
    inner = []

    class Reentering(processor_module.Steps):
        def __new__(cls, *args):
            if not inner:  # the first counter made: start agent b's first child meanwhile
                inner.append(True)
                child = tracer.start_span("chat b", context=trace.set_span_in_context(other))
                child.set_attributes(call_attributes(0))
                child.end(end_time=BEFORE + 1)
            return super().__new__(cls, *args)

    monkeypatch.setattr(processor_module, "Steps", Reentering)

    def work() -> None:
        agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}
        with tracer.start_as_current_span("agent a", attributes=agent):
            tracer.start_span("chat a", attributes=call_attributes(0), start_time=BEFORE).end()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the thread hung inside the processor's lock"
    other.end()
    chats = {s.name: s.attributes for s in exporter.get_finished_spans() if s.name.startswith("chat")}
    assert inner == [True] and set(chats) == {"chat a", "chat b"}
    assert all(COST in attrs for attrs in chats.values())
