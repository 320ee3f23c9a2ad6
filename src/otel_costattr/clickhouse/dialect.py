"""The bundled rollups (``queries/*.sql``, written for DuckDB) made into ClickHouse SQL.

The rollups stay one file each; what differs per engine is the prelude (the call contract,
``queries/clickhouse/_calls.sql``, and the spans relation, ``_spans.sql``) and this small,
fixed set of spelling changes, each checked by the differential test:

- ``$name`` parameters become ClickHouse's bound ``{name:Type}`` (values are never formatted
  into the SQL), typed from the query's ``@param`` header;
- table macro calls (``costattr_calls(...)``, ``costattr_runs(...)``) are expanded into their
  ClickHouse body as a subquery, each ``p_*`` parameter replaced by the argument given;
- the relation ``spans`` becomes the spans of ``otel_traces`` (or of the typed table that
  ``otel-costattr clickhouse init`` keeps), as a subquery;
- DuckDB function spellings: ``arg_min``/``arg_max`` -> ``argMin``/``argMax``, ``avg`` ->
  ``avgOrNull`` (NULL over no rows, not nan), ``median`` ->
  the exact interpolated ``quantileExactInclusive(0.5)``, ``round`` of a number -> rounded
  half away from zero as DuckDB does (ClickHouse rounds a float half to even), and
  ``string_agg(DISTINCT x, sep ORDER BY x)`` -> the sorted distinct values joined;
- attributes: ``json_extract_string(attributes, '$."key"')`` -> the Map's value (NULL when
  the key is missing, ``''`` when its value is empty: `prelude.attribute_value`), or for a
  key of `prelude.ATTRIBUTE_COLUMNS` its column beside ``attributes`` (the call contract's
  calls have them; the spans relation has not: rollups read those keys from the calls), and
  the dimension macro ``costattr_dimension(key, columns..., attributes)``
  (rollups/dimensions.py) -> the same choice over the columns and those attribute columns,
  else the Map; when the key is a bound parameter whose value is known (``bound``), only the
  expression that value chooses (ClickHouse does not fold a choice on a constant key: it
  reads the Map for every key, 2.4 s against 0.8 s of CPU for per-group at 10M spans);
- ``TRY_CAST(x AS DECIMAL(p, s))`` -> the text as a decimal rounded to the scale, or NULL;
- time: ``epoch(t)`` -> exact seconds (a decimal, where DuckDB's double is exact to the
  microsecond after the rounding the rollups apply), and the difference of two TIMESTAMP
  parameters ``($a - $b)`` -> an interval of microseconds;
- ``CAST(a / b AS DOUBLE)`` -> a division of doubles (DuckDB divides decimals as doubles;
  ClickHouse would divide decimals and truncate to the scale);
- ``costattr_per(total, n)`` (``queries/_per.sql``: money over a count, exact, rounded half
  away from zero) -> the same integer arithmetic on picodollars.

Anything else a rollup writes must be SQL both engines read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..rollups.catalog import Query
from ..rollups.dimensions import ARGUMENTS, COLUMNS
from ..rollups.errors import RollupError
from .prelude import ATTRIBUTE_COLUMNS, attribute_value

__all__ = ["PARAM_TYPES", "Macro", "macros", "over_spans", "translate"]

PARAM_TYPES = {
    "TIMESTAMP": "Nullable(DateTime64(6, 'UTC'))",
    "VARCHAR": "Nullable(String)",
    "INTEGER": "Nullable(Int64)",
    "DOUBLE": "Nullable(Float64)",
}

_COMMENT = re.compile(r"--[^\n]*")
_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_MACRO_HEAD = re.compile(r"^-- @macro (\w+)\((.*)\)\s*$", re.MULTILINE)
_SPANS = re.compile(r"\b(FROM|JOIN)\s+spans\b(?!\s*\()(\s+AS\s+\w+)?", re.IGNORECASE)
_STRING_AGG = re.compile(
    r"string_agg\(\s*DISTINCT\s+([\w.]+)\s*,\s*('[^']*')\s+ORDER\s+BY\s+\1\s*\)", re.IGNORECASE
)
_RENAMES = (
    (re.compile(r"\barg_min\("), "argMin("),
    (re.compile(r"\barg_max\("), "argMax("),
    # DuckDB's avg of no rows is NULL; ClickHouse's is nan (stats' total row of an empty window).
    (re.compile(r"\bavg\(", re.IGNORECASE), "avgOrNull("),
)
_MEDIAN = re.compile(r"\bmedian\(", re.IGNORECASE)
_ROUND = re.compile(r"\bround\(", re.IGNORECASE)
_JSON = re.compile(r"\bjson_extract_string\(\s*([\w.]+)\s*,\s*'\$\.\"([^\"'\\]+)\"'\s*\)", re.IGNORECASE)
_DIMENSION = re.compile(r"\bcostattr_dimension\(")
_DIMENSION_ARGS = ARGUMENTS[:-1]  # dimensions.dimension_call's argument order, attributes last
_TRY_CAST = re.compile(r"\bTRY_CAST\(", re.IGNORECASE)
_EPOCH = re.compile(r"\bepoch\(", re.IGNORECASE)
_PER = re.compile(r"\bcostattr_per\(")
_PARAM_DIFF = re.compile(r"\(\s*\$(\w+)\s*-\s*\$(\w+)\s*\)")


class Macro:
    """A table macro: its parameters (with defaults for the named ones) and body."""

    def __init__(self, name: str, params: str, body: str) -> None:
        self.name = name
        self.params: list[tuple[str, str | None]] = []
        for part in _split_args(params):
            pname, _, default = part.partition(":=")
            self.params.append((pname.strip(), default.strip() or None))
        self.body = _COMMENT.sub("", body).strip()

    def expand(self, args: list[str]) -> str:
        values: dict[str, str] = {}
        positional = [a for a in args if not re.match(r"^\w+\s*:=", a)]
        named = dict(
            (a.split(":=", 1)[0].strip(), a.split(":=", 1)[1].strip()) for a in args if a not in positional
        )
        for i, (pname, default) in enumerate(self.params):
            if i < len(positional):
                values[pname] = positional[i]
            elif pname in named:
                values[pname] = named.pop(pname)
            elif default is not None:
                values[pname] = default
            else:
                raise RollupError(f"{self.name}: no value for {pname}")
        if named:
            raise RollupError(f"{self.name}: unknown parameter {sorted(named)[0]}")
        body = self.body
        for pname, value in values.items():
            body = re.sub(rf"\b{pname}\b", lambda _m, v=value: f"({v})", body)
        return f"({body})"


def macros(text: str) -> dict[str, Macro]:
    """The ``-- @macro name(params)`` sections of a ClickHouse prelude text."""
    heads = list(_MACRO_HEAD.finditer(text))
    out = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out[head.group(1)] = Macro(head.group(1), head.group(2), text[head.end() : end])
    return out


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth after it) for the characters of ``text`` from
    ``start`` that are outside quoted strings."""
    depth, quote = 0, False
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "'":
            quote = not quote
        if quote or ch == "'":
            continue
        depth += (ch == "(") - (ch == ")")
        yield i, ch, depth


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated parts of ``text`` (parentheses and quotes respected)."""
    parts, start = [], 0
    for i, ch, depth in _scan(text):
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _closing(text: str, open_at: int) -> int:
    """The index of the parenthesis closing the one at ``open_at``."""
    for i, ch, depth in _scan(text, open_at):
        if ch == ")" and depth == 0:
            return i
    raise RollupError("unbalanced parentheses in a rollup")


def _top_level_slash(text: str) -> int:
    """Where ``text``, a quotient ``x / y``, divides (-1: it has no top-level ``/``). The cast
    rewrites split it there, so any other shape (``a + b / c``, ``a / b * c``, a CASE) is
    refused: split at its first ``/`` it would be another number. Parenthesize the quotient."""
    slash = next((i for i, ch, depth in _scan(text) if ch == "/" and depth == 0), -1)
    if slash >= 0 and not _QUOTIENT.fullmatch(_top_level(text)):
        raise RollupError(f"a cast of {text.strip()!r}: only a quotient x / y casts here; parenthesize it")
    return slash


def _top_level(text: str) -> str:
    """``text`` with what parentheses and quotes hold left out: ``f(a, b) / (c)`` is ``f() / ()``."""
    return "".join(ch for _, ch, depth in _scan(text) if depth == 0 or (ch == "(" and depth == 1))


# A quotient's shape at the top level: terms (a name, a number, a call, parentheses)
# multiplied, divided by one term. Multiplication and division associate to the left, so
# ``a * b / c`` is (a * b) / c; nothing else keeps the split at the first ``/`` right.
_TERM = r"\s*(?:[\w.$]+\s*(?:\(\))?|\(\))\s*"
_QUOTIENT = re.compile(rf"{_TERM}(?:\*{_TERM})*/{_TERM}")


def _each_call(text: str, pattern: re.Pattern[str], replace: Callable[[str], str]) -> str:
    """Replace every ``<pattern>(...)`` call (the pattern ends at the opening parenthesis) by
    ``replace(inside)``, innermost calls included."""
    while True:
        m = pattern.search(text)
        if m is None:
            return text
        close = _closing(text, m.end() - 1)
        inside = _each_call(text[m.end() : close], pattern, replace)
        text = text[: m.start()] + replace(inside) + text[close + 1 :]


def _expand(text: str, defined: dict[str, Macro], depth: int = 0) -> str:
    if depth > 8:
        raise RollupError("macros nest too deep")
    names = "|".join(map(re.escape, defined))
    pattern = re.compile(rf"\b({names})\(")
    while True:
        m = pattern.search(text)
        if m is None:
            return text
        close = _closing(text, m.end() - 1)
        args = _split_args(text[m.end() : close])
        body = _expand(defined[m.group(1)].expand(args), defined, depth + 1)
        text = text[: m.start()] + body + text[close + 1 :]


def translate(q: Query, prelude: str, spans: str, bound: Mapping[str, Any] | None = None) -> str:
    """``q``'s SQL in ClickHouse dialect: ``prelude`` holds the macros, ``spans`` is the SQL
    (a table name or a SELECT) of the spans relation; ``bound``: the parameters the query
    will be run with, if known (a dimension key's value picks its column: `_dimension`)."""
    types = {p.name: p.type for p in q.params}
    sql = _COMMENT.sub("", q.sql)

    def param(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in types:
            raise RollupError(f"{q.name}: ${name} is not a declared parameter")
        return "{" + f"{name}:{PARAM_TYPES[types[name]]}" + "}"

    def interval(m: re.Match[str]) -> str:
        if not types.get(m.group(1)) == types.get(m.group(2)) == "TIMESTAMP":
            return m.group(0)
        a, b = (f"toUnixTimestamp64Micro(${g})" for g in m.groups())
        return f"toIntervalMicrosecond({a} - {b})"

    sql = _PARAM.sub(param, _PARAM_DIFF.sub(interval, sql))
    sql = _expand(sql, macros(prelude))
    for pattern, name in _RENAMES:
        sql = pattern.sub(name, sql)
    sql = _MEDIAN.sub("quantileExactInclusive(0.5)(", sql)
    sql = _STRING_AGG.sub(_joined, sql)
    sql = _JSON.sub(_json, sql)
    sql = _each_call(sql, _DIMENSION, lambda inside: _dimension(inside, bound or {}))
    sql = _each_call(sql, _TRY_CAST, _try_cast)
    sql = _each_call(sql, _EPOCH, _epoch)
    sql = _each_call(sql, _PER, _per)
    sql = _each_call(sql, _ROUND, _round).replace(_ROUNDED, "round(")
    sql = _each_call(sql, _CAST, _cast).replace(_CAST_DONE, "CAST(")
    # Last, so that the relation's own SQL is never rewritten.
    return over_spans(sql, spans).strip().rstrip(";")


def over_spans(sql: str, spans: str) -> str:
    """``sql`` with each read of the relation ``spans`` made a read of ``spans`` (a table
    name or a SELECT), aliased ``spans`` unless the read names its own alias."""
    relation = spans if re.fullmatch(r"\w+", spans) else f"({spans})"
    return _SPANS.sub(lambda m: f"{m.group(1)} {relation}{m.group(2) or ' AS spans'}", sql)


def _joined(m: re.Match[str]) -> str:
    # DuckDB's string_agg of no values is NULL; ClickHouse joins an empty array into ''.
    return f"nullIf(arrayStringConcat(arraySort(groupUniqArray({m.group(1)})), {m.group(2)}), '')"


_ROUNDED = "__costattr_round__("
_CAST = re.compile(r"\bCAST\(", re.IGNORECASE)
_CAST_DONE = "__costattr_cast__("
_TO_DECIMAL = re.compile(r"^(.*)\s+AS\s+DECIMAL\(\s*(\d+)\s*,\s*(\d+)\s*\)$", re.IGNORECASE | re.DOTALL)


_TO_DOUBLE = re.compile(r"^(.*)\s+AS\s+DOUBLE$", re.IGNORECASE | re.DOTALL)


_ATTRIBUTES = re.compile(r"((?:\w+\.)?)attributes")


def _attribute_columns(attributes: str) -> dict[str, str]:
    """Key -> the `ATTRIBUTE_COLUMNS` column beside the Map ``attributes`` (a column of the
    contract, qualified or not); none for another expression."""
    m = _ATTRIBUTES.fullmatch(attributes.strip())
    return {} if m is None else {key: m.group(1) + column for key, column in ATTRIBUTE_COLUMNS.items()}


def _json(m: re.Match[str]) -> str:
    attributes, key = m.groups()
    column = _attribute_columns(attributes).get(key)
    return column if column is not None else attribute_value(key, attributes)


_BOUND_KEY = re.compile(r"\(*\{(\w+):[^{}]*\}\)*")


def _dimension(inside: str, bound: Mapping[str, Any]) -> str:
    """``costattr_dimension(key, <columns>, attributes)``: the column the key names (a call
    column, or an attribute kept as a column), else the attribute of that name (NULL when
    missing, as DuckDB's JSON read). A key that is a parameter of ``bound`` naming a column:
    that column alone, what the choice gives for that value."""
    args = _split_args(inside)
    key, columns, attributes = args[0], args[1:-1], args[-1]
    if len(columns) != len(_DIMENSION_ARGS):
        raise RollupError("costattr_dimension: unexpected arguments")
    by_name = dict(zip(_DIMENSION_ARGS, columns, strict=True))
    choices = {name: by_name[column] for name, column in {**COLUMNS, **ATTRIBUTE_COLUMNS}.items()}
    param = _BOUND_KEY.fullmatch(key.strip())
    value = bound.get(param.group(1)) if param is not None else None
    if isinstance(value, str) and value in choices:
        return f"({choices[value]})"
    cases = " ".join(f"({key}) = '{name}', {column}," for name, column in choices.items())
    other = attribute_value(f"ifNull(({key}), '')", f"({attributes})", quoted=True)
    return f"multiIf({cases} {other})"


def _try_cast(inside: str) -> str:
    m = _TO_DECIMAL.match(inside.strip())
    if m is None:
        raise RollupError("TRY_CAST: only to DECIMAL is translated for ClickHouse")
    expr, precision, scale = m.groups()
    # Rounded as a decimal: the round pass would make it a float's, which the CAST truncates
    # (0.00003195 read as 0.000031949999).
    return (
        f"CAST({_ROUNDED}toDecimal128OrNull(toString({expr}), 24), {scale})"
        f" AS Nullable(Decimal({precision}, {scale})))"
    )


def _epoch(inside: str) -> str:
    return f"(toDecimal128(toUnixTimestamp64Micro(toDateTime64({inside}, 6, 'UTC')), 6) / 1000000)"


def _per(inside: str) -> str:
    """``costattr_per(total, n)`` as `queries/_per.sql` computes it: the total in picodollars
    (an Int128, exact for a scale of 12 or less) divided as integers, rounded half away from
    zero, scaled back by a decimal product (exact: Decimal(38, 0) times Decimal(38, 12));
    NULL when n is 0 or either is NULL (``intDiv`` by zero would throw)."""
    total, n = _split_args(inside)
    whole = f"toInt128({total})"  # toward zero; the fraction scaled apart, so no total overflows
    picos = f"({whole} * 1000000000000 + toInt128((({total}) - toDecimal128({whole}, 0)) * 1000000000000))"
    a, d = f"abs({picos})", f"toInt128(nullIf({n}, 0))"
    half_up = f"(intDiv({a}, {d}) + if(2 * ({a} % {d}) >= {d}, 1, 0))"
    return f"(toDecimal128(if(({total}) < 0, -1, 1) * {half_up}, 0) * toDecimal128('0.000000000001', 12))"


def _cast(inside: str) -> str:
    """A quotient cast to DECIMAL: DuckDB divides a decimal as a DOUBLE and casts it, as any
    DOUBLE, by scaling it by 10^scale in floating point and rounding that half away from
    zero; ClickHouse divides decimals and truncates. Done DuckDB's way, to the bit: the
    shortest text of the quotient, rounded, differed from it past a double's 16 digits
    (forecast's projected_usd 13336939.375008830000 against ...833536). The rounding is
    exact: the integer part and the fraction (both exact in a double) apart. A quotient cast
    to DOUBLE: a division of doubles."""
    double = _TO_DOUBLE.match(inside.strip())
    slash = _top_level_slash(double.group(1)) if double else -1
    if double is not None and slash >= 0:
        expr = double.group(1)
        return f"(toFloat64({expr[:slash].strip()}) / toFloat64({expr[slash + 1 :].strip()}))"
    m = _TO_DECIMAL.match(inside.strip())
    slash = _top_level_slash(m.group(1)) if m else -1
    if m is None or slash < 0:
        return _CAST_DONE + inside + ")"
    expr, precision, scale = m.groups()
    places = int(scale)
    num, den = expr[:slash].strip(), expr[slash + 1 :].strip()
    scaled = f"toFloat64({num}) / toFloat64({den}) * 1e{places}"
    unit = f"toDecimal128('{'0.' + '0' * (places - 1) + '1' if places else '1'}', {places})"
    # x: the scaled quotient rounded half away from zero; s: x or 0 (inf, nan: NULL below)
    rounded = "trunc(q) + if(abs(q - trunc(q)) >= 0.5, sign(q), 0)"
    magnitude = _EXACT_INT.format(v="if(isFinite(x) AND abs(x) < 1e38, abs(x), 0)")
    # past the type's digits (at most 38, within the parts' reach of 2^127): NULL, not a
    # wrapped number (DuckDB refuses the cast; an answer it cannot give is none here either)
    fits = f"isFinite(x) AND abs(x) < 1e{min(int(precision), 38)}"
    exact = f"if({fits}, toDecimal128(toInt128(sign(x)) * {magnitude}, 0) * {unit}, NULL)"
    value = f"arrayMap(q -> arrayMap(x -> {exact}, [{rounded}])[1], [{scaled}])[1]"
    return f"{_CAST_DONE}{value} AS Decimal({precision}, {scale}))"


# An integer-valued Float64 >= 0 as the exact Int128 it is: ClickHouse's own conversion of a
# double above 2^64 is off in its last digits (3.333333333333333e25 as ...626899301, not
# ...626609152), so it is split at powers of two (exact in a double) into parts that fit
# an Int64: each conversion exact.
_EXACT_INT = (
    "(toInt128(toInt64(floor(({v}) / 18446744073709551616))) * toInt128('18446744073709551616')"
    " + toInt128(toInt64(floor((({v}) - floor(({v}) / 18446744073709551616) * 18446744073709551616)"
    " / 4294967296))) * 4294967296"
    " + toInt128(toInt64(({v}) - floor(({v}) / 4294967296) * 4294967296)))"
)


def _round(inside: str) -> str:
    """DuckDB's round of a number (half away from zero) for ClickHouse, whose round of a
    float is half to even: the value as a Decimal (which ClickHouse rounds half away from
    zero), rounded, back to a float."""
    args = _split_args(inside)
    places = args[1] if len(args) > 1 else "0"
    return f"toFloat64({_ROUNDED}toDecimal128({args[0]}, 12), {places}))"
