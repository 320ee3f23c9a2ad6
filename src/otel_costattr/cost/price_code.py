"""The source of `cost.engine.price_call` and `compute_cost`, generated from the billing rule
(`billing.BUCKETS`).

Three functions are compiled once, at import, the way `collections.namedtuple` builds its
methods:

- the general path: any counts (None or an int in range, anything else refused), any flags,
  any start time, any region; it checks everything, then splits and prices;
- the common path, tried first: usage shaped as nearly every call reports it (input tokens,
  with output, cache reads, cache writes and reasoning or not; no one-hour cache writes, no
  per-modality counts), a start time in epoch ns, no region, and the price period already in
  the table's quote cache. It checks only the counts that shape holds, reads the cache
  without a method call, and runs the same bucket expressions with the absent counts folded
  away. Anything else, it hands to the general path unchanged: it never decides a problem,
  so it can only agree with the general path (tests/test_price_paths.py checks that it does,
  on random usage, models, tiers, windows and price periods);
- `compute_cost`, with the same common path inline (a frame less) building its `CallCost` in
  place, and anything else handed to `price_call` (checked the same way).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from ..pricing.model import RATE_KEYS
from . import billing

# The counts the common path reads; the rest (one-hour writes, modalities) must be None.
COMMON_COUNTS = (
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
)  # fmt: skip
REQUIRED = "input_tokens"  # an int on the common path: so never "no usage"
ABSENT = tuple(c for c in billing.COUNTS if c not in COMMON_COUNTS)
_OPTIONAL = tuple(c for c in COMMON_COUNTS if c != REQUIRED)  # None (0) or an int in range

# The general path: the checks as written here (Usage.problem()'s rule, unrolled: a loop over
# a tuple of them costs half as much again), then the split into buckets, the rates and the
# parts generated from billing.BUCKETS. One function: it pays no call to a helper for the
# arithmetic it shares with the rule.
_GENERAL = """\
def price_call(table, start_time, model, provider, service_tier, usage, region=None):
    {fields} = usage
    if ({invalid}):
        return INVALID
    if (input_tokens is None and output_tokens is None and cache_read_tokens is None
            and cache_write_tokens is None and reasoning_tokens is None):
        return NO_USAGE  # a 1h part alone is no usage
    cache_write_tokens = cache_write_tokens or 0
    cache_write_1h_tokens = cache_write_1h_tokens or 0
    if cache_write_1h_tokens > cache_write_tokens:
        return INVALID
    input_tokens = input_tokens or 0
    output_tokens = output_tokens or 0
    cache_read_tokens = cache_read_tokens or 0
    reasoning_tokens = reasoning_tokens or 0
{part_zeros}    if isinstance(model, str) and len(model) > MAX_MODEL_ID:
        return INVALID  # never resolved: see MAX_MODEL_ID
    if type(start_time) is not int:
        start_time = epoch_ns(start_time)
    quote = table.quote(model, provider, service_tier, start_time, region)
    if quote is None:
        return UNKNOWN
{arithmetic}"""

# The common path. A cache hit is a `pricing.table.QuoteHit` (from ns, until ns, quote, entry,
# integer rates...) for a start time in [from, until): only cacheable keys are stored
# (PriceTable._cacheable), so a hit is never an over-long model id. Unhashable arguments (a
# caller's list) raise TypeError: general path.
_COMMON = """\
def price_call(table, start_time, model, provider, service_tier, usage, region=None):
    {fields} = usage
    if ({common}):
        cached_quote = table.cached_quote  # an attribute load, not a method lookup
        try:
            hit = cached_quote((model, provider, service_tier))
        except TypeError:
            hit = None
        if hit is not None and hit[0] <= start_time < hit[1]:
            if hit[2] is None:
                return UNKNOWN
{zeros}{arithmetic}    return general(table, start_time, model, provider, service_tier, usage, region)
"""

# compute_cost itself, the common path inline (a frame less than calling price_call) and the
# CallCost built in place; anything else goes to ``settle``, which prices through price_call.
_COMPUTE = """\
def compute_cost(model, usage, *, provider=None, start_time=None, service_tier=None, table=None):
    if table is None:
        table = default_pricing()
    if type(start_time) is int:
        {fields} = usage
        if ({common}):
{checked}            cached_quote = table.cached_quote  # an attribute load, not a method lookup
            try:
                hit = cached_quote((model, provider, service_tier))
            except TypeError:
                hit = None
            if hit is not None and hit[0] <= start_time < hit[1] and hit[2] is not None:
{arithmetic}    return settle(model, usage, provider, start_time, service_tier, table)
"""
# compute_cost's check of each optional count, None made 0 as it goes (one test of None for
# both); a count out of range goes to ``settle`` as it is.
_CHECKED = """\
if {c} is None:
    {c} = 0
elif not ({in_range}):
    return settle(model, usage, provider, start_time, service_tier, table)
"""


# Every path ends alike: the buckets, the rates in force, the parts (one per CallCost part);
# the general path from a `Quote`, the common paths from the cache's `QuoteHit`.
_RATES_OF_QUOTE = """\
rates = quote.rates
above = None
total_input = {total_input}
if total_input > quote.base_up_to:
    rates, above = select_rates(quote, start_time, total_input)
{rate_names} = rates.ints
return PRICED, quote.entry, ({parts}), rates.scale, quote.service_tier, above
"""
# (Two copies of the parts, so the base rates' case stores and reloads nothing it need not.)
_RATES_OF_HIT = """\
if {total_input} > hit[8]:
    rates, above = select_rates(hit[2], start_time, {total_input})
    ints = rates.ints
    priced = PRICED, hit[3], ({parts}), rates.scale, hit[7], above
else:
    ints = hit[4]
    priced = PRICED, hit[3], ({parts}), hit[5], hit[7], None
"""
_RETURN = "return priced\n"
# CallCost.__init__'s five stores without its frame (tests/test_price_paths.py checks every
# slot against CallCost(...)).
_RETURN_COST = """\
cost = new_object(CallCost)
cost.status = PRICED
cost.pricing_version = table.version
cost.usage = usage
cost.detail = None
cost._priced = priced
return cost
"""


def _compile(source: str, names: dict[str, Any]) -> Any:
    """The one function ``source`` defines, with ``names`` as its globals."""
    name = source[len("def ") : source.index("(")]
    exec(compile(source, f"<otel_costattr {name}>", "exec"), names)  # noqa: S102
    function = names[name]
    function.source = source  # what it does, for anyone debugging
    return function


def _in_range(count: str) -> str:
    return f"type({count}) is int and 0 <= {count} <= MAX_TOKENS"


def _arithmetic(
    lines: list[str], names: dict[str, str], indent: str, rates: str = _RATES_OF_HIT, end: str = _RETURN
) -> str:
    """The bucket assignments ``lines``, then ``rates`` (`_RATES_OF_QUOTE` or `_RATES_OF_HIT`)
    for each bucket's name in ``names``, then ``end``."""
    # Each rate read where it is used (a subscript of a plain tuple: cheaper than unpacking
    # all ten into locals that the frame must then clear), or, from a Quote, unpacked.
    of_hit = rates is _RATES_OF_HIT
    parts = billing.cost_terms(
        names, lambda rate: f"ints[{RATE_KEYS.index(rate)}]" if of_hit else f"r_{rate}"
    )
    code = (
        "\n".join(lines)
        + "\n"
        + rates.format(
            total_input=billing.total_input(names),
            rate_names=", ".join(f"r_{k}" for k in RATE_KEYS),
            parts=", ".join(" + ".join(terms) or "0" for terms in parts.values()),
        )
        + end
    )
    return textwrap.indent(code, indent)


def compile_general(fields: Sequence[str], names: dict[str, Any]) -> tuple[Any, Any]:
    """`Usage.billable`'s split and the general `price_call`, for any counts (0 when None)
    and flags known only at run time; ``fields`` are the `Usage` fields, ``names`` the
    globals the source uses (INVALID, NO_USAGE, UNKNOWN, PRICED, MAX_TOKENS, MAX_MODEL_ID,
    epoch_ns, select_rates)."""
    spelled = ", ".join(fields)
    lines, buckets = billing.python_assignments(billing.bucket_expressions())
    zeros = "".join(f"    {c} = {c} or 0\n" for c in billing.COUNTS)
    split = _compile(
        f"def split({spelled}):\n{zeros}"
        + "".join(f"    {line}\n" for line in lines)
        + f"    return ({', '.join(buckets[b.name] for b in billing.BUCKETS)})\n",
        {},
    )
    checks = [f"({c} is not None and not ({_in_range(c)}))" for c in billing.COUNTS]
    source = _GENERAL.format(
        fields=spelled,
        invalid="\n            or ".join(checks),
        part_zeros="".join(f"    {c} = {c} or 0\n" for c in billing.PART_COUNTS),
        arithmetic=_arithmetic(lines, buckets, "    ", _RATES_OF_QUOTE, end=""),
    )
    return split, _compile(source, dict(names))


def compile_common(fields: Sequence[str], names: dict[str, Any], general: Callable[..., Any]) -> Any:
    """The `price_call` that tries the common path first and hands the rest to ``general``
    (same arguments, same answers); ``names`` as for `compile_general`."""
    conditions = ["region is None", "type(start_time) is int", *_common_conditions()]
    lines, buckets = billing.python_assignments(billing.bucket_expressions(has=COMMON_COUNTS))
    source = _COMMON.format(
        fields=", ".join(fields),
        common="\n            and ".join(conditions),
        zeros="".join(f"            {c} = 0 if {c} is None else {c}\n" for c in _OPTIONAL),
        arithmetic=_arithmetic(lines, buckets, " " * 12),
    )
    return _compile(source, {**names, "general": general})


def compile_compute(fields: Sequence[str], names: dict[str, Any], settle: Callable[..., Any]) -> Any:
    """`engine.compute_cost` with the common path of `compile_common` inline, handing
    anything else to ``settle(model, usage, provider, start_time, service_tier, table)``;
    ``names`` as for `compile_general`, plus default_pricing, CallCost and new_object."""
    lines, buckets = billing.python_assignments(billing.bucket_expressions(has=COMMON_COUNTS))
    checked = "".join(_CHECKED.format(c=c, in_range=_in_range(c)) for c in _OPTIONAL)
    source = _COMPUTE.format(
        fields=", ".join(fields),
        common="\n                and ".join(_shape_conditions()),
        checked=textwrap.indent(checked, " " * 12),
        arithmetic=_arithmetic(lines, buckets, " " * 16, _RATES_OF_HIT, _RETURN_COST),
    )
    return _compile(source, {**names, "settle": settle})


def _shape_conditions() -> list[str]:
    """The required count in range, the absent ones absent."""
    if set(COMMON_COUNTS) | set(ABSENT) != set(billing.COUNTS):  # pragma: no cover - a typo
        raise AssertionError("the common path must name every count")
    return [_in_range(REQUIRED), *(f"{c} is None" for c in ABSENT)]


def _common_conditions() -> list[str]:
    """What makes usage the common shape (see the module doc)."""
    return [*_shape_conditions(), *(f"({c} is None or {_in_range(c)})" for c in _OPTIONAL)]
