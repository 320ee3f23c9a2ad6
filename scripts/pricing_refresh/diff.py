"""What a refresh changes against the files on disk: per file, per model, per field."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import tomllib

from .render import value


def changes(path: str, old: Any, new: Any) -> Iterator[tuple[str, Any, Any]]:
    """(field path, old, new) for every leaf that differs; lists of tables are compared item by
    item when their lengths agree (so one changed rate shows as ``price[1].input``)."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in dict.fromkeys([*old, *new]):
            yield from changes(f"{path}.{key}" if path else key, old.get(key), new.get(key))
    elif (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(x, dict) for x in old + new)
    ):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changes(f"{path}[{i}]", a, b)
    else:
        yield path, old, new


def show(v: Any) -> str:
    """A short TOML-like rendering of one value for the change list."""
    if v is None:
        return "(none)"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {show(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list) and any(isinstance(x, dict) for x in v):
        return f"{len(v)} entries"
    return "[" + ", ".join(map(show, v)) + "]" if isinstance(v, list) else value(v)


def describe(name: str, old_text: str | None, new_text: str) -> list[str]:
    """Lines saying how ``new_text`` differs from ``old_text`` (None: no such file); [] if equal."""
    if old_text == new_text:
        return []
    if old_text is None:
        return [f"  {name}: new file"]
    try:
        old = tomllib.loads(old_text, parse_float=Decimal)
    except tomllib.TOMLDecodeError:
        return [f"  {name}: changed (the file on disk does not parse)"]
    new = tomllib.loads(new_text, parse_float=Decimal)
    old_models = {m.get("id"): m for m in old.pop("model", [])}
    new_models = {m["id"]: m for m in new.pop("model", [])}
    lines = [f"    ~ {path}: {show(a)} -> {show(b)}" for path, a, b in changes("", old, new)]
    for mid in dict.fromkeys([*old_models, *new_models]):
        if mid not in new_models:
            lines.append(f"    - model {mid}")
        elif mid not in old_models:
            lines.append(f"    + model {mid}")
        else:
            lines += [f"    ~ {mid} {path}: {show(a)} -> {show(b)}"
                      for path, a, b in changes("", old_models[mid], new_models[mid])]  # fmt: skip
    return [f"  {name}: changed", *(lines or ["    comments or layout only"])]
