"""The OpenTelemetry Collector's ``otel_traces`` table, as its ``clickhouse`` exporter makes
and fills it: the DDL (exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql in
opentelemetry-collector-contrib, with ``create_schema: true``) and the row layout.

For tests, benchmarks and trying the backend without a Collector: `collector_rows` lays out
span records exactly as the exporter writes them (every attribute value as text, as pcommon's
``Value.AsString`` prints it; roots with an empty ParentSpanId; Duration in ns).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ..spans.record import SpanRecord

__all__ = ["COLUMNS", "as_string", "collector_rows", "create_table_sql"]

COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes",
    "Duration", "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name",
    "Events.Attributes", "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)  # fmt: skip

_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""


def create_table_sql(table: str = "otel_traces", ttl_days: int | None = None) -> str:
    """The exporter's ``CREATE TABLE`` for ``table`` (a plain identifier)."""
    ttl = f"TTL toDateTime(Timestamp) + toIntervalDay({int(ttl_days)})" if ttl_days else ""
    return _DDL.format(table=table, ttl=ttl)


def _es6_float(f: float) -> str:
    """A double as Go's pcommon prints it (ES6 number to string): positional between 1e-6 and
    1e21 with the shortest digits (0.0025, 120), else an unpadded exponent (5e-7, 1.5e+21);
    NaN and the infinities as its float64AsString does, an encoding/json error's text."""
    if math.isnan(f):
        return "json: unsupported value: NaN"
    if math.isinf(f):
        return "json: unsupported value: " + ("+Inf" if f > 0 else "-Inf")
    if f == 0:  # strconv.AppendFloat keeps the sign of -0.0 ("-0")
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    if 1e-6 <= abs(f) < 1e21:
        return format(Decimal(repr(f)).normalize(), "f")
    mantissa, _, exp = repr(f).partition("e")
    n = int(exp)
    return f"{mantissa.removesuffix('.0')}e{'+' if n > 0 else '-'}{abs(n)}"


def as_string(value: Any) -> str:
    """An attribute value as the Collector's ClickHouse exporter stores it (pcommon AsString)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _es6_float(value)
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return json.dumps({k: _jsonable(v) for k, v in value.items()}, separators=(",", ":"))
    if isinstance(value, (list, tuple)):
        return json.dumps([_jsonable(v) for v in value], separators=(",", ":"))
    return str(value)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, bool, int, float)) or value is None else as_string(value)


def _attrs(attrs: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): as_string(v) for k, v in (attrs or {}).items()}


_KIND = {"INTERNAL": "Internal", "SERVER": "Server", "CLIENT": "Client", "PRODUCER": "Producer",
         "CONSUMER": "Consumer"}  # fmt: skip
_STATUS = {"UNSET": "Unset", "OK": "Ok", "ERROR": "Error"}


def collector_rows(records: Iterable[SpanRecord]) -> list[tuple[Any, ...]]:
    """Rows of ``otel_traces`` (in `COLUMNS` order) for ``records``, as the exporter writes
    them; timestamps as integer nanoseconds."""
    rows = []
    for r in records:
        start = r.start_ns or 0
        end = r.end_ns if r.end_ns is not None else start
        rows.append((
            start, r.trace_id, r.span_id, r.parent_span_id or "", "", r.name,
            _KIND.get(r.kind, "Unspecified"), r.service_name or "", _attrs(r.resource),
            r.scope_name or "", r.scope_version or "", _attrs(r.attributes), max(end - start, 0),
            _STATUS.get(r.status_code, "Unset"), r.status_message or "",
            [t for _, t, _ in r.events], [n for n, _, _ in r.events], [_attrs(a) for _, _, a in r.events],
            [t for t, _, _ in r.links], [s for _, s, _ in r.links], ["" for _ in r.links],
            [_attrs(a) for _, _, a in r.links],
        ))  # fmt: skip
    return rows


def insert_records(client: Any, records: Iterable[SpanRecord], table: str = "otel_traces") -> int:
    """Insert ``records`` into ``table`` (a clickhouse-connect client) laid out as the
    Collector writes them; returns the count. Timestamps go in as integer nanoseconds, which
    clickhouse-connect writes to a DateTime64(9) column unchanged."""
    rows = collector_rows(records)
    if rows:
        client.insert(table, rows, column_names=list(COLUMNS))
    return len(rows)
