"""The one place that knows how the OpenTelemetry SDK ends a span and stores attributes.

Why this exists: no public SpanProcessor hook can add an attribute that every exporter sees.
In SDK 1.45.2 ``Span.end()`` freezes the attributes *before* it calls ``_on_ending`` (where
``set_attribute`` is dropped with "Setting attribute on ended span", upstream issue
opentelemetry-python#5614) and ``on_end`` gets a ReadableSpan sharing the frozen attributes
(mutating them raises inside the user's code). So we run a callback *inside* ``span.end()``,
before the SDK's own ``end`` runs: every processor, registered before us or after, then sees
what it stamped.

Two ways to hook ``end``, both plain Python rather than SDK internals:

- closure (default): shadow ``end`` with an instance attribute. The closure deletes itself
  first thing, so the span -> closure -> span cycle is gone once the span has ended (a span
  never ended waits for the cycle collector; it is never exported either). It is the
  cheaper one on CPython 3.11 (benchmarks/bench_processor.py compares them).
- subclass: swap the span's class to a cached subclass whose ``end`` runs the callback. It
  allocates no closure, but ``__class__`` assignment materialises the instance dict, which
  slows every later attribute access the SDK makes on that span (~+2 us per span). Used
  only for a span class that refuses an instance attribute named ``end``.

SDK and API internals, each with a public fallback used when it is missing:

- the live attribute dict (``span._attributes._dict``): ``span.attributes`` wraps a
  copy-on-iterate mapping in a new proxy on every call;
- `add_attributes` writes our own already-valid values straight into that dict under the
  span's lock: ``set_attributes`` re-validates each value (~1.5 us per attribute, as much as
  pricing the call);
- the context keys of the current span and of baggage, read straight from the ``Context``
  (a dict), as ``get_current_span`` / ``baggage.get_all`` do, without their allocations.

`self_test()` checks all of it against the installed SDK and switches to the public paths if
something broke; tests/test_processor_seam.py runs it, so an SDK upgrade that breaks the
seam fails loudly.
"""

from __future__ import annotations

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

BeforeEnd = Callable[[Span, Mapping[str, Any]], None]

EMPTY: Mapping[str, Any] = MappingProxyType({})

try:
    from opentelemetry.baggage import _BAGGAGE_KEY
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - an API release renamed them: use the public calls
    _SPAN_KEY = _BAGGAGE_KEY = None  # type: ignore[assignment]

# Flipped off by self_test() when the installed SDK no longer matches what the fast paths
# assume; everything then goes through the public API.
_fast = _SPAN_KEY is not None


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
        ctx = parent_context if parent_context is not None else get_current()
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


def add_attributes(span: Span, values: dict[str, Any]) -> None:
    """Add attributes to a span that has not ended. Values must already be valid attribute
    values (str, bool, int, float): they skip the SDK's per-value cleaning."""
    if _fast:
        try:
            attrs = span._attributes
            store = attrs._dict
            maxlen = attrs.maxlen
            # Otherwise the SDK must drop old attributes or truncate ours: let it.
            direct = attrs.max_value_len is None and (maxlen is None or len(store) + len(values) <= maxlen)
            lock = span._lock
        except AttributeError:
            direct = False
        if direct:
            with lock:
                if span._end_time is None:
                    store.update(values)
            return
    span.set_attributes(values)


def _closure_installer(before_end: BeforeEnd, keys: frozenset[str]) -> Callable[[Span], None]:
    # Built once per hook: each span then pays for one closure cell (the span), not three.
    def install_closure(span: Span) -> None:
        """Shadow ``span.end`` with a closure (AttributeError or TypeError when impossible)."""

        def end(end_time: int | None = None) -> None:
            try:  # noqa: SIM105 - contextlib.suppress costs an object per span
                del span.end  # break span -> closure -> span before anything else
            except AttributeError:
                pass  # another thread is ending it too: both stamp the same values
            try:
                try:
                    attrs = span._attributes._dict
                except AttributeError:
                    attrs = attributes_of(span)
                if not keys.isdisjoint(attrs):
                    before_end(span, attrs)
            except Exception:
                logger.exception("otel-costattr: end hook failed")
            span.end(end_time)

        span.end = end  # type: ignore[method-assign]

    return install_closure


class EndHook:
    """Runs ``before_end(span, attributes)`` inside the first ``span.end()``, while the span
    can still take attributes, for spans holding at least one of ``keys`` by then (the rest
    pay for one set test). ``before_end`` must not raise; if it does, the error is logged and
    the span ends anyway."""

    def __init__(self, before_end: BeforeEnd, keys: frozenset[str], *, prefer: str = "closure") -> None:
        if prefer not in ("closure", "subclass"):
            raise ValueError(f"prefer must be 'closure' or 'subclass', got {prefer!r}")
        self._before_end = before_end
        self._keys = keys
        self._subclasses: dict[type, type] = {}
        # The way that worked last for each span class (isinstance on an ABC is slow, and
        # trying the ways in turn costs a loop on every span).
        self._way_for: dict[type, Callable[[Span], None]] = {}
        self.install_closure = _closure_installer(before_end, keys)
        ways = (self.install_closure, self.install_subclass)
        self._ways = ways if prefer == "closure" else ways[::-1]

    def install(self, span: object) -> bool:
        """Hook ``span``; False when it cannot be hooked (not an SDK span)."""
        cls = type(span)
        way = self._way_for.get(cls)
        if way is not None:
            try:
                way(span)  # type: ignore[arg-type]
                return True
            except (AttributeError, TypeError):
                pass
        if not isinstance(span, Span):
            return False
        for way in self._ways:
            try:
                way(span)
            except (AttributeError, TypeError):
                continue
            self._way_for[cls] = way
            return True
        return False

    def install_subclass(self, span: Span) -> None:
        """Swap the span's class to a subclass running the hook (TypeError when impossible)."""
        cls = type(span)
        sub = self._subclasses.get(cls)
        if sub is None:
            sub = self._subclasses.setdefault(cls, self._make_subclass(cls))
        span.__class__ = sub

    def _make_subclass(self, base: type) -> type:
        before_end = self._before_end
        keys = self._keys

        class _Hooked(base):  # type: ignore[misc, valid-type]
            __slots__ = ()  # same layout as the base: required for __class__ assignment

            def end(self, end_time: int | None = None) -> None:
                try:
                    attrs = attributes_of(self)
                    if self.is_recording() and not keys.isdisjoint(attrs):
                        before_end(self, attrs)
                except Exception:
                    logger.exception("otel-costattr: end hook failed")
                super().end(end_time)

        # Keep the SDK's repr ("_Span(name=..., context=...)") unchanged for users.
        _Hooked.__name__ = base.__name__
        _Hooked.__qualname__ = base.__qualname__
        return _Hooked


def self_test() -> str | None:
    """Check the seam against the installed SDK: None when it works, else what broke.

    A broken fast path is switched off (the public API is used instead) and reported.
    """
    global _fast
    problems = []
    if _fast:
        problem = _check()
        if problem is not None:
            _fast = False
            problems.append(f"fast path disabled: {problem}")
    problem = _check()
    if problem is not None:
        problems.append(problem)
    return "; ".join(problems) or None


def _check() -> str | None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False)
    tracer = provider.get_tracer(__name__)
    seen: list[Mapping[str, Any]] = []

    def stamp(span: Span, attrs: Mapping[str, Any]) -> None:
        seen.append(dict(attrs))
        add_attributes(span, {"costattr.self_test": "stamped"})

    hook = EndHook(stamp, frozenset({"k"}))
    for name, install in (("closure", hook.install_closure), ("subclass", hook.install_subclass)):
        parent = tracer.start_span("self-test parent")
        context = _trace_api.set_span_in_context(parent, _baggage_api.set_baggage("k", "b"))
        span = tracer.start_span("self-test", context=context, attributes={"k": 1})
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
        try:
            install(span)  # type: ignore[arg-type]
        except (AttributeError, TypeError) as e:
            return f"{name}: cannot hook an SDK span: {e!r}"
        span.end()
        if len(seen) != 1 or seen.pop().get("k") != 1:
            return f"{name}: hook not called with the live attributes"
        if not isinstance(span, Span) or span.is_recording():
            return f"{name}: span did not end"
        if span.attributes.get("costattr.self_test") != "stamped":
            return f"{name}: attribute added inside end() is missing from the ended span"
    return None
