"""Attribute values -> the values of text and JSON columns, for the row mapper
(``spans/rows.py``), written for speed: every span's attributes pass through here."""

from __future__ import annotations

import base64
import json
import math
import re
from json.encoder import c_make_encoder as _c_make_encoder  # None off CPython
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD: UTF-8 cannot hold one, and Python makes
    them from file names, argv and an environment that are not UTF-8 (surrogateescape), and
    JSON may spell one ("\\ud800")."""
    return _SURROGATE.sub("\ufffd", text)


def column_text(value: Any) -> str | None:
    """An attribute value as a text column: strings as they are (empty: None), numbers and
    bools as they print, anything else (arrays) None."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, (bool, int, float)):
        return str(value)
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Infinity; keep the fact as text
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _refuse(value: Any) -> Any:
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


if _c_make_encoder is not None:
    # The C encoder without JSONEncoder.encode's Python-level wrapper: 1 µs a span saved, a
    # tenth of the extraction. No circular-reference markers: attribute values cannot nest.
    _c_encode = _c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def _encode(value: Any) -> str:
        return "".join(_c_encode(value, 0))

else:  # pragma: no cover - CPython always has the C encoder
    _encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def to_json(value: Any) -> str:
    """``value`` as compact JSON: NaN and infinities become strings, bytes (an OTLP
    ``bytesValue``) their base64 text as OTLP/JSON writes them, and other values JSON has no
    type for their ``str``."""
    try:
        return _encode(value)
    except (ValueError, TypeError):  # NaN, bytes, or both in one value (a resource's attributes)
        finite = _finite(value)
        return json.dumps(finite, ensure_ascii=False, allow_nan=False, default=_text, separators=(",", ":"))


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    return str(value)
