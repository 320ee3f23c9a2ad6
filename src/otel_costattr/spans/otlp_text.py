"""A protobuf OTLP body whose text is not valid UTF-8, made readable: each string field's
bytes decoded with U+FFFD for what is not UTF-8, the rest of the body as it was.

protobuf's parser refuses a whole message for one bad string, and so the receiver would
answer a whole export with 400 for one span. Exporters do send such text: protobufjs (the
JavaScript exporters' encoder) writes a lone surrogate, as a prompt cut inside an emoji has,
as the three bytes ED A0 BD. The OTLP/JSON path stores the same text with U+FFFD; this gives
the protobuf path the same outcome. It is only run after the strict parse has failed, so its
pure-Python walk of the wire format costs nothing on well-formed bodies.
"""

from __future__ import annotations

from typing import Any

_DEPTH = 100  # protobuf's own nesting limit: deeper, left as it is (the parser decides)
_STRING, _MESSAGE = 9, 11  # FieldDescriptor.TYPE_STRING, TYPE_MESSAGE


def text_repaired(body: bytes, descriptor: Any) -> bytes | None:
    """``body`` (a message of ``descriptor``) with every string field's invalid UTF-8
    replaced by U+FFFD; None when it has none to replace, or is not well-formed protobuf."""
    out = bytearray()
    try:
        changed = _copy(memoryview(body), 0, len(body), descriptor, 0, out)
    except (IndexError, ValueError):
        return None
    return bytes(out) if changed else None


def _varint(data: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def _copy(data: memoryview, i: int, end: int, descriptor: Any, depth: int, out: bytearray) -> bool:
    """Copy the fields in ``data[i:end]`` to ``out``, repairing strings; True if any was."""
    fields = descriptor.fields_by_number
    changed = False
    while i < end:
        key, j = _varint(data, i)
        wire = key & 7
        if wire == 0:
            _, k = _varint(data, j)
        elif wire == 1:
            k = j + 8
        elif wire == 5:
            k = j + 4
        elif wire == 2:
            length, start = _varint(data, j)
            k = start + length
            if k > end:
                raise ValueError("field past the end")
            field = fields.get(key >> 3)
            kind = None if field is None else field.type
            if kind == _STRING:
                raw = bytes(data[start:k])
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    raw = raw.decode("utf-8", "replace").encode("utf-8")
                    changed = True
                out += data[i:j]
                _put_varint(out, len(raw))
                out += raw
                i = k
                continue
            if kind == _MESSAGE and depth < _DEPTH:
                inner = bytearray()
                changed |= _copy(data, start, k, field.message_type, depth + 1, inner)
                out += data[i:j]
                _put_varint(out, len(inner))
                out += inner
                i = k
                continue
        else:  # groups (3, 4) are not in OTLP; anything else is not protobuf
            raise ValueError(f"wire type {wire}")
        if k > end:
            raise ValueError("field past the end")
        out += data[i:k]
        i = k
    return changed
