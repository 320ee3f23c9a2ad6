"""A priced model as the loaded table holds it, and which of its prices is in force when.

`build_entry()` turns one `[[model]]` of a file into a `ModelEntry`, applying the provider's
and the model's multipliers; the table (`table.py`) resolves span model ids to these.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

from .model import (
    MAX_PRICE,
    MAX_RATE_DECIMALS,
    WIDE_CONTEXT,
    MatchRule,
    ModelSpec,
    PricePeriod,
    PricingError,
    ProviderFile,
    Rates,
    decimal_places,
)

_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class ModelEntry:
    """A priced model: canonical id, provider and its price history (oldest first)."""

    id: str
    provider: str
    name: str | None
    periods: tuple[PricePeriod, ...]
    rules: tuple[MatchRule, ...] = field(repr=False)
    source: str | None = None
    retrieved: dt.date | None = None
    deprecated: bool = False
    origin: str = ""
    alias_of: str | None = None
    # A host's copy of another provider's model at its list price (pricing/table.py
    # `_keep_list_prices`): that provider's id, for what asks which model a call went to.
    list_of: str | None = field(default=None, compare=False)
    # An alias's target as resolved (pricing/table.py `_build`): (provider, model id).
    alias_target: tuple[str, str] | None = field(default=None, compare=False)
    _since_ns: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def price_at(self, when: object = None) -> PricePeriod:
        """The prices in force at ``when`` (datetime, date, epoch nanoseconds; None: now).

        A time before the first recorded price gets the first one: a model is not called
        before it exists, so that only happens with clock skew (a user's model replacing a
        bundled one from a date has the bundled prices before it: `with_earlier`).
        """
        return self.period_for_ns(epoch_ns(when))

    def period_for_ns(self, ns: int) -> PricePeriod:
        """`price_at` for epoch nanoseconds, the form OTel spans carry."""
        return self.periods[self.period_index(ns)]

    def period_index(self, ns: int) -> int:
        """The index in `periods` of the prices in force at epoch nanoseconds ``ns``."""
        since = self._since_ns
        index = len(since) - 1
        while index > 0 and since[index] > ns:
            index -= 1
        return index


def _date_ns(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * _NS_PER_DAY


def epoch_ns(when: object) -> int:
    """Epoch nanoseconds for ``when``: nanoseconds as OTel carries them, a datetime (naive
    means UTC), a date (UTC midnight) or None (now)."""
    if when is None:
        return time.time_ns()
    if isinstance(when, int) and not isinstance(when, bool):
        return when
    if isinstance(when, dt.datetime):
        aware = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
        return int(aware.timestamp() * 1_000_000) * 1000
    if isinstance(when, dt.date):
        return _date_ns(when)
    raise TypeError(f"expected epoch nanoseconds, a datetime or a date, got {when!r}")


def _rates_of(period: PricePeriod, index: int) -> Iterator[tuple[str, Rates]]:
    """Every rate set of ``period`` (the ``index``-th), with the field that wrote it."""
    field = f"price[{index}]"
    for name, schedule in [(None, period.standard), *period.service_tiers.items()]:
        where = field if name is None else f"{field}.{name}"
        yield where, schedule.rates
        yield from ((f"{where}.tiers[{i}]", t.rates) for i, t in enumerate(schedule.tiers))
    yield from ((f"{field}.windows[{i}]", w.rates) for i, w in enumerate(period.windows))


def _check_scaled(
    spec: ModelSpec, provider: ProviderFile, periods: tuple[PricePeriod, ...], factor: Decimal
) -> None:
    """Each multiplier is bounded on its own; together (provider x model, over an alias's
    target) they must not lift a price past the bound a single price has, nor give it more
    decimal places than a price may have (SQL repricing's: see `model.MAX_RATE_DECIMALS`)."""
    target = f"{spec.alias_of}'s " if spec.alias_of else ""  # an alias's periods are its target's
    for index, period in enumerate(periods):
        for where, rates in _rates_of(period, index):
            for key, value in rates.as_dict().items():
                if value is None:
                    continue
                problem = None
                if value > MAX_PRICE:
                    problem = f"above {MAX_PRICE}"
                elif decimal_places(value) > MAX_RATE_DECIMALS:
                    problem = (
                        f"more than {MAX_RATE_DECIMALS} decimal places (what repricing holds):"
                        " a multiplier of fewer decimal places avoids it"
                    )
                if problem is not None:
                    raise PricingError(
                        f"{provider.path}: model {spec.id!r}: multiplier: x{factor.normalize():f} makes"
                        f" {target}{where}.{key} {value.normalize():f} USD per million tokens, {problem}"
                    )


def build_entry(
    spec: ModelSpec,
    provider: ProviderFile,
    periods: tuple[PricePeriod, ...],
    inherited: tuple[Decimal | None, ...] = (),
) -> ModelEntry:
    """The entry for ``spec`` of ``provider``, priced by ``periods`` (its own, or those of the
    model it is an alias of), with the provider's and the model's multipliers applied, after
    ``inherited`` (an alias's: those its target's entry has, see `table._build`)."""
    factor = Decimal(1)
    for multiplier in (*inherited, provider.multiplier, spec.multiplier):
        if multiplier is not None:
            factor = WIDE_CONTEXT.multiply(factor, multiplier)
    if factor != 1:
        periods = tuple(p.scaled(factor) for p in periods)
        _check_scaled(spec, provider, periods, factor)
    return ModelEntry(
        id=spec.id,
        provider=provider.provider,
        name=spec.name,
        periods=periods,
        rules=spec.rules,
        source=spec.source or provider.source,
        retrieved=spec.retrieved or provider.retrieved,
        deprecated=spec.deprecated,
        origin=provider.path,
        alias_of=spec.alias_of,
        _since_ns=_since_of(periods),
    )


def with_earlier(entry: ModelEntry, periods: tuple[PricePeriod, ...]) -> ModelEntry:
    """``entry`` with ``periods`` (in force before its first) before its own: a user's model
    replacing a bundled one from a date keeps the bundled prices until then (table._build)."""
    history = (*periods, *entry.periods)
    return replace(entry, periods=history, _since_ns=_since_of(history))


def _since_of(periods: tuple[PricePeriod, ...]) -> tuple[int, ...]:
    return tuple(-(2**63) if p.since is None else _date_ns(p.since) for p in periods)
