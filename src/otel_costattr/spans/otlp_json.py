"""The OTLP JSON adapter: a parsed OTLP/JSON ``ExportTraceServiceRequest`` -> `SpanRecord`s.

The same records as `spans.otlp.records_from_otlp` makes from the protobuf form of the same
request (a property test checks it against that code), read straight from the JSON objects:
going through protobuf's generic JSON parser cost 170 ms per 1,000 spans, ten times the rest
of receiving them. It reads the form the OTLP specification defines: lowerCamelCase keys,
hex ids (one that is not hex counts as empty, so the span is rejected like any bad id),
integer enums, 64-bit integers as numbers or strings, unknown fields ignored.

Anything else the protobuf JSON mapping would also accept or reject (snake_case field names,
enum names, bytes values, wrong types, out-of-range numbers) raises `NotPlain`: the caller
then decodes the request with the generic parser, which accepts it or says what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .otlp import _KIND_NAMES, _STATUS_NAMES, _ZERO_SPAN, id_problem, rejections
from .record import SpanRecord, service_name_of

_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = 2**64 - 1
# snake_case spellings the generic parser also takes: seeing one sends the request there
_SNAKE = frozenset(
    {
        "resource_spans", "scope_spans", "instrumentation_library_spans", "trace_id", "span_id",
        "parent_span_id", "start_time_unix_nano", "end_time_unix_nano", "time_unix_nano",
        "string_value", "bool_value", "int_value", "double_value", "array_value", "kvlist_value",
        "bytes_value", "bytesValue", "trace_state", "dropped_attributes_count",
    }
)  # fmt: skip
_VALUE_KEYS = ("stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue")


# The enums by the names protobuf's JSON mapping also writes (OTLP asks for the numbers).
_KIND_NUMBERS = {f"SPAN_KIND_{name}": n for n, name in enumerate(("UNSPECIFIED", *_KIND_NAMES[1:]))}
_STATUS_NUMBERS = {f"STATUS_CODE_{name}": n for n, name in enumerate(_STATUS_NAMES)}


class NotPlain(ValueError):
    """The request is not in the plain OTLP JSON form this adapter reads."""


def _obj(value: Any) -> dict[str, Any]:
    if value is None:  # a null field is an unset one
        return {}
    return _item(value)


def _item(value: Any) -> dict[str, Any]:
    if type(value) is not dict:  # a null in a list too: the generic parser refuses it
        raise NotPlain("expected an object")
    if not _SNAKE.isdisjoint(value):
        raise NotPlain("snake_case or bytes fields")
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise NotPlain("expected a list")
    return value


def _int(value: Any, lo: int, hi: int) -> int:
    if type(value) is int:
        n = value
    elif type(value) is str and value.isascii() and (value[1:] if value[:1] == "-" else value).isdigit():
        try:
            n = int(value)
        except ValueError:  # past Python's 4,300 digits: no count, time or id is that long
            raise NotPlain("integer out of range") from None
    else:
        raise NotPlain("expected an integer")
    if not lo <= n <= hi:
        raise NotPlain("integer out of range")
    return n


def _enum(value: Any, names: Mapping[str, int]) -> int:
    if type(value) is str and value in names:
        return names[value]
    return _int(value, -(2**31), 2**31 - 1)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise NotPlain("expected a string")
    return value


NOT_HEX = b"\x00"  # what an id that is not hex reads as: one byte, a length no id has


def _id(value: Any) -> bytes:
    if value is None or value == "":
        return b""
    if type(value) is not str:
        raise NotPlain("expected a hex id")
    try:
        # fromhex skips whitespace: " 0a f7 ..." is not the 32 hex digits OTLP/JSON sends
        return bytes.fromhex(value) if value.isalnum() else NOT_HEX
    except ValueError:
        # Not hex: an id of the wrong length, which `id_problem` rejects and counts. Empty
        # would have made a child with a garbled parent id a root, silently.
        return NOT_HEX


def _int_value(value: Any) -> int | float:
    """An attribute's ``intValue``. JavaScript's OTLP/JSON exporters send any whole number as
    one, 2**64 and -1.5e300 included (JSON numbers beyond int64): such a value is kept as the
    number it is, a double, where protobuf's parser refused the whole request (a 400 the
    exporter does not retry: every span of the batch lost for one attribute). A number that is
    not whole, or text beyond a double, raises `NotPlain`, as before."""
    if type(value) is float:
        if not value.is_integer():
            raise NotPlain("expected an integer")
        return int(value) if _INT64[0] <= value <= _INT64[1] else value
    try:
        return _int(value, *_INT64)
    except NotPlain:
        if type(value) is str:
            digits = value[1:] if value[:1] == "-" else value
            if not (digits.isascii() and digits.isdigit()):
                raise
        elif type(value) not in (int, bool):  # a JSON number past int64 (or true: 1, as before)
            raise  # a list, an object: the generic parser refuses it
        try:
            return float(int(value))
        except (OverflowError, ValueError):
            raise NotPlain("integer out of range") from None


def value_of(value: Any) -> Any:
    """One OTLP JSON ``AnyValue`` as `spans.otlp.value_of` gives it from protobuf."""
    value = _obj(value)
    found = [k for k in _VALUE_KEYS if value.get(k) is not None]
    if not found:
        if any(type(v) is dict or v is None for v in value.values()):
            raise NotPlain("an unknown value kind")  # the generic parser decides
        return None
    if len(found) > 1:
        raise NotPlain("more than one value kind")
    key = found[0]
    v = value[key]
    if key == "stringValue":
        return _text(v)
    if key == "boolValue":
        if type(v) is not bool:
            raise NotPlain("expected a bool")
        return v
    if key == "intValue":
        return _int_value(v)
    if key == "doubleValue":
        if type(v) in (int, float):
            try:
                f = float(v)
            except OverflowError:
                raise NotPlain("a double out of range") from None
            if math.isfinite(f):
                return f
        raise NotPlain("a double the generic parser should read")
    if key == "arrayValue":
        return tuple(value_of(_item(x)) for x in _list(_obj(v).get("values")))
    return attributes_of(_obj(v).get("values"))


def attributes_of(key_values: Any) -> dict[str, Any]:
    """A JSON list of ``KeyValue`` as a dict (a repeated key: the last one wins).

    The usual shapes, ``{"key": "k", "value": {"stringValue" | "intValue" | "boolValue": v}}``,
    are read in line, to what `value_of` gives them without its general checks; any other
    shape goes there."""
    out = {}
    for kv in _list(key_values):
        if type(kv) is dict and len(kv) == 2:
            key, value = kv.get("key"), kv.get("value")
            if type(key) is str and type(value) is dict and len(value) == 1:
                ((kind, v),) = value.items()
                if kind == "stringValue" and type(v) is str:
                    out[key] = v
                    continue
                if kind == "intValue" and (type(v) is int or type(v) is str):
                    out[key] = _int_value(v)
                    continue
                if kind == "boolValue" and type(v) is bool:
                    out[key] = v
                    continue
        kv = _item(kv)
        out[_text(kv.get("key"))] = value_of(kv.get("value"))
    return out


def records_from_otlp_json(request: Mapping[str, Any]) -> tuple[list[SpanRecord], int, str]:
    """The spans of a parsed OTLP JSON request as records, with how many were rejected and
    why, as `spans.otlp.records_from_otlp` reports them. Raises `NotPlain` (module docstring)."""
    out: list[SpanRecord] = []
    problems: dict[str, int] = {}
    for resource_spans in _list(_item(request).get("resourceSpans")):
        resource_spans = _item(resource_spans)
        resource = attributes_of(_obj(resource_spans.get("resource")).get("attributes"))
        service = service_name_of(resource)
        for scope_spans in _list(resource_spans.get("scopeSpans")):
            scope_spans = _item(scope_spans)
            scope = _obj(scope_spans.get("scope"))
            scope_name, scope_version = _text(scope.get("name")) or None, _text(scope.get("version")) or None
            for span in _list(scope_spans.get("spans")):
                span = _item(span)
                trace_id, span_id = _id(span.get("traceId")), _id(span.get("spanId"))
                parent = _id(span.get("parentSpanId"))
                problem = id_problem(trace_id, span_id, parent)
                if problem is not None:
                    problems[problem] = problems.get(problem, 0) + 1
                    continue
                out.append(
                    _record(span, trace_id, span_id, parent, resource, service, scope_name, scope_version)
                )
    return (out, *rejections(problems))


def _record(
    span: dict[str, Any],
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    resource: Mapping[str, Any],
    service: str | None,
    scope_name: str | None,
    scope_version: str | None,
) -> SpanRecord:
    kind = _enum(span.get("kind", 0), _KIND_NUMBERS)
    status = _obj(span.get("status"))
    code = _enum(status.get("code", 0), _STATUS_NUMBERS)
    events = tuple(
        (_text(e.get("name")), _int(e.get("timeUnixNano", 0), 0, _UINT64), attributes_of(e.get("attributes")))
        for e in map(_item, _list(span.get("events")))
    )
    links = tuple(
        (_id(link.get("traceId")).hex(), _id(link.get("spanId")).hex(), attributes_of(link.get("attributes")))
        for link in map(_item, _list(span.get("links")))
    )
    return SpanRecord(
        trace_id.hex(),
        span_id.hex(),
        parent.hex() if parent and parent != _ZERO_SPAN else None,
        _int(span.get("startTimeUnixNano", 0), 0, _UINT64) or None,
        _int(span.get("endTimeUnixNano", 0), 0, _UINT64) or None,
        _text(span.get("name")),
        _KIND_NAMES[kind] if 0 <= kind < len(_KIND_NAMES) else "INTERNAL",
        _STATUS_NAMES[code] if 0 <= code < len(_STATUS_NAMES) else "UNSET",
        _text(status.get("message")) or None,
        resource,
        service,
        scope_name,
        scope_version,
        attributes_of(span.get("attributes")),
        events,
        links,
    )
