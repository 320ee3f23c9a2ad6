"""How the OpenTelemetry SDK ends a span and stores attributes. Only ``sdk/seam*.py`` touch SDK
internals: this module, and ``sdk/seam_records.py`` (finished spans read as records).

Why this exists: no public SpanProcessor hook can add an attribute that every exporter sees.
``on_end`` gets a ReadableSpan whose attributes are frozen (mutating them raises inside the
user's code), and processors registered before ours have had their ``on_end`` by then. The
spec's answer is OnEnding: called inside ``Span.end()``, before any ``on_end``, with the
span still mutable. The SDK has it as the private, development-status ``_on_ending`` (SDK
1.40+, PR opentelemetry-python#4775), but 1.45.2 freezes the attributes *before* calling it,
so ``set_attribute`` there is dropped with "Setting attribute on ended span" (issue #5614,
fix #5613 still open).

So there are two ways to run a callback inside ``span.end()`` while every processor can still
see what it adds:

- ending (default): the processor's ``_on_ending``, writing the values straight into the
  span's attribute dict. Safe: the SDK has already stopped other threads from writing the
  span, and no ``on_end`` has run yet. Costs nothing at span start.
- closure (fallback, for an SDK without a usable ``_on_ending``, or a processor wrapping ours
  that does not pass it on): shadow ``end`` with an instance closure installed at start. The
  closure deletes itself first thing, so the span -> closure -> span cycle is gone once the
  span has ended. About 0.5 us more per span than ending.

SDK and API internals, each with a public fallback used when it is missing:

- the live attribute dict (``span._attributes._dict``): ``span.attributes`` wraps a
  copy-on-iterate mapping in a new proxy on every call;
- `add_attributes` writes our own already-valid values straight into that dict under the
  span's lock: ``set_attributes`` re-validates each value (~1.5 us per attribute, as much as
  pricing the call);
- the context keys of the current span and of baggage, read straight from the ``Context``
  (a dict), as ``get_current_span`` / ``baggage.get_all`` do, without their allocations.

`self_test()` checks all of it against the installed SDK, switches to the public paths and
the closure if something broke, and says what; tests/test_processor_seam.py runs it, so an
SDK upgrade that breaks the seam fails loudly.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry import baggage as _baggage_api
from opentelemetry import context as _context_api
from opentelemetry import trace as _trace_api
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import Span

logger = logging.getLogger(__name__)

# Called inside span.end() with the span and its live attributes; returns what to add.
BeforeEnd = Callable[[Span, Mapping[str, Any]], "dict[str, Any] | None"]
# The same for spans of one shape (their keys in order), with the span's start time (ns); it
# may add its values to the live attributes itself (see EndHook) and return None.
ByShape = Callable[[Span, dict[str, Any], int], "dict[str, Any] | None"]
# Called with the values when a span's attribute count limit leaves no room for them all:
# returns what to write all the same (the SDK evicting the span's oldest attributes for it),
# or None for nothing.
NoRoom = Callable[[dict[str, Any]], "dict[str, Any] | None"]

EMPTY: Mapping[str, Any] = MappingProxyType({})

try:
    from opentelemetry.baggage import _BAGGAGE_KEY
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - an API release renamed them: use the public calls
    _SPAN_KEY = _BAGGAGE_KEY = None  # type: ignore[assignment]
try:  # the default runtime context is one ContextVar: read it without two Python calls
    _current_context: Callable[[], Context] = _context_api._RUNTIME_CONTEXT._current_context.get  # type: ignore[attr-defined]
except AttributeError:  # another runtime context (OTEL_PYTHON_CONTEXT): ask it
    _current_context = get_current

# Flipped off by self_test() when the installed SDK no longer matches what the fast paths
# assume; everything then goes through the public API.
_fast = _SPAN_KEY is not None
# Whether the SDK calls _on_ending in a way we can stamp from (checked by self_test()).
_ending_works = _fast


def ending_works() -> bool:
    """Whether the installed SDK calls ``_on_ending`` in a way a processor can stamp from, as
    `self_test` last found (before it runs: assumed when the fast paths are on)."""
    return _ending_works


def attributes_of(span: object) -> Mapping[str, Any]:
    """The span's live attributes (read-only by contract); empty for a non-SDK span."""
    try:
        return span._attributes._dict  # type: ignore[attr-defined]
    except AttributeError:
        attrs = getattr(span, "attributes", None)
        return attrs if isinstance(attrs, Mapping) else EMPTY


def parent_and_baggage(parent_context: Context | None) -> tuple[object | None, Mapping[str, object]]:
    """The span in ``parent_context`` (None if there is none) and its baggage (maybe empty)."""
    parent, _, bag = parent_of(parent_context)
    return parent, bag


def parent_of(
    parent_context: Context | None,
) -> tuple[object | None, Mapping[str, Any], Mapping[str, object]]:
    """The span in ``parent_context`` (None if there is none), its live attributes (read-only
    by contract) and the context's baggage (maybe empty): one call per span start."""
    if _fast:
        ctx = parent_context if parent_context is not None else _current_context()
        parent = ctx.get(_SPAN_KEY)  # type: ignore[arg-type]
        bag = ctx.get(_BAGGAGE_KEY)  # type: ignore[arg-type]
        if not isinstance(bag, dict):
            bag = EMPTY
        if parent is None:
            return None, EMPTY, bag
        try:
            return parent, parent._attributes._dict, bag
        except AttributeError:
            return parent, attributes_of(parent), bag
    parent = _trace_api.get_current_span(parent_context)
    if parent is _trace_api.INVALID_SPAN:
        return None, EMPTY, _baggage_api.get_all(parent_context)
    return parent, attributes_of(parent), _baggage_api.get_all(parent_context)


Found = Callable[[Span, Any, Mapping[str, Any], Mapping[str, object]], None]

# The Python attribute `start_filter` gives every span it sees (None; its owner may set a
# value in ``found``), so that reading it on a parent is an attribute read, not a getattr()
# call with a default; spelled out where it is read and written.
MARKER = "_costattr_agent"


def start_filter(
    hook: EndHook,
    wanted: frozenset[str],
    identity: frozenset[str],
    found: Found,
    fallback: Callable[[Span, Context | None], None],
) -> Callable[[Span, Context | None], None]:
    """An ``on_start`` for the common case, built around what it looks for: after
    ``hook.ensure(span)`` (``fallback`` if that fails), it returns at once unless the parent
    span holds one of ``wanted``, carries a `MARKER` other than None, or the baggage holds
    one of ``identity``; then it calls ``found(span, parent or None, parent attributes,
    baggage or EMPTY)``. Every span it sees gets `MARKER` None first. If the SDK surprises
    it, ``fallback(span, parent_context)`` does the whole job through `parent_of`."""
    if not _fast:
        return fallback
    ensure = hook.ensure
    # The provider's composite processor last found to call the owner's _on_ending itself.
    # Its members are only ever added to (add_span_processor replaces the tuple with a
    # longer one), so once it calls the owner it always will: a span of it needs no further
    # test (ensure's own test reads the tuple and two of its items on every span).
    hooked: object = None

    def on_start(span: Span, parent_context: Context | None = None) -> None:
        nonlocal hooked
        try:
            composite = span._span_processor
            if composite is not hooked:
                if not ensure(span):
                    fallback(span, parent_context)  # counts it as unhooked
                    return
                seen = hook._seen
                if seen[1] and composite._span_processors is seen[0]:
                    hooked = composite
            span._costattr_agent = None  # MARKER
            ctx = parent_context if parent_context is not None else _current_context()
            parent = ctx.get(_SPAN_KEY)  # type: ignore[arg-type]
            # A context holding the parent span alone has no baggage: len() costs less.
            bag = ctx.get(_BAGGAGE_KEY) if parent is None or len(ctx) > 1 else None  # type: ignore[arg-type]
            if bag is not None and (type(bag) is not dict or identity.isdisjoint(bag)):
                bag = None  # nothing in it to inherit
            if parent is None:
                if bag is None:
                    return  # a root span without identity in its baggage
                pattrs: Mapping[str, Any] = EMPTY
            else:
                try:  # attribute reads, not getattr(): a call less each on every span
                    pattrs = parent._attributes._dict
                    marked = parent._costattr_agent  # MARKER
                except AttributeError:  # a remote parent (NonRecordingSpan), another class
                    pattrs = attributes_of(parent)
                    marked = getattr(parent, MARKER, None)
                if bag is None and marked is None and wanted.isdisjoint(pattrs):
                    return  # a plain parent: the common case
        except Exception:
            fallback(span, parent_context)
            return
        found(span, parent, pattrs, EMPTY if bag is None else bag)

    return on_start


def add_attributes(span: Span, values: dict[str, Any], *, whole: bool = False, evict: bool = False) -> None:
    """Add attributes to a span that has not ended. Values must already be valid attribute
    values (str, bool, int, float): they skip the SDK's per-value cleaning. ``whole``: never
    cut at the span's value length limit (our stamp, `_add_values`); other values (identity
    a child inherits) are cut there as the span's own would be. Past the span's attribute
    count limit only those that fit are added (`room_for`), unless ``evict``: then the SDK
    evicts the oldest for them (a duplicate's status, which must be there)."""
    if _fast:
        try:
            attrs = span._attributes
            store = attrs._dict
            maxlen = attrs.maxlen
            # Otherwise the SDK must drop old attributes or cut ours: let it.
            direct = (whole or attrs.max_value_len is None) and (
                maxlen is None or len(store) + len(values) <= maxlen
            )
            lock = span._lock
        except AttributeError:
            direct = False
        if direct:
            with lock:
                if span._end_time is None:
                    store.update(values)
            return
    if not evict:
        values = room_for(span, values)
    if values:
        span.set_attributes(values)


def room_for(span: Span, values: dict[str, Any]) -> dict[str, Any]:
    """Those of ``values`` (in order) that fit the span's attribute count limit without the
    SDK evicting its oldest attributes for them: a span started at its limit would lose its
    operation, provider and model to the identity it inherits (a review: a $0.0035 call
    stored as unknown_model). The stores resolve identity from the ancestors themselves."""
    try:
        attrs = span._attributes  # type: ignore[attr-defined]
        maxlen, held = attrs.maxlen, attrs._dict
    except AttributeError:
        return values  # not the SDK's span: its own set_attributes decides
    if maxlen is None or len(held) + len(values) <= maxlen:
        return values
    room = maxlen - len(held)
    kept = {}
    for key, value in values.items():
        if key in held:
            kept[key] = value  # a new value, no new key
        elif room > 0:
            kept[key] = value
            room -= 1
    return kept


def _forwarding_composites() -> frozenset[object]:
    """The SDK composites' own _on_ending: they call it on every member."""
    from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, SynchronousMultiSpanProcessor

    found = (
        getattr(c, "_on_ending", None) for c in (SynchronousMultiSpanProcessor, ConcurrentMultiSpanProcessor)
    )
    return frozenset(f for f in found if f is not None)


_FORWARDING = _forwarding_composites()


def _log_failure() -> None:
    with contextlib.suppress(Exception):  # never raise into user code, not even from logging
        logger.exception("otel-costattr: end hook failed")


def _add_at_limits(bounded: Any, values: dict[str, Any]) -> None:
    """From ``_on_ending``, at the span's limits: let the SDK truncate, evict the oldest and
    count what it drops, though it has frozen the attributes (see module doc)."""
    frozen = bounded._immutable
    bounded._immutable = False
    try:
        for key, value in values.items():
            bounded[key] = value
    finally:
        bounded._immutable = frozen


def _add_values(bounded: Any, attrs: dict[str, Any], values: dict[str, Any], no_room: NoRoom) -> None:
    """A general hook's ``values`` into the span's attributes: straight into the live dict
    when they fit within its attribute count limit (frozen, but no other thread may write the span now and
    no on_end has run), else through `_add_at_limits`; when they do not all fit its attribute
    count (`fits`), what ``no_room(values)`` returns (None: nothing)."""
    maxlen = bounded.maxlen
    # Never cut at the span's value length limit either: a status cut to "price" or "unknow"
    # is no status (a review); the values are numbers and short names.
    if maxlen is None or len(attrs) + len(values) <= maxlen:
        attrs.update(values)
    elif fits(maxlen, attrs, values):
        _add_at_limits(bounded, values)
    else:
        anyway = no_room(values)
        if anyway:
            _add_at_limits(bounded, anyway)


def fits(maxlen: int | None, attrs: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether ``values`` fit a span's ``attrs`` within its attribute count limit. Past it
    the SDK would evict the span's oldest attributes for them: its model, usage, feature,
    what a backend needs to count the call at all. A stamp is left out instead: all of it,
    since a cost without its status or pricing version is not one."""
    return maxlen is None or len(attrs) + sum(1 for key in values if key not in attrs) <= maxlen


def _nothing(values: dict[str, Any]) -> None:
    """The default ``no_room``: nothing is written."""


def _ending_hook(
    before_end: BeforeEnd,
    keys: frozenset[str],
    by_shape: dict[tuple[str, ...], ByShape] | None,
    room: int,
    no_room: NoRoom,
    failed: Callable[[], None],
) -> Callable[[Span], None]:
    if by_shape is not None:
        return _shaped_ending_hook(before_end, keys, by_shape, room, no_room, failed)

    def on_ending(span: Span) -> None:
        try:
            bounded = span._attributes  # type: ignore[attr-defined]
            attrs = bounded._dict
            if keys.isdisjoint(attrs):
                return
            values = before_end(span, attrs)
            if values:
                _add_values(bounded, attrs, values, no_room)
        except Exception:
            failed()

    return on_ending


def _shaped_ending_hook(
    before_end: BeforeEnd,
    keys: frozenset[str],
    by_shape: dict[tuple[str, ...], ByShape],
    room: int,
    no_room: NoRoom,
    failed: Callable[[], None],
) -> Callable[[Span], None]:
    """`_ending_hook`, calling the function of the span's shape (its keys in order) when
    ``by_shape`` has one and ``room`` more attributes fit within the span's limits, with the
    span's start time: a Python call less than ``before_end`` finding it, the start time
    without the property's call, and its values written without a dict to carry them."""
    get = by_shape.get

    def on_ending(span: Span) -> None:
        try:
            bounded = span._attributes  # type: ignore[attr-defined]
            attrs = bounded._dict
            if keys.isdisjoint(attrs):
                return
            shaped = get(tuple(attrs))
            maxlen = bounded.maxlen
            if (
                shaped is not None
                and bounded.max_value_len is None
                and (maxlen is None or len(attrs) + room <= maxlen)
            ):
                # Frozen, but no other thread may write the span now and no on_end has run.
                values = shaped(span, attrs, span._start_time)
            else:
                values = before_end(span, attrs)
            if values:
                _add_values(bounded, attrs, values, no_room)
        except Exception:
            failed()

    return on_ending


def _closure_installer(
    before_end: BeforeEnd, keys: frozenset[str], no_room: NoRoom, failed: Callable[[], None]
) -> Callable[[Span], None]:
    # Built once per hook: each span then pays for one closure cell (the span), not three.
    def install_closure(span: Span) -> None:
        """Shadow ``span.end`` with a closure (AttributeError or TypeError when impossible)."""

        def end(end_time: int | None = None) -> None:
            try:  # noqa: SIM105 - contextlib.suppress costs an object per span
                del span.end  # break span -> closure -> span before anything else
            except AttributeError:
                pass  # another thread is ending it too: both stamp the same values
            try:
                attrs = attributes_of(span)
                if span.is_recording() and not keys.isdisjoint(attrs):
                    values = before_end(span, attrs)
                    limit = getattr(getattr(span, "_attributes", None), "maxlen", None)
                    if values and not fits(limit if type(limit) is int else None, attrs, values):
                        values = no_room(values)
                    if values:
                        add_attributes(span, values, whole=True, evict=True)
            except Exception:
                failed()
            span.end(end_time)

        span.end = end  # type: ignore[method-assign]

    return install_closure


def _not_ending(span: object) -> None:
    """``_on_ending`` in closure mode: the closure does the work."""


class EndHook:
    """Runs ``before_end(span, attributes)`` inside ``span.end()``, before any processor's
    ``on_end``, for spans holding at least one of ``keys`` by then (the rest pay for one set
    test), and adds the attributes it returns. ``before_end`` must not raise; if it does,
    the error is logged (``failed()``, inside the handler: the owner's count and log) and the
    span ends anyway.

    ``owner``, the processor, sets `on_ending` as its ``_on_ending`` and calls `ensure` on
    every span at start. ``mode`` "ending": spans whose provider calls the owner's
    ``_on_ending`` need nothing more, the others (the owner is wrapped in another processor)
    get the closure; "closure": every span gets it; None: ending if the SDK supports it.

    ``by_shape``, a table its owner fills, from a span's keys in order to a function taking
    (span, attributes, start time in ns) that does ``before_end``'s work for spans of that
    shape: in mode "ending", a span whose shape is there is handed to that function instead
    when ``room`` more attributes fit within the span's limits; the function may then add up
    to ``room`` values to the live attributes itself, or return them as ``before_end`` does
    (`by_shape` is then the table; None in mode "closure", which always calls ``before_end``).

    When what ``before_end`` returns would not fit within the span's attribute count limit
    (`fits`), ``no_room(values)`` says what to add instead (None: nothing).
    """

    def __init__(
        self,
        before_end: BeforeEnd,
        keys: frozenset[str],
        owner: object,
        *,
        mode: str | None = None,
        by_shape: dict[tuple[str, ...], ByShape] | None = None,
        room: int = 0,
        no_room: NoRoom = _nothing,
        failed: Callable[[], None] = _log_failure,
    ) -> None:
        if mode is None:
            mode = "ending" if _fast and _ending_works else "closure"
        if mode not in ("ending", "closure"):
            raise ValueError(f"mode must be 'ending' or 'closure', got {mode!r}")
        self.mode = mode
        self.by_shape = by_shape if mode == "ending" else None
        self.on_ending = (
            _ending_hook(before_end, keys, self.by_shape, room, no_room, failed)
            if mode == "ending"
            else _not_ending
        )
        self._install_closure = _closure_installer(before_end, keys, no_room, failed)
        self._owner = owner
        # The processors tuple of the provider seen last, and whether it holds the owner
        # itself (tuples are replaced, never changed, when a processor is added).
        self._seen: tuple[object, bool] = ((), False)
        self.ensure = self._ensure_ending if mode == "ending" else self.install

    def _ensure_ending(self, span: object) -> bool:
        members = getattr(getattr(span, "_span_processor", None), "_span_processors", None)
        seen = self._seen
        if members is not seen[0]:
            seen = self._seen = (members, self._calls_owner(span, members))
        return seen[1] or self.install(span)

    def _calls_owner(self, span: object, members: object) -> bool:
        """Whether ending ``span`` calls the owner's ``_on_ending`` itself: the owner is
        registered on the span's provider, not wrapped in another processor."""
        if not isinstance(members, tuple) or not any(m is self._owner for m in members):
            return False
        composite = getattr(type(span._span_processor), "_on_ending", None)  # type: ignore[attr-defined]
        return composite in _FORWARDING

    def install(self, span: object) -> bool:
        """Hook ``span``'s end() with the closure; False when it cannot be hooked."""
        if not isinstance(span, Span):
            return False
        try:
            self._install_closure(span)
        except (AttributeError, TypeError):  # a span class that refuses instance attributes
            return False
        return True


def self_test() -> str | None:
    """Check the seam against the installed SDK: None when it works, else what broke.

    A broken fast path is switched off (the public API is used instead), an unusable
    ``_on_ending`` makes new hooks use the closure, and either is reported.
    """
    global _fast, _ending_works
    problems = []
    problem = _check_context_and_attributes()
    if problem is not None and _fast:
        _fast = False
        problems.append(f"fast path disabled: {problem}")
        problem = _check_context_and_attributes()
    if problem is not None:
        problems.append(problem)
    # An SDK before 1.40 has no _on_ending: the closure is then the way, not a problem.
    _ending_works = _fast and _check_hook("ending") is None
    problem = _check_hook("closure")
    if problem is not None:
        problems.append(problem)
    return "; ".join(problems) or None


def _tracer_with(processor: object) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False)
    if processor is not None:
        provider.add_span_processor(processor)  # type: ignore[arg-type]
    return provider.get_tracer(__name__)


def _check_context_and_attributes() -> str | None:
    tracer = _tracer_with(None)
    parent = tracer.start_span("self-test parent")
    context = _trace_api.set_span_in_context(parent, _baggage_api.set_baggage("k", "b"))
    found, bag = parent_and_baggage(context)
    if found is not parent or dict(bag) != {"k": "b"}:
        return f"parent span or baggage not found in the context: {found!r}, {bag!r}"
    token = _context_api.attach(context)
    try:
        found, attrs, bag = parent_of(None)  # the current context
    finally:
        _context_api.detach(token)
    if found is not parent or dict(bag) != {"k": "b"}:
        return f"parent span or baggage not found in the current context: {found!r}, {bag!r}"
    parent.set_attribute("p", 1)
    if attrs.get("p") != 1:
        return "parent attributes read are not the live ones"
    add_attributes(parent, {"q": 2})  # type: ignore[arg-type]
    if parent.attributes.get("q") != 2:
        return "attributes added to a live span are missing"
    try:  # the processor keeps its per-span state (agent step counters) on the span
        parent._costattr_self_test = 1  # type: ignore[attr-defined]
    except (AttributeError, TypeError) as e:
        return f"spans no longer take instance attributes: {e!r}"
    return None


def _check_hook(mode: str) -> str | None:
    from opentelemetry.sdk.trace import SpanProcessor

    seen: list[Mapping[str, Any]] = []
    ended: list[Mapping[str, Any]] = []

    def stamp(span: Span, attrs: Mapping[str, Any]) -> dict[str, Any]:
        seen.append(dict(attrs))
        return {"costattr.self_test": "stamped"}

    hooked: list[bool] = []

    class Probe(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            hook.ensure(span)
            hooked.append("end" in vars(span))

        def on_end(self, span: Any) -> None:
            ended.append(dict(span.attributes))

    probe = Probe()
    hook = EndHook(stamp, frozenset({"k"}), probe, mode=mode)
    probe._on_ending = hook.on_ending  # type: ignore[method-assign]
    span = _tracer_with(probe).start_span("self-test", attributes={"k": 1})
    span.end()
    if len(seen) != 1 or seen.pop().get("k") != 1:
        return f"{mode}: hook not called once with the live attributes"
    if hooked != [mode == "closure"]:
        return f"{mode}: the SDK does not call _on_ending" if mode == "ending" else "closure not installed"
    if span.is_recording():
        return f"{mode}: span did not end"
    if ended != [{"k": 1, "costattr.self_test": "stamped"}]:
        return f"{mode}: attribute added inside end() is missing from the ended span: {ended!r}"
    return None
