"""`SpanRecord`: the one shape every span takes once it leaves its producer.

Adapters build records; everything downstream (the row mapper, the store) reads records only:

- `otel_costattr.sdk.seam_records.records_from_sdk`: finished SDK spans (the only code that reads
  the SDK's internals);
- `otel_costattr.spans.otlp.records_from_otlp`: an OTLP ``ExportTraceServiceRequest``.

A record is a plain NamedTuple (built on the export hot path: a tuple is the cheapest object
Python makes) holding values in the same Python types the SDK gives, so one row mapping rule
serves every producer. Field contracts, which each adapter must honour:

``trace_id``, ``span_id``
    lowercase hex, 32 and 16 characters (as the store and OTLP JSON hold them).
``parent_span_id``
    16 lowercase hex characters, or None for a root span.
``start_ns``, ``end_ns``
    nanoseconds since the Unix epoch (int), or None when the producer did not say.
``name``
    the span name (str, may be empty).
``kind``
    the SpanKind name as the store holds it: "INTERNAL", "SERVER", "CLIENT", "PRODUCER",
    "CONSUMER".
``status_code``, ``status_message``
    "UNSET", "OK" or "ERROR"; the description, None when empty.
``resource``
    the resource attributes (a Mapping, read-only by contract). Spans of one resource share
    one object, so per-resource work can be done once per object.
``service_name``
    ``service.name`` from the resource as text (`service_name_of`), None when missing.
``scope_name``, ``scope_version``
    the instrumentation scope's name and version, None when empty.
``attributes``
    the span attributes (a Mapping, read-only by contract), values as the SDK holds them:
    str, bool, int, float, bytes, tuples of those. OTLP may also carry key-value lists,
    decoded to dicts (see `spans/otlp.py`).
``events``
    a sequence of ``(name, time_ns, attributes)`` tuples, in the span's order.
``links``
    a sequence of ``(trace_id hex, span_id hex, attributes)`` tuples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

Event = tuple[str, int, Mapping[str, Any]]
Link = tuple[str, str, Mapping[str, Any]]

KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")


class SpanRecord(NamedTuple):
    """One finished span, whoever produced it (field contracts in the module docstring)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_ns: int | None
    end_ns: int | None
    name: str
    kind: str
    status_code: str
    status_message: str | None
    resource: Mapping[str, Any]
    service_name: str | None
    scope_name: str | None
    scope_version: str | None
    attributes: Mapping[str, Any]
    events: Sequence[Event]
    links: Sequence[Link]


def make_record(values: tuple[Any, ...]) -> SpanRecord:
    """A record from a tuple of its 16 values in field order, unchecked (for adapters).

    Adapters on a hot path bind ``tuple.__new__`` and call ``new(SpanRecord, values)``
    themselves: the same thing at 100 ns against 250 ns for ``SpanRecord(*values)``."""
    return tuple.__new__(SpanRecord, values)


def service_name_of(resource: Mapping[str, Any]) -> str | None:
    """``service.name`` of a resource as text: a number or bool as its text, anything else
    (missing, empty, a sequence) None."""
    value = resource.get("service.name")
    if isinstance(value, str):
        return value or None
    if isinstance(value, (bool, int, float)):
        return str(value)
    return None
