"""Calls that reached ClickHouse without a cost, priced as the DuckDB exporter prices them.

A service that runs without the processor sends model calls with tokens but no
``gen_ai.usage.cost``. The DuckDB store prices them when it writes the row
(``spans/cost_columns.py``: `model_columns`, ``cost_source = 'exporter'``); ClickHouse rows are
written by the Collector, so the rollups price them at read time with the same function: the
window's unstamped calls are read (ids, start, attributes), priced in Python, and bound to the
query as arrays that ``queries/clickhouse/_calls.sql`` joins in (``costattr_priced_*``).
Exact and one rule, at a cost that grows with the number of such calls in the window (about
30 us each): run the processor in every service that makes model calls to keep it at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import semconv
from ..pricing.table import PriceTable, default_pricing
from ..spans.cost_columns import model_columns, quantize_usd
from .dialect import PARAM_TYPES

__all__ = ["PRICED_PARAMS", "priced_params"]

# The bound arrays _calls.sql reads: name -> ClickHouse type, in model_columns' order after ids.
PRICED_PARAMS = {
    "costattr_priced_trace": "Array(String)",
    "costattr_priced_span": "Array(String)",
    "costattr_priced_input": "Array(Nullable(Int64))",
    "costattr_priced_output": "Array(Nullable(Int64))",
    "costattr_priced_cache_read": "Array(Nullable(Int64))",
    "costattr_priced_cache_write": "Array(Nullable(Int64))",
    "costattr_priced_reasoning": "Array(Nullable(Int64))",
    "costattr_priced_cost": "Array(Nullable(String))",
    "costattr_priced_status": "Array(Nullable(String))",
    "costattr_priced_source": "Array(Nullable(String))",
    "costattr_priced_version": "Array(Nullable(String))",
    "costattr_priced_model": "Array(Nullable(String))",
}
# Attributes the Collector turned from numbers into text, read back as numbers.
_NUMERIC = frozenset({*semconv.USAGE_KEYS, *semconv.CACHE_WRITE_1H_KEYS})

_FETCH = """
SELECT TraceId, SpanId, toUnixTimestamp64Nano(Timestamp), SpanAttributes
FROM {table}
WHERE (TraceId, SpanId) IN (
    SELECT trace_id, span_id
    FROM {spans} AS spans
    WHERE span_role = 'model_call' AND cost_status = 'not_stamped'
      AND ({{since:{time}}} IS NULL OR start_time >= {{since:{time}}})
      AND ({{until:{time}}} IS NULL OR start_time < {{until:{time}}})
      AND ({{service:Nullable(String)}} IS NULL OR service_name = {{service:Nullable(String)}})
      AND ({{trace:Nullable(String)}} IS NULL OR trace_id = lower({{trace:Nullable(String)}}))
)
"""


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _typed(attrs: Mapping[str, str]) -> dict[str, Any]:
    """The Map's text values, numbers back as numbers where a count is expected."""
    return {k: _number(v) if k in _NUMERIC else v for k, v in attrs.items() if v != ""}


def priced_params(
    client: Any, table: str, spans: str, window: Mapping[str, Any], pricing: PriceTable | None = None
) -> dict[str, Any]:
    """The ``costattr_priced_*`` arrays for the unstamped calls of ``window``."""
    relation = spans if spans.isidentifier() else f"({spans})"
    rows = client.query(
        _FETCH.format(table=table, spans=relation, time=PARAM_TYPES["TIMESTAMP"]),
        parameters={k: window.get(k) for k in ("since", "until", "service", "trace")},
    ).result_rows
    price_table = pricing or default_pricing()
    columns: list[list[Any]] = [[] for _ in PRICED_PARAMS]
    for trace_id, span_id, start_ns, attrs in rows:
        values = list(model_columns(_typed(attrs), start_ns, price_table))
        cost = quantize_usd(values[5])
        values[5] = None if cost is None else format(cost, "f")
        for column, value in zip(columns, (trace_id, span_id, *values), strict=True):
            column.append(value)
    return dict(zip(PRICED_PARAMS, columns, strict=True))
