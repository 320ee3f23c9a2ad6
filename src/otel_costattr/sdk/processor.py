"""CostSpanProcessor: stamp ``gen_ai.usage.cost`` on every model-call span.

    provider.add_span_processor(CostSpanProcessor())

On each span it:

- at start, copies identity (``app.feature``, agent name and version, conversation id) the
  span does not set itself from its parent span, then from W3C Baggage, and notes the
  nearest enclosing agent span;
- at end, if the attributes say it is a model call, prices it and stamps the cost, the
  status, the pricing version and the matched model, plus ``gen_ai.agent.step`` (0-based
  index among the model calls of its nearest agent) when the span has none.

The stamping happens inside ``span.end()``, before any processor's ``on_end`` (the spec's
OnEnding; see ``sdk/seam.py``), so every processor and exporter on the provider sees it,
whatever the registration order. Well-formed model calls are read, priced and stamped by a
function compiled for their attribute shape (``sdk/stamps.py``, on ``cost/compiled.py``'s
pricer), which the seam calls from the second span of a shape on; everything else goes
through the general rules in ``semconv`` and ``cost``. Agent and workflow spans may carry their
children's summed usage: they are never priced, so nothing is counted twice. No hook ever
raises into user code: failures are logged and counted in `CostSpanProcessor.stats`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import _forks, settings, telemetry
from ..cost.approximate import price_at_request_model
from ..cost.compiled import price_attributes, remember
from ..cost.engine import CostStatus, price_call, usd_float
from ..cost.reported import REPORTED_COST_KEYS, provider_cost, reported_usd
from ..pricing.regions import region_of
from ..pricing.table import PriceTable, default_pricing
from ..semconv import (
    AGENT_NAME,
    AGENT_STEP,
    AGENT_VERSION,
    CALL_KEY_REFUSED,
    COST,
    COST_SOURCE,
    COST_SOURCE_PROVIDER,
    COST_STATUS,
    DUPLICATE,
    IDENTITY_KEYS,
    MODEL_CUT,
    MODEL_SOURCE,
    MODEL_SOURCE_REQUEST,
    OPENINFERENCE_AGENT_NAME,
    OPENINFERENCE_KIND,
    PRICED_MODEL,
    PRICING_VERSION,
    PROPOSED_COST_AMOUNT,
    PROPOSED_COST_CURRENCY,
    PROPOSED_COST_SOURCE,
    PROPOSED_SOURCE_LOCAL,
    REGION,
    REQUEST_MODEL,
    RESPONSE_ID,
    ROLE_KEYS,
    SpanRole,
    describes_a_call,
    read_call_fields,
    span_role,
)
from . import seam
from .calls import (
    MODEL_SETS_KEPT,
    OPEN_KEPT,
    FirstSpans,
    Paired,
    Siblings,
    Size,
    Steps,
    call_models,
    call_size,
    enclosing_spans,
    model_of,
    profile_free,
    same_size,
    scope_of,
    sum_sizes,
)
from .stamps import ROOM, STAMP_KEYS, compile_stamp

logger = logging.getLogger(__name__)

STAT_NAMES = (
    *(s.value for s in CostStatus),
    DUPLICATE,
    "internal_errors",
    "unhooked",
    "unstamped",  # priced or given a status, but the span's attribute limit left no room
    "spans",  # every span ended on the provider, model call or not: see _NO_CALLS_AFTER
)
# After this many spans with no model call among them, one warning: the likely cause is that
# no GenAI instrumentation is loaded (issue 17: every rollup printed "(no rows)", silently).
_NO_CALLS_AFTER = 1000

# Per-span state lives on the span object itself (no registry to leak, nothing to clean up
# when a span is dropped unended); spans outside any agent carry None (see seam.MARKER).
_AGENT = seam.MARKER  # on every span inside an agent: that agent's step counter (else None)
_STEPS = "_costattr_steps"  # on an agent span with children: its own counter, dropped at end
# On a span given its agent's name at start (`_inherit`): (that name, the version given with
# it, whether that version is an object of the span's own: `_private`).
_NAMED = "_costattr_named"
# On a span started inside an OpenInference AGENT span that had no name yet, with identity in
# Baggage (`_inherit`): a weak reference to that span, whose name its descendants look up.
_UNNAMED_AGENT = "_costattr_unnamed_agent"
# On such an AGENT span: the agent name and version it would have inherited, given it at its
# end if it was never named, so that the calls under it, which took no agent from Baggage,
# are its caller's, as when a plain span above it carries the caller's (`_stamp`).
_UNNAMED_FALLBACK = "_costattr_unnamed_fallback"

_SCALARS = frozenset({str, bool, int, float})
_STATUS_TEXT = {s: s.value for s in CostStatus}
_PRICED = CostStatus.PRICED
_UNKNOWN = CostStatus.UNKNOWN_MODEL
_NO_USAGE = CostStatus.NO_USAGE
# Calls we cannot price that a cost their provider reported prices (`_unpriced`): a model
# unknown to us, usage the span does not carry (a stream whose usage block was missed).
_REPORTED_PRICES = (_UNKNOWN, CostStatus.NO_USAGE)
_REPORTED_1, _REPORTED_2, _REPORTED_3 = REPORTED_COST_KEYS
_MODEL_CALL = SpanRole.MODEL_CALL
_CALL_PRICED = frozenset({_PRICED.value, DUPLICATE})  # the statuses of a call someone priced
_AGENT_ROLE = SpanRole.AGENT

_SHAPES_KEPT = 1024  # span data can hold arbitrary keys: the stamp functions' tables are bounded

_seam_checked = False


def _warn_of_content_keys(keys: Iterable[str]) -> None:
    """One warning naming the identity keys the store leaves out unless content is captured
    (a key in a GenAI namespace it does not know, such as ``gen_ai.user.id``): copied onto
    every call, then dropped, and per-group over them would find one empty group."""
    from ..spans.content import ContentRule, content_rule

    dropped = [key for key in keys if content_rule(key) is not ContentRule.KEEP]
    if dropped:
        logger.warning(
            "otel-costattr: identity keys %s are in a GenAI namespace: the DuckDB store and serve keep"
            " them only with content capture on (OTEL_COSTATTR_CAPTURE_CONTENT); name them outside it"
            " (user.id, app.tenant) to group calls by them",
            ", ".join(dropped),
        )


def _value_limit(span: object) -> int | None:
    """The span's attribute value length limit (None: none, or not an SDK span)."""
    limit = getattr(getattr(span, "_attributes", None), "max_value_len", None)
    return limit if type(limit) is int else None


def _model_cut(attrs: Mapping[str, Any], limit: int) -> bool:
    """Whether the model name the call is priced by may have been cut at ``limit``."""
    return _too_long(read_call_fields(attrs)[0], limit)


def _too_long(value: object, limit: int) -> bool:
    """Whether ``value`` is text as long as ``limit``: cut there, maybe."""
    return type(value) is str and len(value) >= limit


def _has_response_id(attrs: Mapping[str, Any]) -> bool:
    """Whether a span reports a response id the duplicate checks can pair by (text, not empty)."""
    rid = attrs.get(RESPONSE_ID)
    return type(rid) is str and bool(rid)


def _counted(counter: itertools.count) -> int:
    """How many times ``next`` was called on a counter started at 0, without calling it."""
    return int(repr(counter)[len("count(") : -1])  # the repr is the only way that is not deprecated


class CostSpanProcessor(SpanProcessor):
    """Prices model-call spans and stamps the cost on the span itself.

    ``pricing``: the table to price with (default: the bundled table, see `load_pricing`).
    ``identity_keys``: the attributes a span inherits from its ancestors and from Baggage.
    None (the default): `semconv.IDENTITY_KEYS` and the names ``OTEL_COSTATTR_IDENTITY_KEYS``
    adds (how a zero-code application sets them); a list given replaces both.
    ``use_baggage``: also copy those keys from W3C Baggage (identity across processes).
    ``dedupe_response_ids``: price an API call once when two spans of a trace report its
    ``gen_ai.response.id`` (two instrumentations of one call: OpenLLMetry with the anthropic
    SDK's own tracing, or with its openai-agents instrumentation beside its openai one, as
    ``Traceloop.init()`` sets up): the later ones get ``costattr.status=duplicate`` and no
    cost. On by default (False: every span priced, as before 2026-12-05).
    ``proposed_cost_attributes``: also write ``gen_ai.usage.cost.amount`` / ``.currency`` /
    ``.source`` (semantic-conventions-genai PR 443); None reads
    ``OTEL_COSTATTR_PROPOSED_COST_ATTRIBUTES``.
    """

    def __init__(
        self,
        pricing: PriceTable | None = None,
        *,
        identity_keys: Iterable[str] | None = None,
        use_baggage: bool = True,
        dedupe_response_ids: bool = True,
        proposed_cost_attributes: bool | None = None,
    ) -> None:
        if pricing is not None and not isinstance(pricing, PriceTable):
            raise ValueError(f"pricing must be a PriceTable (see load_pricing()), got {pricing!r}")
        if identity_keys is None:
            identity_keys = (*IDENTITY_KEYS, *settings.identity_keys())
        if isinstance(identity_keys, str):
            raise ValueError("identity_keys must be a list of attribute names, not a string")
        keys = tuple(dict.fromkeys(identity_keys))
        for key in keys:
            if not isinstance(key, str) or not key:
                raise ValueError(f"identity_keys: not an attribute name: {key!r}")
            if describes_a_call(key):
                raise ValueError(f"identity_keys: {key!r} {CALL_KEY_REFUSED}")
        self._table = pricing if pricing is not None else default_pricing()
        self._version = self._table.version
        self._cached_quote, self._quote = self._table.cached_quote, self._table.quote
        self._regional = self._table.regional_entries
        self._identity = keys
        self._identity_set = frozenset(keys)
        _warn_of_content_keys(keys)
        # What makes a parent worth a closer look: identity to copy, or being an agent.
        self._wanted = self._identity_set | ROLE_KEYS
        self._use_baggage = bool(use_baggage)
        # Guards an agent's first step counter, its calls open to pair (`_call_step`: once a
        # model call inside an agent, numbered at start) and a warning said once. Re-entrant:
        # code run while this thread holds it (a finalizer on an allocation, a signal handler)
        # may start another agent's first child, which hung a plain Lock for ever.
        self._lock = threading.RLock()
        # Lock-free exact counts: one itertools.count per statistic (see Steps).
        self._counts = {name: itertools.count() for name in STAT_NAMES}
        self._said_no_room = False
        self._count_status = {s: self._counts[s.value].__next__ for s in CostStatus}
        self._count_status[DUPLICATE] = self._counts[DUPLICATE].__next__
        self._count_priced = self._count_status[_PRICED]
        self._dedupe = bool(dedupe_response_ids)
        if proposed_cost_attributes is None:
            proposed_cost_attributes = settings.flag(settings.PROPOSED_COST_ATTRIBUTES)
        self._proposed = bool(proposed_cost_attributes)
        self._count_span = self._counts["spans"].__next__
        self._first_spans = FirstSpans()
        self._siblings = Siblings(self._sibling_models, self._internal_error)
        self._warned_unhooked = False
        self._shutdown = False
        # Stamp functions by shape (sdk/stamps.py): the seam's table, the span's keys in order
        # -> function, and by the keys that decide one, so spans whose other keys vary share
        # it. The proposed attributes keep every span on the general hook.
        self._stamps: dict[frozenset[str], Any] = {}
        shapes = None if self._proposed else {}
        _check_seam()
        # Without stamp functions the hook calls _stamp itself: no learning, no call between.
        before_end = self._stamp if shapes is None else self._before_end
        hook = seam.EndHook(
            before_end,
            ROLE_KEYS,
            self,
            by_shape=shapes,
            room=ROOM,
            no_room=self._no_room,
            failed=functools.partial(self._internal_error, "end"),
        )
        self._use_hook(hook)
        telemetry.track_processor(self)
        _forks.renew_in_child(self)

    def _after_fork(self) -> None:
        """In a forked child: fresh locks. One another thread of the parent held at the fork
        (starting a model call under an agent, settling a response id) stays held for good in
        the child, whose next such span hung in its start (a review: 2 forks of 150 while
        threads traced, gunicorn --preload or a process pool beside a busy thread)."""
        self._lock = threading.RLock()
        self._first_spans._lock = threading.RLock()
        self._siblings._lock = threading.RLock()

    def _use_hook(self, hook: seam.EndHook) -> None:
        self._hook = hook
        self._shapes = hook.by_shape  # None: the hook calls _before_end for every call
        self._ensure = hook.ensure
        # Speed, on every span: the seam's functions themselves, set on the instance, spare
        # a method call each. A subclass overriding either hook keeps its own.
        cls = type(self)
        if cls._on_ending is CostSpanProcessor._on_ending:
            self._on_ending = hook.on_ending  # type: ignore[method-assign]
        if cls.on_start is CostSpanProcessor.on_start:
            self.on_start = seam.start_filter(  # type: ignore[method-assign]
                hook,
                self._wanted,
                self._identity_set if self._use_baggage else frozenset(),
                self._found_parent,
                CostSpanProcessor.on_start.__get__(self),
            )

    @property
    def pricing(self) -> PriceTable:
        """The table this processor prices with."""
        return self._table

    def _no_room(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """A span's attribute count limit leaves no room for its stamp ``values``: nothing
        is written (counted, said once), rather than the SDK evicting the span's own
        attributes for it; but a duplicate's status is written all the same, since the
        store can tell a duplicate by it alone and would otherwise count the call twice
        (the span's own data is not counted anyway)."""
        if COST_STATUS not in values:
            return None  # no call's stamp (an unnamed agent's fallback): left out, as inherited identity is
        if values.get(COST_STATUS) == DUPLICATE:
            return {COST_STATUS: DUPLICATE}
        next(self._counts["unstamped"])
        if not self._said_no_room:
            self._said_no_room = True
            logger.warning(
                "otel-costattr: a model call's span had no room left for gen_ai.usage.cost under its"
                " attribute count limit (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, SpanLimits): it is left"
                " unstamped rather than losing its own attributes, counted in stats()['unstamped'];"
                " the DuckDB store and the ClickHouse backend price such spans themselves. Raise the"
                " limit to stamp them."
            )
        return None

    def stats(self) -> dict[str, int]:
        """Counts since creation: model calls by cost status (priced, unknown_model, no_usage,
        invalid_usage), duplicates (spans of a call priced through another span), internal
        errors, spans that could not be hooked, ``unstamped`` (calls among those whose span
        had no room left for the stamp under its attribute count limit: left unstamped, not
        evicting its own attributes), and ``spans``: every span ended, model call or not
        (many spans and no model call: is a GenAI instrumentation loaded?)."""
        return {name: _counted(counter) for name, counter in self._counts.items()}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Hook the span's end if need be, copy inherited identity, note the nearest agent."""
        if self._shutdown:
            return
        try:
            if not self._ensure(span):
                self._unhooked(span)
            parent, pattrs, bag = seam.parent_of(parent_context)
            if not (bag and self._use_baggage and not self._identity_set.isdisjoint(bag)):
                bag = seam.EMPTY  # nothing in it to inherit
            if parent is None and not bag:
                return  # a root span: nothing to inherit
            self._start(span, parent, pattrs, bag)
        except Exception:
            self._internal_error("on_start")

    def _found_parent(
        self, span: Span, parent: object, pattrs: Mapping[str, Any], bag: Mapping[str, object]
    ) -> None:
        try:
            self._start(span, parent, pattrs, bag)
        except Exception:
            self._internal_error("on_start")

    def _start(
        self, span: Span, parent: object, pattrs: Mapping[str, Any], bag: Mapping[str, object]
    ) -> None:
        """Inherit from ``parent`` (its attributes ``pattrs``) and ``bag`` (the baggage if it
        holds identity, else empty); note the nearest agent."""
        agent = getattr(parent, _AGENT, None)
        if type(agent) is Paired:
            agent = agent.steps
        if bag:
            self._inherit(span, parent, pattrs, bag)
        elif self._wanted.isdisjoint(pattrs):
            if agent is not None:  # e.g. a model call inside a tool span inside an agent
                setattr(span, _AGENT, agent)
                self._early_step(span, agent)
            return  # the common case: a plain parent, no identity in baggage
        else:
            self._inherit(span, parent, pattrs, bag)
        role = None if ROLE_KEYS.isdisjoint(pattrs) else span_role(pattrs)
        if role is SpanRole.AGENT:
            agent = self._steps_of(parent)
        marker: object = agent
        if role is _MODEL_CALL and self._dedupe and scope_of(span) != scope_of(parent):
            with contextlib.suppress(TypeError):  # a span class without weak references
                marker = Paired(agent, outer=weakref.ref(parent))  # another's span of its call?
        if marker is not None:
            setattr(span, _AGENT, marker)
        if agent is not None:
            self._early_step(span, agent, pattrs)

    def _inherit(
        self, span: Span, parent: object, pattrs: Mapping[str, Any], bag: Mapping[str, object]
    ) -> None:
        """Copy identity the span does not set: from the parent span first, then baggage.
        The agent's version comes with its name: none onto a span that is an agent of its own
        (an OpenInference AGENT span, named in ``agent.name`` at start or later), and not the
        version a parent was given with a name it has replaced since (a sub-agent's span
        started plain, then named: `_own_version`). An OpenInference AGENT parent names the
        agent by its ``agent.name``: its children take that, and no version, not the
        caller's from Baggage."""
        own = seam.attributes_of(span)
        found: dict[str, Any] = {}
        told = False  # the version found was copied into an object of the span's own
        agent_of_its_own = AGENT_NAME in own or own.get(OPENINFERENCE_KIND) == "AGENT"
        # An OpenInference AGENT span not named yet: what it would inherit is kept aside, for
        # its end if it is never named (`_UNNAMED_FALLBACK`).
        late = own.get(OPENINFERENCE_KIND) == "AGENT" and not _names_agent(own)
        fallback: dict[str, Any] = {}
        parent_agent = pattrs.get(AGENT_NAME)
        unnamed = None  # an OpenInference AGENT span above, not named yet
        if parent_agent is None or parent_agent == "":  # an empty name is none (`_names_agent`)
            parent_agent, unnamed = _openinference_agent(parent, pattrs)
        for key in self._identity:
            if (key in own and not (late and own[key] == "")) or (
                agent_of_its_own and not late and key in (AGENT_NAME, AGENT_VERSION)
            ):
                continue  # an agent of its own: its version is its own, or none
            value = pattrs.get(key)
            if unnamed is not None and key in (AGENT_NAME, AGENT_VERSION):
                continue  # its agent names itself later (the store takes the name then), not Baggage
            if key == AGENT_NAME and value is None:
                value = parent_agent  # OpenInference's AGENT parent
            elif (
                key == AGENT_VERSION
                and parent_agent is not None
                and (value is None or not _own_version(parent, pattrs))
            ):
                continue  # the agent comes from the parent: its version too, or none
            if value is None:
                value = bag.get(key)
                # Baggage set in-process can hold anything; only text is an identity.
                if not isinstance(value, str) or not value:
                    continue
            if late and key in (AGENT_NAME, AGENT_VERSION):
                limit = _value_limit(span)  # cut as inherited identity is (`seam.add_attributes`)
                fallback[key] = value[:limit] if limit is not None and isinstance(value, str) else value
                continue
            if key == AGENT_VERSION:
                given = value
                value = _private(value)  # `_own_version` tells it from one the span sets itself
                told = value is not given
            found[key] = value
        if unnamed is not None:
            with contextlib.suppress(AttributeError, TypeError):  # no __dict__, no weak references
                setattr(span, _UNNAMED_AGENT, weakref.ref(unnamed))
        if AGENT_NAME in fallback and all(type(v) in _SCALARS for v in fallback.values()):
            with contextlib.suppress(AttributeError, TypeError):  # a span class without a __dict__
                setattr(span, _UNNAMED_FALLBACK, fallback)
        if not found:
            return
        if AGENT_NAME in found:
            with contextlib.suppress(AttributeError, TypeError):  # a span class without a __dict__
                setattr(span, _NAMED, (found[AGENT_NAME], found.get(AGENT_VERSION), told))
        if all(type(v) in _SCALARS for v in found.values()):
            seam.add_attributes(span, found)  # already valid: skip the SDK's checks
        else:
            span.set_attributes(seam.room_for(span, found))  # sequences, mappings: the SDK copies them

    def _early_step(self, span: Span, agent: Steps, pattrs: Mapping[str, Any] = seam.EMPTY) -> None:
        """Number a span that says at start it is a model call, in start order (the order the
        calls were made, even when they run concurrently); others are numbered at end."""
        own = seam.attributes_of(span)
        if AGENT_STEP not in own and not ROLE_KEYS.isdisjoint(own) and span_role(own) is SpanRole.MODEL_CALL:
            seam.add_attributes(span, {AGENT_STEP: self._call_step(span, own, agent, pattrs)})

    def _call_step(self, span: Span, own: Mapping[str, Any], agent: Steps, pattrs: Mapping[str, Any]) -> int:
        """The step of a model call numbered at start (its parent's attributes ``pattrs``).
        Numbered at start, both spans of a call two instrumentations trace would take a step
        each, and the one left priced an odd one (1, 3, 5...): with the duplicate check on
        (`FirstSpans`), the second span of a pair takes the first's step instead. A model call
        inside a model call (a framework's span around the SDK's) is taken for one; so is one
        starting while a call the agent numbered at start is still open, from another
        instrumentation scope, for the same request model (the anthropic SDK's own span beside
        OpenLLMetry's). Calls made at once by one instrumentation, or to other models, take
        steps of their own. The call a span pairs with is the oldest still open and unshared
        (`Steps.open`), so calls made at once pair in the order they were made."""
        if not self._dedupe:
            return next(agent)
        step = pattrs.get(AGENT_STEP)
        if type(step) is int and not ROLE_KEYS.isdisjoint(pattrs) and span_role(pattrs) is _MODEL_CALL:
            mine, theirs = call_models(own), call_models(pattrs)
            if not mine or not theirs or not mine.isdisjoint(theirs):
                return step  # not another model's call (a guardrail's inside a streamed chat)
        scope = scope_of(span)
        if type(scope) is not str:
            return next(agent)
        model = model_of(own)
        with self._lock:
            opened = agent.open
            for i, (ref, step, first_scope) in enumerate(opened):
                first = ref()
                if first is None or first.end_time is not None:
                    continue  # ended unshared: pruned below
                same = model is not None and model_of(seam.attributes_of(first)) == model
                if first_scope != scope and same:
                    del opened[i]  # a pair: a third span is a call of its own
                    return step
            opened[:] = [c for c in opened if (f := c[0]()) is not None and f.end_time is None]
            step = next(agent)
            if len(opened) < OPEN_KEPT:
                with contextlib.suppress(TypeError):  # a span class without weak references
                    opened.append((weakref.ref(span), step, scope))
            return step

    def _steps_of(self, agent_span: object) -> Steps | None:
        """The step counter of an agent span, created by its first child."""
        steps = getattr(agent_span, _STEPS, None)
        if steps is None and isinstance(agent_span, Span) and agent_span.is_recording():
            with self._lock:
                steps = getattr(agent_span, _STEPS, None)
                if steps is None:
                    steps = Steps()
                    setattr(agent_span, _STEPS, steps)
        return steps

    def _before_end(self, span: Span, attrs: Mapping[str, Any]) -> dict[str, Any] | None:
        """Runs inside span.end(), before any on_end, for spans whose shape has no stamp
        function yet (or all, without one): compiles it for the next spans of the shape,
        prices a model call and returns what to stamp."""
        if COST_STATUS in attrs or self._shutdown:
            return None  # priced already (a second CostSpanProcessor, or registered twice)
        if self._shapes is None:  # a hook built around this method without stamp functions
            return self._stamp(span, attrs, span.start_time)
        self._learn(attrs)
        out = self._stamp(span, attrs, span.start_time)
        if out is not None and COST_STATUS in out and "on_end" not in self.__dict__:
            self._count_spans_in_c()  # a model call: the warning on_end waits for is moot
        return out

    def _learn(self, attrs: Mapping[str, Any]) -> None:
        """Give the seam the stamp function of this span's shape (sdk/stamps.py)."""
        try:
            shape = tuple(attrs)
            keys = STAMP_KEYS.intersection(shape)
            stamp = self._stamps.get(keys)
            if stamp is None:
                if self._dedupe:
                    self._siblings.arm()
                stamp = compile_stamp(
                    keys,
                    slow=self._stamp,
                    cached_quote=self._cached_quote,
                    quote=self._quote,
                    version=self._version,
                    regional=self._regional,
                    count_priced=self._count_priced,
                    internal_error=self._internal_error,
                    first_spans=self._first_spans if self._dedupe else None,
                    siblings=self._siblings,
                    duplicate=self._duplicate,
                    steps_type=Steps,
                )
                remember(self._stamps, keys, stamp, _SHAPES_KEPT)
            shapes = self._shapes
            if shapes is not None and not self._shutdown:
                remember(shapes, shape, stamp, _SHAPES_KEPT)
        except Exception:
            self._internal_error("end")

    def _stamp(self, span: Span, attrs: Mapping[str, Any], ns: int | None = None) -> dict[str, Any] | None:
        """What to stamp on a span started at ``ns`` (default: its start time), as the seam's
        end hook (the stamp functions' general case: the same decisions, for any shape):
        prices a model call, counts it."""
        if COST_STATUS in attrs or self._shutdown:
            return None  # priced already (a second CostSpanProcessor, or registered twice)
        if ns is None:
            ns = span.start_time
        # Renamed since start (a sub-agent's span): the version given with the old name goes.
        # Not a model call's (the compiled stamps never look): its row keeps it.
        if (
            getattr(span, _NAMED, None) is not None
            and not _own_version(span, attrs)
            and span_role(attrs) is not _MODEL_CALL
        ):
            _drop_version(attrs)
        agent = getattr(span, _AGENT, None)
        if type(agent) is Paired:
            out = self._paired_stamp(span, attrs, ns, agent)
        else:
            out = self._call_stamp(span, attrs, ns, agent)
        fallback = getattr(span, _UNNAMED_FALLBACK, None)
        if fallback is not None and not _names_agent(attrs):  # an OpenInference AGENT span never named
            # what it set itself stays (a version of its own)
            return {**{k: v for k, v in fallback.items() if attrs.get(k) in (None, "")}, **(out or {})}
        return out

    def _paired_stamp(
        self, span: Span, attrs: Mapping[str, Any], ns: int, paired: Paired
    ) -> dict[str, Any] | None:
        """`_stamp` for a span of a nested pair (`Paired`): a duplicate when it is a copy of
        a call stamped first, inside it (`_copy_of`) or by an enclosing span that ended
        first (`_copy_of_ended`); else stamped as any other, and what it says of its call is
        told to every enclosing span still open (a duplicate tells nothing: its call was
        told). A priced inner span with no step of its own takes its outer span's when they
        name a model in common (numbered at start, as the pair's)."""
        steps, step = paired.steps, None
        try:
            if span_role(attrs) is not _MODEL_CALL:
                return self._call_stamp(span, attrs, ns, steps)
            models, size = call_models(attrs), call_size(attrs)
            if paired.inner is not None and self._copy_of(attrs, size, paired.inner, ns):
                return self._nested_copy(span, attrs, ns)
            enclosing = enclosing_spans(paired)
            for outer in enclosing:
                ended = getattr(outer, "end_time", None) is not None
                if ended and self._copy_of_ended(attrs, size, seam.attributes_of(outer), ns):
                    return self._nested_copy(span, attrs, ns)
            if enclosing and AGENT_STEP not in attrs:
                oattrs = seam.attributes_of(enclosing[0])
                if type(oattrs.get(AGENT_STEP)) is int and self._one_model(attrs, oattrs, ns):
                    step, steps = oattrs[AGENT_STEP], None
        except Exception:
            self._internal_error("end")
            return None
        out = self._call_stamp(span, attrs, ns, steps)
        if out is not None and out[COST_STATUS] != DUPLICATE:
            if step is not None:
                out[AGENT_STEP] = step
            self._tell(enclosing, models, size, out[COST_STATUS] in _CALL_PRICED)
        return out

    def _nested_copy(self, span: Span, attrs: Mapping[str, Any], ns: int) -> dict[str, Any]:
        """The stamp of a span of a nested pair found a copy of its call; kept for its
        siblings (`calls.Siblings.keep`): a third instrumentation's span beside it (OpenInference's
        beside OpenLLMetry's, openai-v2's inside that) is the same call."""
        if self._siblings.active:
            self._siblings.keep(span, attrs, ns, _has_response_id(attrs))
        return self._duplicate()

    def _entries(self, models: frozenset[str], provider: object, ns: int) -> set[int]:
        """The table entries ``models`` resolve to (by identity); none when one cannot be read."""
        try:
            quotes = (self._table.quote(m, provider, None, ns) for m in models)  # type: ignore[arg-type]
            return {id(q.entry) for q in quotes if q is not None}
        except Exception:  # an id the table cannot read: not shown to be one model
            return set()

    def _one_model(self, attrs: Mapping[str, Any], oattrs: Mapping[str, Any], ns: int) -> bool:
        """Whether two spans name one model: an id in common, or ids the table resolves to
        one entry (an outer span that has named only the requested ``gpt-4o-mini`` so far,
        an inner one the responded ``gpt-4o-mini-2024-07-18``)."""
        return self._same_models(call_models(attrs), call_models(oattrs), read_call_fields(attrs)[1], ns)

    def _sibling_models(
        self, a: frozenset[str], b: frozenset[str], attrs: Mapping[str, Any], ns: int
    ) -> bool:
        """`Siblings`' test of one model (the provider read only when the ids differ)."""
        return not a.isdisjoint(b) or self._same_models(a, b, read_call_fields(attrs)[1], ns)

    def _same_models(self, a: frozenset[str], b: frozenset[str], provider: object, ns: int) -> bool:
        if not a.isdisjoint(b):
            return True
        if not (a and b):
            return False
        if not profile_free(a).isdisjoint(profile_free(b)):
            return True  # one Bedrock model, with and without its inference profile
        return not self._entries(a, provider, ns).isdisjoint(self._entries(b, provider, ns))

    def _copy_of(
        self, attrs: Mapping[str, Any], size: Size | None, inner: dict[frozenset[str], list[Any]], ns: int
    ) -> bool:
        """Whether an outer span (``attrs``, usage ``size``; None: none) is a copy of the
        calls stamped inside it (``inner``, `Paired`): of calls of its model (an id in
        common, or one entry) that were priced, when their summed size is its own (a
        framework's span around two SDK calls reports their sum; calls to other models
        inside it, or a smaller call made while a long streamed chat span is open, are other
        calls), or when it has no usage of its own; or, with no usage itself, of calls that
        could not be priced either (a failed call traced twice), or of calls of its size that
        could not be priced when it cannot be either (a model the table lacks, traced twice).
        A span with usage that names a model the table knows is priced: the money first."""
        models, provider = call_models(attrs), read_call_fields(attrs)[1]
        same = [said for key, said in inner.items() if self._same_models(key, models, provider, ns)]
        if not same and size is None:
            # A failed call traced twice where one span names no model (OpenInference's
            # error span carries none): neither could be priced, one call all the same.
            same = [said for key, said in inner.items() if not said[1] and not (key and models)]
        if not same:
            return False
        priced = [said for said in same if said[1]]
        if not priced:
            if size is None:
                return True
            # Calls of its model and size that could not be priced: the same call, unless
            # this span can be priced, by a model the table knows or a cost its provider
            # reported (the money first).
            if _reports_cost(attrs) or not any(same_size(size, one) for said in same for one in said[4]):
                return False
            return not self._entries(models, provider, ns)
        if size is None:
            return True
        total = sum_sizes([said[0] for said in priced])
        if total is not None and same_size(size, total):
            return True
        # a retry inside a framework's span: two calls made, the span reporting the last
        return any(same_size(size, one) for said in priced for one in said[3])

    def _copy_of_ended(
        self, attrs: Mapping[str, Any], size: Size | None, oattrs: Mapping[str, Any], ns: int
    ) -> bool:
        """Whether a span (``attrs``, usage ``size``) is a copy of the call an enclosing span
        of its pair, ended and stamped first (``oattrs``), stamped."""
        status = oattrs.get(COST_STATUS)
        if status is None:
            return False
        if not self._one_model(attrs, oattrs, ns):
            # A failed call traced twice where one span names no model (see `_copy_of`).
            unnamed = not call_models(attrs) or not call_models(oattrs)
            return unnamed and status not in _CALL_PRICED and size is None and call_size(oattrs) is None
        other = call_size(oattrs)
        if status not in _CALL_PRICED:  # unpriced: so is this span, unless it can be priced
            if size is None:
                return True
            if _reports_cost(attrs):
                return False  # a cost its provider reported: the money first
            models = call_models(attrs)
            provider = read_call_fields(attrs)[1]
            return other is not None and same_size(size, other) and not self._entries(models, provider, ns)
        return size is None or (other is not None and same_size(size, other))

    def _tell(self, enclosing: list[Any], models: frozenset[str], size: Size | None, priced: bool) -> None:
        """Tell the enclosing spans still open what a call stamped inside them said."""
        try:
            with self._lock:  # two inner spans ending at once in two threads
                for outer in enclosing:
                    if getattr(outer, "end_time", 0) is not None:
                        continue
                    held = getattr(outer, _AGENT, None)
                    if type(held) is not Paired:
                        held = Paired(held)
                        setattr(outer, _AGENT, held)
                    if held.inner is None:
                        held.inner = {}
                    said = held.inner.get(models)
                    if said is None:
                        if len(held.inner) >= MODEL_SETS_KEPT:
                            continue
                        said = held.inner[models] = [(0, 0, 0, 0), False, False, [], []]
                    if not priced:
                        said[2] = True
                        if size is not None and len(said[4]) < MODEL_SETS_KEPT:
                            said[4].append(size)
                        continue
                    said[0] = sum_sizes([said[0], size]) if said[1] else size
                    said[1] = True
                    if size is not None and len(said[3]) < MODEL_SETS_KEPT:
                        said[3].append(size)
        except Exception:
            self._internal_error("end")

    def _call_stamp(
        self, span: Span, attrs: Mapping[str, Any], ns: int, agent: Steps | None
    ) -> dict[str, Any] | None:
        """`_stamp`'s general case, ``agent`` the span's agent step counter (or None)."""
        try:
            found = None
            # The SDK may have cut the priced model's name at its length limit: another
            # model's, maybe (gpt-4o-mini at 6 is gpt-4o). The general rules then decide,
            # the cut name unknown (`_settle`).
            cut = _value_limit(span)
            if cut is not None and not _model_cut(attrs, cut):
                cut = None
            if cut is None and type(attrs) is dict:
                # The function tests/test_shape_pricer.py checks, not a copy of it; try, not
                # contextlib.suppress: no context manager to enter on every span.
                try:  # noqa: SIM105
                    found = price_attributes(attrs, ns, self._cached_quote, self._quote)
                except (KeyError, TypeError, RuntimeError):  # keys changed meanwhile, unhashable
                    pass  # values: the general path copes
            # The common case, decided with a few tests: priced from the table, no duplicate
            # to look for, no regional price, no cost the provider reported (three lookups: a
            # quarter of what isdisjoint(attrs) costs). It returns its stamp at once; anything
            # else: _settled_stamp.
            if (
                type(found) is tuple
                and (not self._dedupe or RESPONSE_ID not in attrs)
                and id(found[0]) not in self._regional
                and _REPORTED_1 not in attrs
                and _REPORTED_2 not in attrs
                and _REPORTED_3 not in attrs
            ):
                if self._dedupe and self._sibling_copy(span, attrs, ns, False, found[1]):
                    return self._duplicate()  # a sibling span of another scope priced it
                out = {
                    COST: found[1],
                    COST_STATUS: "priced",
                    PRICING_VERSION: self._version,
                    PRICED_MODEL: found[0].id,
                }
                if self._proposed:
                    self._propose(out)
                self._count_priced()
            else:
                out = self._settled_stamp(span, attrs, found, cut)
                if out is None or out[COST_STATUS] == DUPLICATE:
                    return out  # a duplicate gets no step number: it is not a new call
            if AGENT_STEP not in attrs and agent is not None:
                out[AGENT_STEP] = next(agent)
            return out
        except Exception:
            self._internal_error("end")
            return None

    def _settled_stamp(
        self, span: Span, attrs: Mapping[str, Any], found: object, cut: int | None = None
    ) -> dict[str, Any] | None:
        """What to stamp on a span the common case does not settle (None: not a model call);
        counts it. ``cut``: the span's value length limit, when its priced model's name is
        as long (cut, maybe): that name is not priced."""
        found, source, region, reported = self._settle(span, attrs, found, cut)
        if type(found) is not tuple:
            out = self._unpriced(found, reported)
            if cut is not None and out is not None and out[COST_STATUS] == _STATUS_TEXT[_UNKNOWN]:
                out[MODEL_CUT] = True  # for the stores, which would price the cut name
            return out
        entry, usd = found
        out = {COST: usd, COST_STATUS: "priced", PRICING_VERSION: self._version, PRICED_MODEL: entry.id}
        if source is not None:
            out[MODEL_SOURCE] = source
        if region is not None:
            out[REGION] = region
        if reported is not None:
            out.update(provider_cost(reported, usd))
        if self._proposed:
            self._propose(out)
        self._count_priced()
        return out

    def _settle(
        self, span: Span, attrs: Mapping[str, Any], found: object, cut: int | None = None
    ) -> tuple[object, str | None, str | None, Any]:
        """What the common case leaves: the general rules for what the fast path did not
        price, a newer snapshot of a known request model (issue 17), duplicates, a regional
        price and a cost the provider reported. Returns (found, model source, region,
        provider-reported cost); found is None for a span that is not a model call."""
        if found is None:  # not a well-formed model call: the general rules decide
            found = self._general(span, attrs)
            if found is None:
                return None, None, None, None
        if cut is not None and type(found) is tuple:
            found = _UNKNOWN  # priced by a name the SDK may have cut (`_settled_stamp`)
        source = None
        if found is _UNKNOWN and (cut is None or not _too_long(attrs.get(REQUEST_MODEL), cut)):
            approximated = price_at_request_model(self._table, span.start_time, attrs)
            if approximated is not None:
                found, source = approximated, MODEL_SOURCE_REQUEST
        reported = None  # a cost the provider reported wins, ours kept beside it (cost/reported.py)
        if _REPORTED_1 in attrs or _REPORTED_2 in attrs or _REPORTED_3 in attrs:
            reported = reported_usd(attrs)
        if self._dedupe and self._is_duplicate(span, attrs, found, reported):
            return DUPLICATE, None, None, None
        region = None
        if type(found) is tuple and source is None and id(found[0]) in self._regional:
            region, found = self._regional_price(span, attrs, found)
        return found, source, region, reported

    def _unpriced(self, found: object, reported: Any) -> dict[str, Any] | None:
        """The stamp of a call we did not price (None: not a model call); counts it."""
        if found is None:
            return None
        if found is DUPLICATE:
            return self._duplicate()
        if reported is not None and found in _REPORTED_PRICES:  # the provider knows its charge
            out = {COST_STATUS: "priced", PRICING_VERSION: self._version, **provider_cost(reported, None)}
            if self._proposed:
                self._propose(out)
            self._count_priced()
            return out
        # Never a cost attribute, not even 0, when the call could not be priced.
        self._count_status[found]()  # type: ignore[index]
        return {COST_STATUS: _STATUS_TEXT[found], PRICING_VERSION: self._version}  # type: ignore[index]

    def _duplicate(self) -> dict[str, Any]:
        """The stamp of a span of a call another span priced; counts it. No step number: it
        is not a new call."""
        self._count_status[DUPLICATE]()
        return {COST_STATUS: DUPLICATE, PRICING_VERSION: self._version}

    @staticmethod
    def _propose(out: dict[str, Any]) -> None:
        """The proposed cost attributes beside ``gen_ai.usage.cost`` (the figure it holds)."""
        out[PROPOSED_COST_AMOUNT] = out[COST]
        out[PROPOSED_COST_CURRENCY] = "USD"
        provider = out.get(COST_SOURCE) == COST_SOURCE_PROVIDER
        out[PROPOSED_COST_SOURCE] = COST_SOURCE_PROVIDER if provider else PROPOSED_SOURCE_LOCAL

    def _is_duplicate(
        self, span: Span, attrs: Mapping[str, Any], found: object, reported: Any = None
    ) -> bool:
        """Whether a span of this trace overlapping it in time priced its response id first:
        two instrumentations of one API call (the anthropic SDK traces itself, OpenLLMetry too),
        or a sibling span of another instrumentation made the call first (`calls.Siblings`).
        Only a priced span claims an id: by our table, or by the cost its provider ``reported``
        (`_unpriced`); one that could not price it is a duplicate of any span of its call
        that ended first (`FirstSpans.note_unpriced`)."""
        has = _has_response_id(attrs)
        if has:
            rid = attrs[RESPONSE_ID]
            if type(found) is tuple:
                if not self._first_spans.claim(rid, span, found[1]):
                    return True
            elif reported is not None and found in _REPORTED_PRICES:
                if not self._first_spans.claim(rid, span, reported):
                    return True
            elif self._first_spans.note_unpriced(rid, span, found is not _NO_USAGE):
                return True
        # A sibling span of another instrumentation that made it first, without an id in
        # common (see calls.Siblings).
        usd = found[1] if type(found) is tuple else reported
        return self._sibling_copy(span, attrs, span.start_time, has, usd)

    def _sibling_copy(
        self, span: Span, attrs: Mapping[str, Any], ns: int, rid: bool, usd: float | None = None
    ) -> bool:
        """`calls.Siblings.copy` on the general path, switched on first if it may be."""
        siblings = self._siblings
        if not siblings.active:
            siblings.arm()
            if not siblings.active:
                return False
        return siblings.copy(span, attrs, ns, rid, usd)

    def _regional_price(
        self, span: Span, attrs: Mapping[str, Any], found: tuple[Any, float]
    ) -> tuple[str | None, tuple[Any, float]]:
        """A priced call to a model some region prices otherwise (pricing/_regions.toml):
        the region it was served in and its price there, or (None, ``found``)."""
        model, provider, tier, usage = read_call_fields(attrs)
        resource = getattr(span, "resource", None)
        host = self._table.host_of(model, provider, found[0])
        region = region_of(model, attrs, getattr(resource, "attributes", None), host)
        if region is None:
            return None, found
        quote = self._table.quote(model, provider, tier, span.start_time, region)
        if quote is None or quote.region is None:
            return None, found
        _, entry, parts, scale, _, _ = price_call(
            self._table, span.start_time, model, provider, tier, usage, region
        )
        if parts is None:  # pragma: no cover - priced just now without the region
            return None, found
        return region, (entry, usd_float(parts, scale))

    def _general(self, span: Span, attrs: Mapping[str, Any]) -> tuple[Any, int, int] | CostStatus | None:
        """What the fast path leaves (agent spans, bad values, no usage), with the general
        rules: None for a span that is not a model call, else as `price_attributes`."""
        role = span_role(attrs)
        if role is not _MODEL_CALL:
            if role is _AGENT_ROLE and getattr(span, _STEPS, None) is not None:
                setattr(span, _STEPS, None)  # children still running keep their reference
            return None
        model, provider, tier, usage = read_call_fields(attrs)
        status, entry, parts, scale, _, _ = price_call(
            self._table, span.start_time, model, provider, tier, usage
        )
        return status if parts is None else (entry, usd_float(parts, scale))

    def _unhooked(self, span: object) -> None:
        next(self._counts["unhooked"])
        with self._lock:
            first = not self._warned_unhooked
            self._warned_unhooked = True
        if first:
            logger.warning(
                "otel-costattr: cannot hook spans of type %s.%s: their cost will not be "
                "stamped (counted in stats()['unhooked'])",
                type(span).__module__,
                type(span).__qualname__,
            )

    def _internal_error(self, where: str) -> None:
        try:
            next(self._counts["internal_errors"])
            logger.exception("otel-costattr: internal error in span %s hook", where)
        except Exception:  # never raise into user code, not even from logging
            pass

    def _on_ending(self, span: Span) -> None:
        """The SDK's OnEnding hook, inside span.end(): prices the span and stamps the cost
        (replaced on the instance by the seam's function itself, see `_use_hook`)."""
        self._hook.on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span (the cost was stamped before it ended); warn once when many spans
        and no model call have been seen."""
        seen = self._count_span()
        if seen >= _NO_CALLS_AFTER - 1:
            if seen == _NO_CALLS_AFTER - 1:
                self._warn_if_no_calls()
            self._count_spans_in_c()

    def _count_spans_in_c(self) -> None:
        if type(self).on_end is CostSpanProcessor.on_end:
            # Nothing left to check: from now on the SDK calls next(counter, span), which
            # counts in C, without a Python call per span (the default is never used).
            self.on_end = functools.partial(next, self._counts["spans"])  # type: ignore[method-assign]

    def _warn_if_no_calls(self) -> None:
        try:
            stats = self.stats()
            if not any(stats[name] for name in STAT_NAMES[: len(CostStatus) + 1]):
                logger.warning(
                    "otel-costattr: %d spans ended, 0 model calls: is a GenAI instrumentation "
                    "loaded? (counted in stats()['spans'])",
                    _NO_CALLS_AFTER,
                )
        except Exception:  # never raise into user code
            pass

    def shutdown(self) -> None:
        """Stop: spans started from now on inherit nothing, spans ending from now on are left
        as they are."""
        self._shutdown = True
        self.__dict__.pop("on_start", None)  # back to the method, which checks _shutdown
        if self._shapes is not None:
            self._shapes.clear()  # back to _before_end, which checks _shutdown

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered: always True."""
        return True


def _reports_cost(attrs: Mapping[str, Any]) -> bool:
    """Whether a span carries a cost its provider reported (cost/reported.py's keys)."""
    return _REPORTED_1 in attrs or _REPORTED_2 in attrs or _REPORTED_3 in attrs


def _own_version(span: object, attrs: Mapping[str, Any]) -> bool:
    """Whether the agent version in ``attrs`` (a span's) is its agent's: False when the span
    was given a name and version at start (`_NAMED`) and has named another agent since, the
    version left as it was given (a sub-agent's span started plain, then named "writer",
    kept its parent's "v3": per-agent put writer's cost under v3; a review)."""
    named = getattr(span, _NAMED, None)
    if type(named) is not tuple or named[1] is None or attrs.get(AGENT_NAME) == named[0]:
        return True
    version = attrs.get(AGENT_VERSION)
    if named[2]:  # the span's own copy: a version it sets itself is another object
        return version is not named[1]
    return version != named[1]


def _names_agent(attrs: Mapping[str, Any]) -> bool:
    """Whether a span's attributes name its agent (`AGENT_NAME` or OpenInference's
    ``agent.name``): an empty text names none, as the store reads it."""
    return attrs.get(AGENT_NAME) not in (None, "") or attrs.get(OPENINFERENCE_AGENT_NAME) not in (None, "")


def _openinference_agent(parent: object, pattrs: Mapping[str, Any]) -> tuple[str | None, object]:
    """The agent of a span whose parent (attributes ``pattrs``) carries no `AGENT_NAME`, as
    OpenInference names it: ``(name, None)`` when the parent, or an AGENT span a parent
    started inside before it was named (`_UNNAMED_AGENT`), is an AGENT span named by now in
    ``agent.name``; ``(None, that span)`` while it is still unnamed; else ``(None, None)``."""
    if pattrs.get(OPENINFERENCE_KIND) == "AGENT":
        agent: object = parent
    else:
        ref = getattr(parent, _UNNAMED_AGENT, None)
        agent = ref() if ref is not None else None
        if agent is None:
            return None, None
        pattrs = seam.attributes_of(agent)
    name = pattrs.get(OPENINFERENCE_AGENT_NAME)
    if isinstance(name, str) and name:
        return name, None
    return None, agent


def _private(value: Any) -> Any:
    """A version given to a span as an object of its own, so that a version the span sets
    itself later, even an equal one (every agent at the application's release), is told
    apart by identity (the review of the first form, which took an equal one for the
    inherited and dropped it). CPython keeps one object of each one-character text, but
    its case mappings build a new one (a review: versions "1" to "9" were dropped); a
    number, or a character no case mapping returns unchanged, stays as it is (`_NAMED`
    then compares by value)."""
    if type(value) is not str or not value:
        return value
    if len(value) > 1:
        return (value + " ")[:-1]
    for copy in (value.lower(), value.upper()):
        if copy == value and copy is not value:
            return copy
    return value


def _drop_version(attrs: Mapping[str, Any]) -> None:
    """Take the agent version out of a span's live attributes (inside its end(), before any
    on_end): never raises."""
    with contextlib.suppress(Exception):
        del attrs[AGENT_VERSION]  # type: ignore[attr-defined]


def _check_seam() -> None:
    """Run the seam's self-test once per process; log loudly if the SDK broke it."""
    global _seam_checked
    if _seam_checked:
        return
    _seam_checked = True
    try:
        problem = seam.self_test()
    except Exception as e:
        problem = repr(e)
    if problem is not None:
        logger.error(
            "otel-costattr: this OpenTelemetry SDK version does not work with cost stamping as "
            "built (%s); costs may be missing from spans",
            problem,
        )
    elif not seam.ending_works():
        logger.info("otel-costattr: this SDK has no usable _on_ending: hooking each span's end() instead")
