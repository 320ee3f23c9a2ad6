"""A batch of span records -> the ``spans`` rows as Arrow columns, column by column.

`SpanMapper.table` calls `batch_table`; `SpanMapper.rows` (one tuple per record, the general
path) stays the definition. Mapping row by row paid Python's price for every column of every
span; here the record's own fields are transposed once (``zip(*records)``) and the columns
read from attributes are built for all the spans of one attribute *shape* at a time (the same
keys in the same order: one instrumentation sets the same keys on every span of a kind), so
the checks a row paid per value (is every text column a non-empty string, is the step an int
in range, is every key allowed without content) are one C-level pass over a column. What
still runs per span: the shape, the role (cached per distinct (operation, OpenInference
kind, cost status) of a shape), a model call's tokens and cost (the shape's compiled
function, `cost_shapes`, and ``cost_columns.model_columns`` where it declines), events and
links when present. The attributes JSON is one ``%`` of a template made once per shape
(`_shape_json`) when every column holds one scalar type and nothing was left out, else
``to_json`` span by span; the resource's JSON once per batch when all spans share it. Back
in the records' order, each column is gathered in C before its one conversion to Arrow;
texts the whole batch shares (one resource, no events) are repeated in C.

Nothing here decides anything of its own: every value comes from the same rules the general
path calls (``semconv.span_role``, ``content``, ``cost_columns.model_columns`` or its form
compiled per shape, ``encode.column_text``, ``rows._step``), and tests/test_mapping_batch.py
and tests/test_cost_shapes.py compare the two paths on random batches. Shapes with few
spans, and any batch the column path cannot take (a value it did not expect), go through
the general path, so the answer is always its answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from json.encoder import encode_basestring as _json_text  # the C encoder's, without ensure_ascii
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .. import semconv
from . import content
from .cost_columns import NO_CALL, model_columns
from .cost_shapes import shape_columns
from .encode import column_text, to_json
from .record import SpanRecord

if TYPE_CHECKING:
    from ..pricing.table import PriceTable
    from .rows import SpanMapper

# Below this many spans of one shape, the general path's per-span work is as cheap.
MIN_SHAPE = 8
_MAX_STEP = 2**31 - 1
_STR_OR_NONE = frozenset({str, type(None)})
_INT = frozenset({int})
_DICT = frozenset({dict})
_STR = frozenset({str})
# How the C encoder writes each scalar type, as a %-format and a conversion before it (exact
# types only: a subclass may print otherwise). "%d" % int is int.__repr__, "%r" % float is
# float.__repr__, as the encoder calls them.
_JSON_SCALAR: dict[type, tuple[str, Any]] = {
    str: ("%s", _json_text),
    int: ("%d", None),
    float: ("%r", None),  # finite ones: to_json writes the others as text
    bool: ("%s", {True: "true", False: "false"}.__getitem__),
}
_MODEL_CALL = semconv.SpanRole.MODEL_CALL.value
_RESPONSE_MODEL, _LLM_MODEL, _EMBEDDING_MODEL = semconv.RESPONSE_MODEL_KEYS
_ROLE_VALUES = (semconv.OPERATION, semconv.OPENINFERENCE_KIND, semconv.COST_STATUS)

# The columns read from attributes (or depending on them), in the order `_shape_columns`
# returns them; the others come from the record's own fields.
ATTRIBUTE_COLUMNS = (
    "status_message",
    "span_role",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_status",
    "cost_source",
    "pricing_version",
    "priced_model",
    "agent_name",
    "agent_id",
    "agent_version",
    "feature",
    "step",
    "tool_name",
    "conversation_id",
    "workflow_name",
    "attributes",
)


def batch_table(mapper: SpanMapper, records: Sequence[SpanRecord]) -> pa.Table:
    """The rows of ``records`` as a pyarrow Table with `rows.SCHEMA`, in their order: the
    same table as ``rows_to_table(mapper.rows(records))``."""
    from .rows import rows_to_table

    dropped_before = mapper.content_dropped
    try:
        table = _columns(mapper, records)
    except Exception:  # a value the column path did not expect: the general path decides
        mapper.content_dropped = dropped_before
        table = None
    if table is None:
        rows = mapper.rows(records)
        try:
            return rows_to_table(rows)
        except Exception:  # a value no column takes: it costs its own span, not the batch
            return _row_by_row(mapper, rows)
    return table


def _row_by_row(mapper: SpanMapper, rows: list[tuple[Any, ...]]) -> pa.Table:
    """The table of ``rows`` less each row whose values no column takes (counted and logged
    as `SpanMapper.skipped`), found by halving: one bad row in 50k spans builds about twice
    the batch, not a table a row. Only after the batch failed whole."""
    from .rows import SCHEMA

    tables = _good_parts(mapper, rows[: len(rows) // 2]) + _good_parts(mapper, rows[len(rows) // 2 :])
    return pa.concat_tables(tables).combine_chunks() if tables else SCHEMA.empty_table()


def _good_parts(mapper: SpanMapper, rows: list[tuple[Any, ...]]) -> list[pa.Table]:
    from .rows import rows_to_table

    if not rows:
        return []
    try:
        return [rows_to_table(rows)]
    except Exception:
        if len(rows) == 1:
            mapper.skipped(f"span {rows[0][1]!r} of trace {rows[0][0]!r}")
            return []
    half = len(rows) // 2
    return _good_parts(mapper, rows[:half]) + _good_parts(mapper, rows[half:])


def _columns(mapper: SpanMapper, records: Sequence[SpanRecord]) -> pa.Table | None:
    from .rows import COLUMNS, SCHEMA, _plain, to_arrow

    n = len(records)
    if n < MIN_SHAPE:
        return None
    (trace, span, parent, start, end, name, kind, status, description, resource, service,
     scope_name, scope_version, attrs, events, links) = zip(*records, strict=True)  # fmt: skip
    if not _DICT.issuperset(map(type, attrs)):
        attrs = tuple(map(_plain, attrs))
    # Content left out of events and links counts in the span's own attributes JSON.
    extra: dict[int, int] = {}
    events_json: list[str] | pa.Array = _repeat("[]", n)
    links_json: list[str] | pa.Array = events_json
    if any(events):
        events_json = ["[]"] * n
        for i, ev in enumerate(events):
            if ev:
                events_json[i], extra[i] = mapper._events(ev)
    if any(links):
        links_json = ["[]"] * n
        for i, ln in enumerate(links):
            if ln:
                links_json[i], dropped = mapper._links(ln)
                extra[i] = extra.get(i, 0) + dropped
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, a in enumerate(attrs):
        groups.setdefault(tuple(a), []).append(i)
    order: list[int] = []
    parts: list[list[Sequence[Any]]] = []
    rest: list[int] = []
    for shape, rows in groups.items():
        if len(rows) < MIN_SHAPE:
            rest.extend(rows)
            continue
        parts.append(_shape_columns(mapper, shape, rows, records, attrs, extra))
        order.extend(rows)
    if rest:
        parts.append(_general_columns(mapper, rest, records))
        order.extend(rest)
    if not order:
        return None
    if len(parts) == 1:
        by_shape: list[Sequence[Any]] = parts[0]
    else:
        by_shape = [list(chain.from_iterable(p[c] for p in parts)) for c in range(len(ATTRIBUTE_COLUMNS))]
    if order != sorted(order):
        # Back in the records' order, each column gathered in C by the position of 0, 1, 2...
        # in `order` (n >= MIN_SHAPE > 1: itemgetter gives a tuple).
        back = [0] * n
        for position, i in enumerate(order):
            back[i] = position
        gather = itemgetter(*back)
        by_shape = list(map(gather, by_shape))
    known: dict[str, Any] = dict(zip(ATTRIBUTE_COLUMNS, by_shape, strict=True))
    if None in start or None in end:
        starts = [None if s is None else s // 1000 for s in start]
        ends = [None if e is None else e // 1000 for e in end]
        durations = [
            None if s is None or e is None or e < s else (e - s) / 1e6
            for s, e in zip(start, end, strict=True)
        ]
    else:
        starts = [s // 1000 for s in start]
        ends = [e // 1000 for e in end]
        # a span that ends before it starts has no duration (rows.py's rule)
        durations = [(e - s) / 1e6 if e >= s else None for s, e in zip(start, end, strict=True)]
    types = dict(COLUMNS)
    own = {
        "trace_id": trace,
        "span_id": span,
        "parent_span_id": parent,
        "name": name,
        "kind": kind,
        # As int64, then seen as the timestamps they are: the same buffers, converted at
        # int64's price (a third of the timestamp conversion's).
        "start_time": pa.array(starts, pa.int64()).view(types["start_time"]),
        "end_time": pa.array(ends, pa.int64()).view(types["end_time"]),
        "duration_ms": durations,
        "status_code": status,
        "service_name": service,
        "scope_name": scope_name,
        "scope_version": scope_version,
        "resource": _resources(mapper, resource),
        "events": events_json,
        "links": links_json,
    }
    known.update(own)
    arrays = [
        values if isinstance(values := known[column], pa.Array) else to_arrow(column, values, type_)
        for column, type_ in COLUMNS
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _repeat(text: str, n: int) -> pa.Array:
    """A text column holding ``text`` ``n`` times, copied in C rather than converted n times."""
    try:
        scalar = pa.scalar(text, pa.string())
    except UnicodeEncodeError:  # a lone surrogate (a resource from a non-UTF-8 environment)
        from .rows import to_arrow

        scalar = to_arrow("", [text], pa.string())[0]
    return pa.repeat(scalar, n)


def _resources(mapper: SpanMapper, resource: Sequence[Any]) -> Sequence[str] | pa.Array:
    """The resource JSON of each span: once for the batch when every span has the same
    resource object (one SDK provider, one OTLP resource block), else per span."""
    if len(set(map(id, resource))) == 1:
        return _repeat(mapper._resource(resource[0]), len(resource))
    return list(map(mapper._resource, resource))


def _general_columns(
    mapper: SpanMapper, rows: list[int], records: Sequence[SpanRecord]
) -> list[Sequence[Any]]:
    """The attribute columns of ``rows`` through the general path (`SpanMapper._values`)."""
    from .rows import COLUMN_NAMES

    index = [COLUMN_NAMES.index(c) for c in ATTRIBUTE_COLUMNS]
    values = [mapper._values(records[i]) for i in rows]
    return [[v[j] for v in values] for j in index]


def _shape_columns(
    mapper: SpanMapper,
    shape: tuple[str, ...],
    rows: list[int],
    records: Sequence[SpanRecord],
    attrs: Sequence[dict[str, Any]],
    extra: dict[int, int],
) -> list[Sequence[Any]]:
    """The attribute columns of ``rows``, spans whose attributes all have the keys ``shape``."""
    from .rows import _error_description, _first, _step

    m = len(rows)
    group = [attrs[i] for i in rows]
    values = list(zip(*[a.values() for a in group], strict=True)) if shape else []
    where = {key: j for j, key in enumerate(shape)}
    nothing = (None,) * m

    def column(key: str) -> Sequence[Any]:
        j = where.get(key)
        return nothing if j is None else values[j]

    def text(key: str) -> Sequence[Any]:
        col = column(key)
        if col is nothing or (_STR_OR_NONE.issuperset(map(type, col)) and "" not in col):
            return col
        return list(map(column_text, col))

    # The role reads only these three values and which keys are present (the same for the
    # whole shape): computed once per distinct triple.
    known_roles: dict[tuple[Any, ...], str] = {}
    roles = []
    for triple, a in zip(zip(*map(column, _ROLE_VALUES), strict=True), group, strict=True):
        role = known_roles.get(triple)
        if role is None:
            role = known_roles[triple] = semconv.span_role(a)._value_
        roles.append(role)
    pricing = mapper._pricing or mapper.pricing
    if _MODEL_CALL in known_roles.values():
        money = list(zip(*_money(pricing, shape, rows, records, group, roles), strict=True))
    else:
        money = [nothing] * len(NO_CALL)
    provider_keys = [key for key in semconv.PROVIDER_KEYS if key in where]
    provider: Sequence[Any] = nothing
    if provider_keys:
        provider = column(provider_keys[0])
        if None in provider:  # a None value falls through to the next spelling, as in `_values`
            provider = [_first(a, provider_keys) for a in group]
    if not semconv.ENDPOINT_KEYS.isdisjoint(where) or "" in provider:
        # the host that billed, where named apart; an empty spelling is none (as `_values`)
        provider = [semconv.stored_provider(a, p) for a, p in zip(group, provider, strict=True)]
    if not (_STR_OR_NONE.issuperset(map(type, provider)) and "" not in provider):
        provider = list(map(column_text, provider))
    response = column(_RESPONSE_MODEL)
    if _LLM_MODEL in where or not (response is nothing or all(response)):
        response = [r or o for r, o in zip(response, column(_LLM_MODEL), strict=True)]
    if _EMBEDDING_MODEL in where:
        response = [r or o for r, o in zip(response, column(_EMBEDDING_MODEL), strict=True)]
    if not (_STR_OR_NONE.issuperset(map(type, response)) and "" not in response):
        response = list(map(column_text, response))
    agent_name = text(semconv.AGENT_NAME)
    if semconv.OPENINFERENCE_AGENT_NAME in where:  # OpenInference's agent spans (as rows.py)
        kinds = column(semconv.OPENINFERENCE_KIND)
        agent_name = [
            a if a is not None or k != "AGENT" else n
            for a, n, k in zip(agent_name, text(semconv.OPENINFERENCE_AGENT_NAME), kinds, strict=True)
        ]
    step = column(semconv.AGENT_STEP)
    if step is not nothing and not (
        _INT.issuperset(map(type, step)) and min(step) >= -_MAX_STEP and max(step) <= _MAX_STEP
    ):
        step = [v if type(v) is int and -_MAX_STEP <= v <= _MAX_STEP else _step(v) for v in step]
    # Content: every key known to be kept (the usual case), else the rule span by span.
    if mapper.capture_content or mapper._plain_keys.issuperset(shape):
        kept: Sequence[Any] = group
        dropped: Sequence[int] = (0,) * m
    else:
        cleaned = [mapper._clean(a) for a in group]
        kept = [c[0] for c in cleaned]
        dropped = [c[1] for c in cleaned]
    attributes = None
    if not any(dropped) and not (extra and any(i in extra for i in rows)):
        attributes = _shape_json(shape, values, m)  # every span keeps its attributes whole
    if attributes is None:
        attributes = []
        for i, k, d in zip(rows, kept, dropped, strict=True):
            d += extra.get(i, 0)
            if d:
                mapper.content_dropped += d
                k = {**k, content.CONTENT_DROPPED: d}
            attributes.append(to_json(k))
    messages: Sequence[Any] = nothing
    if any(records[i].status_message is not None for i in rows):
        messages = [records[i].status_message for i in rows]
        if not mapper.capture_content:
            messages = [
                None if d is None else _error_description(d, records[i].events, r, a.get("error.type"))
                for d, i, r, a in zip(messages, rows, roles, group, strict=True)
            ]
    return [
        messages,
        roles,
        text(semconv.OPERATION),
        provider,
        text(semconv.REQUEST_MODEL),
        response,
        *money,
        agent_name,
        text(semconv.AGENT_ID),
        text(semconv.AGENT_VERSION),
        text(semconv.FEATURE),
        step,
        text(semconv.TOOL_NAME),
        text(semconv.CONVERSATION_ID),
        text(semconv.WORKFLOW_NAME),
        attributes,
    ]


def _money(
    pricing: PriceTable,
    shape: tuple[str, ...],
    rows: list[int],
    records: Sequence[SpanRecord],
    group: list[dict[str, Any]],
    roles: list[str],
) -> list[tuple[Any, ...]]:
    """The token and cost columns of each span of a shape: ``model_columns`` for a model
    call, through the shape's compiled function where it answers (`cost_shapes`)."""
    fast = shape_columns(shape, roles.count(_MODEL_CALL))
    quote, cached = pricing.quote, pricing.cached_quote
    regional, version = pricing.regional_entries, pricing.version
    out = []
    append = out.append
    for a, i, role in zip(group, rows, roles, strict=True):
        if role != _MODEL_CALL:
            append(NO_CALL)
            continue
        record = records[i]
        start = record.start_ns
        columns = None
        if fast is not None and type(start) is int:
            columns = fast(a, start, cached, quote, regional, version)
        append(model_columns(a, start, pricing, record.resource) if columns is None else columns)
    return out


def _shape_json(shape: tuple[str, ...], values: Sequence[Sequence[Any]], m: int) -> list[str] | None:
    """``to_json`` of each span's attributes, built from one template a shape: its keys are
    the same in every span, so they are encoded once, and each span's JSON is one ``%`` of
    the template with its values, each column converted as the C encoder converts its type
    (a text column by the encoder's own function, once a value). None when a column holds
    anything else (mixed types, floats that are not finite, arrays, None): then ``to_json``
    span by span decides. The JSON is ``to_json``'s to the byte (tests/test_mapping_batch.py
    compares the two paths' tables)."""
    if not shape:
        return ["{}"] * m
    if not _STR.issuperset(map(type, shape)):
        return None
    fields = []
    columns: list[Sequence[Any]] = []
    for key, column in zip(shape, values, strict=True):
        types = set(map(type, column))
        if len(types) != 1:
            return None
        (kind,) = types
        how = _JSON_SCALAR.get(kind)
        if how is None or (kind is float and not all(map(math.isfinite, column))):
            return None
        spec, convert = how
        fields.append(_json_text(key).replace("%", "%%") + ":" + spec)
        columns.append(column if convert is None else list(map(convert, column)))
    template = "{" + ",".join(fields) + "}"
    return list(map(template.__mod__, zip(*columns, strict=True)))
