"""`cost_columns.model_columns` compiled per attribute shape: the exporter's common case.

The general function reads any Mapping in any convention (`semconv.read_call_fields`), prices
through `cost.price_call` and builds the token columns from `Usage.billable`: about 4 µs a
model call, the largest share of the row mapping. Yet the spans of one shape (the same keys
in the same order) spell every field the same way, so for a shape the function below is
compiled once from the processor's own pricer body (`cost.compiled.pricer_parts`: the
winning spelling of each field subscripted with a constant key, the values checked inline,
the billable buckets generated from `cost.billing` with the counts the shape lacks folded
away) and ends in the columns `model_columns` returns, in its order.

It answers only the common cases, each as `model_columns` decides it:

- no stamped cost: a well-formed call priced at the table's base rates (no regional price,
  no long-context tier or time-of-day window) under `MAX_CALL_USD`, or a well-formed call to
  a model the table does not know;
- a stamped float cost from a processor that priced it with this very table (status
  ``priced``, the table's version) and the engine reproduces the same float: the engine's
  exact Decimal.

Anything else (a value of a bad type, an int or implausible stamp, another status or
version, a regional price, a tier, an exception) returns None, and the caller asks
`model_columns`, which decides and says why. tests/test_cost_shapes.py compares the two on
arbitrary attributes. Only keys from our own constants reach a compiled function, bound as
names, never spliced into its source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..cost.billing import BUCKETS, INPUT_PARTS
from ..cost.bounds import MAX_CALL_USD, quantize_usd
from ..cost.compiled import build, pricer_parts, remember
from ..cost.engine import CostStatus, usd
from ..semconv import (
    CALL_KEYS,
    COST,
    COST_STATUS,
    MODEL_CUT,
    PRICED_MODEL,
    PRICING_VERSION,
    PROPOSED_COST_AMOUNT,
    PROPOSED_COST_CURRENCY,
    PROPOSED_COST_SOURCE,
)

# A cost a provider reported, which wins over ours on a call without our stamp (cost/reported.py).
REPORTED_KEYS = frozenset(
    (PROPOSED_COST_AMOUNT, "llm.cost.total", PROPOSED_COST_CURRENCY, PROPOSED_COST_SOURCE)
)

# (attributes, start ns, table.cached_quote, table.quote, table.regional_entries,
# table.version) -> the columns of `model_columns`, or None: ask it.
ShapeColumns = Callable[[dict[str, Any], int, Any, Any, Any, str], "tuple[Any, ...] | None"]

# The keys that decide a shape's function: the call's own, and a processor's stamp.
MONEY_KEYS = CALL_KEYS | {COST, COST_STATUS, PRICING_VERSION, PRICED_MODEL, MODEL_CUT} | REPORTED_KEYS
_LIMIT = 1024  # span data can hold arbitrary keys: the caches are bounded
_by_shape: dict[tuple[str, ...], ShapeColumns | None] = {}
_by_keys: dict[frozenset[str], ShapeColumns | None] = {}
# A compile costs ~340 µs, as much as pricing ~80 calls the general way. A set of keys is
# compiled at once for a group of this many calls, else the second time it is asked for:
# spans that bring a new set every few calls (a hostile OTLP client) would otherwise cost
# 3.5-4.4x the general path (review of 2026-12-03), and now cost what it does.
COMPILE_AT = 64
_seen: set[frozenset[str]] = set()


def shape_columns(shape: tuple[str, ...], calls: int = COMPILE_AT) -> ShapeColumns | None:
    """The compiled function for spans whose attributes have the keys ``shape`` in this
    order, or None when no span of the shape can take it, or it is not worth compiling yet
    for ``calls`` model calls (then `model_columns` for each)."""
    try:
        return _by_shape[shape]
    except KeyError:
        pass
    keys = MONEY_KEYS.intersection(shape)
    try:
        function = _by_keys[keys]
    except KeyError:
        if calls < COMPILE_AT and keys not in _seen:
            if len(_seen) >= _LIMIT:
                _seen.clear()
            _seen.add(keys)
            return None
        _seen.discard(keys)
        function = remember(_by_keys, keys, compile_columns(keys), _LIMIT)
    return remember(_by_shape, shape, function, _LIMIT)


def compile_columns(keys: frozenset[str]) -> ShapeColumns | None:
    """Build the function for spans holding exactly these of `MONEY_KEYS` (see the module
    doc), or None."""
    if MODEL_CUT in keys:
        return None  # a model name the SDK may have cut: model_columns says unknown_model
    stamped = COST in keys
    if stamped and PRICING_VERSION not in keys:
        return None  # no version cannot be this table's: the stamp stands, as it came
    if not REPORTED_KEYS.isdisjoint(keys) and (not stamped or COST_STATUS not in keys):
        return None  # a cost the provider reported may win: model_columns decides
    parts = pricer_parts(keys & CALL_KEYS, unknown="return None" if stamped else "unknown = True")
    if parts is None:
        return None
    names, body, total_input, total, buckets = parts
    names.update(
        USD=usd, QUANTIZE=quantize_usd, MAX_USD=MAX_CALL_USD, UNKNOWN_TEXT=CostStatus.UNKNOWN_MODEL.value
    )

    def bind(key: str) -> str:
        name = f"K{len(names)}"
        names[name] = key
        return name

    def total_of(wanted: list[str]) -> str:
        return " + ".join(n for n in wanted if n != "0") or "0"

    # The token columns as model_columns derives them from BillableTokens: total input (the
    # input parts), total output (the rest), cache read, cache write (both durations), reasoning.
    tokens = ", ".join(
        (
            total_input,
            total_of([buckets[b.name] for b in BUCKETS if b.part not in INPUT_PARTS]),
            buckets["cache_read"],
            total_of([buckets["cache_write_5m"], buckets["cache_write_1h"]]),
            buckets["reasoning"],
        )
    )
    if stamped:
        head = [
            # A float stamp only (an int is exact as it is, and may be too big for a float);
            # NaN fails both comparisons. Within [0, MAX_CALL_USD] it is a believable cost.
            f"stamp = a[{bind(COST)}]",
            "if type(stamp) is not float or not 0.0 <= stamp <= 1e6: return None",
            f"version_text = a[{bind(PRICING_VERSION)}]",
            "if type(version_text) is not str or version_text != version: return None",
        ]
        if COST_STATUS in keys:  # absent, the status is 'priced'
            head.append(f"if a[{bind(COST_STATUS)}] != 'priced': return None")
        if PROPOSED_COST_CURRENCY in keys:  # ours says exactly USD; any other: model_columns
            head.append(f"if a[{bind(PROPOSED_COST_CURRENCY)}] != 'USD': return None")
        if PRICED_MODEL in keys:
            head += [
                f"priced_model = a[{bind(PRICED_MODEL)}]",
                "if type(priced_model) is not str: return None",
                "priced_model = priced_model or None",
            ]
        else:
            head.append("priced_model = None")
        # The engine's price at the base rates (the stamp's path never looks up a region).
        tail = [
            f"if {total_input} > hit[8]: return None",
            "ints = hit[4]",
            f"total = {total}",
            "if total / hit[6] != stamp: return None",
            f"return ({tokens}, QUANTIZE(USD(total, hit[5])), 'priced', 'span', version_text, priced_model)",
        ]
    else:
        head = ["unknown = False"]
        tail = [
            f"if unknown: return ({tokens}, None, UNKNOWN_TEXT, 'exporter', version, None)",
            f"if {total_input} > hit[8]: return None",
            "entry = hit[3]",
            "if id(entry) in regional: return None",
            "ints = hit[4]",
            f"cost = USD({total}, hit[5])",
            "if cost > MAX_USD: return None",
            f"return ({tokens}, cost, 'priced', 'exporter', version, entry.id)",
        ]
    lines = ["try:", *("    " + line.replace("\n", "\n    ") for line in (*head, *body, *tail))]
    lines += ["except Exception:", "    return None"]  # model_columns decides, and says why
    params = "a, ns, cached_quote, quote, regional, version"
    return build("model_columns", params, lines, names, sorted(keys))  # type: ignore[return-value]
