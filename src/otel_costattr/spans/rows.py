"""One span record -> one row of the ``spans`` table. Usable without the exporter.

The mapper reads `SpanRecord`s only (``spans/record.py``), whichever adapter made them: the
SDK's (``sdk/seam.py``) or OTLP's (``spans/otlp.py``). For convenience it also takes finished
SDK spans, which it turns into records through the SDK adapter first.

`SpanMapper.row(record)` gives a dict (for people and tests); `SpanMapper.table(records)`
gives the same rows as a pyarrow Table. The per-record path is written for speed (locals, one
tuple per record, no helper call per column): extraction dominates export time.

What a row holds (the store's schema contract, see `store/database.py`):

- typed columns for everything rollups filter, group or sum on;
- token and cost columns only for ``span_role = 'model_call'``: agent spans may carry the
  summed usage of their children, which stays in ``attributes`` only, so summing
  ``cost_usd`` over a table never double counts;
- tokens normalised the way the cost engine reads them: ``input_tokens`` includes cache
  reads and writes, ``output_tokens`` includes reasoning, whatever the producer reported;
- every attribute, resource attribute, event and link as JSON, except message content
  (prompts, completions) unless ``capture_content=True``: trace stores leak customer data.

Cost: a span stamped by a processor (``gen_ai.usage.cost``) keeps its figure, as
``Decimal(str(float))`` rounded to 12 places, ``cost_source = 'span'``. When it says it was
priced (``costattr.status = 'priced'``) with the very table this mapper holds (same
``costattr.pricing_version``) and the engine reproduces the same float, the engine's exact
Decimal is stored instead: same price, without the float's rounding. Either way the column
holds 12 decimal places (round half even beyond that). A span without a cost is
priced here by the same engine, ``cost_source = 'exporter'``, so the store does not depend on
how the provider was configured. A cost no single call can have (not a number, negative, above
`MAX_CALL_USD`), stamped or computed, is stored as NULL with ``cost_status = 'implausible'``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from .. import semconv
from ..cost.engine import CostStatus, compute_cost
from ..pricing.table import PriceTable, default_pricing
from ..store.schema import SPANS, arrow_schema
from . import content
from .encode import column_text, to_json
from .record import SpanRecord

logger = logging.getLogger(__name__)

# The row, in table order: (column, arrow type), derived from the one column list that also
# makes the store's migrations (store/schema.py).
COLUMNS: tuple[tuple[str, pa.DataType], ...] = tuple((c.name, c.type.arrow) for c in SPANS)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
SCHEMA = arrow_schema()

_CENT_PICO = Decimal("1e-12")
_USD_LIMIT = Decimal(10) ** 26  # DECIMAL(38, 12): 26 digits before the point
# The most one model call is believed to cost. The dearest list price is $600 per million
# tokens (o1-pro output) and context windows hold at most a few million tokens, so a real call
# costs at most a few thousand dollars; the pricing loader caps rates at $100,000 per million
# tokens, and 10M tokens (5x the largest context window) at that cap is this bound. A cost
# above it (or negative, or not a number) is stored as NULL with cost_status 'implausible', so
# it is never summed, and no sum of fewer than 10^20 calls can overflow DECIMAL(38, 12).
# queries/_calls.sql applies the same bound to files written before it existed.
MAX_CALL_USD = Decimal(1_000_000)
IMPLAUSIBLE = "implausible"
_QUANT = Context(prec=60, rounding=ROUND_HALF_EVEN)
_EPOCH = dt.datetime(1970, 1, 1)
_NO_MODEL = (None,) * 10  # the token and cost columns of a span that is not a model call
_MAX_STEP = 2**31 - 1
_KEEP, _KEEP_NUMBER = content.ContentRule.KEEP, content.ContentRule.KEEP_NUMBER
_NUMBER_TYPES = content.NUMBER_TYPES
_KEY_CACHE_LIMIT = 8192
# Text columns read straight from one attribute, in the order `_values` places them.
_TEXT_KEYS = (
    semconv.OPERATION,
    "gen_ai.request.model",
    semconv.AGENT_NAME,
    semconv.AGENT_ID,
    semconv.AGENT_VERSION,
    semconv.FEATURE,
    semconv.TOOL_NAME,
    semconv.CONVERSATION_ID,
    semconv.WORKFLOW_NAME,
)


def _plain(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attributes as a dict (what the adapters give already: then the same object)."""
    if type(attrs) is dict:
        return attrs
    return {} if attrs is None else dict(attrs)


def _reraise(span: Any) -> None:
    """An ``on_skip`` for one span asked for by name: its error is the caller's."""
    raise  # noqa: PLE0704 - called inside the adapter's except block


def _records(spans: Iterable[Any], on_skip: Any) -> Sequence[SpanRecord]:
    """``spans`` as records: records as they are, anything else (finished SDK spans) through
    the SDK adapter, the only code that reads their insides."""
    spans = spans if isinstance(spans, (list, tuple)) else list(spans)
    if all(type(s) is SpanRecord for s in spans):
        return spans
    from ..sdk.seam import records_from_sdk  # the SDK's side of the flow, asked for by the caller

    if not any(type(s) is SpanRecord for s in spans):
        return records_from_sdk(spans, on_skip)
    return [r for s in spans for r in ((s,) if type(s) is SpanRecord else records_from_sdk((s,), on_skip))]


def _step(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().isdigit()
    ):
        value = int(value)
    if isinstance(value, int) and -_MAX_STEP <= value <= _MAX_STEP:
        return value
    return None


def _error_description(description: str, events: Sequence[Any]) -> str:
    """A status description without exception text: when the span recorded an exception, the
    description is the SDK's "Type: message" of it (or the message alone, set by hand), and
    an exception message can quote a model's output (`content.CONTENT_KEYS`). The type stays."""
    for name, _, attrs in reversed(events):
        if name == "exception":
            kind = attrs.get("exception.type")
            return kind if type(kind) is str and kind else "exception"
    return description


def quantize_usd(value: Decimal | None) -> Decimal | None:
    """``value`` rounded (half even) to the 12 decimal places of the ``cost_usd`` column, or
    None when it does not fit DECIMAL(38, 12) (a stamped cost of 1e26 USD is not a cost)."""
    if value is None or not value.is_finite():
        return None
    try:
        rounded = value.quantize(_CENT_PICO, context=_QUANT)
    except InvalidOperation:
        return None
    return rounded if abs(rounded) < _USD_LIMIT else None


def plausible_usd(value: Decimal | None) -> Decimal | None:
    """``value`` rounded to the column's places when it is a believable cost for one model
    call (0 to `MAX_CALL_USD`), else None."""
    rounded = quantize_usd(value)
    return rounded if rounded is not None and 0 <= rounded <= MAX_CALL_USD else None


def stamped_usd(value: float) -> Decimal | None:
    """A cost stamped as a number attribute, as the exact decimal it prints as; None when it
    is not a believable cost for one call (NaN, infinite, negative, above `MAX_CALL_USD`)."""
    # An int is exact as it is (and may be too big for a float).
    return plausible_usd(Decimal(value) if isinstance(value, int) else Decimal(repr(float(value))))


class SpanMapper:
    """Maps span records (or finished SDK spans) to rows of the ``spans`` table.

    ``pricing`` prices spans that arrive without a cost (default: `default_pricing()`,
    loaded on first use). ``capture_content=True`` keeps prompt and completion attributes.
    """

    def __init__(self, pricing: PriceTable | None = None, *, capture_content: bool = False) -> None:
        self._pricing = pricing
        self.capture_content = bool(capture_content)
        # Keys whose fate is known (content.content_rule), so that attributes whose keys were
        # all seen cost one set operation. Bounded: keys are span data. Kept in span
        # attributes, links and plain events / kept in events named in a GenAI namespace /
        # kept when a number.
        self._plain_keys: set[str] = set()
        self._strict_keys: set[str] = set()
        self._number_keys: set[str] = set()
        self.content_dropped = 0  # attributes left out as message content, over all spans
        # id(resource attributes) -> (them, their JSON): kept so a reused id cannot alias.
        self._resources: dict[int, tuple[Any, str]] = {}
        self.errors = 0  # spans that could not be read or mapped (logged, never silent)

    @property
    def pricing(self) -> PriceTable:
        """The price table used for spans without a cost."""
        if self._pricing is None:
            self._pricing = default_pricing()
        return self._pricing

    def row(self, span: SpanRecord | Any) -> dict[str, Any]:
        """One record (or finished SDK span) as a dict keyed by column name, valued as the
        table stores it."""
        if type(span) is not SpanRecord:
            from ..sdk.seam import records_from_sdk

            (span,) = records_from_sdk((span,), _reraise)
        row = dict(zip(COLUMN_NAMES, self._values(span), strict=True))
        row["cost_usd"] = quantize_usd(row["cost_usd"])
        for key in ("start_time", "end_time"):  # as the table holds them: naive UTC
            if row[key] is not None:
                row[key] = _EPOCH + dt.timedelta(microseconds=row[key])
        return row

    def rows(self, spans: Iterable[SpanRecord | Any]) -> list[tuple[Any, ...]]:
        """Value tuples in column order, for `rows_to_table`; a record or span that cannot be
        mapped is logged, counted in `errors` and skipped. Repeats are kept: the store drops
        them on insert."""
        out: list[tuple[Any, ...]] = []
        append = out.append
        for record in _records(spans, self.skipped):
            try:
                append(self._values(record))
            except Exception:
                self.skipped(record)
        return out

    def table(self, spans: Iterable[SpanRecord | Any]) -> pa.Table:
        """The rows of ``spans`` (records, or finished SDK spans) as a pyarrow Table with
        `SCHEMA`."""
        return rows_to_table(self.rows(spans))

    def skipped(self, span: Any) -> None:
        """Count and log a span that could not be read or mapped (call it inside the
        ``except`` block): for `seam.records_from_sdk`'s ``on_skip``."""
        self.errors += 1
        if self.errors & (self.errors - 1) == 0:  # 1st, 2nd, 4th...: never a flood
            logger.exception("otel-costattr: could not map span %r; skipped (%d so far)", span, self.errors)

    def _clean(self, attrs: Mapping[str, Any], strict: bool = False) -> tuple[Mapping[str, Any], int]:
        """``attrs`` without message content unless captured (the same object when it has none),
        and how many attributes were left out. ``strict``: the attributes of an event named in
        a GenAI namespace (see `content.content_rule`)."""
        plain = self._strict_keys if strict else self._plain_keys
        if self.capture_content or plain.issuperset(attrs):
            return attrs, 0  # the usual case, decided by one C-level pass over the keys
        rest = attrs.keys() - plain
        if self._number_keys.issuperset(rest) and all(type(attrs[key]) in _NUMBER_TYPES for key in rest):
            return attrs, 0  # plus counts of an open-ended family (gen_ai.usage.*), as numbers
        rule = content.content_rule
        kept = {}
        known: list[str] = []
        numbers: list[str] = []
        for key, value in attrs.items():
            decision = rule(key, strict)
            if decision is _KEEP:
                kept[key] = value
                known.append(key)
            elif decision is _KEEP_NUMBER:
                numbers.append(key)
                if type(value) in _NUMBER_TYPES:
                    kept[key] = value
        if len(plain) < _KEY_CACHE_LIMIT:
            plain.update(known)
        if len(self._number_keys) < _KEY_CACHE_LIMIT:
            self._number_keys.update(numbers)
        dropped = len(attrs) - len(kept)
        return (kept if dropped else attrs), dropped

    def _resource(self, resource: Mapping[str, Any]) -> str:
        """The JSON of a resource's attributes: computed once per attributes object."""
        hit = self._resources.get(id(resource))
        if hit is None or hit[0] is not resource:
            hit = (resource, to_json(_plain(resource)))
            if len(self._resources) > 64:
                self._resources.clear()
            self._resources[id(resource)] = hit
        return hit[1]

    def _events(self, events: Sequence[Any]) -> tuple[str, int]:
        """The events as JSON, and how many of their attributes were left out as content."""
        out = []
        dropped = 0
        for name, time_ns, attrs in events:
            attrs, n = self._clean(_plain(attrs), type(name) is str and content.is_genai_name(name))
            dropped += n
            out.append({"name": name, "time_unix_nano": time_ns, "attributes": attrs})
        return to_json(out), dropped

    def _links(self, links: Sequence[Any]) -> tuple[str, int]:
        """The links as JSON, and how many of their attributes were left out as content."""
        out = []
        dropped = 0
        for trace_id, span_id, attrs in links:
            attrs, n = self._clean(_plain(attrs))
            dropped += n
            out.append({"trace_id": trace_id, "span_id": span_id, "attributes": attrs})
        return to_json(out), dropped

    def _values(self, record: SpanRecord) -> tuple[Any, ...]:
        # Hot path (extraction dominates export time): locals, no per-column helper calls.
        (
            trace_id,
            span_id,
            parent_span_id,
            start,
            end,
            name,
            kind,
            status_code,
            description,
            resource,
            service,
            scope_name,
            scope_version,
            attrs,
            events,
            links,
        ) = record
        if type(attrs) is not dict:
            attrs = _plain(attrs)
        get = attrs.get
        role = semconv.span_role(attrs)._value_
        model_cols = self._model_columns(attrs, start) if role == "model_call" else _NO_MODEL
        text = [get(key) for key in _TEXT_KEYS]
        for i, value in enumerate(text):
            if value is not None and (type(value) is not str or not value):
                text[i] = column_text(value)
        kept, dropped = self._clean(attrs)
        events_json = links_json = "[]"
        if events:
            events_json, n = self._events(events)
            dropped += n
            if description is not None and not self.capture_content:
                description = _error_description(description, events)
        if links:
            links_json, n = self._links(links)
            dropped += n
        if dropped:
            # Said in the row itself: a reader can tell a span without content from one whose
            # content the store left out.
            self.content_dropped += dropped
            kept = {**kept, content.CONTENT_DROPPED: dropped}
        return (
            trace_id,
            span_id,
            parent_span_id,
            name,
            kind,
            start // 1000 if start is not None else None,
            end // 1000 if end is not None else None,
            (end - start) / 1e6 if start is not None and end is not None else None,
            status_code,
            description,
            service,
            scope_name,
            scope_version,
            role,
            text[0],
            column_text(_first(attrs, semconv.PROVIDER_KEYS)),
            text[1],
            column_text(get("gen_ai.response.model") or get("llm.model_name")),
            *model_cols,
            text[2],
            text[3],
            text[4],
            text[5],
            _step(get(semconv.AGENT_STEP)),
            text[6],
            text[7],
            text[8],
            to_json(kept),
            self._resource(resource),
            events_json,
            links_json,
        )

    def _model_columns(self, attrs: Mapping[str, Any], start: int | None) -> tuple[Any, ...]:
        call = semconv.read_model_call(attrs)
        table = self._pricing or self.pricing
        stamped = attrs.get(semconv.COST)
        if isinstance(stamped, (int, float)) and not isinstance(stamped, bool):
            # A stamp that is not a believable cost says its producer is broken: it is kept
            # visible as such (the raw value stays in the attributes JSON), not silently
            # replaced by our own price; `--reprice` still prices the stored tokens.
            status = column_text(attrs.get(semconv.COST_STATUS)) or CostStatus.PRICED.value
            version = column_text(attrs.get(semconv.PRICING_VERSION))
            value = stamped_usd(stamped)
            tokens = None
            if value is None:
                status = IMPLAUSIBLE
                if call.usage.problem() is None:
                    tokens = call.usage.billable()
            elif status == CostStatus.PRICED.value and version == table.version:
                exact = self._engine(call, start, table)
                tokens = exact.tokens
                if exact.status is CostStatus.PRICED and exact.total_float == float(stamped):
                    value = quantize_usd(exact.total)
            elif call.usage.problem() is None:
                tokens = call.usage.billable()
            cost: tuple[Any, ...] = (
                value,
                status,
                "span",
                version,
                column_text(attrs.get(semconv.PRICED_MODEL)),
            )
        else:
            priced = self._engine(call, start, table)
            tokens = priced.tokens  # the engine's buckets: zeros for no usage, None if invalid
            # Our own engine obeys the bound too (rates near the pricing cap on 100M tokens
            # exceed it): the store holds no per-call cost above MAX_CALL_USD, whoever priced it.
            implausible = priced.total is not None and priced.total > MAX_CALL_USD
            cost = (
                None if implausible else priced.total,  # exact; rounded to 12 places if it needs it
                IMPLAUSIBLE if implausible else priced.status._value_,
                "exporter",
                priced.pricing_version,
                priced.model,
            )
        if tokens is None:
            return (None, None, None, None, None, *cost)
        return (
            tokens.total_input,
            tokens.total_output,
            tokens.cache_read,
            tokens.cache_write_5m + tokens.cache_write_1h,
            tokens.reasoning,
            *cost,
        )

    @staticmethod
    def _engine(call: semconv.ModelCall, start: int | None, table: PriceTable) -> Any:
        return compute_cost(
            call.model,
            call.usage,
            provider=call.provider,
            start_time=start,
            service_tier=call.service_tier,
            table=table,
        )


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def rows_to_table(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Value tuples (as `SpanMapper.rows` gives them) -> a pyarrow Table with `SCHEMA`."""
    if not rows:
        return SCHEMA.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = []
    for values, (name, kind) in zip(columns, COLUMNS, strict=True):
        try:
            arrays.append(pa.array(values, type=kind))
        except pa.ArrowInvalid:
            if name != "cost_usd":
                raise
            # A cost with more than 12 decimal places (a rate with many digits), or too big
            # for the column: round it, or leave it out.
            arrays.append(pa.array([quantize_usd(v) for v in values], type=kind))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def span_to_row(
    span: SpanRecord | Any, *, pricing: PriceTable | None = None, capture_content: bool = False
) -> dict[str, Any]:
    """One record (or finished SDK span) as a ``spans`` row (a dict keyed by column name)."""
    return SpanMapper(pricing, capture_content=capture_content).row(span)
