"""The processor's duplicate check (two instrumentations of one API call), on both of its
paths: the general end hook and the shape's compiled stamp function, which claims inline.

The rule: spans of one trace reporting one gen_ai.response.id whose times overlap are one
call; the first to end is priced, the others are duplicates. Spans that do not overlap are
calls of their own (Ollama's OpenAI endpoint draws ids from chatcmpl-0..998).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_costattr.sdk.calls import FirstSpans
from otel_costattr.sdk.processor import CostSpanProcessor
from otel_costattr.semconv import COST, COST_STATUS

CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "acme",
    "gen_ai.request.model": "acme-large",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}
PATHS = ["general", "stamp function"]
T0 = 1_800_000_000 * 10**9  # 2027-01-15, in the test table's prices


def call(rid: str, priced: bool = True) -> dict:
    attrs = {**CALL, "gen_ai.response.id": rid}
    if not priced:  # no usage: a call we cannot price
        del attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]
    return attrs


class Traced:
    """A real TracerProvider with the processor; ``path`` "general" keeps every span on the
    general end hook (the proposed cost attributes have no stamp function), "stamp function"
    compiles the call's shape first, so the spans that follow take it."""

    def __init__(self, table, path: str, kept: int | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
        self.exporter = InMemorySpanExporter()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.processor = CostSpanProcessor(table, proposed_cost_attributes=path == "general")
        if kept is not None:  # before any shape is compiled: the stamp functions bind them
            self.processor._first_spans.kept, self.processor._first_spans.limit = kept, 2 * kept
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("test")
        self.scopes = 0
        if path != "general":
            self.tracer.start_span("warm", attributes=call("warm-0"), start_time=T0).end(T0 + 1)
            assert self.processor._shapes

    def run(self, name: str = "run"):
        return trace.set_span_in_context(self.tracer.start_span(name, start_time=T0))

    def chat(self, context, rid: str, start: int = T0, priced: bool = True, scope: str | None = None):
        """A model call's span, of the instrumentation scope ``scope`` (None: one of its own,
        as each of two instrumentations tracing one call has)."""
        if scope is None:
            self.scopes += 1
            scope = f"instrumentation-{self.scopes}"
        tracer = self.provider.get_tracer(scope)
        return tracer.start_span("chat", context=context, attributes=call(rid, priced), start_time=start)

    def statuses(self, *spans) -> list[str | None]:
        ended = {s.context.span_id: s.attributes for s in self.exporter.get_finished_spans()}
        return [ended[s.get_span_context().span_id].get(COST_STATUS) for s in spans]


def test_the_paths_name_what_they_test(table):
    assert not Traced(table, "general").processor._shapes
    assert Traced(table, "stamp function").processor._shapes


def overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """The rule's overlap: more than an instant in common, or an instant (a span shorter than
    the clock's tick) that touches the other."""
    inside = a[0] < b[1] and b[0] < a[1]
    return inside or ((a[0] == a[1] or b[0] == b[1]) and a[0] <= b[1] and b[0] <= a[1])


@given(
    plan=st.lists(
        st.tuples(
            st.integers(0, 2),  # trace
            st.sampled_from(["id0", "id1"]),  # response id
            st.integers(0, 40),  # start
            st.integers(0, 25),  # duration
            st.integers(0, 6),  # 0: no usage (unpriced), else priced
            st.sampled_from(["a", "b"]),  # instrumentation scope
        ),
        min_size=2,
        max_size=8,
    )
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_both_paths_decide_as_the_rule(table, plan):
    """Random spans of three traces, two ids and two instrumentation scopes, ended in end
    order: each path stamps exactly what the rule says (a span is a duplicate when a span of
    its trace and id, of another scope or of its scope starting with it at its cost, that
    ended before it, and was priced, overlaps it; or, for a span that cannot be priced,
    when one of another scope that could not either and was no duplicate does)."""
    spans = [(t, rid, T0 + s * 1000, T0 + (s + d) * 1000, u != 0, sc) for t, rid, s, d, u, sc in plan]
    order = sorted(range(len(spans)), key=lambda i: (spans[i][3], i))
    expected: list[str | None] = [None] * len(spans)
    priced: list[tuple[int, str, int, int, str]] = []
    unpriced: list[tuple[int, str, int, int, str]] = []
    for i in order:
        t, rid, start, end, ok, scope = spans[i]
        if any(
            pt == t
            and pr == rid
            and (psc != scope or (ps == start and ok))
            and overlap((ps, pe), (start, end))
            for pt, pr, ps, pe, psc in priced + ([] if ok else unpriced)
        ):
            expected[i] = "duplicate"
        elif ok:
            expected[i] = "priced"
            priced.append((t, rid, start, end, scope))
        else:
            expected[i] = "no_usage"
            unpriced.append((t, rid, start, end, scope))
    for path in PATHS:
        traced = Traced(table, path)
        runs = [traced.run(f"run {t}") for t in range(3)]
        made = [traced.chat(runs[t], rid, start, ok, sc) for t, rid, start, _, ok, sc in spans]
        for i in order:
            made[i].end(spans[i][3])
        assert traced.statuses(*made) == expected, path


def test_calls_one_after_the_other_on_a_coarse_clock_are_two(table):
    """On a clock that ticks every 15.6 ms (Windows before Python 3.13) an agent's next call
    often starts in the tick its last one ended. With one id for both (a proxy's constant id)
    they touch; they are two calls. Two spans of one call shorter than a tick are each an
    instant, and one call."""
    tick = 15_600_000
    for path in PATHS:
        traced = Traced(table, path)
        run = traced.run()
        first = traced.chat(run, "constant", start=T0)
        first.end(T0 + 3 * tick)
        second = traced.chat(run, "constant", start=T0 + 3 * tick)
        second.end(T0 + 5 * tick)
        sdk, framework = (traced.chat(run, "fast", start=T0 + 6 * tick) for _ in range(2))
        sdk.end(T0 + 6 * tick)
        framework.end(T0 + 6 * tick)
        statuses = traced.statuses(first, second, sdk, framework)
        assert statuses == ["priced", "priced", "priced", "duplicate"], path


def test_an_id_reused_long_ago_by_another_run_survives_a_trim(table):
    """Ollama's ids: another run drew chatcmpl-7 long ago. This run's call, instrumented twice,
    draws it again, and claims pass the limit while its two spans are open: it stays one
    call (a claim is of a trace and an id, the newest last in the order)."""
    for path in PATHS:
        traced = Traced(table, path, kept=4)
        traced.chat(traced.run("old run"), "chatcmpl-7").end(T0 + 10)
        for i in range(6):  # other calls, up to the limit (8)
            traced.chat(traced.run(), f"chatcmpl-u{i}").end(T0 + 20)
        run = traced.run()
        framework, sdk = traced.chat(run, "chatcmpl-7", T0 + 30), traced.chat(run, "chatcmpl-7", T0 + 31)
        sdk.end(T0 + 40)
        for i in range(3):  # more calls end meanwhile: a trim
            traced.chat(traced.run(), f"late-{i}").end(T0 + 41)
        framework.end(T0 + 50)
        assert traced.statuses(sdk, framework) == ["priced", "duplicate"], path
        assert len(traced.processor._first_spans.claims) <= 8


def test_hostile_ids_keep_the_claims_small_and_still_pair(table):
    """A proxy or a fake server sending 100 kB response ids: the claims a processor keeps
    (up to 2 * RESPONSES_KEPT keys) hold a digest of each, not the id (8,192 such ids were
    800 MB), and the two spans of one call with such an id are still one call, while two
    ids alike up to the digest's cut are two."""
    for path in PATHS:
        traced = Traced(table, path, kept=4)
        long_id = "x" * 100_000
        run = traced.run()
        framework, sdk = traced.chat(run, long_id), traced.chat(run, long_id, T0 + 1)
        other = traced.chat(run, long_id + "y", T0 + 2)
        sdk.end(T0 + 10)
        other.end(T0 + 11)
        framework.end(T0 + 12)
        assert traced.statuses(sdk, other, framework) == ["priced", "priced", "duplicate"], path
        for i in range(20):
            traced.chat(traced.run(), f"{i}" * 50_000).end(T0 + 20)
        claims = traced.processor._first_spans.claims
        assert claims and max(len(rid) for _, rid in claims) <= 256, path


def test_kept_claims_cost_the_collector_nothing(table):
    """Each priced call with a response id keeps a claim (up to 2 * RESPONSES_KEPT): its key
    and value hold only numbers and names, so the collector untracks them at its first pass
    and never walks the kept claims again (the scope object kept in each made every full
    collection of the application's heap walk 8,192 more tuples). Pairs still pair by name."""
    import gc

    for path in PATHS:
        traced = Traced(table, path)
        for i in range(50):
            traced.chat(traced.run(), f"resp-{i}", scope="one-scope").end(T0 + 10)
        gc.collect()
        claims = traced.processor._first_spans.claims
        assert len(claims) >= 50, path
        tracked = [(k, v) for k, v in claims.items() if gc.is_tracked(k) or gc.is_tracked(v)]
        assert not tracked, (path, tracked[:2])
        run = traced.run()
        first, copy = traced.chat(run, "pair"), traced.chat(run, "pair", T0 + 1)
        copy.end(T0 + 5)
        first.end(T0 + 6)
        assert traced.statuses(copy, first) == ["priced", "duplicate"], path


def test_a_constant_id_many_runs_draw_never_hides_a_pair(table):
    """A proxy or a fake sends one constant id, which an earlier run claimed first: 30 other
    runs' calls ending between the two spans of this run's call do not make it two calls."""
    for path in PATHS:
        traced = Traced(table, path)
        traced.chat(traced.run("earlier"), "resp", T0 - 100).end(T0 - 50)
        run = traced.run()
        framework, sdk = traced.chat(run, "resp"), traced.chat(run, "resp", T0 + 1)
        sdk.end(T0 + 100)
        others = [traced.chat(traced.run(f"other {i}"), "resp", T0 + 2) for i in range(30)]
        for span in others:
            span.end(T0 + 101)
        framework.end(T0 + 102)
        assert traced.statuses(sdk, framework) == ["priced", "duplicate"], path
        assert traced.statuses(*others) == ["priced"] * 30, path


def test_a_span_another_span_priced_first_is_stamped_a_duplicate_once(table, monkeypatch):
    """The stamp function decides a duplicate itself, once (deciding again could disagree,
    had a trim dropped the claim meanwhile): counted once, no cost, no step."""
    claims: list[str] = []
    general_claim = FirstSpans.claim
    monkeypatch.setattr(
        FirstSpans,
        "claim",
        lambda self, rid, span, usd=None: claims.append(rid) or general_claim(self, rid, span, usd),
    )
    for path in PATHS:
        traced = Traced(table, path)
        claims.clear()  # (the warm-up span's, on the general path)
        run = traced.run()
        first, second = traced.chat(run, "msg_1"), traced.chat(run, "msg_1", T0 + 1)
        first.end(T0 + 10)
        second.end(T0 + 11)
        (ended,) = [s for s in traced.exporter.get_finished_spans() if s.context == second.get_span_context()]
        assert ended.attributes[COST_STATUS] == "duplicate" and COST not in ended.attributes, path
        assert traced.processor.stats()["duplicate"] == 1, path
        assert claims == (["msg_1", "msg_1"] if path == "general" else []), path


CALLS_PER_THREAD = 250


def agent(traced: Traced, n: int, pool: int) -> None:
    """Thread ``n``'s calls, ten a run, each a framework span around the SDK's, both holding
    the call's number ``n`` and its id drawn from ``pool`` ids."""
    for i in range(CALLS_PER_THREAD):
        run = traced.run(f"run {n}.{i // 10}")
        attrs = {**call(f"chatcmpl-{(n * 7919 + i * 104729) % pool}"), "n": n * 10**6 + i}
        framework = traced.provider.get_tracer("framework").start_span("chat", context=run, attributes=attrs)
        inner = trace.set_span_in_context(framework)
        traced.provider.get_tracer("sdk").start_span("chat", context=inner, attributes=attrs).end()
        framework.end()


def test_threads_drawing_ids_from_a_small_pool_price_each_call_once(table):
    """Eight threads, each an agent making calls instrumented twice, the ids drawn from
    Ollama's pool or one constant id, the interpreter switching threads every microsecond:
    every call is priced exactly once."""
    for pool in (999, 1):
        traced = Traced(table, "stamp function")
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            threads = [threading.Thread(target=agent, args=(traced, n, pool)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(switch)
        ended = [s.attributes for s in traced.exporter.get_finished_spans() if "n" in s.attributes]
        priced = Counter(a["n"] for a in ended if a.get(COST_STATUS) == "priced")
        assert len(priced) == 8 * CALLS_PER_THREAD and set(priced.values()) == {1}, pool


def test_a_span_ended_while_its_thread_is_inside_the_check_does_not_hang(table):
    """A finalizer the collector runs, or a signal handler, may end a span while its thread
    holds the duplicate check's lock (a collision or a trim): the span ends and is decided."""
    for path in PATHS:
        traced = Traced(table, path)
        run = traced.run()
        traced.chat(run, "resp").end(T0 + 10)
        later = traced.chat(run, "resp", T0 + 20)  # a call of its own reusing the id: a collision
        ended = threading.Event()

        def inside(span=later, first_spans=traced.processor._first_spans, ended=ended) -> None:
            with first_spans._lock:  # as the interrupted settle holds it
                span.end(T0 + 30)
            ended.set()

        thread = threading.Thread(target=inside, daemon=True)  # (left hanging if it fails)
        thread.start()
        thread.join(10)
        assert ended.is_set(), path
        assert traced.statuses(later) == ["priced"], path


def test_a_span_ended_with_a_past_end_time_is_compared_with_the_earlier_calls_too(table):
    """Calls of one trace reuse an id (a proxy's constant id); the second span of the first
    call is ended after the second call, with its own (past) end time, as a bridge from
    another tracing system ends spans: it is that first call's duplicate."""
    for path in PATHS:
        traced = Traced(table, path)
        run = traced.run()
        first, late_twin = traced.chat(run, "resp", T0), traced.chat(run, "resp", T0 + 1)
        first.end(T0 + 10)
        second = traced.chat(run, "resp", T0 + 20)
        second.end(T0 + 30)
        late_twin.end(T0 + 12)
        assert traced.statuses(first, second, late_twin) == ["priced", "priced", "duplicate"], path


def nested(
    traced: Traced,
    outer_attrs: dict,
    inner_attrs: dict,
    *,
    inner_scope: str = "other",
    outer_first: bool = False,
) -> list[str | None]:
    """One call traced twice, nested: an outer span of scope "test" (OpenLLMetry's
    ``openai.chat``) around an inner one of ``inner_scope`` (OpenInference's), without
    response ids. Returns their statuses (outer, inner)."""
    inner_tracer = traced.provider.get_tracer(inner_scope)
    outer = traced.tracer.start_span("outer", context=traced.run(), attributes=outer_attrs, start_time=T0)
    inner = inner_tracer.start_span("inner", context=trace.set_span_in_context(outer), start_time=T0 + 1)
    inner.set_attributes(inner_attrs)  # at end, as OpenInference does
    if outer_first:
        outer.end(T0 + 10)
        inner.end(T0 + 9)
    else:
        inner.end(T0 + 9)
        outer.end(T0 + 10)
    return traced.statuses(outer, inner)


EMBED = {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "acme",
         "gen_ai.request.model": "acme-large", "gen_ai.usage.input_tokens": 1000}  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_a_call_nested_in_another_instrumentations_span_is_priced_once(table, path):
    """OpenLLMetry's span around OpenInference's (or openai-v2's), one API call: chat or
    embeddings, with no response id to pair them by (OpenInference records none, an
    embedding has none). Both were billed. The inner span, first to end, is priced; the
    outer is its duplicate: for the same model, from another instrumentation scope."""
    traced = Traced(table, path)
    assert nested(traced, EMBED, EMBED) == ["duplicate", "priced"]
    chat = {k: v for k, v in CALL.items()}
    oi = {"openinference.span.kind": "LLM", "llm.model_name": "acme-large",
          "llm.token_count.prompt": 1000, "llm.token_count.completion": 100}  # fmt: skip
    assert nested(traced, chat, oi) == ["duplicate", "priced"]
    # the outer span ending first (its end() called first): the inner one is the copy
    assert nested(traced, chat, oi, outer_first=True) == ["priced", "duplicate"]
    stats = traced.processor.stats()
    assert (stats["priced"] - (path != "general"), stats["duplicate"]) == (3, 3)
    costs = [s.attributes.get(COST) for s in traced.exporter.get_finished_spans() if s.name != "run"]
    assert sum(c is not None for c in costs) == 3 + (path != "general")


@pytest.mark.parametrize("path", PATHS)
def test_nested_spans_that_are_two_calls_are_both_priced(table, path):
    """Not copies: another model, or one instrumentation nesting its own spans (a client
    retrying inside a framework's call of the same scope), or a span with usage beside an
    inner one that could not be priced (the money first)."""
    traced = Traced(table, path)
    other = {**EMBED, "gen_ai.request.model": "acme-mini"}
    assert nested(traced, EMBED, other) == ["priced", "priced"]
    assert nested(traced, EMBED, EMBED, inner_scope="test") == ["priced", "priced"]
    no_usage = {k: v for k, v in EMBED.items() if k != "gen_ai.usage.input_tokens"}
    assert nested(traced, EMBED, no_usage) == ["priced", "no_usage"]
    # a failed call traced twice (a 429): one unpriced call, not two
    assert nested(traced, no_usage, no_usage) == ["duplicate", "no_usage"]
    # ... also when the inner span names no model (OpenInference's error span: a review
    # counted two unpriced calls for one 429), whichever span ends first
    nameless = {"openinference.span.kind": "LLM"}
    assert nested(traced, no_usage, nameless) == ["duplicate", "no_usage"]
    assert nested(traced, no_usage, nameless, outer_first=True) == ["no_usage", "duplicate"]
    # but a priced span beside it is a call of its own (the money first)
    assert nested(traced, EMBED, nameless) == ["priced", "no_usage"]
    assert nested(traced, EMBED, nameless, outer_first=True) == ["priced", "no_usage"]


def usage(model: str, inp: int, out: int) -> dict:
    return {**CALL, "gen_ai.request.model": model, "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out}  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_a_framework_span_is_a_copy_only_of_the_calls_it_sums(table, path):
    """A review of the first form, which took any model-call span of another scope inside a
    model-call span for the same model as one call: a guardrail call made inside a streamed
    chat span hid the chat's own cost, and a framework span around a call and another
    model's call counted the first twice. The sizes decide now: the outer span is a copy of
    the inner calls of its models whose output tokens it sums."""
    traced = Traced(table, path)
    sdk, framework = traced.provider.get_tracer("sdk"), traced.provider.get_tracer("framework")

    def run(outer_usage: dict, *inner_usages: dict) -> list[str | None]:
        outer = framework.start_span("chat", context=traced.run(), attributes={**CALL}, start_time=T0)
        inners = []
        for i, attrs in enumerate(inner_usages):
            inner = sdk.start_span("call", context=trace.set_span_in_context(outer), start_time=T0 + 1 + i)
            inner.set_attributes(attrs)
            inner.end(T0 + 5 + i)
            inners.append(inner)
        outer.set_attributes(outer_usage)
        outer.end(T0 + 100)
        return traced.statuses(outer, *inners)

    large = "acme-large"
    # two calls, the framework span reporting their sum: a copy of both
    assert run(usage(large, 2000, 200), usage(large, 1000, 100), usage(large, 1000, 100)) == [
        "duplicate",
        "priced",
        "priced",
    ]
    # a call of its model and one of another model inside: a copy of the first alone
    assert run(usage(large, 1000, 100), usage(large, 1000, 100), usage("acme-mini", 50, 7)) == [
        "duplicate",
        "priced",
        "priced",
    ]
    # a separate small call of the same model inside a long streamed chat: two calls
    assert run(usage(large, 5000, 800), usage(large, 200, 1)) == ["priced", "priced"]
    # one token apart (OpenLLMetry's Anthropic streams count one more): the same call
    assert run(usage(large, 1000, 101), usage(large, 1000, 100)) == ["duplicate", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_three_instrumentations_of_one_call_price_it_once(table, path):
    """LangChain's span (a third scope) around OpenLLMetry's around OpenInference's: the
    middle span, a duplicate, did not tell the outermost, which was billed too."""
    traced = Traced(table, path)
    scopes = [traced.provider.get_tracer(name) for name in ("langchain", "openllmetry", "openinference")]
    context, spans = traced.run(), []
    for i, tracer in enumerate(scopes):
        span = tracer.start_span(f"level {i}", context=context, attributes={**CALL}, start_time=T0 + i)
        spans.append(span)
        context = trace.set_span_in_context(span)
    for i, span in reversed(list(enumerate(spans))):
        span.end(T0 + 100 - i)
    assert traced.statuses(*spans) == ["duplicate", "duplicate", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_a_pair_takes_one_agent_step(table, path):
    """The outer span names itself a model call at start (numbered then); the inner one names
    itself at end. The priced inner spans were numbered 1, 3, 5: they take the step of their
    pair's outer span now, 0, 1, 2."""
    traced = Traced(table, path)
    inner_tracer = traced.provider.get_tracer("other")
    agent = traced.tracer.start_span(
        "agent", context=traced.run(), attributes={"gen_ai.operation.name": "invoke_agent"}, start_time=T0
    )
    priced = []
    for i in range(3):
        start = T0 + 10 * (i + 1)
        outer = traced.tracer.start_span(
            "outer", context=trace.set_span_in_context(agent), attributes={**CALL}, start_time=start
        )
        inner = inner_tracer.start_span(
            "inner", context=trace.set_span_in_context(outer), start_time=start + 1
        )
        inner.set_attributes(CALL)
        inner.end(start + 5)
        outer.end(start + 6)
        assert traced.statuses(outer, inner) == ["duplicate", "priced"]
        priced.append(inner)
    ended = {s.context.span_id: s.attributes for s in traced.exporter.get_finished_spans()}
    assert [ended[s.get_span_context().span_id].get("gen_ai.agent.step") for s in priced] == [0, 1, 2]


def test_a_pair_marker_keeps_no_outer_span_alive(table):
    """Every child of another scope under a model-call span is marked (its role is not known
    at start: an HTTP client's span too); the mark held the outer span itself."""
    import gc
    import weakref

    traced = Traced(table, "general")
    outer = traced.tracer.start_span("outer", context=traced.run(), attributes={**CALL}, start_time=T0)
    http = traced.provider.get_tracer("httpx").start_span("POST", context=trace.set_span_in_context(outer))
    outer.end(T0 + 10)
    gone = weakref.ref(outer)
    traced.exporter.clear()
    del outer
    gc.collect()
    assert gone() is None and http.is_recording()


def spans_of(
    traced: Traced, plan: str, ends: str, usages: dict[str, dict], base: dict = CALL
) -> dict[str, str | None]:
    """Spans named by letters, nested in ``plan``'s order (the first outermost), each of its
    own scope, ended in ``ends``' order with ``usages``' attributes set just before."""
    context, spans = traced.run(), {}
    for i, name in enumerate(plan):
        tracer = traced.provider.get_tracer(f"scope {name}")
        spans[name] = tracer.start_span(name, context=context, attributes={**base}, start_time=T0 + i)
        context = trace.set_span_in_context(spans[name])
    for i, name in enumerate(ends):
        spans[name].set_attributes(usages.get(name, {}))
        spans[name].end(T0 + 100 + i)
    return dict(zip(spans, traced.statuses(*spans.values()), strict=True))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ends", ["ABC", "ACB", "BAC", "BCA", "CAB", "CBA"])
def test_three_nested_spans_of_one_call_in_any_end_order_price_it_once(table, path, ends):
    """A review: with the outer span ending first its own report was summed with the inner
    calls' and the middle span priced itself (three spans billed); the innermost span's
    report stopped at the middle one."""
    got = spans_of(Traced(table, path), "ABC", ends, {})
    assert sorted(got.values()) == ["duplicate", "duplicate", "priced"], got
    assert got[ends[0]] == "priced"


@pytest.mark.parametrize("path", PATHS)
def test_nested_pairs_compare_normalised_sizes(table, path):
    """Two reviews: a framework span around the two sibling spans of one call paired by
    response id summed both (a duplicate told it too) and priced itself; reasoning counted in
    the output on one span and apart on the other (Gemini's thoughts) or the cache apart on
    one (Anthropic's raw counts) made two sizes of one call; and a 90k-input call with the
    output of a small call inside it was taken for its copy."""
    traced = Traced(table, path)
    sdk, ollm, fw = (traced.provider.get_tracer(n) for n in ("sdk", "ollm", "framework"))
    outer = fw.start_span("framework", context=traced.run(), attributes={**CALL}, start_time=T0)
    under = trace.set_span_in_context(outer)
    a = ollm.start_span("ollm", context=under, attributes={**call("msg_x")}, start_time=T0 + 1)
    b = sdk.start_span("sdk", context=under, attributes={**call("msg_x")}, start_time=T0 + 2)
    b.end(T0 + 10)
    a.end(T0 + 11)
    outer.end(T0 + 12)
    assert traced.statuses(outer, a, b) == ["duplicate", "duplicate", "priced"]

    def pair(outer_usage: dict, inner_usage: dict) -> list[str | None]:
        return list(spans_of(traced, "AB", "BA", {"A": outer_usage, "B": inner_usage}).values())

    thoughts = {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.reasoning_tokens": 1000}
    assert pair({**thoughts, "gen_ai.usage.output_tokens": 1300},
                {**thoughts, "gen_ai.usage.output_tokens": 300}) == ["duplicate", "priced"]  # fmt: skip
    raw = {
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.cache_read_input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
    }
    assert pair({"gen_ai.usage.input_tokens": 1050, "gen_ai.usage.output_tokens": 100}, raw) == [
        "duplicate",
        "priced",
    ]
    capped = {"gen_ai.usage.output_tokens": 1024}
    assert pair({**capped, "gen_ai.usage.input_tokens": 90_000},
                {**capped, "gen_ai.usage.input_tokens": 300}) == ["priced", "priced"]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_many_calls_of_other_models_inside_a_span_do_not_hide_its_copy(table, path):
    """A review: an outer span kept what its last 16 inner calls said; 16 moderation calls of
    another model made while a streamed chat span was open pushed out the chat's own copy."""
    traced = Traced(table, path)
    fw, sdk = traced.provider.get_tracer("framework"), traced.provider.get_tracer("sdk")
    outer = fw.start_span("chat", context=traced.run(), attributes={**CALL}, start_time=T0)
    under = trace.set_span_in_context(outer)
    for i in range(20):
        sdk.start_span(
            "moderation", context=under, attributes=usage("acme-mini", 10, 1), start_time=T0 + 1
        ).end(T0 + 2 + i)
    inner = sdk.start_span(
        "chat", context=under, attributes=usage("acme-large", 1000, 100), start_time=T0 + 30
    )
    inner.end(T0 + 40)
    outer.set_attributes(usage("acme-large", 1000, 100))
    outer.end(T0 + 50)
    assert traced.statuses(outer, inner) == ["duplicate", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_a_call_of_another_model_inside_a_call_takes_a_step_of_its_own(table, path):
    """A review: a guardrail call to a small model made while a streamed chat span was open
    took the chat's step (two billed calls, one step)."""
    traced = Traced(table, path)
    agent = traced.tracer.start_span(
        "agent", context=traced.run(), attributes={"gen_ai.operation.name": "invoke_agent"}, start_time=T0
    )
    fw, sdk = traced.provider.get_tracer("framework"), traced.provider.get_tracer("sdk")
    chat = fw.start_span(
        "chat", context=trace.set_span_in_context(agent), attributes={**CALL}, start_time=T0 + 1
    )
    guard = sdk.start_span("guardrail", context=trace.set_span_in_context(chat), start_time=T0 + 2)
    guard.set_attributes(usage("acme-mini", 10, 1))
    guard.end(T0 + 3)
    chat.set_attributes(usage("acme-large", 5000, 800))
    chat.end(T0 + 10)
    assert traced.statuses(chat, guard) == ["priced", "priced"]
    ended = {s.context.span_id: s.attributes for s in traced.exporter.get_finished_spans()}
    steps = [ended[s.get_span_context().span_id].get("gen_ai.agent.step") for s in (chat, guard)]
    assert steps == [0, 1], steps


@pytest.mark.parametrize("path", PATHS)
def test_nested_pairs_in_other_conventions_or_names_are_one_call(table, path):
    """A review of the normalised sizes: an outer span naming the requested model and an
    inner one its dated snapshot (ids the table resolves to one entry); the cache counted
    apart but smaller than the input (no way to infer it), the reasoning apart but smaller
    than the output; the input on one span and the output on the other: each was billed on
    both spans."""
    traced = Traced(table, path)

    def pair(outer_usage: dict, inner_usage: dict) -> list[str | None]:
        return list(spans_of(traced, "AB", "BA", {"A": outer_usage, "B": inner_usage}).values())

    dated = {"gen_ai.response.model": "acme-large-20260101", "gen_ai.usage.input_tokens": 1000,
             "gen_ai.usage.output_tokens": 100}  # fmt: skip
    requested = {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}
    assert pair(requested, dated) == ["duplicate", "priced"]
    cache_apart = {"gen_ai.usage.input_tokens": 6000, "gen_ai.usage.cache_read.input_tokens": 5000,
                   "gen_ai.usage.output_tokens": 100}  # fmt: skip
    assert pair({"gen_ai.usage.input_tokens": 11000, "gen_ai.usage.output_tokens": 100}, cache_apart) == [
        "duplicate",
        "priced",
    ]
    thoughts_apart = {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1300,
                      "gen_ai.usage.reasoning_tokens": 1000}  # fmt: skip
    assert pair({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2300}, thoughts_apart) == [
        "duplicate",
        "priced",
    ]


NO_USAGE = {k: v for k, v in CALL.items() if not k.startswith("gen_ai.usage.")}


@pytest.mark.parametrize("path", PATHS)
def test_separate_calls_with_partial_usage_are_never_merged(table, path):
    """A review of the looser rule: a count only one span reported compared nothing and the
    spans were taken for one call, dropping a 90k-input chat around a call that reported its
    input (or output) alone; a fully cached call (no uncached input) had no size at all."""
    traced = Traced(table, path)

    def pair(outer_usage: dict, inner_usage: dict) -> list[str | None]:
        return list(spans_of(traced, "AB", "BA", {"A": outer_usage, "B": inner_usage}, NO_USAGE).values())

    chat = {"gen_ai.usage.input_tokens": 90_000, "gen_ai.usage.output_tokens": 800}
    assert pair(chat, {"gen_ai.usage.output_tokens": 800}) == ["priced", "priced"]
    assert pair(chat, {"gen_ai.usage.input_tokens": 500}) == ["priced", "priced"]
    assert pair({"gen_ai.usage.output_tokens": 100}, {"gen_ai.usage.input_tokens": 1000}) == [
        "priced",
        "priced",
    ]
    cached = {"gen_ai.usage.input_tokens": 0, "gen_ai.usage.cache_read_input_tokens": 4000,
              "gen_ai.usage.output_tokens": 0}  # fmt: skip
    assert pair(chat, cached) == ["priced", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_a_retry_inside_a_framework_span_is_billed_per_call_made(table, path):
    """Two SDK calls (a retry after a timeout the server still billed), the framework's span
    reporting the last one's usage: it was billed a third time. Both calls are billed, the
    framework's span is the copy of the last."""
    traced = Traced(table, path)
    fw, sdk = traced.provider.get_tracer("framework"), traced.provider.get_tracer("sdk")
    outer = fw.start_span("chat", context=traced.run(), attributes=NO_USAGE, start_time=T0)
    under = trace.set_span_in_context(outer)
    first = sdk.start_span(
        "try 1", context=under, attributes=usage("acme-large", 1000, 50), start_time=T0 + 1
    )
    first.end(T0 + 2)
    second = sdk.start_span(
        "try 2", context=under, attributes=usage("acme-large", 1100, 60), start_time=T0 + 3
    )
    second.end(T0 + 4)
    outer.set_attributes(usage("acme-large", 1100, 60))
    outer.end(T0 + 5)
    assert traced.statuses(outer, first, second) == ["duplicate", "priced", "priced"]


OI_CALL = {"openinference.span.kind": "LLM", "llm.model_name": "acme-large",
           "llm.token_count.prompt": 1000, "llm.token_count.completion": 100}  # fmt: skip


@pytest.fixture
def armed(monkeypatch):
    """OpenInference and the anthropic SDK loaded (as modules): the sibling check is on."""
    import types

    for name in ("openinference.instrumentation", "anthropic"):
        if name not in sys.modules:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def siblings(traced: Traced, first: dict, second: dict, *, scopes=None, parents=1,
             times=((T0 + 1, T0 + 10), (T0, T0 + 12))) -> list[str | None]:  # fmt: skip
    """Two model-call spans started under one parent (``parents`` 2: under two), neither
    inside the other's context, the second's time around the first's (the wrapper of one
    request around another's): ``first`` ends first. Their scopes: ``scopes``, else "openinference"
    for OpenInference's attributes, "sdk" for the others. Returns their statuses."""
    runs = [traced.run() for _ in range(parents)]
    if scopes is None:
        scopes = ["openinference" if "openinference.span.kind" in a else "sdk" for a in (first, second)]
    made = []
    for (start, _), attrs, scope, run in zip(times, (first, second), scopes, runs * 2, strict=False):
        tracer = traced.provider.get_tracer(scope)
        made.append(tracer.start_span("call", context=run, attributes=attrs, start_time=start))
    for span, (_, end) in zip(made, times, strict=True):
        span.end(end)
    return traced.statuses(*made)


@pytest.mark.parametrize("path", PATHS)
def test_sibling_spans_of_two_instrumentations_are_one_call(table, path, armed):
    """OpenInference's span of the anthropic messages.stream() helper is never made current:
    the SDK's own span of the call is its sibling, and OpenInference records no response id.
    OpenLLMetry's and OpenInference's spans of a Responses API call likewise. Both were
    billed (a review with today's releases). The later to end is the copy."""
    traced = Traced(table, path)
    assert siblings(traced, OI_CALL, call("resp-1")) == ["priced", "duplicate"]
    assert siblings(traced, call("resp-2"), OI_CALL) == ["priced", "duplicate"]
    # two spans without an id (two such instrumentations)
    assert siblings(traced, OI_CALL, {**CALL}) == ["priced", "duplicate"]
    assert siblings(traced, {**CALL}, OI_CALL) == ["priced", "duplicate"]
    # a failed call (a 429) traced twice, one span naming no model: one unpriced call
    nameless = {"openinference.span.kind": "LLM"}
    failed = {k: v for k, v in CALL.items() if "usage" not in k}
    assert siblings(traced, nameless, failed) == ["no_usage", "duplicate"]
    assert traced.processor.stats()["duplicate"] == 5


@pytest.mark.parametrize("path", PATHS)
def test_siblings_are_looked_for_only_with_both_kinds_of_instrumentation_loaded(table, path, monkeypatch):
    """An application with one instrumentation pays nothing for the check (a review measured
    OpenInference alone at 2.5x the end hook's time when every call was kept to pair)."""
    import types

    traced = Traced(table, path)
    assert siblings(traced, OI_CALL, call("resp-1")) == ["priced", "priced"]
    monkeypatch.setitem(sys.modules, "openinference.instrumentation", types.ModuleType("oi"))
    assert siblings(traced, OI_CALL, call("resp-2")) == ["priced", "priced"]
    assert not traced.processor._siblings.calls
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.openai", types.ModuleType("ll"))
    traced = Traced(table, path)  # switched on when a shape is compiled (or on the general path)
    assert siblings(traced, call("resp-3"), OI_CALL) == ["priced", "duplicate"]


@pytest.mark.parametrize("path", PATHS)
def test_sibling_spans_that_are_two_calls_are_both_priced(table, path, armed):
    traced = Traced(table, path)
    other_size = {**OI_CALL, "llm.token_count.completion": 300}
    other_model = {**OI_CALL, "llm.model_name": "acme-mini"}
    apart = ((T0, T0 + 10), (T0 + 20, T0 + 30))
    failed = {k: v for k, v in CALL.items() if "usage" not in k}
    assert siblings(traced, OI_CALL, call("a")) == ["priced", "duplicate"]  # the control: one call
    assert siblings(traced, other_size, call("b")) == ["priced", "priced"]
    assert siblings(traced, other_model, call("c")) == ["priced", "priced"]
    assert siblings(traced, OI_CALL, call("d"), times=apart) == ["priced", "priced"]  # one after the other
    crossed = ((T0, T0 + 10), (T0 + 1, T0 + 12))  # at the same time, neither around the other
    assert siblings(traced, OI_CALL, call("h"), times=crossed) == ["priced", "priced"]
    assert siblings(traced, OI_CALL, {**OI_CALL}) == ["priced", "priced"]  # one scope
    assert siblings(traced, OI_CALL, call("e"), parents=2) == ["priced", "priced"]  # cousins
    assert siblings(traced, OI_CALL, failed) == ["priced", "no_usage"]  # usage on one alone
    # two response ids: the same id pairs by it; two ids are two calls (a review: the rule
    # paired them, and two parallel equal calls traced by the SDK and OpenLLMetry lost one)
    assert siblings(traced, call("f"), call("g"), scopes=("sdk", "openllmetry")) == ["priced", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_two_equal_calls_at_once_each_traced_twice_are_two_calls(table, path, armed):
    """Two equal requests made at once (asyncio.gather), each traced by two instrumentations
    as siblings: four spans, two calls, in any order of ending, never fewer billed. A first
    form let one span be the first of two copies of one scope (a review: 11 of 20 parallel
    calls billed), and a
    create() call made beside a stream() call (its OpenInference span a sibling too) could
    be taken for a copy. With both instrumentations recording ids (the SDK's and
    OpenLLMetry's), one call was lost in 12 of 24 orders."""
    import itertools

    oi, a, b = (OI_CALL, "openinference"), call("a"), call("b")
    mixes = {
        "openinference": [oi, (a, "sdk"), oi, (b, "sdk")],
        "ids": [(a, "openllmetry"), (a, "sdk"), (b, "openllmetry"), (b, "sdk")],
    }
    for mix, kinds in mixes.items():
        for order in itertools.permutations(range(4)):
            traced = Traced(table, path)
            run = traced.run()
            tracers = {scope: traced.provider.get_tracer(scope) for _, scope in kinds}
            rank = {i: r for r, i in enumerate(order)}
            # each call's two spans (0 and 1, 2 and 3): the later to end started first
            starts = {}
            for a, b in ((0, 1), (2, 3)):
                outer, inner = (a, b) if rank[a] > rank[b] else (b, a)
                starts[outer], starts[inner] = T0 + 2 * a, T0 + 2 * a + 1
            made = [
                tracers[scope].start_span("call", context=run, attributes=attrs, start_time=starts[i])
                for i, (attrs, scope) in enumerate(kinds)
            ]
            for i in order:
                made[i].end(T0 + 100 + rank[i])
            got = Counter(traced.statuses(*made))
            assert got["priced"] + got["duplicate"] == 4, (mix, order)
            # Never a call lost. Where one call's spans lie within the other call's, and the
            # sizes are equal, which is whose copy cannot be told: a third span may stay priced
            # (billed as before the rule), never fewer than the calls.
            assert got["priced"] == 2 if mix == "ids" else got["priced"] >= 2, (mix, order, got)
    # a stream() call's two spans beside a create() call's OpenInference span (its SDK span
    # nested in it): two calls
    traced = Traced(table, path)
    run = traced.run()
    oi = traced.provider.get_tracer("openinference")
    sdk = traced.provider.get_tracer("sdk")
    stream_oi = oi.start_span("stream", context=run, attributes=OI_CALL, start_time=T0)
    stream_sdk = sdk.start_span("create", context=run, attributes=call("s"), start_time=T0 + 1)
    create_oi = oi.start_span("create", context=run, attributes=OI_CALL, start_time=T0 + 2)
    stream_sdk.end(T0 + 50)
    stream_oi.end(T0 + 51)
    create_oi.end(T0 + 52)
    assert traced.statuses(stream_oi, stream_sdk, create_oi) == ["duplicate", "priced", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_many_equal_calls_at_once_each_traced_twice_are_each_billed_once(table, path, armed):
    """A batch fanned out under one parent: 20 equal calls, each traced by OpenInference and
    the SDK as siblings, ending in random orders (a review billed 11 of 20; with four calls
    kept a parent, 23)."""
    import random

    for seed in range(30):
        rng = random.Random(seed)
        traced = Traced(table, path)
        run = traced.run()
        oi, sdk = traced.provider.get_tracer("openinference"), traced.provider.get_tracer("sdk")
        made = []
        for n in range(20):  # OpenInference's span around the SDK's, each call at its own pace
            start, length = T0 + rng.randrange(1000), rng.randrange(10, 1000)
            made.append(oi.start_span("stream", context=run, attributes=OI_CALL, start_time=start))
            made.append(sdk.start_span("create", context=run, attributes=call(f"r{n}"), start_time=start + 1))
            made[-1].end_at, made[-2].end_at = start + length, start + length + 1 + rng.randrange(3)
        for span in sorted(made, key=lambda s: s.end_at):
            span.end(span.end_at)
        assert Counter(traced.statuses(*made)) == {"priced": 20, "duplicate": 20}, seed


MS = 10**6


@pytest.mark.parametrize("path", PATHS)
def test_calls_each_traced_by_one_instrumentation_are_never_taken_for_copies(table, path, armed):
    """A second review: a long streamed call traced by OpenInference alone and a short equal
    call traced by the SDK alone, made inside it, were one call; and a third instrumentation
    let one span be the first of copies from two calls. Two spans of one call wrap one request:
    one within the other, starting and ending close to it; a call is the first of one copy."""
    traced = Traced(table, path)
    inside = ((T0 + 400 * MS, T0 + 900 * MS), (T0, T0 + 5000 * MS))  # short inside long
    assert siblings(traced, call("b"), OI_CALL, times=inside) == ["priced", "priced"]
    close = ((T0 + 8 * MS, T0 + 4990 * MS), (T0, T0 + 5000 * MS))  # one request, wrapped
    assert siblings(traced, call("c"), OI_CALL, times=close) == ["priced", "duplicate"]
    # X traced by OpenInference, OpenLLMetry and the SDK (the last two share an id); Y, an
    # equal call around it, by the SDK alone
    run = traced.run()
    tracer = traced.provider.get_tracer
    y_sdk = tracer("sdk").start_span("y", context=run, attributes=call("y"), start_time=T0)
    x = [
        tracer(scope).start_span("x", context=run, attributes=attrs, start_time=T0 + (2 + i) * MS)
        for i, (scope, attrs) in enumerate(
            (("openinference", OI_CALL), ("openllmetry", call("x")), ("sdk", call("x")))
        )
    ]
    for i, span in enumerate(x):
        span.end(T0 + (500 - i) * MS)
    y_sdk.end(T0 + 520 * MS)
    assert traced.statuses(*x, y_sdk) == ["priced", "duplicate", "duplicate", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_calls_that_report_their_cost_without_usage_are_not_failed_calls(table, path, armed):
    # Two calls reporting their cost and no tokens were paired as failed calls (a review):
    # the second became a duplicate while carrying its own $0.02.
    traced = Traced(table, path)
    reported = {**{k: v for k, v in CALL.items() if "usage" not in k}, "llm.cost.total": 0.5}
    other = {**reported, "llm.cost.total": 0.02}
    got = siblings(traced, reported, other, scopes=("sdk", "openllmetry"))
    assert "duplicate" not in got


@pytest.mark.parametrize("path", PATHS)
def test_a_reported_cost_without_usage_beside_the_calls_tokens_is_one_call(table, path, armed):
    """Since a cost the provider reported prices a span without token counts, OpenInference's
    span of a stream (the charge, no tokens) beside the SDK's span of it (the tokens) was
    billed twice: they never paired (a review). One call, whichever ends first; two spans
    reporting two charges stay two calls (above), and so does a failed call beside one."""
    traced = Traced(table, path)
    charged = {"openinference.span.kind": "LLM", "llm.model_name": "acme-large", "llm.cost.total": 0.0025}
    assert siblings(traced, charged, {**CALL}) == ["priced", "duplicate"]
    assert siblings(traced, {**CALL}, charged) == ["priced", "duplicate"]
    assert siblings(traced, charged, {**charged}, scopes=("openinference", "sdk")) == ["priced", "duplicate"]
    failed = {k: v for k, v in CALL.items() if "usage" not in k}
    assert siblings(traced, charged, failed) == ["priced", "no_usage"]
    assert siblings(traced, failed, charged) == ["no_usage", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_a_charge_not_believed_or_far_from_the_usage_pairs_with_nothing(table, path, armed):
    """A review of the pairing above: a cost key not believed (another currency, text, a bare
    0 beside no usage) still made a span 'reported', and the call's span of tokens became its
    copy, the call unpriced; and two calls made at once paired across (call B's $0.06 lost,
    call A billed twice). A charge pairs only when believed and within a factor of 2 of the
    usage's price."""
    traced = Traced(table, path)
    oi = {"openinference.span.kind": "LLM", "llm.model_name": "acme-large"}
    for unbelieved in (
        {**oi, "llm.cost.total": 0.0025, "gen_ai.usage.cost.currency": "EUR"},
        {**oi, "llm.cost.total": "0.0025"},
        {**{k: v for k, v in CALL.items() if "usage" not in k}, "gen_ai.usage.cost": 0},
    ):
        assert siblings(traced, unbelieved, {**CALL}, scopes=("openinference", "sdk")) == [
            "no_usage",
            "priced",
        ]
    # Two calls at once under one parent ($0.003 and $0.06 by the table), each traced twice
    run = traced.run()
    big = {**CALL, "gen_ai.usage.input_tokens": 20_000, "gen_ai.usage.output_tokens": 2_000}
    tracer = traced.provider.get_tracer
    spans = {
        name: tracer(scope).start_span(name, context=run, attributes=attrs, start_time=T0 + s * MS)
        for name, scope, attrs, s in (
            ("oi_a", "openinference", {**oi, "llm.cost.total": 0.0025}, 3),
            ("sdk_a", "sdk", {**CALL}, 2),
            ("oi_b", "openinference", {**oi, "llm.cost.total": 0.05}, 0),
            ("sdk_b", "sdk", big, 1),
        )
    }  # fmt: skip
    for name, end in (("oi_a", 1999), ("sdk_b", 2000), ("sdk_a", 2003), ("oi_b", 2010)):
        spans[name].end(T0 + end * MS)
    assert traced.statuses(*spans.values()) == ["priced", "duplicate", "duplicate", "priced"]


@pytest.mark.parametrize("path", PATHS)
def test_a_nested_pair_beside_a_third_instrumentations_span_is_one_call(table, path, armed):
    """openai-v2's span inside OpenLLMetry's (a nested pair), OpenInference's beside them:
    three spans of one call. The outer copy was never kept for the sibling, which was priced
    too (a review). When the outer one ends before the sibling, the sibling is its copy."""
    traced = Traced(table, path)
    run = traced.run()
    tracer = traced.provider.get_tracer
    c = tracer("openinference").start_span("c", context=run, attributes=OI_CALL, start_time=T0)
    a = tracer("openllmetry").start_span("a", context=run, attributes={**CALL}, start_time=T0 + MS)
    b = tracer("openai-v2").start_span("b", context=trace.set_span_in_context(a), start_time=T0 + 2 * MS)
    b.set_attributes({**CALL})
    b.end(T0 + 90 * MS)
    a.end(T0 + 95 * MS)
    c.end(T0 + 99 * MS)
    assert traced.statuses(b, a, c) == ["priced", "duplicate", "duplicate"]


@pytest.mark.parametrize("path", PATHS)
def test_a_failing_sibling_look_counts_an_internal_error_and_keeps_the_price(table, path, armed):
    # The stamp function looks after the span claimed its response id: a failure falling back
    # to the general path would have found that claim its own first (a duplicate).
    traced = Traced(table, path)

    def broken(*_: object) -> bool:
        raise RuntimeError("a bug")

    traced.processor._siblings.same_models = broken
    assert siblings(traced, OI_CALL, call("z")) == ["priced", "priced"]
    assert traced.processor.stats()["internal_errors"] == 1


@pytest.mark.parametrize("path", PATHS)
def test_two_calls_of_one_instrumentation_sharing_an_id_are_two(table, path):
    """One instrumentation never traces one call twice: two concurrent calls it traced that
    got one id from the server (Ollama's pool of 999) are two calls, both priced. A review
    lost the second (5,000 tokens against 1,000) as a duplicate of the first."""
    traced = Traced(table, path)
    run = traced.run()
    first = traced.chat(run, "chatcmpl-7", scope="openai")
    second = traced.chat(run, "chatcmpl-7", T0 + 1, scope="openai")
    second.set_attribute("gen_ai.usage.input_tokens", 5000)
    copy = traced.chat(run, "chatcmpl-7", T0 + 2, scope="framework")  # another's span of one of them
    first.end(T0 + 10)
    second.end(T0 + 11)
    copy.end(T0 + 12)
    assert traced.statuses(first, second, copy) == ["priced", "priced", "duplicate"]


@pytest.mark.parametrize("path", PATHS)
def test_a_fetched_response_traced_again_by_its_instrumentation_is_one_call(table, path):
    """OpenLLMetry traces ``responses.retrieve`` of a finished response as a second span of
    its own scope with the ``create`` span's start time, id and usage: one call (a second
    review: billed twice once scopes alone decided)."""
    traced = Traced(table, path)
    run = traced.run()
    create = traced.chat(run, "resp_1", scope="opentelemetry.instrumentation.openai.v1")
    create.end(T0 + 10)
    retrieve = traced.chat(run, "resp_1", scope="opentelemetry.instrumentation.openai.v1")
    retrieve.end(T0 + 20)
    assert traced.statuses(create, retrieve) == ["priced", "duplicate"]


@pytest.mark.parametrize("path", PATHS)
def test_two_calls_of_one_instrumentation_in_one_clock_tick_are_two(table, path):
    """On a coarse clock (Windows before Python 3.13: 15.6 ms) two calls made at once start
    in the same tick; with one id from the server they are two calls all the same when their
    usage differs (a review: the second, 5,000 tokens, lost)."""
    traced = Traced(table, path)
    run = traced.run()
    first = traced.chat(run, "chatcmpl-7", scope="openai")
    second = traced.chat(run, "chatcmpl-7", scope="openai")
    second.set_attribute("gen_ai.usage.input_tokens", 5000)
    first.end(T0 + 10)
    second.end(T0 + 11)
    assert traced.statuses(first, second) == ["priced", "priced"]


UNKNOWN = {**CALL, "gen_ai.request.model": "acme-unknown-9"}


@pytest.mark.parametrize("path", PATHS)
def test_a_call_to_an_unknown_model_traced_twice_is_one_unpriced_call(table, path):
    """A review: openai-v2 with OpenLLMetry, and OpenLLMetry with OpenInference nested, each
    stored two unknown_model calls for one call to a model the table lacks (10 calls and 4
    unpriced for 8 and 2), since only a priced span claimed its call. Now the first span to
    end is the call, the other its duplicate; a span that can price the call still stands
    beside an unpriced one (the money first)."""
    traced = Traced(table, path)
    run = traced.run()
    by_id = {**UNKNOWN, "gen_ai.response.id": "msg_u"}
    tracers = [traced.provider.get_tracer(s) for s in ("instrumentation-a", "instrumentation-b")]
    first = tracers[0].start_span("chat", context=run, attributes=by_id, start_time=T0)
    second = tracers[1].start_span("chat", context=run, attributes=by_id, start_time=T0 + 1)
    first.end(T0 + 10)
    second.end(T0 + 11)
    assert traced.statuses(first, second) == ["unknown_model", "duplicate"]
    # one instrumentation's two calls that a server gave one id, one after the other: two
    later = tracers[0].start_span("chat", context=run, attributes=by_id, start_time=T0 + 20)
    later.end(T0 + 30)
    assert traced.statuses(later) == ["unknown_model"]
    # ... and a span that prices the call beside an unpriced one with its id: both stand
    rid = {"gen_ai.response.id": "msg_p"}
    priced = tracers[1].start_span("chat", context=run, attributes={**CALL, **rid}, start_time=T0 + 40)
    unpriced = tracers[0].start_span("chat", context=run, attributes={**UNKNOWN, **rid}, start_time=T0 + 40)
    unpriced.end(T0 + 50)
    priced.end(T0 + 51)
    assert traced.statuses(unpriced, priced) == ["unknown_model", "priced"]
    # nested, without ids (OpenInference's span inside OpenLLMetry's), in either end order
    oi = {"openinference.span.kind": "LLM", "llm.model_name": "acme-unknown-9",
          "llm.token_count.prompt": 1000, "llm.token_count.completion": 100}  # fmt: skip
    assert nested(traced, UNKNOWN, oi) == ["duplicate", "unknown_model"]
    assert nested(traced, UNKNOWN, oi, outer_first=True) == ["unknown_model", "duplicate"]
    # of another size: two calls; naming a model the table knows: priced beside it
    bigger = {**oi, "llm.token_count.prompt": 5000}
    assert nested(traced, UNKNOWN, bigger) == ["unknown_model", "unknown_model"]
    assert nested(traced, CALL, {**oi, "llm.model_name": "acme-unknown-9"}) == ["priced", "unknown_model"]
    stats = traced.processor.stats()
    assert (stats["unknown_model"], stats["duplicate"]) == (8, 3)


@pytest.mark.parametrize("path", PATHS)
def test_an_unpriced_pair_never_hides_a_reported_cost_or_the_usage(table, path):
    """The review of the rule above: a span carrying its provider's cost beside an unpriced
    copy of its call was made the duplicate (the $0.42 left every rollup), in either end
    order; and by response id, a span with usage was made the duplicate of one without (its
    tokens lost to --reprice). Both stand now, as before the rule."""
    traced = Traced(table, path)
    oi = {"openinference.span.kind": "LLM", "llm.model_name": "acme-unknown-9",
          "llm.token_count.prompt": 1000, "llm.token_count.completion": 100}  # fmt: skip
    assert nested(traced, {**UNKNOWN, "gen_ai.usage.cost": 0.42}, oi) == ["priced", "unknown_model"]
    assert nested(traced, UNKNOWN, {**oi, "llm.cost.total": 0.42}, outer_first=True) == [
        "unknown_model",
        "priced",
    ]
    run = traced.run()
    tracers = [traced.provider.get_tracer(s) for s in ("instrumentation-a", "instrumentation-b")]
    rid = {"gen_ai.response.id": "msg_v"}
    bare = {k: v for k, v in UNKNOWN.items() if not k.startswith("gen_ai.usage.")}
    first = tracers[0].start_span("chat", context=run, attributes={**bare, **rid}, start_time=T0)
    second = tracers[1].start_span("chat", context=run, attributes={**UNKNOWN, **rid}, start_time=T0 + 1)
    first.end(T0 + 10)
    second.end(T0 + 11)
    assert traced.statuses(first, second) == ["no_usage", "unknown_model"]
    # ... the other way round, the span without usage is the copy
    third = tracers[0].start_span("chat", context=run, attributes={**bare, **rid}, start_time=T0 + 2)
    third.end(T0 + 12)
    assert traced.statuses(third) == ["duplicate"]
