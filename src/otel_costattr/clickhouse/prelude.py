"""The ClickHouse-dialect preludes (``queries/clickhouse/``), rendered from the rules' homes.

``_spans.sql`` reads the Collector's ``otel_traces`` rows as the store's ``spans`` rows. Its
placeholders are generated here from the one place each rule lives: the attribute spellings
and their precedence, and what makes a span a model call, from ``semconv.py``; how token
counts fall into buckets (and so the normalised input and output) from ``cost/billing.py``;
the token bound from ``cost/engine.py``. The tests load one workload into both engines and
check every rollup agrees, which checks this rendering against the Python path.
"""

from __future__ import annotations

from .. import semconv
from .._resources import bundled_dir
from ..cost import billing
from ..cost.engine import MAX_TOKENS
from ..pricing import endpoints
from ..rollups.dimensions import dimension_call
from ..spans import content
from ..store import schema

__all__ = [
    "ATTRIBUTE_COLUMNS", "ROW_KEY", "WALK_BOUND", "attribute_columns", "attribute_value", "calls_sql",
    "row_key", "spans_sql", "where_param",
]  # fmt: skip

_A = "_a"  # the alias of SpanAttributes in _spans.sql
# What names a spans row where DuckDB has rowid (ClickHouse has none): a hash of its ids and
# times. The calls' call_row and a rollup's rowid (trace.sql joins them) are both this.
ROW_KEY = ("trace_id", "span_id", "start_time", "end_time", "name")


def row_key(alias: str = "") -> str:
    """`ROW_KEY` as SQL over the spans relation (its columns qualified by ``alias``)."""
    return "cityHash64(" + ", ".join(f"{alias}.{c}" if alias else c for c in ROW_KEY) + ")"


# The attributes rollups read by key most (the identity keys users group by, and reconcile's
# two), each also a column of the call contract (store/schema.py, whose DuckDB store keeps
# them as columns of spans): reading one key of a Map reads the whole Map (1 GiB for 4.5M
# settled calls), a column only itself. The settled calls store them (`ledger.install`:
# MATERIALIZED from ``attributes``, so they cannot disagree with it); the contract's other
# rows compute them from the Map. The dialect reads the column for these keys
# (`dialect._dimension`, ``json_extract_string``), the Map otherwise.
ATTRIBUTE_COLUMNS = schema.ATTRIBUTE_COLUMNS


def attribute_value(key: str, attributes: str = "attributes", quoted: bool = False) -> str:
    """The attribute ``key`` (SQL text when ``quoted``) of the Map ``attributes`` as DuckDB's
    JSON read gives it: NULL when the call lacks it, and an empty value as ``''`` (a Map
    gives ``''`` for a missing key too: hence ``mapContains``)."""
    k = key if quoted else _quote(key)
    return f"if(mapContains({attributes}, {k}), {attributes}[{k}], NULL)"


def attribute_columns(alias: str = "") -> str:
    """The `ATTRIBUTE_COLUMNS` computed from the Map (of the table ``alias``), as a SELECT list."""
    attributes = f"{alias}.attributes" if alias else "attributes"
    return ", ".join(f"{attribute_value(k, attributes)} AS {c}" for k, c in ATTRIBUTE_COLUMNS.items())


# The count slots _spans.sql reads, with their spellings (semconv's precedence, first wins).
_COUNT_SLOTS = (
    ("input", semconv.INPUT_KEYS),
    ("output", semconv.OUTPUT_KEYS),
    ("cache_read", semconv.CACHE_READ_KEYS),
    ("cache_write", semconv.CACHE_WRITE_KEYS),
    ("raw_cache_read", (semconv.ANTHROPIC_CACHE_READ,)),
    ("raw_cache_write", (semconv.ANTHROPIC_CACHE_WRITE,)),
    ("cache_write_1h", semconv.CACHE_WRITE_1H_KEYS),
    ("reasoning", semconv.REASONING_KEYS),
)
# Usage field -> the text slot it is read from (after the raw-name switch of _spans.sql).
_USAGE_SLOTS = {
    "input_tokens": "_t_input",
    "output_tokens": "_t_output",
    "cache_read_tokens": "_t_read",
    "cache_write_tokens": "_t_write",
    "cache_write_1h_tokens": "_t_cache_write_1h",
    "reasoning_tokens": "_t_reasoning",
}


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first(keys: tuple[str, ...]) -> str:
    """The first spelling present (a missing key is '')."""
    return "coalesce(" + ", ".join(f"nullIf({_A}[{_quote(k)}], '')" for k in keys) + ")"


def _host_name(address: str) -> str:
    """`endpoints.host_name` of the text ``address``, step by step."""
    text = f"lower({address})"
    text = f"if(position({text}, '://') > 0, substring({text}, position({text}, '://') + 3), {text})"
    text = f"splitByRegexp('[/?#]', {text})[1]"
    text = f"arrayElement(splitByChar('@', {text}), -1)"
    text = f"splitByChar(':', {text})[1]"
    return f"replaceRegexpOne({text}, '\\\\.+$', '')"


def _let(name: str, value: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value``, computed once (no alias: aliases are the
    whole query's)."""
    return f"arrayMap({name} -> {body}, [{value}])[1]"


def _provider() -> str:
    """The provider a row stores (`semconv.stored_provider`): for a span naming no provider
    or the OpenAI client (`endpoints.override`), the host its endpoint names
    (`endpoints.endpoint_host`), else llm.provider's host beside the client
    (`endpoints.LLM_PROVIDER_HOSTS`); else the first provider spelling present."""
    first = _first(semconv.PROVIDER_KEYS)
    named = f"coalesce({_first(semconv.PROVIDER_KEYS[:-1])}, '')"
    hosts, pids = zip(*sorted(endpoints.HOSTS.items()), strict=True)
    suffixes = " ".join(
        f"endsWith(n, {_quote(suffix)}) AND length(n) > {len(suffix)}, {_quote(pid)},"
        for suffix, pid in endpoints.SUFFIXES
    )
    bedrock = _quote("^" + endpoints.BEDROCK.pattern + "$")
    lookup = (
        f"transform(n, [{', '.join(map(_quote, hosts))}], [{', '.join(map(_quote, pids))}],"
        f" multiIf({suffixes} match(n, {bedrock}), {_quote(endpoints.BEDROCK_HOST)}, ''))"
    )
    address = f"coalesce({_first(semconv.ADDRESS_KEYS)}, '')"
    # in characters, as Python's len(): a byte count cut a long non-ASCII URL short (a review)
    host = _let(
        "address",
        address,
        f"if(address = '' OR lengthUTF8(address) > {endpoints.MAX_ADDRESS}, '',"
        f" {_let('n', _host_name('address'), lookup)})",
    )
    names, ids = zip(*sorted(endpoints.LLM_PROVIDER_HOSTS.items()), strict=True)
    llm = (
        f"transform({_A}[{_quote(semconv.PROVIDER_KEYS[-1])}], [{', '.join(map(_quote, names))}],"
        f" [{', '.join(map(_quote, ids))}], '')"
    )
    client = _quote(endpoints.OPENAI_CLIENT)
    chosen = _let(
        "named",
        named,
        f"if(named = '' OR named = {client},"
        f" if(endpoint != '', endpoint, if(named = {client}, {llm}, '')), '')",
    )
    return _let("endpoint", host, _let("chosen", chosen, f"if(chosen != '', chosen, {first})"))


def _role() -> str:
    ranks = {role: i for i, role in enumerate(semconv._ROLE_PRECEDENCE)}
    by_op = " ".join(
        f"WHEN {_quote(op)} THEN {ranks[role]}" for op, role in sorted(semconv._ROLE_BY_OPERATION.items())
    )
    by_kind = " ".join(
        f"WHEN {_quote(kind)} THEN {ranks[role]}"
        for kind, role in sorted(semconv._ROLE_BY_OPENINFERENCE_KIND.items())
    )
    rank = (
        f"least(CASE {_A}[{_quote(semconv.OPERATION)}] {by_op} ELSE 99 END,"
        f" CASE {_A}[{_quote(semconv.OPENINFERENCE_KIND)}] {by_kind} ELSE 99 END)"
    )
    usage = ", ".join(_quote(k) for k in ("llm.model_name", *semconv.USAGE_KEYS))
    names = " ".join(f"WHEN {i} THEN {_quote(role.value)}" for role, i in ranks.items())
    model = semconv.SpanRole.MODEL_CALL.value
    role = (
        f"multiIf(_rank <> 99, CASE _rank {names} ELSE {_quote(semconv.SpanRole.OTHER.value)} END,"
        f" hasAny(mapKeys({_A}), [{usage}]), {_quote(model)}, {_quote(semconv.SpanRole.OTHER.value)})"
    )
    duplicate = (
        f"if(_role = {_quote(model)} AND {_A}[{_quote(semconv.COST_STATUS)}] = {_quote(semconv.DUPLICATE)},"
        f" {_quote(semconv.SpanRole.DUPLICATE_CALL.value)}, _role)"
    )
    return f"{rank} AS _rank, {role} AS _role, {duplicate}"


def _counts() -> str:
    """Each count slot's text: its first spelling the Map holds, '' included (an empty text the
    application sent is invalid usage, as in the DuckDB store, never the next spelling's)."""
    return ",\n        ".join(f"{_first_held(keys)} AS _t_{slot}" for slot, keys in _COUNT_SLOTS)


def _first_held(keys: tuple[str, ...]) -> str:
    """The value of the first of ``keys`` the Map holds, '' included; NULL when it holds none."""
    held = ", ".join(f"mapContains({_A}, {_quote(k)}), {_A}[{_quote(k)}]" for k in keys)
    return f"multiIf({held}, NULL)"


def _integer(text: str) -> str:
    """The integer the Collector wrote as ``text`` (its digits, maybe a minus, no leading
    zero; '-0' is its rendering of the double -0.0, a valid 0 in the DuckDB store), else NULL.
    Not toInt64OrNull alone, which also reads ' 100', '+1000', '1_000', '1e3' and '00100':
    such text came from an application, not the Collector's rendering of a number, and is
    invalid usage in the DuckDB store (reviews found the two stores disagreeing on it)."""
    return f"if(match({text}, '^-?(0|[1-9][0-9]*)$'), toInt64OrNull({text}), NULL)"


def _numbers() -> str:
    return ",\n        ".join(
        f"coalesce({_integer(text)}, 0) AS _n_{field}" for field, text in _USAGE_SLOTS.items()
    )


def _valid() -> str:
    checks = [
        f"({text} IS NULL OR (ifNull({_integer(text)} BETWEEN 0 AND {MAX_TOKENS}, false)))"
        for text in _USAGE_SLOTS.values()
    ]
    checks.append("_n_cache_write_1h_tokens <= _n_cache_write_tokens")
    return "(" + "\n            AND ".join(checks) + ")"


def _buckets() -> str:
    """Each bucket as billing's SQL, input_includes_cache False for raw names else inferred."""
    spell = {f: f"_n_{f}" for f in _USAGE_SLOTS}.__getitem__
    # The counts the DuckDB store keeps (no per-modality ones: those buckets are 0 there too).
    has = tuple(_USAGE_SLOTS)
    inferred = billing.bucket_expressions(billing.SQL, has=has, flags={}.fromkeys(billing.FLAGS), spell=spell)
    exclusive = billing.bucket_expressions(
        billing.SQL,
        has=has,
        flags={**dict.fromkeys(billing.FLAGS), "input_includes_cache": False},
        spell=spell,
    )
    out = [
        f"if(_raw, {exclusive[b.name]}, {inferred[b.name]}) AS _b_{b.name}"
        if exclusive[b.name] != inferred[b.name]
        else f"{inferred[b.name]} AS _b_{b.name}"
        for b in billing.BUCKETS
    ]
    inputs = [f"_b_{b.name}" for b in billing.BUCKETS if b.part in billing.INPUT_PARTS]
    outputs = [f"_b_{b.name}" for b in billing.BUCKETS if b.part not in billing.INPUT_PARTS]
    writes = [f"_b_{b.name}" for b in billing.BUCKETS if b.part == "cache_write"]
    out += [
        f"{' + '.join(inputs)} AS _b_total_input",
        f"{' + '.join(outputs)} AS _b_total_output",
        f"{' + '.join(writes)} AS _b_cache_write",
    ]
    return ",\n        ".join(out)


def _step() -> str:
    text = f"{_A}[{_quote(semconv.AGENT_STEP)}]"
    limit = 2**31 - 1
    return f"if(toInt64OrNull({text}) BETWEEN {-limit} AND {limit}, toInt32(toInt64OrNull({text})), NULL)"


def _any_prefix(prefixes: tuple[str, ...]) -> str:
    return " OR ".join(f"startsWith(k, {_quote(p)})" for p in prefixes)


def _attributes() -> str:
    """The call's attributes kept as the DuckDB store keeps them (`content.content_rule`,
    content capture off): message text never reaches the rollups nor the typed table. A
    Map value is text: a KEEP_NUMBER key is kept when its text is a number."""
    safe = "has([" + ", ".join(map(_quote, sorted(content.SAFE_KEYS))) + "], k)"
    dropped = "has([" + ", ".join(map(_quote, sorted(content.CONTENT_KEYS))) + "], k)"
    keep = (
        f"{safe} OR ({_any_prefix(content.SAFE_PREFIXES)})"
        f" OR (NOT {dropped} AND if({_any_prefix(content.NUMBER_PREFIXES)},"
        f" toFloat64OrNull(v) IS NOT NULL, NOT ({_any_prefix(content.CONTENT_NAMESPACES)})))"
    )
    return f"mapFilter((k, v) -> _call AND ({keep}), {_A})"


def _template(name: str) -> str:
    return (bundled_dir("queries") / "clickhouse" / name).read_text(encoding="utf-8")


def spans_sql(source: str) -> str:
    """``_spans.sql`` rendered: a SELECT of spans rows from ``source`` (a table name)."""
    fills = {
        "{{table}}": source,
        "{{role}}": _role(),
        "{{provider}}": _provider(),
        "{{response_model}}": _first(semconv.RESPONSE_MODEL_KEYS),
        "{{counts}}": _counts(),
        "{{valid}}": _valid(),
        "{{summed_raw}}": f"_a[{_quote(semconv.OPENLLMETRY_REQUEST_TYPE)}] != ''",
        "{{exclusive_input}}": (
            f"(ifNull({_first(semconv.PROVIDER_KEYS[:-1])}"
            f" = {_quote(semconv.EXCLUSIVE_INPUT_PROVIDER)}, false)"
            f" AND _a[{_quote(semconv.INPUT_KEYS[0])}] != ''"
            " AND coalesce(_t_cache_read, _t_raw_cache_read, _t_cache_write, _t_raw_cache_write) IS NOT NULL)"
        ),
        "{{any_count}}": "(" + " OR ".join(f"{text} IS NOT NULL" for text in _USAGE_SLOTS.values()) + ")",
        "{{numbers}}": _numbers(),
        "{{buckets}}": _buckets(),
        "{{step}}": _step(),
        "{{attributes}}": _attributes(),
    }
    sql = _template("_spans.sql")
    for placeholder, text in fills.items():
        if sql.count(placeholder) != 1:
            raise ValueError(f"queries/clickhouse/_spans.sql: expected {placeholder} once")
        sql = sql.replace(placeholder, text)
    return sql


def where_param(pos: int) -> tuple[str, str]:
    """The bound parameters (key, values) of the ``pos``-th ``--where`` key."""
    return f"costattr_where_key_{pos}", f"costattr_where_values_{pos}"


# The ancestors the walk reads when their start times are bound (`settle.walk_bounds`).
WALK_BOUND = (
    " AND start_time >= {costattr_walk_lo:Nullable(DateTime64(6, 'UTC'))}"
    " AND start_time <= {costattr_walk_hi:Nullable(DateTime64(6, 'UTC'))}"
)
# What stands for the walk when no call of the window needs one (same columns, no rows).
_NO_WALK = """    resolved AS (
        SELECT '' AS trace_id, '' AS span_id, 1 AS hit,
               tuple(CAST(NULL AS Nullable(String)), CAST(NULL AS Nullable(String)),
                     CAST(NULL AS Nullable(String))) AS found
        WHERE 0
    )
"""


def _walked(chunks: int) -> str:
    """What stands for the walk when its answers are bound (`walk.walked_params`): the same
    columns, from ``chunks`` chunks of each array."""
    from .unstamped import chunk_name
    from .walk import WALKED_PARAMS

    arrays = []
    for name, kind in WALKED_PARAMS.items():
        parts = ["{" + f"{chunk_name(name, i)}:{kind}" + "}" for i in range(chunks)]
        arrays.append(parts[0] if chunks == 1 else f"arrayConcat({', '.join(parts)})")
    return f"""    resolved AS (
        SELECT tupleElement(w, 1) AS trace_id, tupleElement(w, 2) AS span_id, 1 AS hit,
               tuple(tupleElement(w, 3), tupleElement(w, 4), tupleElement(w, 5)) AS found
        FROM (SELECT arrayJoin(arrayZip({", ".join(arrays)})) AS w)
    )
"""


def calls_sql(
    where_keys: int = 0,
    settled: bool = False,
    walk: bool = True,
    call_row: bool = True,
    unsettled: str = "true",
    ledger: bool = False,
    walk_bound: bool = False,
    priced_chunks: int = 1,
    walk_traces: bool = False,
    walked_chunks: int = 0,
) -> str:
    """``_calls.sql``: the call contract's macros in ClickHouse dialect (see `dialect`), the
    calls kept only where each of the first ``where_keys`` ``--where`` keys (bound parameters,
    `where_param`) has one of its values (as ``_calls_repriced.sql`` does for DuckDB); with
    ``settled``, reading what the settled table holds (`settle.settled_relation`); without
    ``walk`` (no call of the window needs one: `settle.needs_walk`), no ancestor walk; without
    ``call_row`` (only trace.sql reads it), that column is 0: ClickHouse computes a column
    of a UNION ALL even when nothing reads it (a hash per call). ``unsettled``: the test the
    spans rows read as calls must pass (`ledger.unsettled`'s over the typed table, "false" when
    no row is left); with ``ledger``, the settled calls (`ledger.settled_calls_sql`) too,
    and alone when ``unsettled`` is "false", their `ATTRIBUTE_COLUMNS` as stored. With
    ``walk_bound``, the walk reads the ancestors of the traces of the calls it walks within
    the start times bound by `WALK_BOUND` (`settle.walk_bounds`), else on every day; with
    ``walk_traces``, bound traces that hold those (`settle.WALK_TRACES`: found over the
    whole pricing window), else read from the calls it walks. With ``walked_chunks`` (and
    no ``walk``), the walk's answers are bound instead, in that many chunks of each array
    (`walk.walked_params`).
    ``priced_chunks``: how many parameters each read-time price array comes in
    (`unstamped.priced_params`)."""
    from .ledger import settled_calls_sql
    from .settle import WALK_LACKING, WALK_TRACES, settled_relation

    tests = []
    for pos in range(1, where_keys + 1):
        key, values = where_param(pos)
        value = dimension_call("{" + key + ":String}")
        tests.append(f"coalesce(has({{{values}:Array(String)}}, {value}), false)")
    sql = _template("_calls.sql")
    fills = {"{{where}}": " AND ".join(tests) or "true"}
    if ledger and unsettled == "false":
        # Every call is a settled one: the typed rows' part is left out whole. With no row
        # to read it costs nothing to run, but ClickHouse still plans it (its scans, joins
        # and LIMIT BY): 60 ms of a 1M-span store's 80 (compare), a fifth of per-run.
        sql = _cut(sql, "typed", "")
    else:
        if not walk:
            sql = _cut(sql, "walk", _walked(walked_chunks) if walked_chunks else _NO_WALK)
        else:
            of_traces = f"trace_id IN {WALK_TRACES}" if walk_traces else WALK_LACKING
            fills["{{walk_ancestors}}"] = of_traces + (WALK_BOUND if walk_bound else "")
        if not ledger:
            sql = _cut(sql, "ledger", "")
        fills |= {
            "{{call_row}}": row_key("s") if call_row else "toUInt64(0)",
            "{{call_row_complete}}": row_key() if call_row else "toUInt64(0)",
            "{{settled}}": settled_relation(settled),
            "{{unsettled}}": unsettled,
            "{{attribute_columns}}": attribute_columns(),
            "{{attribute_columns(c)}}": attribute_columns("c"),
        }
    if ledger:
        fills["{{call_row_settled}}"] = row_key() if call_row else "toUInt64(0)"
        fills["{{settled_calls}}"] = settled_calls_sql()
    for placeholder, text in fills.items():
        if sql.count(placeholder) != 1:
            raise ValueError(f"queries/clickhouse/_calls.sql: expected {placeholder} once")
        sql = sql.replace(placeholder, text)
    if priced_chunks > 1:
        from .unstamped import PRICED_PARAMS, chunk_name

        for name, kind in PRICED_PARAMS.items():
            one = "{" + f"{name}:{kind}" + "}"
            if sql.count(one) != 1:
                raise ValueError(f"queries/clickhouse/_calls.sql: expected {one} once")
            parts = ", ".join("{" + f"{chunk_name(name, i)}:{kind}" + "}" for i in range(priced_chunks))
            sql = sql.replace(one, f"arrayConcat({parts})")
    return sql


def _cut(sql: str, part: str, instead: str) -> str:
    """``sql`` with the lines from ``-- <part>:begin`` to ``-- <part>:end`` made ``instead``."""
    begin, end = sql.index(f"    -- {part}:begin"), sql.index(f"    -- {part}:end\n")
    return sql[:begin] + instead + sql[end:]
