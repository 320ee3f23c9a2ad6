"""The OTLP adapter: an ``ExportTraceServiceRequest`` -> `SpanRecord`s (``spans/record.py``).

For spans that arrive over the wire (the receiver, `server/`): the records are the ones the SDK
adapter (``sdk/seam_records.py``) makes from the same spans, so a span costs and stores the same
whichever way it came. Values decode to the types the SDK holds:

- AnyValue: string, bool, int, double and bytes as str, bool, int, float, bytes; an array as
  a tuple (as the SDK keeps a sequence attribute); a key-value list as a dict (the SDK cannot
  hold one, but an OTLP producer may send one: its row JSON is then a nested object, which
  is what it meant); an empty value as None.
- ids as lowercase hex; times of 0 (unset) as None; the kind and status enums as the names
  the store holds ("CLIENT", "ERROR"). SPAN_KIND_UNSPECIFIED, and a kind number this code
  does not know, are stored as "INTERNAL" (the spec lets a receiver assume it); a status
  code it does not know as "UNSET".

Bad input never raises: a span without a valid trace id (16 bytes, not all zero) or span id
(8 bytes, not all zero), or with a parent span id that is neither empty nor 8 bytes, is left
out and counted, and the message says why; the receiver answers them with
``partial_success``.

``opentelemetry-proto`` is in the ``[otlp]`` extra, not a core dependency: this module imports
without it, and raises an ImportError naming the extra when it is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .record import KINDS, STATUS_CODES, SpanRecord, service_name_of

_INSTALL_HINT = "OTLP decoding needs opentelemetry-proto: pip install 'otel-costattr[otlp]'"
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
# OTLP enum number -> name as the store holds it (index = number).
_KIND_NAMES = ("INTERNAL", *KINDS)  # 0 is SPAN_KIND_UNSPECIFIED
_STATUS_NAMES = STATUS_CODES  # STATUS_CODE_UNSET, _OK, _ERROR

_request_class: Any = None


def _proto() -> Any:
    """The ``ExportTraceServiceRequest`` class, imported on first use."""
    global _request_class
    if _request_class is None:
        try:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        except ImportError as e:
            raise ImportError(_INSTALL_HINT) from e
        _request_class = ExportTraceServiceRequest
    return _request_class


def parse_request(body: bytes) -> Any:
    """A binary protobuf ``ExportTraceServiceRequest``; ValueError when ``body`` is not one
    (the receiver answers 400), ImportError naming the extra without ``opentelemetry-proto``."""
    request = _proto()()
    try:
        request.ParseFromString(body)
    except Exception as e:  # google.protobuf.message.DecodeError, without importing protobuf here
        raise ValueError(f"not an OTLP ExportTraceServiceRequest: {e}") from e
    return request


def value_of(value: Any) -> Any:
    """One OTLP ``AnyValue`` as the Python value the SDK would hold (module docstring)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(value_of(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if which is None:
        return None
    return getattr(value, which)


def attributes_of(key_values: Iterable[Any]) -> dict[str, Any]:
    """Repeated OTLP ``KeyValue`` as a dict (a repeated key: the last one wins)."""
    return {kv.key: value_of(kv.value) for kv in key_values}


def _problem(span: Any) -> str | None:
    """Why ``span`` cannot be stored, or None."""
    return id_problem(span.trace_id, span.span_id, span.parent_span_id)


def id_problem(trace_id: bytes, span_id: bytes, parent: bytes) -> str | None:
    """Why a span with these ids cannot be stored, or None (the one rule, for every adapter)."""
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return "trace_id is not 16 bytes, or all zero"
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        return "span_id is not 8 bytes, or all zero"
    if len(parent) not in (0, 8):
        return "parent_span_id is neither empty nor 8 bytes"
    return None


def records_from_otlp(request: Any) -> tuple[list[SpanRecord], int, str]:
    """The spans of an ``ExportTraceServiceRequest`` as records, in order, with how many were
    rejected and why (an empty message when none were): what ``partial_success`` reports."""
    _proto()  # the extra is needed; say so here rather than fail later on a stray object
    out: list[SpanRecord] = []
    append = out.append
    new = tuple.__new__
    problems: dict[str, int] = {}
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        service = service_name_of(resource)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name, scope_version = scope.name or None, scope.version or None
            for span in scope_spans.spans:
                try:
                    problem = _problem(span)
                    if problem is None:
                        append(new(SpanRecord, _values(span, resource, service, scope_name, scope_version)))
                        continue
                except Exception as e:  # whatever a malformed span does, the rest go on
                    problem = f"unreadable ({type(e).__name__})"
                problems[problem] = problems.get(problem, 0) + 1
    return (out, *rejections(problems))


def rejections(problems: Mapping[str, int]) -> tuple[int, str]:
    """How many spans were rejected and the ``partial_success`` message saying why."""
    rejected = sum(problems.values())
    message = ""
    if rejected:
        reasons = "; ".join(f"{why} ({n})" for why, n in problems.items())
        message = f"{rejected} span{'s' if rejected != 1 else ''} rejected: {reasons}"
    return rejected, message


def _values(
    span: Any, resource: Mapping[str, Any], service: str | None, scope_name: Any, scope_version: Any
) -> tuple[Any, ...]:
    parent = span.parent_span_id
    kind = span.kind
    status = span.status
    code = status.code
    return (
        span.trace_id.hex(),
        span.span_id.hex(),
        parent.hex() if parent and parent != _ZERO_SPAN else None,
        span.start_time_unix_nano or None,
        span.end_time_unix_nano or None,
        span.name,
        _KIND_NAMES[kind] if 0 <= kind < len(_KIND_NAMES) else "INTERNAL",
        _STATUS_NAMES[code] if 0 <= code < len(_STATUS_NAMES) else "UNSET",
        status.message or None,
        resource,
        service,
        scope_name,
        scope_version,
        attributes_of(span.attributes),
        tuple((e.name, e.time_unix_nano, attributes_of(e.attributes)) for e in span.events),
        tuple(
            (link.trace_id.hex(), link.span_id.hex(), attributes_of(link.attributes)) for link in span.links
        ),
    )
