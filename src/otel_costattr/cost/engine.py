"""The cost engine: one model call's usage, model and start time -> exact USD.

Usable on its own, without OpenTelemetry: build a `Usage`, call `compute_cost`.

Token semantics (the trap other tools fall into, see pricing/README.md):

- ``input_tokens`` is normally *inclusive* of cache reads and writes (OTel conventions,
  OpenAI). Anthropic's raw API reports it *exclusive* (the uncached remainder), and
  hand-written spans copy that. ``input_includes_cache=None`` infers it: cache counts larger
  than the input can only be exclusive; otherwise inclusive.
- ``output_tokens`` normally includes reasoning tokens (conventions, OpenAI). Reasoning
  larger than output can only be exclusive (Gemini reports thoughts apart).
- Cached tokens are priced at the cache rates, never again at the input rate; reasoning at
  the model's reasoning rate when it has one, else as output.

The split into buckets and the rate of each is `cost.billing.BUCKETS`: `Usage.billable` and
`price_call` run code generated from it once, at import (`cost/price_code.py`): a common path
for the usage nearly every call reports, which hands anything else to the general path.
"""

from __future__ import annotations

import enum
from decimal import Context, Decimal
from typing import TYPE_CHECKING, NamedTuple

from ..pricing.entry import ModelEntry, epoch_ns
from ..pricing.model import MAX_MODEL_ID, Rates
from ..pricing.table import PriceTable, Quote, default_pricing
from . import billing, price_code

# Far beyond any context window (2M tokens today): a count this large is a bug upstream, and
# pricing it would put a fictitious fortune on the bill.
MAX_TOKENS = 100_000_000

_EXACT = Context(prec=80)
_ZERO = Decimal(0)  # wide enough that building a result never rounds


class CostStatus(str, enum.Enum):
    """Why a call has (or lacks) a cost."""

    PRICED = "priced"
    UNKNOWN_MODEL = "unknown_model"
    NO_USAGE = "no_usage"
    INVALID_USAGE = "invalid_usage"

    def __str__(self) -> str:
        return self.value


class Usage(NamedTuple):
    """Token counts of one model call, as a producer reported them.

    ``cache_write_tokens`` counts every cache write; ``cache_write_1h_tokens`` is the part of
    it written with a one-hour lifetime (priced at the 1h rate where one exists).
    ``input_includes_cache`` / ``output_includes_reasoning``: None infers (see module doc).
    A NamedTuple: built once per span on a hot path, so construction must be cheap.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_includes_cache: bool | None = None
    output_includes_reasoning: bool | None = None
    # Per-modality parts of input_tokens and output_tokens (always included in them), priced
    # at the model's audio and image rates where it has them (cost.billing.BUCKETS).
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    image_input_tokens: int | None = None
    image_output_tokens: int | None = None

    def problem(self) -> str | None:
        """Why these counts cannot be priced, or None when they can."""
        for value in map(self.__getitem__, _COUNT_INDEXES):
            if value is not None and (type(value) is not int or not 0 <= value <= MAX_TOKENS):
                return self._describe_problem()
        write_1h = self.cache_write_1h_tokens
        if write_1h is not None and write_1h > (self.cache_write_tokens or 0):
            return "cache_write_1h_tokens exceeds cache_write_tokens"
        return None

    def _describe_problem(self) -> str:
        for index in _COUNT_INDEXES:
            name, value = self._fields[index], self[index]
            if value is None or (type(value) is int and 0 <= value <= MAX_TOKENS):
                continue
            if type(value) is not int:
                return f"{name} is not an integer: {value!r}"
            if value < 0:
                return f"{name} is negative: {value}"
            return f"{name} is absurd: {value}"
        raise AssertionError("no problem to describe")  # pragma: no cover

    def billable(self) -> BillableTokens:
        """Split the counts into disjoint billable buckets (call `problem()` first)."""
        return BillableTokens(*_split(*self))


class BillableTokens(NamedTuple):
    """Disjoint token buckets, each billed at one rate."""

    uncached_input: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    output: int
    reasoning: int
    audio_input: int = 0
    image_input: int = 0
    audio_output: int = 0
    image_output: int = 0

    @property
    def total_input(self) -> int:
        """Every input token of the request: what long-context tiers look at."""
        return sum(self[i] for i in _INPUT)

    @property
    def total_output(self) -> int:
        """Every output token, reasoning included."""
        return sum(self) - self.total_input


_INPUT = billing.INPUT_INDEXES
_COUNT_INDEXES = tuple(Usage._fields.index(c) for c in billing.COUNTS)
if BillableTokens._fields != tuple(b.name for b in billing.BUCKETS):  # pragma: no cover - a typo
    raise AssertionError("BillableTokens must list billing.BUCKETS in order")
_PRICED = CostStatus.PRICED
_new_object = object.__new__


class CallCost:
    """The cost of one call: status, total and parts as `Decimal` USD, and what priced it.

    ``tier_above`` is the long-context threshold applied (None: base rates);
    ``service_tier`` the service-tier price applied (None: standard).
    """

    # What price_call returned, kept whole: the result of every call is built with five
    # stores, and what is read from it is derived when read.
    __slots__ = ("status", "pricing_version", "detail", "usage", "_priced")

    def __init__(
        self, priced: PricedCall, pricing_version: str | None, usage: Usage | None, detail: str | None = None
    ) -> None:
        self.status: CostStatus = priced[0]
        self.pricing_version = pricing_version
        self.usage = usage
        self.detail = detail
        self._priced = priced

    @property
    def model(self) -> str | None:
        """The id of the model entry that priced the call (None unless priced)."""
        entry = self._priced[1]
        return None if entry is None else entry.id

    @property
    def provider(self) -> str | None:
        """The pricing provider of that entry (None unless priced)."""
        entry = self._priced[1]
        return None if entry is None else entry.provider

    @property
    def service_tier(self) -> str | None:
        return self._priced[4]

    @property
    def tier_above(self) -> int | None:
        return self._priced[5]

    @property
    def tokens(self) -> BillableTokens | None:
        """The billable token buckets this cost was computed from (None for invalid usage)."""
        if self.usage is None or self.status is CostStatus.INVALID_USAGE:
            return None
        return self.usage.billable()

    def __repr__(self) -> str:
        return (
            f"CallCost(status={self.status.value!r}, total={self.total!r}, model={self.model!r}, "
            f"provider={self.provider!r}, pricing_version={self.pricing_version!r})"
        )

    def _usd(self, index: int | None) -> Decimal | None:
        parts = self._priced[2]
        if parts is None:
            return None
        return usd(sum(parts) if index is None else parts[index], self._priced[3])

    @property
    def total(self) -> Decimal | None:
        """Total USD, or None when the call could not be priced (never a silent 0)."""
        return self._usd(None)

    @property
    def input(self) -> Decimal | None:
        """USD for uncached input tokens."""
        return self._usd(0)

    @property
    def cache_read(self) -> Decimal | None:
        return self._usd(1)

    @property
    def cache_write(self) -> Decimal | None:
        return self._usd(2)

    @property
    def output(self) -> Decimal | None:
        """USD for output tokens other than reasoning."""
        return self._usd(3)

    @property
    def reasoning(self) -> Decimal | None:
        return self._usd(4)

    @property
    def total_float(self) -> float | None:
        """The total as a float, for the OTel attribute boundary only."""
        parts = self._priced[2]
        if parts is None:
            return None
        return usd_float(parts, self._priced[3])

    def parts(self) -> dict[str, Decimal | None]:
        """Every part by name (input, cache_read, cache_write, output, reasoning)."""
        return {
            "input": self.input,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
            "output": self.output,
            "reasoning": self.reasoning,
        }


def _settle(
    model: str | None,
    usage: Usage,
    provider: str | None,
    start_time: object,
    service_tier: str | None,
    table: PriceTable,
) -> CallCost:
    """`compute_cost` for what its common path leaves: any usage, any start time, a quote
    not cached yet, an unknown model; through `price_call`."""
    priced = price_call(table, start_time, model, provider, service_tier, usage)
    status = priced[0]
    if status is _PRICED:
        return CallCost(priced, table.version, usage)
    if status is CostStatus.UNKNOWN_MODEL:
        detail = f"no price for model {model!r}" if model else "no model reported"
        if provider:
            detail += f" (provider {provider!r})"
    elif status is CostStatus.INVALID_USAGE:
        detail = usage.problem() or f"model id longer than {MAX_MODEL_ID} characters ({len(model or ''):,})"
    else:
        detail = None
    return CallCost(priced, table.version, usage, detail)


def usd(raw: int, scale: int) -> Decimal:
    """`price_call`'s parts (or their sum), integers over 10**(scale + 6), as exact USD."""
    if raw == 0:
        return _ZERO
    # Rates are per million tokens, as integers over 10**scale.
    return Decimal(raw).scaleb(-(scale + 6), _EXACT)


def usd_float(parts: tuple[int, ...], scale: int) -> float:
    """The total of `price_call`'s parts as a float, for the OTel attribute boundary only."""
    # int / int is correctly rounded: the same float as float(total Decimal), 4x cheaper.
    return sum(parts) / 10 ** (scale + 6)


_INVALID = (CostStatus.INVALID_USAGE, None, None, 0, None, None)
_NO_USAGE = (CostStatus.NO_USAGE, None, None, 0, None, None)
_UNKNOWN = (CostStatus.UNKNOWN_MODEL, None, None, 0, None, None)

# (status, entry, parts, scale, service tier applied, long-context threshold applied)
PricedCall = tuple[CostStatus, ModelEntry | None, tuple[int, ...] | None, int, str | None, int | None]


def select_rates(quote: Quote, ns: int, total_input: int) -> tuple[Rates, int | None]:
    """The rates for one call and the long-context threshold applied: a time-of-day window
    open at ``ns`` (UTC), else the highest tier ``total_input`` is above, else the base."""
    if quote.windows:
        second = ns // 1_000_000_000 % 86_400
        for window in quote.windows:
            if window.contains(second):
                return window.rates, None
    for tier in reversed(quote.tiers):
        if total_input > tier.above:
            return tier.rates, tier.above
    return quote.rates, None


_NAMES = {
    "INVALID": _INVALID, "NO_USAGE": _NO_USAGE, "UNKNOWN": _UNKNOWN, "PRICED": _PRICED,
    "MAX_TOKENS": MAX_TOKENS, "MAX_MODEL_ID": MAX_MODEL_ID, "epoch_ns": epoch_ns,
    "select_rates": select_rates,
}  # fmt: skip

_split, general_price_call = price_code.compile_general(Usage._fields, _NAMES)
# The common usage shape first, the general path for the rest (cost/price_code.py).
price_call = price_code.compile_common(Usage._fields, _NAMES, general_price_call)
price_call.__doc__ = """`compute_cost` without the objects (the processor's general path; its fast path is
`cost.compiled`). ``price_call(table, start_time, model, provider, service_tier, usage)``:
``usage`` holds the `Usage` fields in order, in any tuple; ``region`` (keyword, lower-case)
selects a regional price where the table has one (`pricing.regions`). Returns a `PricedCall`: (status,
entry, parts, scale, service tier applied, tier threshold applied); the parts are integers
over 10**(scale + 6) USD, None unless priced. ``general_price_call`` takes the same arguments and
gives the same answers, without the common path (tests/test_price_paths.py)."""

if TYPE_CHECKING:

    def compute_cost(
        model: str | None,
        usage: Usage,
        *,
        provider: str | None = None,
        start_time: object = None,
        service_tier: str | None = None,
        table: PriceTable | None = None,
    ) -> CallCost: ...

else:
    # Generated (cost/price_code.py): the common path of price_call inline, the rest _settle.
    compute_cost = price_code.compile_compute(
        Usage._fields,
        {
            **_NAMES,
            "default_pricing": default_pricing,
            "CallCost": CallCost,
            "new_object": _new_object,
            # the annotations' names, for typing.get_type_hints (they resolve in these globals)
            "Usage": Usage,
            "PriceTable": PriceTable,
        },
        _settle,
    )
    compute_cost.__module__ = __name__  # exec() leaves it None: help() and pickling want it
    compute_cost.__annotations__ = {
        "model": "str | None", "usage": "Usage", "provider": "str | None", "start_time": "object",
        "service_tier": "str | None", "table": "PriceTable | None", "return": "CallCost",
    }  # fmt: skip
compute_cost.__doc__ = """Price one call. Never raises for bad data: the status says what went wrong.

``compute_cost(model, usage, *, provider=None, start_time=None, service_tier=None,
table=None)``: ``start_time`` is epoch nanoseconds (as OTel spans carry it), a datetime or a
date; the price in force then is used (None: now). ``service_tier`` "batch", "flex" or
"priority" selects that price where the model has one; anything else is standard. ``table``:
the table to price with (None: `default_pricing()`). Returns a `CallCost`. A ``start_time``
of another type (a bool, a string) is the caller's mistake, not the data's: TypeError."""
