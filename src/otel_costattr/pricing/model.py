"""The pricing data model: what a validated pricing file says, and the rates' arithmetic.

`parse.py` builds these from TOML (and is the only place that checks a file); the loaded
table (`table.py`) and the cost engine read them. Every price is a `Decimal`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal

# The last four price the per-modality parts of a call's input and output (audio, image tokens
# reported apart: gen_ai.usage.{audio,image}.{input,output}_tokens).
RATE_KEYS = (
    "input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning",
    "audio_input", "audio_output", "image_input", "image_output",
)  # fmt: skip
SERVICE_TIERS = ("batch", "flex", "priority")
MATCH_KINDS = ("equals", "starts_with", "ends_with", "regex")

# Model ids longer than this are never resolved (a span reporting one gets invalid_usage):
# it bounds what a match rule or normalisation costs on one id, and the bytes every
# resolution cache keyed by id can hold. The longest real id is under 100 characters.
MAX_MODEL_ID = 256
# Sane bounds, checked at load: 100x the dearest model today, a factor of 100 either way, a
# threshold above any context window. A rate, as written and after every multiplier, has at
# most MAX_RATE_DECIMALS places: SQL repricing (rollups.queries) loads rates as
# DECIMAL(38, 12), and one finer rate anywhere in the table would break every `--reprice` and
# `whatif` long after the file loaded. A multiplier may have eighteen: every product of a
# price and two multipliers stays within 66 digits, which WIDE_CONTEXT computes exactly.
MAX_PRICE = Decimal(100_000)
MAX_MULTIPLIER = Decimal(100)
MAX_TIER_ABOVE = 10**9
MAX_DECIMALS = 18
MAX_RATE_DECIMALS = 12
WIDE_CONTEXT = Context(prec=80)


def decimal_places(value: Decimal) -> int:
    """How many decimal places ``value`` needs (trailing zeros, as a product has, do not count)."""
    # From the digits themselves, not `normalize`: in a context an exponent past its Emin
    # rounds to zero (1e-999999999999 had "0 places") or overflows.
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return 0 if trailing == len(digits) else max(0, -(exponent + trailing))


def within_places(value: Decimal, places: int) -> Decimal:
    """``value`` (of at most ``places`` decimal places) written with at most ``places``: the
    trailing zeros past them dropped. A rate's exponent sets the integer scale the cost engine
    multiplies by (`Rates`): 0e-1000000, a zero as TOML allows, overflowed it, and 0e-200000
    made every call's arithmetic run on 660,000-bit integers."""
    if -value.as_tuple().exponent <= places:  # type: ignore[operator]
        return value
    return value.quantize(Decimal(1).scaleb(-places), context=WIDE_CONTEXT)


class PricingError(ValueError):
    """A pricing file (or table) is malformed. The message names file, model and field."""


@dataclass(frozen=True)
class Rates:
    """USD per million tokens. ``None`` means "not priced separately" (see pricing/README.md)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    image_input: Decimal | None = None
    image_output: Decimal | None = None
    # The same rates as integers over 10**scale, so the cost engine adds integers (exact and
    # fast) and builds one Decimal at the end. Order: input, output, cache_read, cache_write,
    # cache_write_1h, reasoning, audio and image input and output (RATE_KEYS), with the
    # documented fallbacks already applied (a modality without a rate pays input or output).
    scale: int = field(init=False, repr=False, compare=False)
    ints: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # Tokens x ints / usd_divisor = USD (rates are per million tokens).
    usd_divisor: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = [v for v in self.as_dict().values() if v is not None]
        scale = max((max(0, -int(v.as_tuple().exponent)) for v in values), default=0)
        unit = Decimal(10) ** scale

        def as_int(value: Decimal | None, fallback: int) -> int:
            return fallback if value is None else int(WIDE_CONTEXT.multiply(value, unit))

        i_in = as_int(self.input, 0)
        i_out = as_int(self.output, 0)
        i_cw = as_int(self.cache_write, i_in)
        ints = (i_in, i_out, as_int(self.cache_read, i_in), i_cw, as_int(self.cache_write_1h, i_cw),
                as_int(self.reasoning, i_out), as_int(self.audio_input, i_in),
                as_int(self.audio_output, i_out), as_int(self.image_input, i_in),
                as_int(self.image_output, i_out))  # fmt: skip
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "ints", ints)
        object.__setattr__(self, "usd_divisor", 10 ** (scale + 6))

    def scaled(self, factor: Decimal) -> Rates:
        """These rates multiplied by ``factor`` (a negotiated discount)."""
        values = {
            k: (None if v is None else WIDE_CONTEXT.multiply(v, factor)) for k, v in self.as_dict().items()
        }
        return Rates(**values)

    def as_dict(self) -> dict[str, Decimal | None]:
        return {k: getattr(self, k) for k in RATE_KEYS}


@dataclass(frozen=True)
class Tier:
    """Above ``above`` input tokens, every token of the request pays ``rates``."""

    above: int
    rates: Rates


@dataclass(frozen=True)
class PriceSchedule:
    """Base rates plus the long-context tiers that replace them on large requests."""

    rates: Rates
    tiers: tuple[Tier, ...] = ()

    def scaled(self, factor: Decimal) -> PriceSchedule:
        return PriceSchedule(
            self.rates.scaled(factor), tuple(Tier(t.above, t.rates.scaled(factor)) for t in self.tiers)
        )


@dataclass(frozen=True)
class TimeWindow:
    """Daily UTC window [start, end) in seconds after midnight, during which ``rates`` replace
    the base rates (peak / off-peak pricing). ``start > end`` wraps past midnight."""

    start: int
    end: int
    rates: Rates

    def contains(self, second_of_day: int) -> bool:
        if self.start <= self.end:
            return self.start <= second_of_day < self.end
        return second_of_day >= self.start or second_of_day < self.end


@dataclass(frozen=True)
class PricePeriod:
    """The prices in force from ``since`` (UTC date, ``None``: always) until the next period.

    Precedence for one call: a requested service tier the period prices, else an active
    time-of-day window, else the standard schedule (with its long-context tiers).
    """

    since: dt.date | None
    standard: PriceSchedule
    service_tiers: Mapping[str, PriceSchedule]
    windows: tuple[TimeWindow, ...] = ()

    def scaled(self, factor: Decimal) -> PricePeriod:
        return PricePeriod(
            self.since,
            self.standard.scaled(factor),
            {k: v.scaled(factor) for k, v in self.service_tiers.items()},
            tuple(TimeWindow(w.start, w.end, w.rates.scaled(factor)) for w in self.windows),
        )

    # Convenience accessors for the standard base rates.
    @property
    def input(self) -> Decimal:
        return self.standard.rates.input

    @property
    def output(self) -> Decimal:
        return self.standard.rates.output

    @property
    def cache_read(self) -> Decimal | None:
        return self.standard.rates.cache_read

    @property
    def cache_write(self) -> Decimal | None:
        return self.standard.rates.cache_write

    @property
    def cache_write_1h(self) -> Decimal | None:
        return self.standard.rates.cache_write_1h

    @property
    def reasoning(self) -> Decimal | None:
        return self.standard.rates.reasoning


@dataclass(frozen=True)
class MatchRule:
    """One match rule: ``kind`` is equals, starts_with, ends_with or regex (full match)."""

    kind: str
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, model_id: str) -> bool:
        if self.kind == "equals":
            return model_id == self.value
        if self.kind == "starts_with":
            return model_id.startswith(self.value)
        if self.kind == "ends_with":
            return model_id.endswith(self.value)
        assert self.pattern is not None
        return self.pattern.fullmatch(model_id) is not None


@dataclass(frozen=True)
class ModelSpec:
    """One ``[[model]]`` as written: prices or an ``alias_of`` another model."""

    id: str
    name: str | None
    rules: tuple[MatchRule, ...]
    examples: tuple[str, ...]
    source: str | None
    retrieved: dt.date | None
    deprecated: bool
    periods: tuple[PricePeriod, ...]
    alias_of: str | None
    multiplier: Decimal | None
    # Where `rules` and `examples` come from: "match" (the file wrote them), "id" (no
    # `match`: the id alone) or "bundled" (no `match` on a model replacing a bundled one of
    # the same id: that model's, see table._build).
    rules_from: str = "match"


@dataclass(frozen=True)
class ProviderFile:
    """One parsed and validated pricing file."""

    path: str
    provider: str
    name: str | None
    otel_names: tuple[str, ...]
    fallback: tuple[str, ...]
    source: str | None
    retrieved: dt.date | None
    via: str | None
    multiplier: Decimal | None
    models: tuple[ModelSpec, ...]
