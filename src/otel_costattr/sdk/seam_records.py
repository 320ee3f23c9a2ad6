"""Finished SDK spans (``ReadableSpan``) -> `SpanRecord` (``spans/record.py``): the SDK's
adapter, the other half of the seam (``sdk/seam.py``). Only ``sdk/seam*.py`` touch SDK
internals.

`records_from_sdk` reads the attribute dicts of spans, events, links and resources
(``._dict``) and the span's own fields (``_context``, ``_events``, ...) instead of the
properties that wrap or copy them. Nothing else in the package reads a span's insides.

The fast paths are switched on and off with the seam's (``seam._fast``, flipped by
`seam.self_test`); tests/test_processor_seam.py checks both give the same records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext

from ..spans.record import SpanRecord, service_name_of
from . import seam

logger = logging.getLogger(__name__)
_NONE = object()  # matches no resource, scope or context type


def _plain(attrs: Any) -> Mapping[str, Any]:
    """Attributes as a mapping cheap to read (read-only by contract), never copied when
    avoidable: BoundedAttributes keeps a plain dict, and reading it skips a Python-level
    ``__getitem__`` per lookup, which was most of the row mapping's time."""
    if type(attrs) is dict:
        return attrs
    if attrs is None:
        return seam.EMPTY
    inner = getattr(attrs, "_dict", None)
    return inner if type(inner) is dict else dict(attrs)


def _context_is_its_items() -> bool:
    """Whether a SpanContext is the tuple (trace_id, span_id, ...) its properties read: then
    ``ctx[0]`` is ``ctx.trace_id`` without a Python-level property call (two a span, three
    with a parent)."""
    try:
        ctx = SpanContext(0x1234, 0x56, False)
        return isinstance(ctx, tuple) and (ctx[0], ctx[1]) == (ctx.trace_id, ctx.span_id) == (0x1234, 0x56)
    except Exception:  # an API that builds them otherwise: the properties
        return False


_INDEXED_CONTEXT = _context_is_its_items()


def _text(name: object) -> str:
    """A span name the SDK kept as given (it does not check it): a str subclass (an Enum's
    member) its text, bytes decoded, None "", anything else ``str()``: 123 is "123"."""
    if name is None:
        return ""
    if isinstance(name, str):
        return str.__str__(name)
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).decode("utf-8", "replace")
    return str(name)


def records_from_sdk(spans: Iterable[Any], on_skip: Callable[[Any], None] | None = None) -> list[SpanRecord]:
    """Finished SDK spans (``ReadableSpan``) as records, in order: one call per export batch.

    A span that cannot be read is left out and passed to ``on_skip`` (called inside an
    ``except`` block, so it may log the traceback); without ``on_skip`` it is logged."""
    out: list[SpanRecord] = []
    append = out.append
    new = tuple.__new__
    resources: dict[int, tuple[Any, Mapping[str, Any], str | None]] = {}
    scopes: dict[int, tuple[Any, str | None, str | None]] = {}
    # The spans of a batch nearly always share one resource and one scope: the last ones
    # seen are checked by identity before the dicts are asked.
    last_resource: Any = _NONE
    last_scope: Any = _NONE
    res: tuple[Any, Mapping[str, Any], str | None] = (None, seam.EMPTY, None)
    sc: tuple[Any, str | None, str | None] = (None, None, None)
    fast = seam._fast  # off when seam.self_test() found the SDK changed
    context_type = SpanContext if fast and _INDEXED_CONTEXT else _NONE
    for span in spans:
        try:
            try:
                if not fast:
                    raise AttributeError("fast path disabled")
                ctx, parent, events, links = span._context, span._parent, span._events, span._links
                attrs, resource, scope = span._attributes, span._resource, span._instrumentation_scope
                # The fields behind the properties: a property is a Python-level call each.
                name, kind, start, end, status = (
                    span._name,
                    span._kind,
                    span._start_time,
                    span._end_time,
                    span._status,
                )
                status_code, description = status._status_code, status._description
                # The containers behind BoundedList and BoundedAttributes: their truth test and
                # lookups are Python-level calls otherwise (two __len__ a span).
                if type(events) is BoundedList:
                    events = events._dq
                if type(links) is BoundedList:
                    links = links._dq
                if type(attrs) is BoundedAttributes and type(attrs._dict) is dict:
                    attrs = attrs._dict
                if type(ctx) is context_type:
                    trace_id, span_id = ctx[0], ctx[1]
                else:
                    trace_id, span_id = ctx.trace_id, ctx.span_id
                if parent is None:
                    parent_id = None
                elif type(parent) is context_type:
                    parent_id = parent[1]
                else:
                    parent_id = parent.span_id
            except AttributeError:  # not an SDK span, or the SDK renamed them: the public API
                ctx, parent, events, links = span.context, span.parent, span.events, span.links
                attrs, resource, scope = span.attributes, span.resource, span.instrumentation_scope
                name, kind, start, end, status = (
                    span.name,
                    span.kind,
                    span.start_time,
                    span.end_time,
                    span.status,
                )
                status_code, description = status.status_code, status.description
                trace_id, span_id = ctx.trace_id, ctx.span_id
                parent_id = parent.span_id if parent is not None else None
            if resource is not last_resource:
                got = resources.get(id(resource))
                if got is None:
                    rattrs = _plain(getattr(resource, "attributes", None))
                    got = resources[id(resource)] = (resource, rattrs, service_name_of(rattrs))
                res, last_resource = got, resource
            if scope is not last_scope:
                got_scope = scopes.get(id(scope))
                if got_scope is None:
                    got_scope = scopes[id(scope)] = (
                        scope,
                        getattr(scope, "name", None) or None,
                        getattr(scope, "version", None) or None,
                    )
                sc, last_scope = got_scope, scope
            values = (
                trace_id.to_bytes(16, "big").hex(),  # 25% faster than format(..., "032x")
                span_id.to_bytes(8, "big").hex(),
                parent_id.to_bytes(8, "big").hex() if parent_id is not None else None,
                start,
                end,
                name if type(name) is str else _text(name),
                kind._name_,
                status_code._name_,
                description or None,
                res[1],
                res[2],
                sc[1],
                sc[2],
                attrs if type(attrs) is dict else _plain(attrs),
                tuple((e.name, e.timestamp, _plain(e.attributes)) for e in events) if events else (),
                tuple(
                    (
                        link.context.trace_id.to_bytes(16, "big").hex(),
                        link.context.span_id.to_bytes(8, "big").hex(),
                        _plain(link.attributes),
                    )
                    for link in links
                )
                if links
                else (),
            )
        except Exception:
            if on_skip is None:
                logger.exception("otel-costattr: could not read span %r; skipped", span)
            else:
                on_skip(span)
            continue
        append(new(SpanRecord, values))
    return out
