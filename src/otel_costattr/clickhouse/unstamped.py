"""Calls that reached ClickHouse without a cost, priced as the DuckDB exporter prices them.

A service that runs without the processor sends model calls with tokens but no
``gen_ai.usage.cost``. The DuckDB store prices them when it writes the row
(``spans/cost_columns.py``: `model_columns`, ``cost_source = 'exporter'``); ClickHouse rows are
written by the Collector, so they are priced here with the same function: by `settle.settle`
once (kept as ``kind = 'price'`` rows of the settled table), and at read time for the calls
not settled yet: the window's unsettled unstamped calls are read (ids, start, attributes),
priced in Python, and bound to the query as arrays that ``queries/clickhouse/_calls.sql``
joins in (``costattr_priced_*``). About 30 us per such call per query: settle them (or run
the processor in every service that makes model calls) to keep that at zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from .. import semconv
from ..cost.bounds import quantize_usd
from ..cost.engine import CostStatus
from ..pricing.table import PriceTable, default_pricing
from ..spans.cost_columns import model_columns
from .dialect import PARAM_TYPES
from .ledger import BOUND_KEYS

__all__ = [
    "CHUNK_BYTES", "PRICED_COLUMNS", "PRICED_PARAMS", "WINDOW_TEST", "chunk_count", "chunk_name",
    "fetch_unstamped", "in_chunks", "price_rows", "priced_chunks", "priced_params", "priced_params_none",
    "size_chunks", "value_size", "window_params",
]  # fmt: skip

# What pricing gives a call: the columns model_columns returns, in its order, as ClickHouse
# types (the settled table's, and the bound arrays' after the ids).
PRICED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("input_tokens", "Nullable(Int64)"),
    ("output_tokens", "Nullable(Int64)"),
    ("cache_read_tokens", "Nullable(Int64)"),
    ("cache_write_tokens", "Nullable(Int64)"),
    ("reasoning_tokens", "Nullable(Int64)"),
    ("cost_usd", "Nullable(Decimal(38, 12))"),
    ("cost_status", "Nullable(String)"),
    ("cost_source", "Nullable(String)"),
    ("pricing_version", "Nullable(String)"),
    ("priced_model", "Nullable(String)"),
)
_COST = 5  # cost_usd's position: bound as exact text (arrays of decimals lose nothing, but
# clickhouse-connect formats a Decimal parameter through float)
# The bound arrays _calls.sql reads: name -> ClickHouse type (the ids, then PRICED_COLUMNS).
PRICED_PARAMS = {
    "costattr_priced_trace_id": "Array(String)",
    "costattr_priced_span_id": "Array(String)",
    **{
        f"costattr_priced_{name}": f"Array({'Nullable(String)' if i == _COST else kind})"
        for i, (name, kind) in enumerate(PRICED_COLUMNS)
    },
}
# Counts the Collector turned from numbers into text, read back as integers (`_count`).
_NUMERIC = frozenset(
    {
        *semconv.USAGE_KEYS,
        *semconv.CACHE_WRITE_1H_KEYS,
        # the per-modality parts and the cached audio: as text they made the call invalid
        # usage here while the DuckDB store priced it (a review)
        *semconv.AUDIO_INPUT_KEYS,
        *semconv.AUDIO_OUTPUT_KEYS,
        *semconv.IMAGE_INPUT_KEYS,
        *semconv.IMAGE_OUTPUT_KEYS,
        *semconv.AUDIO_CACHE_READ_KEYS,
    }
)
# A cost a provider reported, read back as a number (cost/reported.py takes only a number).
_COSTS = frozenset(
    {
        semconv.PROPOSED_COST_AMOUNT,
        "llm.cost.total",
        semconv.COST,  # a bare figure beside one of those two, not our stamp (_spans.sql)
    }
)

_FETCH = """
SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp), SpanAttributes, ResourceAttributes
FROM {table}
WHERE (TraceId, SpanId) IN ({keys})
LIMIT 1 BY TraceId, SpanId
"""
# The same for keys bound as values, within their start times (the contract's start_time is
# Timestamp to the microsecond): only their days' partitions are read, where the IN subquery
# above reads every key of the Collector's table (0.75 s at 10M spans).
_FETCH_BOUND = """
SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp), SpanAttributes, ResourceAttributes
FROM {table}
WHERE Timestamp >= {{costattr_lo:DateTime64(6, 'UTC')}}
  AND Timestamp < {{costattr_hi:DateTime64(6, 'UTC')}} + toIntervalMicrosecond(1)
  AND (TraceId, SpanId) IN {{costattr_keys:Array(Tuple(String, String))}}
LIMIT 1 BY TraceId, SpanId
"""
# At most this many keys are bound as values (`ledger.BOUND_KEYS`: a bound parameter is one
# HTTP field for a server, 128 KiB at most; a window of a store never settled has more).
_BOUND_KEYS = BOUND_KEYS
# The calls of a window (`runner.pricing_window`: since, until, service, trace bound, None
# for no bound), as a test on the spans relation's columns.
WINDOW_TEST = """
  ({{since:{time}}} IS NULL OR start_time >= {{since:{time}}})
  AND ({{until:{time}}} IS NULL OR start_time < {{until:{time}}})
  AND ({{service:Nullable(String)}} IS NULL OR service_name = {{service:Nullable(String)}})
  AND ({{trace:Nullable(String)}} IS NULL OR trace_id = lower({{trace:Nullable(String)}}))
""".format(time=PARAM_TYPES["TIMESTAMP"])
_KEYS = (
    "SELECT trace_id, span_id, start_time FROM {spans} AS spans"
    " WHERE span_role = 'model_call' AND cost_status = 'not_stamped' AND {window} {settled}"
)


def window_params(window: Mapping[str, Any]) -> dict[str, Any]:
    """`WINDOW_TEST`'s bound parameters."""
    return {k: window.get(k) for k in ("since", "until", "service", "trace")}


# How the Collector writes a number as text: an integer's digits, a double's shortest
# decimal form. Python's int() and float() also take ' 100', '+1000', '1_000' and '1e3', text
# an application sent, which the DuckDB store calls invalid usage (the SQL's `_integer`).
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+|-?[0-9]+(?:\.[0-9]+)?[eE][-+]?[0-9]+")


# An integer as the Collector writes one (pcommon's rendering: no leading zero; "-0" is its
# rendering of the double -0.0, a valid 0 in the DuckDB store too): other text ("00100", "")
# was text the application sent, invalid usage as in the DuckDB store (a review: ClickHouse
# priced "00100" as 100 tokens).
_RENDERED_INTEGER = re.compile(r"-?0|-?[1-9][0-9]{0,18}")


def _count(text: str) -> Any:
    return int(text) if _RENDERED_INTEGER.fullmatch(text) else text


def _number(text: str) -> Any:
    if _INTEGER.fullmatch(text):
        return int(text)
    return float(text) if _DECIMAL.fullmatch(text) else text


def _typed(attrs: Mapping[str, str]) -> dict[str, Any]:
    """The Map's text values, numbers back as numbers where a count is expected: unless the
    processor found the call's usage invalid (``costattr.status = 'invalid_usage'``, read from
    its typed values: a count sent as the text "100000"), which the Collector's text no longer
    shows; the counts then stay text, and so invalid, as in the DuckDB store."""
    # A count key present with '' is an empty text the application sent (the Map holds only
    # keys the span had): invalid usage, as in the DuckDB store, not the next spelling's count.
    if attrs.get(semconv.COST_STATUS) == _INVALID_USAGE:
        return {k: v for k, v in attrs.items() if v != "" or k in _NUMERIC}
    out = {k: v for k, v in attrs.items() if v != "" or k in _NUMERIC}
    for key, text in out.items():
        if key in _NUMERIC:
            out[key] = _count(text)
        elif key in _COSTS:
            out[key] = _number(text)
    return out


_INVALID_USAGE = CostStatus.INVALID_USAGE.value


def fetch_unstamped(
    client: Any,
    table: str,
    spans: str,
    window: Mapping[str, Any],
    settled: str | None = None,
    unsettled: tuple[str, dict[str, Any]] = ("true", {}),
) -> list[tuple[Any, ...]]:
    """(trace id, span id, start ns, attributes, resource attributes) of the unstamped calls
    of ``window`` (since,
    until, service, trace: None for no bound) in the relation ``spans``, each call once, read
    from the Collector's ``table``; those ``settled`` (the settled table's name) prices are
    left out, and those failing the test ``unsettled`` (with its parameters: the settled
    calls', `ledger.UNSETTLED`). Nothing is read from ``table`` when there are none (the
    usual case)."""
    relation = spans if spans.isidentifier() else f"({spans})"
    exclude = (
        f"AND (trace_id, span_id) NOT IN (SELECT trace_id, span_id FROM {settled} WHERE kind = 'price')"
        if settled
        else ""
    )
    test, extra = unsettled
    keys = _KEYS.format(spans=relation, window=WINDOW_TEST, settled=f"{exclude} AND {test}")
    params = {**window_params(window), **extra}
    # The keys first, alone: when none is left (all stamped or settled), the Collector's
    # table is not read at all; when few are, they are bound (`_FETCH_BOUND`).
    found = client.query(
        f"SELECT trace_id, span_id, start_time FROM ({keys}) LIMIT {_BOUND_KEYS + 1}", parameters=params
    ).result_rows
    if not found:
        return []
    if len(found) > _BOUND_KEYS:
        ids = f"SELECT trace_id, span_id FROM ({keys})"
        return client.query(_FETCH.format(table=table, keys=ids), parameters=params).result_rows
    bound = {
        "costattr_lo": min(row[2] for row in found),
        "costattr_hi": max(row[2] for row in found),
        "costattr_keys": [(t, s) for t, s, _ in found],
    }
    return client.query(_FETCH_BOUND.format(table=table), parameters=bound).result_rows


def price_rows(rows: list[tuple[Any, ...]], pricing: PriceTable | None = None) -> list[tuple[Any, ...]]:
    """(trace id, span id, *PRICED_COLUMNS) for `fetch_unstamped`'s rows, priced by the
    exporter's own function (``pricing``: default the bundled table, as the exporter's), at
    the regional rate the span's or its resource's ``cloud.region`` names, as the exporter
    prices (it read the span's alone: a Vertex call from a service in us-east5 was 10% under);
    cost_usd a `Decimal` rounded to the column's 12 places."""
    price_table = pricing or default_pricing()
    out = []
    for trace_id, span_id, start_ns, attrs, resource in rows:
        values = list(model_columns(_typed(attrs), start_ns, price_table, resource))
        values[_COST] = quantize_usd(values[_COST])
        out.append((trace_id, span_id, *values))
    return out


def priced_params(
    client: Any,
    table: str,
    spans: str,
    window: Mapping[str, Any],
    pricing: PriceTable | None = None,
    settled: str | None = None,
    unsettled: tuple[str, dict[str, Any]] = ("true", {}),
) -> dict[str, Any]:
    """The ``costattr_priced_*`` arrays for the unstamped calls of ``window`` not priced in
    the ``settled`` table (nor written to the settled calls: ``unsettled``, `fetch_unstamped`),
    each in chunks of at most `_BOUND_KEYS` values (`priced_chunks`, `prelude.calls_sql`):
    a server takes 128 KiB in one parameter, about 3,600 trace ids."""
    priced = price_rows(fetch_unstamped(client, table, spans, window, settled, unsettled), pricing)
    columns: list[list[Any]] = [list(c) for c in zip(*priced, strict=True)] or [[] for _ in PRICED_PARAMS]
    cost = _COST + 2
    columns[cost] = [None if v is None else format(Decimal(v), "f") for v in columns[cost]]
    size = _BOUND_KEYS or 1
    out: dict[str, Any] = {}
    for name, column in zip(PRICED_PARAMS, columns, strict=True):
        chunks = [column[i : i + size] for i in range(0, len(column), size)] or [[]]
        for i, chunk in enumerate(chunks):
            out[chunk_name(name, i)] = chunk
    return out


# A bound parameter travels to a server as one HTTP field, refused over 128 KiB
# (http_max_field_value_size): the sets a reader binds by size (`in_chunks`, the walk's
# answers) are cut into chunks of at most this many bytes, each value counted at `value_size`.
CHUNK_BYTES = 100_000


def value_size(value: str | None) -> int:
    """What ``value`` may take in a bound array: twice its UTF-8 length (every byte escaped),
    and four more (quotes, comma)."""
    return 4 if value is None else 2 * len(value.encode()) + 4


def size_chunks(rows: Iterable[tuple[str | None, ...]]) -> list[list[tuple[str | None, ...]]] | None:
    """``rows`` in order, cut where any column's chunk would pass `CHUNK_BYTES` (each value
    counted at `value_size`); None when one value alone would."""
    chunks: list[list[tuple[str | None, ...]]] = [[]]
    sizes: list[int] = []
    for row in rows:
        row_sizes = [value_size(v) for v in row]
        if max(row_sizes) > CHUNK_BYTES:
            return None
        if sizes and any(s + r > CHUNK_BYTES for s, r in zip(sizes, row_sizes, strict=True)):
            chunks.append([])
            sizes = []
        chunks[-1].append(row)
        sizes = [s + r for s, r in zip(sizes or [0] * len(row), row_sizes, strict=True)]
    return chunks


def in_chunks(column: str, name: str, values: Sequence[str]) -> tuple[str, dict[str, list[str]]] | None:
    """``column`` IN ``values``, as SQL over bound parameters named ``name`` (`chunk_name`):
    the values in chunks of at most `CHUNK_BYTES` (`size_chunks`), each its own set. None when
    a value alone is over it (the caller reads the set another way)."""
    chunks = size_chunks((value,) for value in values)
    if chunks is None:
        return None
    params = {chunk_name(name, i): [row[0] for row in chunk] for i, chunk in enumerate(chunks)}
    tests = [f"{column} IN {{{key}:Array(String)}}" for key in params]
    return "(" + " OR ".join(tests) + ")", params


def chunk_name(name: str, index: int) -> str:
    """The bound parameter of the ``index``-th chunk of the array ``name`` (the priced
    arrays, `walk.WALKED_PARAMS`)."""
    return name if index == 0 else f"{name}_{index}"


def chunk_count(params: Mapping[str, Any], name: str) -> int:
    """How many chunks of the array ``name`` ``params`` holds (0 when none)."""
    count = 0
    while chunk_name(name, count) in params:
        count += 1
    return count


def priced_chunks(params: Mapping[str, Any]) -> int:
    """How many chunks each priced array of ``params`` (`priced_params`) has."""
    return max(1, chunk_count(params, next(iter(PRICED_PARAMS))))


def priced_params_none() -> dict[str, Any]:
    """The ``costattr_priced_*`` arrays when no call is priced at read time (all empty)."""
    return {name: [] for name in PRICED_PARAMS}
