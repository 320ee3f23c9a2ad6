"""A protobuf OTLP body whose text is not valid UTF-8, made readable: each string field's
bytes decoded with U+FFFD for what is not UTF-8, the rest of the body as it was.

protobuf's parser refuses a whole message for one bad string, and so the receiver would
answer a whole export with 400 for one span. Exporters do send such text: protobufjs (the
JavaScript exporters' encoder) writes a lone surrogate, as a prompt cut inside an emoji has,
as the three bytes ED A0 BD. The OTLP/JSON path stores the same text with one U+FFFD a lone
surrogate; this gives the protobuf path the same outcome (a surrogate pair so written is the
character it stands for, as JSON's "\\ud83d\\ude00" is).

It is run only after the strict parse has failed for that reason, and is bounded: a walk
past its budgets (fields, messages and strings to repair weighed by their bytes: `MAX_WORK`,
or half the body's bytes when larger, up to `MAX_WALK`; the Python-level decoding of bytes
that are not surrogates, far slower a byte: `MAX_WORK` whatever the body) or a body that
would grow by more than `MAX_GROWTH` bytes is given up, and the body is then refused as
before.
"""

from __future__ import annotations

import codecs
from typing import Any

# The walk's weights (MAX_WORK: about 0.1 s of it): a field weighs 1, a nested message 4 and its
# length / 256, a string to repair 10, its length / 256 and 2 a byte ED (a surrogate's
# first), and its length / 8 more when its faults are not surrogates alone (a Python call
# a sequence). A batch of spans with a few short attributes each weighs about 0.36 a byte
# (0.35 s for 8,192 spans, 2.5 MB): the budget grows with the body, half its bytes (a body
# of nothing but 2-byte fields weighs that much), so that one bad string in a Collector's
# batch of 8,192 spans is repaired, not the whole batch refused with a 400 no client
# retries (a review); at most MAX_WALK. The decoding of other invalid bytes (a Python call a
# sequence, ~0.45 us a byte) keeps MAX_WORK alone: grown with the body, one 20 MiB string of
# 0xFF (a 19 KiB gzip request) took 9 s of CPU before its 400 (a review of that change).
MAX_WORK = 250_000
WORK_A_BYTE = 0.5
# ...up to this: about 2.5 s of walking, a Collector's batch of 8,192 spans of up to ~2.3 KB
# each (an OpenLLMetry span with content off, ~1 KB, weighs ~0.31 a byte: 2.7M for 8,192; a
# first cap of 2M refused that batch whole again, a review). Without a cap, 10M two-byte
# fields of padding, 20 KiB gzipped, were walked for 6-8 s of CPU (another review): about
# what decoding and mapping a valid 20 MiB body costs (3.2 s for 65,536 spans).
MAX_WALK = 6_000_000
MAX_GROWTH = 4 << 20  # U+FFFD is 3 bytes: 20 MiB of 0xFF would have been 60 MiB of text
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
    walk = min(max(MAX_WORK, int(len(body) * WORK_A_BYTE)), MAX_WALK)
    budget = [walk, MAX_WORK]  # the walk's, the slow decoding's
    try:
        changed = _copy(memoryview(body), 0, len(body), descriptor, 0, out, budget)
    except (IndexError, ValueError, RecursionError, _GiveUp):
        return None
    if not changed or len(out) > len(body) + MAX_GROWTH:
        return None
    return bytes(out)


def text_of(raw: bytes, budget: list[int] | None = None) -> bytes:
    """``raw`` as valid UTF-8: a surrogate written in UTF-8's form (CESU-8: protobufjs) is
    one U+FFFD alone, the character with its pair; any other invalid byte U+FFFD. With
    ``budget`` (the walk's, the slow decoding's), its work is taken from it (`_GiveUp` when
    spent) before it is done."""
    if budget is not None:  # passes in C over its bytes, and over each surrogate it may hold
        budget[0] -= 10 + len(raw) // 256 + 2 * raw.count(0xED)
        if budget[0] < 0:
            raise _GiveUp
    try:  # in C: text whose only fault is surrogates (protobufjs's), the common case
        text = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # other invalid bytes: a Python call for each sequence
        if budget is not None:
            budget[1] -= 10 + len(raw) // 8
            if budget[1] < 0:
                raise _GiveUp from None
        text = raw.decode("utf-8", _ERRORS)
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def _surrogate_or_replace(error: UnicodeError) -> tuple[str, int]:
    """A decoding error handler: a surrogate's three bytes (ED A0-BF 80-BF) read as that
    surrogate (`text_of` then pairs it or replaces it), anything else U+FFFD."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    data, start = error.object, error.start
    first = data[start : start + 3]
    if len(first) == 3 and first[0] == 0xED and 0xA0 <= first[1] <= 0xBF and 0x80 <= first[2] <= 0xBF:
        return chr(0xD000 | (first[1] & 0x3F) << 6 | (first[2] & 0x3F)), start + 3
    return "\ufffd", error.end


_ERRORS = "otel-costattr-text"
codecs.register_error(_ERRORS, _surrogate_or_replace)


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
    """Where the value of a field of ``wire`` type starting at ``i`` ends (a group, an
    unknown field protobuf skips: its end tag's end, nested groups walked without recursion)."""
    if wire == 0:
        return _varint(data, i)[1]
    if wire == 1:
        return i + 8
    if wire == 5:
        return i + 4
    if wire == 2:
        length, start = _varint(data, i)
        return start + length
    if wire != 3:
        raise ValueError(f"wire type {wire}")
    groups = [number]
    while groups:
        if i >= end:
            raise ValueError("group without its end")
        budget[0] -= 1
        if budget[0] < 0:
            raise _GiveUp
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 3:
            groups.append(key >> 3)
        elif wire == 4:
            if groups.pop() != key >> 3:
                raise ValueError("group ends with another field's tag")
        else:
            i = _skip(data, i, end, wire, key >> 3, budget)
    return i


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
                    # Weighed before it is read: passes in C, and for faults other than
                    # surrogates a call of the error handler a byte (20 MiB of 0xFF: 4.5 s).
                    piece = text_of(piece, budget)
                    changed = True
                    if len(out) + len(piece) > len(data) + MAX_GROWTH:
                        raise _GiveUp from None
            else:
                budget[0] -= 4 + length // 256  # a call, two buffers and a copy of its bytes
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
