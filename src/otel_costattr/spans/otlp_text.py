"""A protobuf OTLP body whose text is not valid UTF-8, made readable: each string field's
bytes decoded with U+FFFD for what is not UTF-8, the rest of the body as it was.

protobuf's parser refuses a whole message for one bad string, and so the receiver would
answer a whole export with 400 for one span. Exporters do send such text: protobufjs (the
JavaScript exporters' encoder) writes a lone surrogate, as a prompt cut inside an emoji has,
as the three bytes ED A0 BD. The OTLP/JSON path stores the same text with one U+FFFD a lone
surrogate; this gives the protobuf path the same outcome (a surrogate pair so written is the
character it stands for, as JSON's "\\ud83d\\ude00" is).

It is run only after the strict parse has failed for that reason, and is bounded: a walk of
more than `MAX_FIELDS` fields, or a body that would grow by more than a quarter, is given up
(the body is then refused as before), so a malformed body costs no more than it did.
"""

from __future__ import annotations

from typing import Any

MAX_FIELDS = 1_000_000  # about 0.3 s of this walk; an exporter's batch has far fewer
# Below protobuf's own nesting limit (100) counted from an attribute: the attributes are
# parsed on their own, and a span's sit 4 levels under the request. Deeper: left as it is.
_DEPTH = 128
_STRING, _MESSAGE = 9, 11  # FieldDescriptor.TYPE_STRING, TYPE_MESSAGE


class _GiveUp(Exception):
    pass


def text_repaired(body: bytes, descriptor: Any) -> bytes | None:
    """``body`` (a message of ``descriptor``) with every string field's invalid UTF-8
    replaced by U+FFFD; None when it has none to replace, is not well-formed protobuf, or
    is past the walk's bounds."""
    out = bytearray()
    budget = [MAX_FIELDS]
    try:
        changed = _copy(memoryview(body), 0, len(body), descriptor, 0, out, budget)
    except (IndexError, ValueError, _GiveUp):
        return None
    if not changed or len(out) > len(body) + len(body) // 4 + 4096:
        return None
    return bytes(out)


def text_of(raw: bytes) -> bytes:
    """``raw`` as valid UTF-8: a surrogate written in UTF-8's form (CESU-8: protobufjs) is
    one U+FFFD alone, the character with its pair; any other invalid byte U+FFFD."""
    try:
        text = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


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


def _skip(data: memoryview, i: int, end: int, wire: int, number: int, budget: list[int]) -> int:
    """Where the value of a field of ``wire`` type starting at ``i`` ends (a group: its end
    tag's end)."""
    if wire == 0:
        return _varint(data, i)[1]
    if wire == 1:
        return i + 8
    if wire == 5:
        return i + 4
    if wire == 2:
        length, start = _varint(data, i)
        return start + length
    if wire == 3:  # a group, an unknown field protobuf skips: to its end tag
        while i < end:
            budget[0] -= 1
            if budget[0] < 0:
                raise _GiveUp
            key, i = _varint(data, i)
            if key & 7 == 4:
                if key >> 3 != number:
                    raise ValueError("group ends with another field's tag")
                return i
            i = _skip(data, i, end, key & 7, key >> 3, budget)
        raise ValueError("group without its end")
    raise ValueError(f"wire type {wire}")


def _copy(
    data: memoryview, i: int, end: int, descriptor: Any, depth: int, out: bytearray, budget: list[int]
) -> bool:
    """Copy the fields in ``data[i:end]`` to ``out``, repairing strings; True if any was."""
    fields = descriptor.fields_by_number
    changed = False
    while i < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise _GiveUp
        key, j = _varint(data, i)
        wire = key & 7
        field = fields.get(key >> 3) if wire == 2 else None
        kind = None if field is None else field.type
        if kind == _STRING or (kind == _MESSAGE and depth < _DEPTH):
            length, start = _varint(data, j)
            k = start + length
            if k > end:
                raise ValueError("field past the end")
            if kind == _STRING:
                piece = bytes(data[start:k])
                try:
                    piece.decode("utf-8")
                except UnicodeDecodeError:
                    piece = text_of(piece)
                    changed = True
            else:
                inner = bytearray()
                changed |= _copy(data, start, k, field.message_type, depth + 1, inner, budget)
                piece = bytes(inner)
            out += data[i:j]
            _put_varint(out, len(piece))
            out += piece
        else:
            k = _skip(data, j, end, wire, key >> 3, budget)
            if k > end:
                raise ValueError("field past the end")
            out += data[i:k]
        i = k
    return changed
