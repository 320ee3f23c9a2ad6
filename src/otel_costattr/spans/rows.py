"""One span record -> one row of the ``spans`` table. Usable without the exporter.

The mapper reads `SpanRecord`s only (``spans/record.py``), whichever adapter made them: the
SDK's (``sdk/seam_records.py``) or OTLP's (``spans/otlp.py``). For convenience it also takes finished
SDK spans, which it turns into records through the SDK adapter first.

`SpanMapper.row(record)` gives a dict (for people and tests); `SpanMapper.table(records)`
gives the same rows as a pyarrow Table. The per-record path is written for speed (locals, one
tuple per record, no helper call per column): extraction dominates export time.

What a row holds (the store's schema contract, its columns listed once in `store/schema.py`):

- typed columns for everything rollups filter, group or sum on;
- token and cost columns only for ``span_role = 'model_call'``: agent spans may carry the
  summed usage of their children, which stays in ``attributes`` only, so summing
  ``cost_usd`` over a table never double counts;
- tokens normalised the way the cost engine reads them: ``input_tokens`` includes cache
  reads and writes, ``output_tokens`` includes reasoning, whatever the producer reported;
- every attribute, resource attribute, event and link as JSON, except message content
  (prompts, completions) unless ``capture_content=True``: trace stores leak customer data.

The token and cost columns of a model call, and how a stamped cost is trusted, are
``spans/cost_columns.py``'s.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from .. import semconv
from ..cost.bounds import quantize_usd
from ..pricing.table import PriceTable, default_pricing
from ..store.schema import SPANS, arrow_schema
from . import content
from .batch import batch_table
from .cost_columns import NO_CALL, model_columns
from .encode import column_text, to_json, without_surrogates
from .record import SpanRecord

logger = logging.getLogger(__name__)

# The row, in table order: (column, arrow type), derived from the one column list that also
# makes the store's migrations (store/schema.py).
COLUMNS: tuple[tuple[str, pa.DataType], ...] = tuple((c.name, c.type.arrow) for c in SPANS)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
SCHEMA = arrow_schema()

_EPOCH = dt.datetime(1970, 1, 1)
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

_AGENT_AT = _TEXT_KEYS.index(semconv.AGENT_NAME)
_OI_AGENT_NAME = semconv.OPENINFERENCE_AGENT_NAME
_RESPONSE_MODEL, _LLM_MODEL, _EMBEDDING_MODEL = semconv.RESPONSE_MODEL_KEYS
_RECORD = frozenset({SpanRecord})
_STR_OR_NONE = frozenset({str, type(None)})  # text values column_text keeps as they are, but ""
_PROVIDER_FIRST, *_rest = semconv.PROVIDER_KEYS
_PROVIDER_REST = tuple(_rest)
_ENDPOINT_KEYS = semconv.ENDPOINT_KEYS


def _plain(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attributes as a dict (what the adapters give already: then the same object)."""
    if type(attrs) is dict:
        return attrs
    return {} if attrs is None else dict(attrs)


def _reraise(span: Any) -> None:
    """An ``on_skip`` for one span asked for by name: its error is the caller's."""
    raise  # noqa: PLE0704 - called inside the adapter's except block


def _bad_time(ns: object) -> bool:
    """Whether ``ns`` (a span's start or end, ns since the epoch) cannot be stored: not an int,
    or past int64 once in µs, as the table holds it (the SDK takes any int from the caller;
    OTLP's fixed64 always fits). None (no time) is storable."""
    return ns is not None and (type(ns) is not int or not _MIN_NS <= ns < _END_NS)


_MIN_NS, _END_NS = -(2**63) * 1000, 2**63 * 1000


def _records(spans: Iterable[Any], on_skip: Any) -> Sequence[SpanRecord]:
    """``spans`` as records: records as they are, anything else (finished SDK spans) through
    the SDK adapter, the only code that reads their insides."""
    spans = spans if isinstance(spans, (list, tuple)) else list(spans)
    types = set(map(type, spans))  # one C-level pass
    if types <= _RECORD:
        return spans
    from ..sdk.seam_records import records_from_sdk  # the SDK's side of the flow, asked for by the caller

    if SpanRecord not in types:
        return records_from_sdk(spans, on_skip)
    return [r for s in spans for r in ((s,) if type(s) is SpanRecord else records_from_sdk((s,), on_skip))]


def _step(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and value.strip().isdecimal()  # "¹".isdigit(), yet int() refuses it
    ):
        try:
            value = int(value)
        except ValueError:  # "0\x1f": str.strip() removes \x1f, int() does not: not a step
            return None
    if isinstance(value, int) and -_MAX_STEP <= value <= _MAX_STEP:
        return value
    return None


def _error_description(description: str, events: Sequence[Any], role: str, error_type: Any) -> str:
    """A status description without exception text: when the span recorded an exception, the
    description is the SDK's "Type: message" of it (or the message alone, set by hand), and
    an exception message can quote a model's output (`content.CONTENT_KEYS`). The type stays.
    A GenAI span (any role but "other") keeps only its ``error.type`` even without an
    exception event: instrumentations such as openai-v2 set ``str(error)`` as the status, and
    a validation error quotes the model's output."""
    for name, _, attrs in reversed(events or ()):
        if name == "exception":
            kind = attrs.get("exception.type")
            return kind if type(kind) is str and kind else "exception"
    if role != "other":
        return error_type if type(error_type) is str and error_type else "error"
    return description


def _naming(span: Any) -> str:
    """A skipped span named by its ids alone: a record's, an SDK span's (its context's), or
    the text a caller gave (`spans.batch` names the ids of a row it could not store)."""
    if isinstance(span, str):
        return span
    try:
        context = getattr(span, "context", None)
        if context is not None and hasattr(context, "trace_id"):  # an SDK span: ints
            return f"span {context.span_id:016x} of trace {context.trace_id:032x}"
        return f"span {getattr(span, 'span_id', '?')} of trace {getattr(span, 'trace_id', '?')}"
    except Exception:  # whatever a broken span does, the log line is still written
        return f"a span ({type(span).__name__})"


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
            from ..sdk.seam_records import records_from_sdk

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
        `SCHEMA`: the batch API (the exporter, the receiver's sink). The same table as
        ``rows_to_table(self.rows(spans))``, built column by column (`spans/batch.py`)."""
        return batch_table(self, _records(spans, self.skipped))

    def skipped(self, span: Any) -> None:
        """Count and log a span that could not be read or mapped (call it inside the
        ``except`` block): for `seam_records.records_from_sdk`'s ``on_skip``."""
        self.errors += 1
        if self.errors & (self.errors - 1) == 0:  # 1st, 2nd, 4th...: never a flood
            # Its ids only: the record holds the span's attributes, prompts among them unless
            # content is captured, and a log is no place for them.
            why = "otel-costattr: could not map %s; skipped (%d so far)"
            logger.exception(why, _naming(span), self.errors)

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
        """The JSON of a resource's attributes, content left out by the spans' rule (a
        resource can carry ``gen_ai.prompt`` as well as a span): computed once per attributes
        object."""
        hit = self._resources.get(id(resource))
        if hit is None or hit[0] is not resource:
            hit = (resource, to_json(_plain(self._clean(resource)[0] if resource else resource)))
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
        if _bad_time(start) or _bad_time(end):
            # One such span fails its whole batch's conversion: it alone is skipped (counted)
            raise ValueError(f"span time out of range: start {start!r}, end {end!r}")
        if type(attrs) is not dict:
            attrs = _plain(attrs)
        get = attrs.get
        role = semconv.span_role(attrs)._value_
        model_cols = (
            model_columns(attrs, start, self._pricing or self.pricing, resource)
            if role == "model_call"
            else NO_CALL
        )
        text = list(map(get, _TEXT_KEYS))
        if not _STR_OR_NONE.issuperset(map(type, text)) or "" in text:  # one C-level pass each
            text = list(map(column_text, text))
        if text[_AGENT_AT] is None and _OI_AGENT_NAME in attrs and get(semconv.OPENINFERENCE_KIND) == "AGENT":
            text[_AGENT_AT] = column_text(attrs[_OI_AGENT_NAME])  # as spans/batch.py
        provider = get(_PROVIDER_FIRST)
        if provider is None:
            provider = _first(attrs, _PROVIDER_REST)
        if provider == "" or not _ENDPOINT_KEYS.isdisjoint(attrs):
            # an empty spelling is none, as the price reads it (a review: NULL was stored for
            # a call priced as the next spelling's provider, which ClickHouse stored)
            provider = semconv.stored_provider(attrs, provider)
        response_model = get(_RESPONSE_MODEL) or get(_LLM_MODEL)
        if _EMBEDDING_MODEL in attrs:  # OpenInference's embedding spans (as spans/batch.py)
            response_model = response_model or attrs[_EMBEDDING_MODEL]
        step = get(semconv.AGENT_STEP)
        if step is not None and (type(step) is not int or not -_MAX_STEP <= step <= _MAX_STEP):
            step = _step(step)  # the rare cases (text, float, bool, out of range); an int is itself
        kept, dropped = self._clean(attrs)
        events_json = links_json = "[]"
        if events:
            events_json, n = self._events(events)
            dropped += n
        if links:
            links_json, n = self._links(links)
            dropped += n
        if description is not None and not self.capture_content:
            description = _error_description(description, events, role, get("error.type"))
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
            # a span that ends before it starts (a skewed clock, a hostile client) has no
            # duration: a negative one would drag every average and latency alert below zero
            (end - start) / 1e6 if start is not None and end is not None and end >= start else None,
            status_code,
            description,
            service,
            scope_name,
            scope_version,
            role,
            text[0],
            None if provider is None else column_text(provider),
            text[1],
            None if response_model is None else column_text(response_model),
            *model_cols,
            text[2],
            text[3],
            text[4],
            text[5],
            step,
            text[6],
            text[7],
            text[8],
            to_json(kept),
            self._resource(resource),
            events_json,
            links_json,
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
    arrays = [to_arrow(name, values, kind) for values, (name, kind) in zip(columns, COLUMNS, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def to_arrow(name: str, values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """One column's values as an Arrow array of its type."""
    try:
        return pa.array(values, type=kind)
    except pa.ArrowInvalid:
        if name != "cost_usd":
            raise
        # A cost with more than 12 decimal places (a rate with many digits), or too big
        # for the column: round it, or leave it out.
        return pa.array([quantize_usd(v) for v in values], type=kind)
    except UnicodeEncodeError:
        # A lone surrogate, which UTF-8 cannot hold: Python decodes file names, argv and the
        # environment that are not UTF-8 with them (surrogateescape), and JSON may spell one
        # (OTLP/JSON "\ud800"). Each becomes U+FFFD and the span is kept, as a decoder does.
        return pa.array([without_surrogates(v) if isinstance(v, str) else v for v in values], type=kind)


def span_to_row(
    span: SpanRecord | Any, *, pricing: PriceTable | None = None, capture_content: bool = False
) -> dict[str, Any]:
    """One record (or finished SDK span) as a ``spans`` row (a dict keyed by column name)."""
    return SpanMapper(pricing, capture_content=capture_content).row(span)
