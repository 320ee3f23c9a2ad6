"""The OTLP/HTTP wire format of ``POST /v1/traces``: bodies in, responses out, per the spec.

- Bodies: ``application/x-protobuf`` or ``application/json`` (any other type: 415), plain,
  ``gzip`` or ``deflate`` (zlib or raw); the size cap applies after decompression (`TooLarge`,
  answered 413), so a small gzip bomb cannot fill memory. Undecodable bodies raise
  `BadRequest` (400).
- JSON: the protobuf JSON mapping with OTLP's exceptions: trace and span ids are hex strings
  (protobuf's generic mapping would read them as base64), enums as integers, unknown fields
  ignored, 64-bit integers as numbers or strings. An id that is not hex becomes empty, so the
  span is rejected and reported through ``partial_success`` like any other bad id.
- Responses: an ``ExportTraceServiceResponse`` (with ``partial_success`` when spans were
  rejected), or a ``google.rpc.Status`` for an error, in the request's content type.

The spans themselves are decoded by `spans.otlp` (`parse_request`, `records_from_otlp`), as
for gRPC; plain OTLP JSON by `spans.otlp_json` (the same records, ten times faster than
protobuf's generic JSON parser), anything else in JSON by that parser.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from ..spans.encode import without_surrogates
from ..spans.otlp import empty_request, parse_request, records_from_otlp
from ..spans.otlp_json import NOT_HEX, NotPlain, records_from_otlp_json
from ..spans.otlp_text import text_repaired
from ..spans.record import SpanRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_MAX_BODY = 20 * 2**20  # bytes, after decompression (the usual OTLP receiver figure)

# google.rpc.Code numbers, for the Status bodies of HTTP errors
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
UNAVAILABLE = 14
UNAUTHENTICATED = 16


class BadRequest(ValueError):
    """The body cannot be read as an OTLP trace export (400)."""


class TooLarge(ValueError):
    """The body is over the cap once decompressed (413)."""


class Unsupported(ValueError):
    """A content type or encoding the receiver does not speak (415)."""


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_type(content_type: str | None) -> str:
    """The type to answer in: the request's, when it is one we speak; else JSON."""
    kind = media_type(content_type)
    return PROTOBUF if kind == PROTOBUF else JSON


def decompress(body: bytes, encoding: str | None, cap: int) -> bytes:
    """``body`` decoded per ``Content-Encoding``; `TooLarge` past ``cap`` bytes of output,
    `BadRequest` when truncated or corrupt, `Unsupported` for an unknown encoding."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > cap:
            raise TooLarge(f"body of {len(body)} bytes is over the {cap}-byte limit")
        return body
    if enc in ("gzip", "x-gzip"):  # RFC 9110 8.4.1.3: x-gzip is gzip
        return _inflate(body, zlib.MAX_WBITS | 16, cap, "gzip")
    if enc == "deflate":  # HTTP's deflate is zlib-wrapped; some clients send it raw
        try:
            return _inflate(body, zlib.MAX_WBITS, cap, "deflate")
        except BadRequest:
            return _inflate(body, -zlib.MAX_WBITS, cap, "deflate")
    raise Unsupported(f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or none)")


def _inflate(body: bytes, wbits: int, cap: int, name: str) -> bytes:
    """``body`` inflated. A gzip body may hold several members (RFC 1952; what concatenated
    gzip files are, read whole by Go's reader and Python's): every one is read, never only
    the first, at most `MAX_MEMBERS`. Anything else after the end (but a gzip file's zero
    padding) is refused. The input is fed in chunks that start small and double, so that
    what zlib copies of the rest at each member's end stays small: many tiny members cost
    time in proportion to the body, not to its square."""
    view = memoryview(body)
    parts: list[bytes] = []
    size = offset = members = 0
    while True:
        members += 1
        if members > MAX_MEMBERS:
            raise BadRequest(f"{name} body has more than {MAX_MEMBERS} members")
        d = zlib.decompressobj(wbits)
        chunk = 256
        while not d.eof and offset < len(view):
            piece = view[offset : offset + chunk]
            try:
                out = d.decompress(piece, cap + 1 - size)
            except zlib.error as e:
                raise BadRequest(f"{name} body cannot be decompressed: {e}") from None
            size += len(out)
            if size > cap:
                raise TooLarge(f"body is over the {cap}-byte limit once decompressed")
            parts.append(out)
            if d.unconsumed_tail:  # output limit reached below the cap: cannot happen, but never loop
                raise TooLarge(f"body is over the {cap}-byte limit once decompressed")
            offset += len(piece) - len(d.unused_data)
            chunk = min(chunk * 2, 1 << 20)
        if not d.eof:
            raise BadRequest(f"{name} body is truncated")
        rest = view[offset:]
        if not len(rest) or (wbits & 16 and not bytes(rest).strip(b"\0")):
            return b"".join(parts)
        if not wbits & 16:
            raise BadRequest(f"{name} body has {len(rest)} bytes after its end")


MAX_MEMBERS = 1000  # gzip members in one body (a few in any real one)


def decode(body: bytes, content_type: str | None, *, grpc: bool = False) -> tuple[list[SpanRecord], int, str]:
    """The span records of a decompressed body of ``content_type``, with how many spans were
    rejected and why (`spans.otlp.records_from_otlp`). ``grpc``: a gRPC Export message
    (protobuf; refused in the same words as over HTTP)."""
    kind = media_type(content_type)
    if kind == PROTOBUF:
        try:
            return _from_protobuf(body)
        except BadRequest as e:
            # Text that is not UTF-8 makes protobuf refuse the whole message: read it again
            # with U+FFFD in its place, as the JSON path stores it (`spans.otlp_text`). Only
            # for that reason: any other body is refused at the C parser's cost, as before.
            refused = e
            if "utf-8" not in str(e).lower() and "utf8" not in str(e).lower():
                raise
            repaired = text_repaired(body, empty_request().DESCRIPTOR)
            if repaired is None:
                raise
        try:
            return _from_protobuf(repaired)
        except BadRequest:
            raise refused from None  # refused as it was: the original body's reason
    if kind == JSON:
        if not body.strip():  # an empty request is a success, as an empty protobuf body is
            return [], 0, ""
        try:
            try:
                data = json.loads(body)
            except UnicodeDecodeError:
                # One byte that is not UTF-8 in one span's text: read with U+FFFD in its
                # place, as the protobuf path does, not the whole export refused
                data = json.loads(body.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as e:
            raise BadRequest(f"body is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise BadRequest("body is not a JSON object")
        try:  # the plain OTLP form, read directly; anything else through protobuf's parser
            return records_from_otlp_json(data)
        except (NotPlain, RecursionError):
            pass
        except (ValueError, TypeError, OverflowError, AttributeError, KeyError, IndexError):
            # A shape the plain reader did not foresee: the generic parser is the reference,
            # and whatever it refuses is a 400, never the 503 a client retries for ever.
            pass
        return records_from_otlp(_from_json(data))
    raise Unsupported(unsupported_type(content_type))


def _from_protobuf(body: bytes) -> tuple[list[SpanRecord], int, str]:
    try:
        request = parse_request(body)
    except ValueError as e:
        raise BadRequest(str(e)) from None  # parse_request names it (gRPC and HTTP alike)
    try:  # an attribute that is not valid protobuf shows while reading the spans
        return records_from_otlp(request)
    except ValueError as e:
        raise BadRequest(str(e)) from None


def unsupported_type(content_type: str | None) -> str | None:
    """Why ``content_type`` cannot be read (the 415's message), or None when it can."""
    if media_type(content_type) in (PROTOBUF, JSON):
        return None
    return f"unsupported Content-Type {content_type!r} (use {PROTOBUF} or {JSON})"


def _from_json(data: dict[str, Any]) -> Any:
    from google.protobuf import json_format

    try:
        _ids_to_base64(data)
        _big_ints_as_doubles(data)
        request = empty_request()
        try:
            json_format.ParseDict(data, request, ignore_unknown_fields=True)
        except (json_format.ParseError, SystemError) as e:
            # upb raises SystemError for a lone surrogate where it wants an enum's name or a
            # message (``"kind": "\ud800"``), ParseError naming it elsewhere.
            if isinstance(e, json_format.ParseError) and "surrogate" not in str(e):
                raise
            # A lone surrogate ("\\ud800" is valid JSON, not UTF-8): U+FFFD in its place, as
            # the plain path stores it, rather than the whole request refused.
            request = empty_request()
            json_format.ParseDict(_no_surrogates(data), request, ignore_unknown_fields=True)
    except (
        json_format.ParseError,
        ValueError,
        TypeError,
        AttributeError,
        RecursionError,
        OverflowError,
        SystemError,
    ) as e:
        raise BadRequest(f"not an OTLP ExportTraceServiceRequest: {' '.join(str(e).split())[:300]}") from None
    return request


def _no_surrogates(value: Any) -> Any:
    """``value`` (parsed JSON) with each lone surrogate in a text replaced by U+FFFD."""
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


def _hex_as_base64(obj: dict[str, Any], key: str) -> None:
    value = obj.get(key)
    if value is None:
        return
    try:
        # fromhex skips whitespace: " 0a f7 ..." is not the 32 hex digits OTLP/JSON sends
        raw = bytes.fromhex(value) if isinstance(value, str) and (value.isalnum() or not value) else NOT_HEX
    except ValueError:
        # An id of the wrong length, which the decoder rejects and reports, as the direct
        # reader does. Empty would have made a child with a garbled parent id a root, silently.
        raw = NOT_HEX
    obj[key] = base64.b64encode(raw).decode()


def _items(obj: Any, key: str) -> list[Any]:
    """The list under ``key`` or its snake_case spelling (the JSON mapping takes both)."""
    if not isinstance(obj, dict):
        return []
    value = obj.get(key, obj.get(_snake(key)))
    return value if isinstance(value, list) else []


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _big_ints_as_doubles(value: Any, depth: int = 0) -> None:
    """Each ``intValue`` beyond int64 (JavaScript exporters send any whole number as one) made
    the ``doubleValue`` it is, in place, as the plain reader keeps it
    (`spans.otlp_json._int_value`): protobuf's parser refused the whole request for it. Nested
    values deeper than the parser reads are left to it."""
    if depth > 200:
        return
    if isinstance(value, dict):
        big = value.get("intValue", value.get("int_value"))
        if big is not None and len(value) == 1:
            double = _beyond_int64(big)
            if double is not None:
                value.clear()
                value["doubleValue"] = double
                return
        for v in value.values():
            _big_ints_as_doubles(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _big_ints_as_doubles(v, depth + 1)


def _beyond_int64(number: Any) -> float | None:
    """A whole number outside int64 (an int, a whole float, or its decimal digits) as a
    double; None for anything else (protobuf's parser decides)."""
    if isinstance(number, bool):
        return None
    if isinstance(number, str):
        digits = number[1:] if number[:1] == "-" else number
        if not (digits.isascii() and digits.isdigit()):
            return None
        number = int(number)
    if isinstance(number, float) and number.is_integer():
        return number if not -(2**63) <= number <= 2**63 - 1 else None
    if isinstance(number, int) and not -(2**63) <= number <= 2**63 - 1:
        try:
            return float(number)
        except OverflowError:
            return None
    return None


def _ids_to_base64(data: dict[str, Any]) -> None:
    """OTLP JSON ids are hex; protobuf's JSON parser wants base64 for bytes fields."""
    for resource_spans in _items(data, "resourceSpans"):
        for scope_spans in _items(resource_spans, "scopeSpans"):
            for span in _items(scope_spans, "spans"):
                if not isinstance(span, dict):
                    continue
                for holder in (span, *(link for link in _items(span, "links") if isinstance(link, dict))):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        _hex_as_base64(holder, key)
                        _hex_as_base64(holder, _snake(key))


def export_response(rejected: int, message: str, content_type: str) -> bytes:
    """An ``ExportTraceServiceResponse`` body (``partial_success`` when ``rejected``)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if content_type == PROTOBUF:
        return response.SerializeToString()
    if not (rejected or message):
        return b"{}"
    return json.dumps({"partialSuccess": {"rejectedSpans": rejected, "errorMessage": message}}).encode()


def status_body(code: int, message: str, content_type: str) -> bytes:
    """A ``google.rpc.Status`` body with ``code`` (a google.rpc.Code) and ``message``."""
    if content_type == PROTOBUF:
        from google.rpc.status_pb2 import Status

        return Status(code=code, message=message).SerializeToString()
    return json.dumps({"code": code, "message": message}).encode()
