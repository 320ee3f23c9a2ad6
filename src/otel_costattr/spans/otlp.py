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

Decoding speed (the receiver's CPU per span, `benchmarks/bench_receiver.py`): a request is
parsed with a private copy of the OTLP message classes in which every ``attributes`` field
(span, event, link, resource) is ``repeated bytes`` instead of ``repeated KeyValue``. Both are
length-delimited on the wire, so the bytes are exactly each KeyValue's encoding, and the
parse itself checks the rest of the request as before. A KeyValue's bytes are decoded once
(``_KeyValue.FromString``) and the ``(key, value)`` pair is kept in a bounded cache keyed by
those bytes: most attributes of GenAI spans repeat (operation, provider, model, agent,
feature), and a hit costs a dict lookup instead of four calls into the protobuf runtime for
each attribute (a 1,000-span request, parsed and read: 19-22 ms before, 3.9-6.0 ms with
the bytes form, best of 30 in fresh processes, load 9). Only scalar values are cached (a
key-value list decodes to a dict, which a record must not share), and only small encodings.
A KeyValue that is not valid protobuf makes the request undecodable (ValueError), as the
generated classes would have said when parsing it.

``opentelemetry-proto`` is in the ``[otlp]`` extra, not a core dependency: this module imports
without it, and raises an ImportError naming the extra when it is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .record import KINDS, STATUS_CODES, SpanRecord, service_name_of

_INSTALL_HINT = (
    "OTLP decoding needs opentelemetry-proto: pip install 'otel-costattr[otlp]'"
    " (from a clone: pip install -e '.[otlp]')"
)
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
# OTLP enum number -> name as the store holds it (index = number).
_KIND_NAMES = ("INTERNAL", *KINDS)  # 0 is SPAN_KIND_UNSPECIFIED
_STATUS_NAMES = STATUS_CODES  # STATUS_CODE_UNSET, _OK, _ERROR

_request_class: Any = None  # the generated ExportTraceServiceRequest
_raw_class: Any = None  # the same with attributes as bytes (module docstring)
_KeyValue: Any = None
_DecodeError: Any = None
# Whose ``attributes`` field is read as bytes: (proto file, message path).
_RAW_ATTRIBUTES = (
    ("opentelemetry/proto/resource/v1/resource.proto", ("Resource",)),
    ("opentelemetry/proto/trace/v1/trace.proto", ("Span",)),
    ("opentelemetry/proto/trace/v1/trace.proto", ("Span", "Event")),
    ("opentelemetry/proto/trace/v1/trace.proto", ("Span", "Link")),
)
_REQUEST = "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"
_CACHE_MAX = 16_384  # entries (each under 1 kB: key bytes, key, value), cleared when full
_CACHEABLE = 256  # bytes: a longer KeyValue (a prompt someone sends) is decoded, not kept
_SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value", None})
_pairs: dict[bytes, tuple[str, Any]] = {}  # KeyValue bytes -> (key, value); GIL-safe dict ops


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


def _raw() -> Any:
    """The request class whose ``attributes`` fields are bytes, built on first use from the
    generated descriptors (so it follows the installed ``opentelemetry-proto``)."""
    global _raw_class, _KeyValue, _DecodeError
    request = _proto()  # first, so that a missing extra is named every time
    if _raw_class is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.common.v1.common_pb2 import KeyValue

        files, todo = {}, [request.DESCRIPTOR.file]
        while todo:  # the request's file and what it imports, each once
            file = todo.pop()
            if file.name not in files:
                files[file.name] = file
                todo.extend(file.dependencies)
        protos = {}
        for name, file in files.items():
            protos[name] = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(protos[name])
        for name, path in _RAW_ATTRIBUTES:
            message = next(m for m in protos[name].message_type if m.name == path[0])
            for nested in path[1:]:
                message = next(m for m in message.nested_type if m.name == nested)
            field = next(f for f in message.field if f.name == "attributes")
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
            field.ClearField("type_name")
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(name: str) -> None:  # dependencies first
            if name not in added:
                for dependency in protos[name].dependency:
                    add(dependency)
                pool.Add(protos[name])
                added.add(name)

        for name in protos:
            add(name)
        _KeyValue, _DecodeError = KeyValue, DecodeError
        _raw_class = message_factory.GetMessageClass(pool.FindMessageTypeByName(_REQUEST))
    return _raw_class


def parse_request(body: bytes) -> Any:
    """A binary protobuf ``ExportTraceServiceRequest``, in the form `records_from_otlp` reads
    fastest; ValueError when ``body`` is not one (the receiver answers 400), ImportError
    naming the extra without ``opentelemetry-proto``."""
    request = _raw()()
    try:
        request.ParseFromString(body)
    except Exception as e:  # google.protobuf.message.DecodeError, without importing protobuf here
        raise ValueError(f"not an OTLP ExportTraceServiceRequest: {e}") from e
    return request


def empty_request() -> Any:
    """A new, empty ``ExportTraceServiceRequest`` of the generated class (to fill from JSON)."""
    return _proto()()


def _pair(raw: bytes) -> tuple[str, Any]:
    """One KeyValue's bytes as ``(key, value)``, through the cache."""
    try:
        kv = _KeyValue.FromString(raw)
    except (_DecodeError, UnicodeDecodeError) as e:  # the latter: protobuf's pure-Python parser
        text = str(e)
        failed = _TooDeep if "depth" in text.lower() or "recursion" in text.lower() else _Undecodable
        raise failed(f"not an OTLP ExportTraceServiceRequest: a KeyValue: {e}") from None
    value = kv.value
    pair = (kv.key, value_of(value))
    if len(raw) <= _CACHEABLE and value.WhichOneof("value") in _SCALARS:
        if len(_pairs) >= _CACHE_MAX:
            _pairs.clear()
        _pairs[raw] = pair
    return pair


def _attributes(raws: Any) -> dict[str, Any]:
    """Repeated KeyValue bytes as a dict (a repeated key: the last one wins)."""
    try:
        return dict(map(_pairs.__getitem__, raws))  # all cached: no Python-level loop
    except KeyError:
        get = _pairs.get
        return dict(get(raw) or _pair(raw) for raw in raws)


class _Undecodable(ValueError):
    """A KeyValue inside the request is not valid protobuf: the request is undecodable."""


class _TooDeep(_Undecodable):
    """A KeyValue nested past the parser's depth limit: valid, but not readable here."""


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
    """The spans of an ``ExportTraceServiceRequest`` (as `parse_request` gives it, or of the
    generated class) as records, in order, with how many were rejected and why (an empty
    message when none were): what ``partial_success`` reports. A span with an attribute
    nested past protobuf's depth limit (34 kvlists in; valid protobuf, which the Collector
    reads) is rejected alone. ValueError when an attribute inside is not valid protobuf (the
    request is undecodable: 400, as the stock parser refuses it whole)."""
    raw_class = _raw()  # the extra is needed; say so here rather than fail later on a stray object
    if type(request) is not raw_class:  # one reading rule: the generated form is read as bytes
        request = parse_request(request.SerializeToString())
    out: list[SpanRecord] = []
    append = out.append
    new = tuple.__new__
    problems: dict[str, int] = {}
    for resource_spans in request.resource_spans:
        try:
            resource = _attributes(resource_spans.resource.attributes)
        except _TooDeep:  # its spans alone, as for a span's own attribute
            problem = "a resource attribute nested too deep to read"
            count = sum(len(scope_spans.spans) for scope_spans in resource_spans.scope_spans)
            problems[problem] = problems.get(problem, 0) + count
            continue
        service = service_name_of(resource)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name, scope_version = scope.name or None, scope.version or None
            for span in scope_spans.spans:
                try:
                    ids = span.trace_id, span.span_id, span.parent_span_id
                    problem = id_problem(*ids)
                    if problem is None:
                        values = _values(span, ids, resource, service, scope_name, scope_version)
                        append(new(SpanRecord, values))
                        continue
                except _TooDeep:  # valid protobuf the parser will not read: the span alone
                    problem = "an attribute nested too deep to read"
                except _Undecodable:
                    raise
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
    span: Any,
    ids: tuple[bytes, bytes, bytes],
    resource: Mapping[str, Any],
    service: str | None,
    scope_name: Any,
    scope_version: Any,
) -> tuple[Any, ...]:
    trace_id, span_id, parent = ids
    kind = span.kind
    status = span.status
    code = status.code
    events = span.events
    links = span.links
    return (
        trace_id.hex(),
        span_id.hex(),
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
        _attributes(span.attributes),
        tuple((e.name, e.time_unix_nano, _attributes(e.attributes)) for e in events) if events else (),
        tuple((k.trace_id.hex(), k.span_id.hex(), _attributes(k.attributes)) for k in links) if links else (),
    )
