"""Which spans are one model call, and which agent step each is: the processor's bookkeeping.

Two instrumentations can trace one API call (the anthropic SDK's own span beside
OpenLLMetry's; OpenLLMetry's ``openai.chat`` around OpenInference's ``ChatCompletion``): the
call must be billed once. `FirstSpans` remembers which span first priced each recent
response id of a trace; `Paired` marks a model-call span started inside another scope's
model-call span, and the sizes (`call_size`, `same_size`) tell whether the two are one call.
`Steps` numbers an agent's calls. `sdk/processor.py` decides with them; `sdk/stamps.py`
makes the common claim inline.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import re
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..cost.reported import REPORTED_COST_KEYS, reported_usd
from ..semconv import MODEL_KEYS, read_call_fields
from . import seam

__all__ = [
    "CHAIN", "CLAIMS_A_KEY", "ID_CHARS", "MODEL_SETS_KEPT", "OPEN_KEPT", "RESPONSES_KEPT",
    "SIBLINGS_A_PARENT", "SIBLING_PARENTS_KEPT", "FirstSpans", "Paired", "Siblings", "Size", "Steps",
    "call_models", "call_size", "claimed_id", "enclosing_spans", "model_of", "near", "profile_free",
    "same_size", "scope_of", "sum_sizes",
]  # fmt: skip

RESPONSES_KEPT = 4096  # at least the newest claims kept, to spot a second span of a call
OPEN_KEPT = 16  # an agent's calls numbered at start and not yet shared, kept to pair (Steps)
CLAIMS_A_KEY = 8  # claims kept for a (trace, response id) that calls reuse (see FirstSpans)
ID_CHARS = 256  # a response id longer than this is kept as its digest (see `claimed_id`)


class Steps(itertools.count):
    """The step counter of one agent span: ``next(steps)`` is the next index. Counting in C
    is atomic under the GIL, so numbering itself takes no lock. ``open``: the model calls it
    numbered at start that no span has shared yet, oldest first, as (a weak reference to the
    span, its step, its instrumentation scope's name), for the processor's `_call_step` (under its
    lock)."""

    __slots__ = ("__weakref__", "open")

    def __init__(self, *_: int) -> None:  # count's own arguments: its __new__ reads them
        self.open: list[tuple[Any, int, str]] = []


class Paired:
    """The marker (seam.MARKER) of a model-call span nested in another instrumentation's
    model-call span, and of that outer span once an inner one has been stamped: two spans
    one API call makes when two instrumentations trace it (OpenLLMetry's ``openai.chat``
    around OpenInference's ``ChatCompletion`` or openai-v2's span, for chat and embeddings
    alike; LangChain's around both), whose response ids cannot pair them when one has none
    (OpenInference records none, and an embedding has none at all). The first to end is
    stamped; the others are duplicates when they are the same call (the processor's `_copy_of`).
    ``steps``: its agent's step counter (or None), as the marker holds otherwise;
    ``outer``: for an inner span, a weak reference to the span it started under; ``inner``:
    for an outer span, what the calls stamped inside it said, by the models they named:
    [the priced calls' summed `Size` (None once one had no usage), whether one was priced,
    whether one could not be priced, the first 16 priced calls' sizes, the first 16 sizes of
    calls that could not be priced]."""

    __slots__ = ("inner", "outer", "steps")

    def __init__(self, steps: Steps | None, outer: Any = None) -> None:
        self.steps, self.outer = steps, outer
        self.inner: dict[frozenset[str], list[Any]] | None = None


# A call's size as instrumentations report it: (input tokens, input with the cache counted
# in, output tokens, output with the reasoning counted in), each None when not reported.
# Both readings are kept: whether a count includes the cache or the reasoning is not always
# told (cost/engine.py infers it only when a part exceeds the whole).
Size = tuple[int | None, int | None, int | None, int | None]
MODEL_SETS_KEPT = 16  # distinct model sets an outer span keeps what its inner calls said of
CHAIN = 8  # the most nested spans of one call looked up or told


def call_models(attrs: Mapping[str, Any]) -> frozenset[str]:
    """Every model a span names (requested, responded, OpenInference's)."""
    return frozenset(v for key in MODEL_KEYS if type(v := attrs.get(key)) is str and v)


# A Bedrock cross-region inference profile's geography before the model id
# (``global.anthropic.claude-...``, ``us.amazon.nova-...``), which OpenLLMetry's bedrock
# instrumentation drops from the id it reports and the others keep: its span and
# OpenInference's of one call then named ids the table prices apart (the in-region entry, 10%
# over the global one) and the call was billed twice (a review: +88%).
_PROFILE = re.compile(r"(?:global|us|us-gov|eu|apac|au|jp|ca)\.(?=[a-z0-9-]+\.)")


def profile_free(models: frozenset[str]) -> frozenset[str]:
    """``models`` without their Bedrock inference profile prefixes."""
    return frozenset(m[found.end() :] if (found := _PROFILE.match(m)) else m for m in models)


def call_size(attrs: Mapping[str, Any]) -> Size | None:
    """A call's `Size`; None: no usage."""
    counts = read_call_fields(attrs)[3]
    inp, out, read, write, _, reasoning = (v if type(v) is int and v >= 0 else None for v in counts[:6])
    cache = (read or 0) + (write or 0)
    if not inp and not out and not cache:
        return None
    if inp is None and cache:
        inp = 0  # the cache alone (Anthropic's raw counts of a fully cached prompt)
    return (
        inp,
        None if inp is None else inp + cache,
        out,
        None if out is None else out + (reasoning or 0),
    )


def near(a: int, b: int) -> bool:
    """Counts of one call as two instrumentations report them: a token apart at most, or 1%
    (OpenLLMetry's Anthropic streams count one output token more)."""
    return abs(a - b) <= max(1, max(a, b) // 100)


def same_size(a: Size, b: Size) -> bool:
    """Whether two sizes may be one call's: the input and the output, where both report it,
    near under one reading or the other (the cache and the reasoning counted in or not).
    A count one span reports and the other does not (the input on one span only) is not
    shown to be one call's: both are priced (a review found a looser rule dropping whole
    calls, a 90k-input chat taken for the copy of a call that reported its output alone)."""
    compared = False
    for i in (0, 2):
        mine = {x for x in a[i : i + 2] if x is not None}
        theirs = {y for y in b[i : i + 2] if y is not None}
        if bool(mine) != bool(theirs):
            return False
        if mine:
            if not any(near(x, y) for x in mine for y in theirs):
                return False
            compared = True
    return compared


def sum_sizes(sizes: list[Size | None]) -> Size | None:
    """The sizes of several calls summed, each reading apart (None where one lacks it)."""
    if any(size is None for size in sizes):
        return None
    return tuple(  # type: ignore[return-value]
        None if any(size[i] is None for size in sizes) else sum(size[i] for size in sizes)  # type: ignore[index,misc]
        for i in range(4)
    )


def enclosing_spans(paired: Paired) -> list[Any]:
    """The enclosing_spans spans of a pair's inner span, nearest first (alive ones)."""
    found: list[Any] = []
    ref = paired.outer
    while ref is not None and len(found) < CHAIN:
        span = ref()
        if span is None:
            break
        found.append(span)
        marker = getattr(span, seam.MARKER, None)
        ref = marker.outer if type(marker) is Paired else None
    return found


def scope_of(span: object) -> object:
    """The name of a span's instrumentation scope (None: none)."""
    return getattr(getattr(span, "instrumentation_scope", None), "name", None)


class FirstSpans:
    """Which span first priced each recent response id of a trace. Two spans of one trace
    with one gen_ai.response.id whose times overlap are two instrumentations of one API call
    (the anthropic SDK's own span and OpenLLMetry's, siblings that both cover the request; a
    framework's span around the SDK's): the second is a duplicate. Spans that do not overlap
    are calls of their own, however alike their ids: servers reuse short ids (Ollama's
    OpenAI endpoint draws ``chatcmpl-<0..998>``; a proxy or a fake may send one constant id),
    and an agent's calls follow one another.

    Spans of one instrumentation scope are copies of each other by their ids only when they
    start at the same instant (`_copies`): one instrumentation traces a call once, but for
    a response it fetches again (OpenLLMetry's ``responses.retrieve``, with the first span's
    start), while two concurrent calls may get one id from a server that reuses short ids (a
    review lost the second of two such calls, 5,000 tokens against 1,000).

    ``claims`` maps (trace id, response id) to the (start, end, scope name, cost) of the
    span that priced the call (times in ns), or, once calls of a trace reuse the id, a list
    of the latest CLAIMS_A_KEY
    (spans usually end in order, so a span overlapping an earlier claim of its key overlaps
    the latest too; not a span ended with an end time of the past, as a bridge from another
    tracing system may). Past ``limit`` keys the oldest claims are forgotten down
    to the newest ``kept`` (RESPONSES_KEPT); a call reusing an id claims anew, last in the
    order, so eviction never separates a pair unless ``kept`` calls end between its spans.
    The stamp functions (sdk/stamps.py) make the common claim, a key not seen before, inline
    with one ``setdefault`` on ``claims`` (never replaced); the rest is `settle`'s, under a
    lock."""

    __slots__ = ("_lock", "claims", "kept", "limit", "unpriced")

    def __init__(self) -> None:
        self.claims: dict[tuple[int, str], Any] = {}  # a (start, end, scope name, cost), or a list of them
        # (trace id, response id) -> ((start, end, scope name, None), whether it had usage) of
        # the latest spans (CLAIMS_A_KEY) that could not price their call and were no copy
        # (`note_unpriced`): apart from the claims, so that a span that prices the call later
        # is never taken for a copy.
        self.unpriced: dict[tuple[int, str], Any] = {}
        self.kept = RESPONSES_KEPT
        self.limit = 2 * RESPONSES_KEPT
        # Re-entrant: a span ended in this thread while it is inside settle (a finalizer the
        # collector runs, a signal handler) settles too. Nothing here breaks if it does: the
        # trim pops from a copy of the keys, a claim re-reads what it finds.
        self._lock = threading.RLock()

    def claim(self, rid: str, span: Any, usd: float | None = None) -> bool:
        """Record that ``span`` priced ``rid`` (at ``usd``): False when a span of its trace
        that overlaps it in time did so first (this one is a duplicate)."""
        key, mine = _mark(span, rid, usd)
        return self.settle(key, mine, self.claims.setdefault(key, mine))  # atomic: one first

    def settle(self, key: tuple[int, str], mine: tuple[int, int, Any], first: Any) -> bool:
        """The rest of `claim`, once ``claims.setdefault(key, mine)`` returned ``first``. A
        stamp function calls it only when ``first`` is not ``mine`` or ``claims`` holds more
        than ``limit`` keys: otherwise it returns True."""
        with self._lock:
            claims = self.claims
            if first is not mine:
                held = claims.get(key)  # again, under the lock: a trim may have dropped it
                entry: Any = mine
                if held is not None:
                    earlier = _claims_in(held)
                    if any(_copies(claim, mine) for claim in earlier):
                        return False
                    claims.pop(key, None)  # a call of its own reusing the id: claims anew, last
                    entry = [*earlier[1 - CLAIMS_A_KEY :], mine]
                # setdefault, not a store: a span ending at this moment may have claimed it
                # inline since (the lock does not hold the stamp functions); it overlaps this one
                first = claims.setdefault(key, entry)
                if first is not entry and type(first) is tuple and _copies(first, mine):
                    return False
            if len(claims) > self.limit:
                keys = list(claims)  # the oldest first (a dict keeps insertion order)
                for old in keys[: len(keys) - self.kept]:
                    claims.pop(old, None)
        return True

    def note_unpriced(self, rid: str, span: Any, usage: bool = True) -> bool:
        """For a span that did not price its call (``usage``: whether it reported any):
        whether a span of its trace overlapping it in time did, or also did not and ended
        first with usage if this one has any (this one is a duplicate: two instrumentations
        of one call to a model the table lacks were two unpriced calls, and alert rules on
        unpriced calls fired at twice the count; a review). A span without usage is never
        the call a span with usage copies: its tokens would be lost to `--reprice` (the
        review of that fix). Else it is noted."""
        if self.seen(rid, span):
            return True
        key, mine = _mark(span, rid)
        with self._lock:
            held = self.unpriced.pop(key, ())
            if any((had or not usage) and _copies(other, mine) for other, had in held):
                self.unpriced[key] = held
                return True
            # Tuples of names and numbers, as the claims: the collector untracks them.
            self.unpriced[key] = (*held[1 - CLAIMS_A_KEY :], (mine, usage))  # last in the order
            if len(self.unpriced) > self.limit:
                keys = list(self.unpriced)
                for old in keys[: len(keys) - self.kept]:
                    self.unpriced.pop(old, None)
        return False

    def seen(self, rid: str, span: Any) -> bool:
        """Whether a span of ``span``'s trace that overlaps it in time priced ``rid``."""
        key, mine = _mark(span, rid)
        held = self.claims.get(key)
        if held is None:
            return False
        return any(_copies(claim, mine) for claim in _claims_in(held))


SIBLINGS_A_PARENT = 32  # calls kept per parent span to pair siblings with (see Siblings)
SIBLING_PARENTS_KEPT = 1024  # parents kept at least (siblings end within moments of each other)
# `Siblings.arm`: an instrumentation whose model-call spans carry no response id, and those
# that trace the same calls beside it as siblings (the anthropic SDK's own spans, OpenLLMetry's).
_NO_ID_PRODUCERS = ("openinference.instrumentation",)
_SIBLING_PRODUCERS = (
    "anthropic",
    "opentelemetry.instrumentation.openai",
    "opentelemetry.instrumentation.anthropic",
    "opentelemetry.instrumentation.langchain",
    "opentelemetry.instrumentation.openai_v2",
)


class Siblings:
    """Calls two instrumentations trace as siblings, neither started inside the other, with
    no response id in common: OpenInference's span of the anthropic ``messages.stream()``
    helper is never made current, so the SDK's own span of the call is its sibling;
    OpenLLMetry's and OpenInference's spans of a Responses API call likewise. Such a pair is
    one call when the two spans share a parent, come from different instrumentation scopes,
    at least one of them has no response id (two spans with ids pair by them, `FirstSpans`,
    or are two calls), one's time lies within the other's, starting and ending close to it
    (`_wraps`: one wraps the other's request), and they name one model (``same_models``)
    with one size (`same_size`); or, neither with usage nor a reported cost (a failed call),
    they overlap in time and name one model or one of them none. The later to end is the
    copy, and a call is the first of one copy at most: two equal calls made at once stay two
    calls, and of three spans of one call without an id in common, two stay priced.

    It is off (one attribute test a call) until `arm` finds such a pair of instrumentations
    loaded: an application with one instrumentation pays nothing for it. ``calls``: (trace
    id, parent span id) -> up to `SIBLINGS_A_PARENT` calls under it (a batch fanned out
    under one span: those already paired are forgotten first, then the older half), as [scope,
    models, size, start, end, whether it has a response id, the scope of its copy once found];
    past ``limit`` keys the oldest are forgotten."""

    __slots__ = ("_lock", "active", "calls", "kept", "limit", "on_error", "same_models")

    def __init__(self, same_models: Any, on_error: Any = None) -> None:
        self.calls: dict[tuple[int, int], list[list[Any]]] = {}
        self.active = False
        self.kept = SIBLING_PARENTS_KEPT
        self.limit = 2 * SIBLING_PARENTS_KEPT
        self.same_models = same_models  # (models, models, attrs, start ns) -> bool
        self.on_error = on_error  # (where) -> None: the processor's count of internal errors
        self._lock = threading.RLock()

    def arm(self) -> None:
        """Switch the check on when an instrumentation that records no response id
        (OpenInference's) is loaded beside one that traces the same calls as siblings (the
        anthropic SDK, which traces itself; OpenLLMetry's). Called when a shape's stamp
        function is compiled, and by the general end hook while it is off: a few lookups in
        ``sys.modules``. Once on, it stays on."""
        if self.active:
            return
        modules = sys.modules
        if any(p in modules for p in _NO_ID_PRODUCERS) and any(p in modules for p in _SIBLING_PRODUCERS):
            self.active = True

    def copy(self, span: Any, attrs: Mapping[str, Any], ns: int, rid: bool, usd: float | None = None) -> bool:
        """Whether ``span`` (a model call, started at ``ns``; ``rid``: it has a response id)
        is the copy of a sibling call another scope's span made first; else it is kept to
        pair later ones with. Call it only while ``active``. Never raises: the stamp function
        calls it after the span claimed its response id, and a retry on the general path
        would find that claim its own first (False: priced, as before the rule). ``usd``: what
        the span was priced at, if it was (a span of usage pairs with one of the provider's
        charge alone only when the two are near: `_one_call`)."""
        try:
            return self._settle(span, attrs, ns, rid, look=True, usd=usd)
        except Exception:
            self._failed()
            return False

    def keep(self, span: Any, attrs: Mapping[str, Any], ns: int, rid: bool) -> None:
        """Keep ``span`` to pair later siblings with, without looking for its own first: an
        outer span the nested-pair rule found a copy of the call inside it (openai-v2's in
        OpenLLMetry's), whose sibling (OpenInference's, beside it) is the same call."""
        try:
            self._settle(span, attrs, ns, rid, look=False)
        except Exception:
            self._failed()

    def _failed(self) -> None:
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error("end")

    def _settle(
        self, span: Any, attrs: Mapping[str, Any], ns: int, rid: bool, *, look: bool, usd: float | None = None
    ) -> bool:
        parent = getattr(span, "parent", None)
        if parent is None:
            return False  # a root span has no siblings (two root spans are two traces)
        scope = scope_of(span)
        end = getattr(span, "end_time", None) or time.time_ns()
        size: Any = call_size(attrs)
        if size is None and any(key in attrs for key in REPORTED_COST_KEYS):
            # A cost the provider reported, believed, no usage: a call priced by that charge,
            # never taken for a failed one (a figure not believed, in another currency, text:
            # no charge, so the failed call it is; it cancelled the call's priced span: a review)
            charge = reported_usd(attrs)
            if charge is not None:
                size, usd = (_REPORTED, charge), charge
        mine = [scope, call_models(attrs), size, ns, end, rid, None, usd]
        key = (span.get_span_context().trace_id, parent.span_id)
        with self._lock:
            held = self.calls.get(key)
            if held is not None and look:
                # The closest in time of those that may be its first: with equal calls made
                # at once, a copy taken for another call's first leaves both counted.
                found = [
                    other
                    for other in held  # another scope's, at the same time: then the rule
                    if other[0] != scope
                    and other[3] <= end
                    and ns <= other[4]
                    and self._one_call(other, mine, attrs)
                ]
                if found:
                    first = min(found, key=lambda other: abs(other[3] - ns) + abs(other[4] - end))
                    first[6] = scope  # its copy found: never another's (a third scope's may be
                    return True  # another call's), so three spans without one id stay two
            if held is None:
                held = self.calls[key] = []
            held.append(mine)
            if len(held) > SIBLINGS_A_PARENT:  # a batch fanned out: the paired ones go first,
                held[:] = [other for other in held if other[6] is None]
                if len(held) > SIBLINGS_A_PARENT:  # then the older half (amortised: not each call)
                    del held[: len(held) - SIBLINGS_A_PARENT // 2]
            if len(self.calls) > self.limit:
                for old in list(self.calls)[: len(self.calls) - self.kept]:
                    self.calls.pop(old, None)
        return False

    def _one_call(self, other: list[Any], mine: list[Any], attrs: Mapping[str, Any]) -> bool:
        scope, models, size, start, end, rid, _, _ = mine
        if other[0] == scope or other[6] is not None:
            return False  # its own scope's, or its copy was found already
        if rid and other[5]:
            return False  # two response ids: the same one pairs by it, two are two calls
        mine_reported, other_reported = _is_reported(size), _is_reported(other[2])
        if mine_reported or other_reported:
            # A span that saw the provider's charge and not the tokens: priced by that charge
            # since it is believed without usage, so beside the same call's span with tokens
            # the call was billed twice (a review). It pairs with a span of usage, or of the
            # same charge, that wraps the same request; never with a failed call's.
            if size is None or other[2] is None:
                return False
            if mine_reported and other_reported:
                if not _same_charge(size[1], other[2][1]):
                    return False  # two charges: two calls
            elif not _near_charge(mine[7], other[7]):
                # The charge and the usage's price far apart: two calls made at once (two
                # equal-time calls paired across, one lost and one billed twice: a review)
                return False
            if not _wraps(other[3], other[4], start, end):
                return False
            return bool(self.same_models(other[1], models, attrs, start))
        if (size is None) != (other[2] is None):
            return False  # usage on one alone: the money first, two calls
        if size is None:  # a failed call (no money at stake): at the same time is enough
            if not _overlap((other[3], other[4]), (start, end)):
                return False
            if not models or not other[1]:
                return True  # one span naming no model (OpenInference's error span)
        elif not _wraps(other[3], other[4], start, end) or not same_size(size, other[2]):
            return False  # two spans of one call: one wraps the other's request, one size
        return bool(self.same_models(other[1], models, attrs, start))


# How far apart the starts, and the ends, of two spans of one call may be (`_wraps`): the
# larger of this and a twentieth of the longer span (the measured pairs: 0.2-8.4 ms apart).
_WRAP_NS = 25_000_000
_REPORTED = object()  # `Siblings`: (_REPORTED, its cost) a call's size without usage


def _is_reported(size: Any) -> bool:
    return type(size) is tuple and len(size) == 2 and size[0] is _REPORTED


def _same_charge(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _near_charge(a: float | None, b: float | None) -> bool:
    """Whether a provider's charge and our price of the same call's usage may be one call's:
    within a factor of `CHARGE_FACTOR` (discounts, caching, a price the table has not caught
    up with), both known."""
    if a is None or b is None:
        return False
    low, high = min(a, b), max(a, b)
    return high <= low * CHARGE_FACTOR if low > 0 else high == 0


CHARGE_FACTOR = 2.0


def _wraps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """Whether two spans wrap one request: one's time within the other's, starting and
    ending close to it. A separate call made at once merely overlaps; a short call made
    inside a long streamed one lies within it but far from its start or its end."""
    if not ((a_start <= b_start and b_end <= a_end) or (b_start <= a_start and a_end <= b_end)):
        return False
    near = max(_WRAP_NS, max(a_end - a_start, b_end - b_start) // 20)
    return abs(a_start - b_start) <= near and abs(a_end - b_end) <= near


def _mark(span: Any, rid: str, usd: float | None = None) -> tuple[tuple[int, str], tuple[int, int, Any, Any]]:
    """A span's claim of ``rid``: its key (trace id, response id) and its (start, end,
    instrumentation scope's name, cost: None for a span not priced). Only names and numbers:
    a tuple of them the garbage collector untracks, so the kept claims cost no collection."""
    start = span.start_time or 0
    end = span.end_time or time.time_ns()  # ending now (end() is hooked: the time comes after)
    return (span.get_span_context().trace_id, claimed_id(rid)), (start, end, scope_of(span), usd)


def _copies(a: tuple[int, int, Any, Any], b: tuple[int, int, Any, Any]) -> bool:
    """Whether two claims of one key are one call's spans: overlapping in time, of two
    instrumentation scopes (their names, as claims keep them; a span without one: None), or of one
    scope starting at the same instant at the same cost: OpenLLMetry's span of a
    ``responses.retrieve`` of a finished response copies its ``create`` span's start time,
    id and usage (a review: $0.90 for a $0.45 call), while two calls made at once start
    apart, or, on a coarse clock, differ in what they cost (another review)."""
    if not _overlap(a, b):
        return False
    if a[2] != b[2]:
        return True
    return a[0] == b[0] and a[3] is not None and b[3] is not None and math.isclose(a[3], b[3], rel_tol=1e-9)


def claimed_id(rid: str) -> str:
    """The response id as `FirstSpans` keeps it: itself, or past ID_CHARS its SHA-256, so
    that the RESPONSES_KEPT * 2 claims a processor keeps stay a few hundred kB whatever a
    server or a hostile proxy sends (8,192 ids of 100 kB were 800 MB). Real ids are 20-60
    characters; the digest's leading NUL keeps it apart from any of them."""
    if len(rid) <= ID_CHARS:
        return rid
    return "\0sha256:" + hashlib.sha256(rid.encode("utf-8", "surrogatepass")).hexdigest()


def model_of(attrs: Mapping[str, Any]) -> object:
    """The model a span names (None: none yet; an instrumentation may set it after start)."""
    return next((attrs[key] for key in MODEL_KEYS if key in attrs), None)


def _claims_in(held: Any) -> list[tuple[int, int, Any]]:
    """The claims one key of `FirstSpans.claims` holds: a (start, end, scope name, cost) alone, or a list."""
    return held if type(held) is list else [held]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two spans' times (start, end) overlap: two spans of one trace reporting one
    response id that overlap both cover the request, one call. Spans that only touch are
    calls one after the other (on a coarse clock, Windows before Python 3.13 ticking every
    15.6 ms, the next call often starts in the tick the last ended), unless one of them is
    an instant (shorter than a tick): then touching is all the clock can show of a
    covering."""
    if a[0] < b[1] and b[0] < a[1]:
        return True
    return (a[0] == a[1] or b[0] == b[1]) and a[0] <= b[1] and b[0] <= a[1]
