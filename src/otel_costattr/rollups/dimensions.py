"""What a rollup can group by and filter on: the call's typed columns and its identity keys.

A *dimension* is a name a user types after ``--group-by`` or ``--where``: a column of the call
contract under a short name (``model``, ``provider``, ``service``, ``feature``, ``agent``,
``conversation``; the OpenTelemetry spellings ``app.feature``, ``gen_ai.agent.name``,
``gen_ai.conversation.id``, ``service.name`` name the same columns), or any other attribute
name, read from the call's ``attributes`` JSON. The processor copies its ``identity_keys``
(``CostSpanProcessor(identity_keys=...)``: ``user.id``, ``app.tenant``, ...) from the parent
span and from Baggage onto every model-call span, so the value is on the call itself.

Names are checked here (letters, digits and ``_ . : / -``: nothing that could end a JSON
path); values are never checked, only bound. The SQL side is the TEMP macro
``costattr_dimension`` (`dimension_macro`, rendered from `COLUMNS`): the same mapping.

``--group-by KEY`` on any rollup (`render_group`): the rows for a value v are the rollup's
answer over the calls whose KEY is v (exactly what ``--where KEY=v`` answers), with the
columns ``key`` and ``value`` in front, one block per value in value order; calls without
KEY form the block with value NULL. The calls carry their value as ``group_value`` (the
``costattr_calls`` variant of ``_calls_repriced.sql``), and a rollup file marks where its
grouping goes with ``{{group...}}`` placeholders, so each file states its own partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..store.schema import ATTRIBUTE_COLUMNS
from .errors import RollupParamError

__all__ = [
    "ARGUMENTS", "COLUMNS", "KEY", "check_key", "dimension_column", "groupable", "render_group",
    "where_pairs",
]  # fmt: skip

# Dimension names that are columns of the call contract (`dimension_macro` maps them).
COLUMNS = {
    "model": "model",
    "provider": "provider",
    "service": "service_name",
    "service.name": "service_name",
    "feature": "feature",
    "app.feature": "feature",
    "agent": "agent_name",
    "gen_ai.agent.name": "agent_name",
    "conversation": "conversation_id",
    "gen_ai.conversation.id": "conversation_id",
}
KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}")


def check_key(qname: str, pname: str, key: Any) -> str:
    """``key`` if it is a dimension name, else `RollupParamError` naming ``pname``."""
    if not isinstance(key, str) or not KEY.fullmatch(key.strip()):
        raise RollupParamError(
            f"{qname}: {pname}: not an attribute name (letters, digits, _ . : / -), got {key!r}"
        )
    return key.strip()


def where_pairs(qname: str, where: Any) -> list[tuple[str, list[str]]]:
    """``where`` (a mapping, or ``KEY=VALUE`` texts / ``(key, value)`` pairs) as
    ``[(key, [values])]``: a key given twice matches either value; different keys must all
    match."""
    if where is None:
        return []
    if not isinstance(where, (Mapping, str, Iterable)):
        raise RollupParamError(f"{qname}: where: expects a mapping or KEY=VALUE texts, got {where!r}")
    items: Iterable[Any] = where.items() if isinstance(where, Mapping) else where
    if isinstance(where, str):
        items = [where]
    out: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if not sep:
                raise RollupParamError(f"{qname}: where: expects KEY=VALUE, got {item!r}")
        elif isinstance(item, tuple) and len(item) == 2:
            key, value = item
        else:
            raise RollupParamError(f"{qname}: where: expects KEY=VALUE, got {item!r}")
        key = check_key(qname, "where", key)
        if not isinstance(value, str):
            raise RollupParamError(f"{qname}: where: {key}: expected text, got {value!r}")
        if key not in out and len(out) == MAX_WHERE_KEYS:
            raise RollupParamError(f"{qname}: where: at most {MAX_WHERE_KEYS} different keys, got more")
        out.setdefault(key, [])
        if value not in out[key]:
            out[key].append(value)
    return list(out.items())


# Different --where keys a question may test: each is one more nested test of every call (50
# passed DuckDB's own error through as the 400's text, 40 took 1.4 s of CPU: a review). A
# key's values are any number (one IN list).
MAX_WHERE_KEYS = 16


# The macro's arguments after the key: the call columns `COLUMNS` names, the attributes kept
# as columns (`ATTRIBUTE_COLUMNS`), then the JSON ``attributes`` (clickhouse/dialect.py reads
# this order too).
ARGUMENTS = (*sorted(set(COLUMNS.values())), *ATTRIBUTE_COLUMNS.values(), "attributes")


def dimension_macro() -> str:
    """The TEMP macro ``costattr_dimension(key, <call columns>)``: a call's value for the
    dimension ``key``, rendered from `COLUMNS` and `ATTRIBUTE_COLUMNS` (other attributes are
    read from the JSON as text: the same text the attribute columns hold)."""
    choices = {**COLUMNS, **ATTRIBUTE_COLUMNS}
    cases = " ".join(f"WHEN '{name}' THEN d_{column}" for name, column in choices.items())
    params = ", ".join(f"d_{a}" for a in ARGUMENTS)
    return (
        f"CREATE OR REPLACE TEMP MACRO costattr_dimension(d_key, {params}) AS\n"
        f"CASE d_key {cases}\n"
        "ELSE json_extract_string(d_attributes, '$.\"' || d_key || '\"') END;\n"
    )


def dimension_call(key: str, alias: str = "") -> str:
    """``costattr_dimension(<key>, ...)`` over the columns of ``alias`` (a table alias or
    nothing); ``key`` is SQL (a bound parameter such as ``$group_by``, or a column)."""
    prefix = f"{alias}." if alias else ""
    args = ", ".join(f"{prefix}{a}" for a in ARGUMENTS)
    return f"costattr_dimension({key}, {args})"


def dimension_column(key: str) -> str | None:
    """The call column that holds the dimension ``key`` (a column of `COLUMNS` or an
    attribute of `ATTRIBUTE_COLUMNS`), or None: read from the JSON."""
    return COLUMNS.get(key) or ATTRIBUTE_COLUMNS.get(key)


_PLACEHOLDER = re.compile(r"\{\{dimension\(\s*([^,{}()]+?)\s*(?:,\s*(\w+)\s*)?\)\}\}")


def render_dimensions(sql: str) -> str:
    """``sql`` with each ``{{dimension(KEY[, ALIAS])}}`` replaced by `dimension_call`, so
    query files never spell the macro's argument list."""
    return _PLACEHOLDER.sub(lambda m: dimension_call(m.group(1), m.group(2) or ""), sql)


# {{group}} / {{group(a)}}: "group_value, " in front of a SELECT, GROUP BY, PARTITION BY or
# ORDER BY list; {{group_columns}} / {{group_columns(a)}}: the output columns key and value;
# {{group_join(a, b)}}: " AND a.group_value IS NOT DISTINCT FROM b.group_value" in a join.
# Each renders to nothing without --group-by, leaving the rollup as written.
_GROUP = re.compile(r"\{\{(group|group_columns|group_join)(?:\(\s*(\w+)\s*(?:,\s*(\w+)\s*)?\))?\}\}")


def groupable(sql: str) -> bool:
    """Whether the rollup text ``sql`` marks where ``--group-by`` goes (`render_group`)."""
    return _GROUP.search(sql) is not None


def render_group(sql: str, grouped: bool) -> str:
    """``sql`` with its ``{{group...}}`` placeholders filled (``grouped``: the calls carry
    ``group_value`` and ``$group_by`` is bound) or removed."""

    def fill(m: re.Match[str]) -> str:
        if not grouped:
            return ""
        kind, a, b = m.groups()
        column = f"{a}.group_value" if a else "group_value"
        if kind == "group":
            return f"{column}, "
        if kind == "group_columns":
            return f'$group_by AS "key", {column} AS value, '
        if not (a and b):
            raise ValueError(f"{m.group(0)}: group_join takes two table aliases")
        return f" AND {a}.group_value IS NOT DISTINCT FROM {b}.group_value"

    return _GROUP.sub(fill, sql)
