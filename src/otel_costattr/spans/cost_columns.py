"""The token and cost columns of a model-call row, and the bounds a cost must keep.

Cost: a span stamped by a processor (``gen_ai.usage.cost``) keeps its figure, as
``Decimal(str(float))`` rounded to 12 places, ``cost_source = 'span'``. When it says it was
priced (``costattr.status = 'priced'``) with the very table the mapper prices with (same
``costattr.pricing_version``) and the engine reproduces the same float, the engine's exact
Decimal is stored instead: same price, without the float's rounding. Either way the column
holds 12 decimal places (round half even beyond that). A span without a cost is
priced here by the same engine, ``cost_source = 'exporter'``, so the store does not depend on
how the provider was configured; unless it carries a cost its provider reported
(``gen_ai.usage.cost.amount`` in USD, ``llm.cost.total``: `cost.reported`), which wins as the
processor would have stamped it (``cost_source = 'span'``). A cost no single call can have
(not a number, negative, above `MAX_CALL_USD`), stamped or computed, is stored as NULL with
``cost_status = 'implausible'``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from .. import semconv
from ..cost import billing
from ..cost.bounds import MAX_CALL_USD, quantize_usd, stamped_usd
from ..cost.engine import CostStatus, Usage, compute_cost, price_call, usd, usd_float
from ..cost.reported import bills_nothing, not_usd, reported_usd
from ..pricing.regions import region_of
from ..pricing.table import PriceTable
from .encode import column_text

IMPLAUSIBLE = "implausible"
_PRICED, _INVALID = CostStatus.PRICED, CostStatus.INVALID_USAGE
_PRICED_TEXT = CostStatus.PRICED.value
NO_CALL = (None,) * 10  # the token and cost columns of a span that is not a model call
_read_call_fields = semconv.read_call_fields
_billable = Usage.billable  # on the plain tuple of Usage fields read_call_fields gives
_input_buckets = operator.itemgetter(*billing.INPUT_INDEXES)  # what BillableTokens.total_input sums
_new_tuple = tuple.__new__


def model_columns(
    attrs: Mapping[str, Any], start: int | None, table: PriceTable, resource: Mapping[str, Any] | None = None
) -> tuple[Any, ...]:
    """The token and cost columns of a model-call span, in table order, its cost either the
    stamped one (trusted as the module doc says) or priced by ``table``, at the regional price
    where the table has one for the region the call was served in (`pricing.regions.region_of`
    on ``attrs`` and the ``resource`` attributes), as the processor prices it."""
    # compute_cost's own arithmetic (price_call) on the plain fields, without its result
    # objects: this runs for every model call the exporter stores. tests/test_row_costs.py
    # checks these columns against read_model_call + compute_cost on arbitrary attributes.
    if attrs.get(semconv.MODEL_CUT) in (True, "true"):
        # The processor found the model's name cut at the span's value length limit: the cut
        # name may be another model's, so it is priced by none (tokens kept).
        columns = _columns(attrs, start, table, resource, None)
        return (*columns[:5], None, _UNKNOWN, "span", column_text(attrs.get(semconv.PRICING_VERSION)), None)
    stamped = attrs.get(semconv.COST)
    if not isinstance(stamped, (int, float)) or isinstance(stamped, bool):
        return _columns(attrs, start, table, resource, None)
    if not_usd(attrs.get(_CURRENCY)):
        # In another currency: never taken for USD, whoever stamped it (ours is in USD and
        # says so), so the call is priced as if it had none.
        return _columns(attrs, start, table, resource, None)
    local = attrs.get(_SOURCE) == semconv.PROPOSED_SOURCE_LOCAL
    if semconv.COST_STATUS in attrs:
        return _columns(attrs, start, table, resource, stamped)
    if not (local or _REPORTED_AMOUNT in attrs or _REPORTED_TOTAL in attrs):
        # A figure alone that no processor of ours stamped (OpenLIT's): a cost its producer
        # reported, read as the processor reads one (cost.reported): a broken figure, or 0
        # beside anything but usage that bills nothing, is not believed, and the call is
        # priced from the table (or unpriced).
        if stamped_usd(stamped) is None or (stamped == 0 and not bills_nothing(attrs)):
            return _columns(attrs, start, table, resource, None)
        return _columns(attrs, start, table, resource, stamped)
    # Not our stamp, beside a cost a provider reported, or someone's own estimate: the
    # processor's precedence (cost.reported), where the bare figure comes last; when neither
    # we nor the provider priced the call, the processor leaves the bare figure on the span
    # beside its status (unknown_model...), and so it stands, with that status.
    ours = _columns(attrs, start, table, resource, None)
    if ours[5] is None and ours[6] in _UNPRICED:
        return _columns(attrs, start, table, resource, stamped, ours[6])
    return ours


_UNKNOWN = CostStatus.UNKNOWN_MODEL.value
_UNPRICED = tuple(s.value for s in (CostStatus.UNKNOWN_MODEL, CostStatus.INVALID_USAGE, CostStatus.NO_USAGE))


def _columns(
    attrs: Mapping[str, Any],
    start: int | None,
    table: PriceTable,
    resource: Mapping[str, Any] | None,
    stamped: float | None,
    status_unstamped: str = _PRICED_TEXT,
) -> tuple[Any, ...]:
    """`model_columns` with the stamp decided: ``stamped`` the figure taken as a stamp (its
    status the span's ``costattr.status``, else ``status_unstamped``), or None to price the
    call (a cost its provider reported winning)."""
    model, provider, tier, counts = _read_call_fields(attrs)
    if stamped is not None:
        # A stamp that is not a believable cost says its producer is broken: it is kept
        # visible as such (the raw value stays in the attributes JSON), not silently
        # replaced by our own price; `--reprice` still prices the stored tokens.
        status = column_text(attrs.get(semconv.COST_STATUS)) or status_unstamped
        version = column_text(attrs.get(semconv.PRICING_VERSION))
        value = stamped_usd(stamped)
        tokens: Any = None
        if value is None:
            status = IMPLAUSIBLE
            if _new_tuple(Usage, counts).problem() is None:
                tokens = _billable(counts)
        elif value == 0 and status in _UNPRICED:
            # A producer's 0 left beside the status of a call no one priced (the processor
            # believes no 0 beside billed tokens: cost.reported): unpriced, not $0.
            value = None
            if _new_tuple(Usage, counts).problem() is None:
                tokens = _billable(counts)
        elif status == _PRICED_TEXT and version == table.version:
            priced, _, parts, scale, _, _ = price_call(table, start, model, provider, tier, counts)
            if priced is not _INVALID:
                tokens = _billable(counts)
            if priced is _PRICED and usd_float(parts, scale) == float(stamped):
                value = quantize_usd(usd(sum(parts), scale))
        elif _new_tuple(Usage, counts).problem() is None:
            tokens = _billable(counts)
        cost: tuple[Any, ...] = (
            value,
            status,
            "span",
            version,
            column_text(attrs.get(semconv.PRICED_MODEL)),
        )
    else:
        status, entry, parts, scale, _, _ = price_call(table, start, model, provider, tier, counts)
        if status is _PRICED and id(entry) in table.regional_entries:
            region = region_of(model, attrs, resource, table.host_of(model, provider, entry))
            if region is not None:
                status, entry, parts, scale, _, _ = price_call(
                    table, start, model, provider, tier, counts, region
                )
        # The engine's buckets: zeros for no usage, None if invalid.
        tokens = None if status is _INVALID else _billable(counts)
        if status is _PRICED:
            total = usd(sum(parts), scale)
            # Our own engine obeys the bound too (rates near the pricing cap on 100M tokens
            # exceed it): the store holds no per-call cost above MAX_CALL_USD, whoever priced it.
            if total > MAX_CALL_USD:
                cost = (None, IMPLAUSIBLE, "exporter", table.version, entry.id)
            else:  # exact; rounded to 12 places if it needs it
                cost = (total, _PRICED_TEXT, "exporter", table.version, entry.id)
        else:
            cost = (None, status._value_, "exporter", table.version, None)
        if _REPORTED_AMOUNT in attrs or _REPORTED_TOTAL in attrs:
            cost = _reported_cost(attrs, cost, table.version)
    if tokens is None:
        return (None, None, None, None, None, *cost)
    # BillableTokens.total_input / total_output, without their generator per call.
    total_input = sum(_input_buckets(tokens))
    return (
        total_input,
        sum(tokens) - total_input,
        tokens.cache_read,
        tokens.cache_write_5m + tokens.cache_write_1h,
        tokens.reasoning,
        *cost,
    )


_REPORTED_AMOUNT, _REPORTED_TOTAL = semconv.PROPOSED_COST_AMOUNT, "llm.cost.total"
_CURRENCY, _SOURCE = semconv.PROPOSED_COST_CURRENCY, semconv.PROPOSED_COST_SOURCE
# As the processor: a reported cost prices a model unknown to us and a call whose span
# carries no usage; usage it cannot read stays unpriced.
_REPORTED_WINS = (_PRICED_TEXT, CostStatus.UNKNOWN_MODEL.value, CostStatus.NO_USAGE.value)


def _reported_cost(attrs: Mapping[str, Any], ours: tuple[Any, ...], version: str) -> tuple[Any, ...]:
    """The cost columns of a call that arrived without our stamp but with a cost its provider
    reported (`cost.reported`: a believable USD figure): that cost wins, as the processor
    would have stamped it, so the store does not depend on where the processor ran. Our
    figure is not kept beside it (`reconcile` lists only calls the processor stamped)."""
    if ours[1] not in _REPORTED_WINS:
        return ours
    reported = reported_usd(attrs)
    if reported is None:
        return ours
    return (stamped_usd(reported), _PRICED_TEXT, "span", version, ours[4])


def _price(call: semconv.ModelCall, start: int | None, table: PriceTable) -> Any:
    return compute_cost(
        call.model,
        call.usage,
        provider=call.provider,
        start_time=start,
        service_tier=call.service_tier,
        table=table,
    )
