"""``--format parquet``: a `Table` or `Record` as one Parquet file, written with pyarrow
(money as decimals, stored times as UTC); split from `output` so that it stays readable."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from .output import Record, Table, flat, plain


def write_parquet(result: Table | Record, path: str) -> None:
    """Write ``result`` as one Parquet file: money as decimals, stored times as UTC."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, rows = flat(result)
    arrays = []
    for c in columns:
        values = [r[c] for r in rows]
        arrays.append(_arrow_array(pa, values))
    pq.write_table(pa.table(arrays, names=columns), path)


def _arrow_array(pa: Any, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return pa.array(values, pa.null())
    if all(isinstance(v, Decimal) for v in present):
        scale = max(max(-v.as_tuple().exponent, 0) for v in present)  # type: ignore[operator]
        return pa.array(values, pa.decimal128(38, min(scale, 38)))
    if all(isinstance(v, dt.datetime) for v in present):
        utc = [None if v is None else iso_utc(v) for v in values]
        return pa.array(utc, pa.timestamp("us", tz="UTC"))
    if any(isinstance(v, (list, dict)) for v in present):
        return pa.array([None if v is None else json.dumps(v, default=plain) for v in values])
    return pa.array(values)


def iso_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a stored naive time is UTC)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
