"""``--format parquet``: a `Table` or `Record` as one Parquet file, written with pyarrow
(money as decimals, stored times as UTC); split from `output` so that it stays readable."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from .output import Record, Table, flat, plain


def write_parquet(result: Table | Record, path: str) -> None:
    """Write ``result`` as one Parquet file: money as decimals, stored times as UTC. A column
    whose SQL type the query said (`Table.types`) has that type, whatever its rows hold (an
    empty answer, or a column of unpriced NULLs, keeps the schema of every other day's file);
    the others' are read from their values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(result, Record) and result.rows is not None:
        result = result.rows
    columns, rows = flat(result)
    types = result.types if isinstance(result, Table) else {}
    arrays = []
    for c in columns:
        values = [r[c] for r in rows]
        declared = _declared(pa, types.get(c))
        array = None
        if declared is not None:
            try:
                array = pa.array(_utc(values) if pa.types.is_timestamp(declared) else values, declared)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # a value the type cannot hold
                array = None
        arrays.append(array if array is not None else _arrow_array(pa, values))
    pq.write_table(pa.table(arrays, names=columns), path)


_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
}


def _declared(pa: Any, sql_type: str | None) -> Any:
    """The Arrow type of a DuckDB type name, for the types a rollup returns; None for others
    (lists, structs: their values decide, nested ones as JSON text)."""
    if sql_type is None:
        return None
    m = _DECIMAL.fullmatch(sql_type)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    if sql_type in _INTEGERS:
        return pa.int64()  # counts and sums of tokens; one past int64 falls back to its values
    return {
        "DOUBLE": pa.float64(),
        "FLOAT": pa.float32(),
        "VARCHAR": pa.string(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    }.get(sql_type)


def _utc(values: list[Any]) -> list[Any]:
    return [iso_utc(v) if isinstance(v, dt.datetime) else v for v in values]


def _arrow_array(pa: Any, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return pa.array(values, pa.null())
    if all(isinstance(v, Decimal) for v in present):
        scale = max(max(-v.as_tuple().exponent, 0) for v in present)  # type: ignore[operator]
        return pa.array(values, pa.decimal128(38, min(scale, 38)))
    if all(isinstance(v, dt.datetime) for v in present):
        return pa.array(_utc(values), pa.timestamp("us", tz="UTC"))
    if any(isinstance(v, (list, dict)) for v in present):
        return pa.array([None if v is None else json.dumps(v, default=plain) for v in values])
    return pa.array(values)


def iso_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a stored naive time is UTC)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
