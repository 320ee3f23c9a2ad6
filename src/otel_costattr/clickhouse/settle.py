"""Settled facts: each call's identity walked, and each unstamped call priced, once.

At read time the ClickHouse call contract walks ancestors for calls lacking feature or agent
and prices calls stored without a cost: that was most of every rollup's time. `settle` does
both once and appends the answers to ``costattr_settled``, which the contract
(``queries/clickhouse/_calls.sql``) joins in; it walks and prices at read time only what
is not there yet (rows the Collector inserted since, children whose parent has not
arrived). It is what ``queries/_identity.sql`` is to the DuckDB store.

Every row of the table is a fact that can no longer change, so the design needs neither
transactions nor updates: a ``kind = 'identity'`` row holds a call's feature and agent once
the walk cannot change (both found, the root reached, 64 ancestors read: the rule of
``_settle.sql``), a ``kind = 'price'`` row the token and cost columns the DuckDB exporter
would have written for an unstamped call (`unstamped.price_rows`, the exporter's function).
Settles are idempotent and incremental (only calls without the fact are done) and safe
beside the Collector's inserts and each other: a call inserted meanwhile is simply not
settled yet, and two settles racing append equal rows, which the ReplacingMergeTree folds
and the readers group away. A query running during a settle sees the facts inserted before
it started, and walks or prices the rest itself: the answer is the same either way.

On the typed table a settle then writes the calls those facts finish into the settled
calls (`ledger`), which the rollups read as stored.

It runs from ``otel-costattr clickhouse settle`` (cron), from ``clickhouse init`` (the
backfill) and periodically inside ``serve --db clickhouse://`` (`Settler`), which writes
only these tables and never ``otel_traces``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NamedTuple

from .._resources import bundled_dir
from ..pricing.table import PriceTable
from .target import Target
from .unstamped import PRICED_COLUMNS, WINDOW_TEST, fetch_unstamped, price_rows, window_params

__all__ = [
    "SETTLED_COLUMNS", "SETTLED_TABLE", "Settled", "Settler", "WALK_LACKING", "WALK_TRACES",
    "create_settled_sql", "needs_walk", "settle", "settle_store", "settled_exists", "settled_relation",
    "walk_bounds",
]  # fmt: skip

logger = logging.getLogger(__name__)

SETTLED_TABLE = "costattr_settled"
# Which ancestors the walk reads (``{{walk_ancestors}}`` in _calls.sql): those of the
# traces of the calls it walks (the settle's walk, a reader's past `ledger.BOUND_TRACES`;
# within the start times `walk_bounds` found, when it ran: `prelude.WALK_BOUND`).
WALK_LACKING = "trace_id IN (SELECT trace_id FROM lacking)"
# The traces `walk_bounds` found, bound (a superset of each read's own when the rollup
# reads several windows: the walk joins by trace): the test above reads the calls again at
# each step.
WALK_TRACES = "{costattr_walk_traces:Array(String)}"
_IDENTITY = (
    ("feature", "Nullable(String)"),
    ("agent_name", "Nullable(String)"),
    ("agent_version", "Nullable(String)"),
)
# The table's columns, once: its DDL and the contract's reading of it derive from this list.
SETTLED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "String"),
    ("span_id", "String"),
    ("kind", "LowCardinality(String)"),  # 'identity' or 'price'
    *_IDENTITY,
    *PRICED_COLUMNS,
)


class Settled(NamedTuple):
    """What one settle appended: identities settled, unstamped calls priced, and calls
    written to the settled calls (`ledger`; on the typed table only)."""

    identities: int
    prices: int
    calls: int = 0


def create_settled_sql() -> str:
    """The settled table's DDL (idempotent). Keyed by call and kind: racing settles append
    equal rows, which merges fold (readers group, so they never count a repeat)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in SETTLED_COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {SETTLED_TABLE} ({columns},"
        " settled_at DateTime64(6, 'UTC') DEFAULT now64(6))"
        " ENGINE = ReplacingMergeTree ORDER BY (trace_id, span_id, kind)"
    )


def settled_relation(exists: bool) -> str:
    """The SELECT the call contract joins: one row per settled call, ``identity`` and
    ``priced`` saying which facts it has (their columns NULL otherwise). Without the table,
    an empty relation of the same columns."""
    if not exists:
        nulls = ", ".join(
            f"CAST(NULL AS {kind if kind.startswith('Nullable') else f'Nullable({kind})'}) AS {name}"
            for name, kind in SETTLED_COLUMNS[3:]
        )
        return f"SELECT '' AS trace_id, '' AS span_id, 0 AS identity, 0 AS priced, {nulls} WHERE 0"
    facts = ", ".join(
        f"anyIf({name}, kind = '{'identity' if (name, kind) in _IDENTITY else 'price'}') AS {name}"
        for name, kind in SETTLED_COLUMNS[3:]
    )
    return (
        "SELECT trace_id, span_id, max(kind = 'identity') AS identity, max(kind = 'price') AS priced,"
        f" {facts} FROM {SETTLED_TABLE} GROUP BY trace_id, span_id"
    )


def settled_exists(client: Any, target: Target) -> bool:
    """Whether ``target``'s database holds the settled table."""
    from .client import has_table

    return has_table(client, target.database, SETTLED_TABLE)


def needs_walk(
    client: Any,
    spans: str,
    window: dict[str, Any],
    settled: bool,
    unsettled: tuple[str, dict[str, Any]] = ("true", {}),
) -> bool:
    """Whether some call of ``window`` (`runner.pricing_window`) lacks feature or agent, has a
    parent, and has no settled identity: only then does the contract walk at read time. One
    look that stops at the first such call. ``unsettled``: the test the calls the contract
    reads from ``spans`` pass, and its parameters (`ledger.UNSETTLED`)."""
    relation = spans if spans.isidentifier() else f"({spans})"
    facts = f"SELECT trace_id, span_id FROM {SETTLED_TABLE} WHERE kind = 'identity'"
    exclude = f" AND (trace_id, span_id) NOT IN ({facts})" if settled else ""
    test, params = unsettled
    sql = (
        f"SELECT 1 FROM {relation} AS spans WHERE span_role = 'model_call'"
        f" AND (feature IS NULL OR agent_name IS NULL) AND parent_span_id IS NOT NULL AND {WINDOW_TEST}"
        f"{exclude} AND {test} LIMIT 1"
    )
    return bool(client.query(sql, parameters={**window_params(window), **params}).result_rows)


def walk_bounds(
    client: Any, spans: str, window: dict[str, Any], unsettled: tuple[str, dict[str, Any]]
) -> dict[str, Any]:
    """What bounds the ancestors the contract's walk reads (`prelude.WALK_BOUND`'s
    parameters), on the typed table with settled calls (``unsettled``: `ledger.unsettled`'s
    bound test, which reads few rows): the first and last start time of the spans, not
    calls, of the traces of the calls `needs_walk` looks for, and those traces themselves
    when at most `ledger.BOUND_TRACES`. The walk reads its ancestors at each of its steps:
    unbound, from every day (0.3-0.5 s a rollup at 10M spans when ClickHouse's condition
    cache has not seen the query, against 0.1 s bound), and finds their traces by reading
    the calls again (about 40 ms a rollup at 10M with 2,000 traces waiting). Empty when no
    call needs a walk. An ancestor arriving after this look, outside these times, is walked
    by the next query."""
    from .ledger import BOUND_TRACES

    test, params = unsettled
    lacking = (
        f"SELECT trace_id FROM {spans} AS spans WHERE span_role = 'model_call'"
        " AND (feature IS NULL OR agent_name IS NULL) AND parent_span_id IS NOT NULL"
        f" AND {WINDOW_TEST} AND {test}"
    )
    bound = {**window_params(window), **params}
    traces = [
        row[0]
        for row in client.query(
            f"SELECT DISTINCT trace_id FROM ({lacking}) LIMIT {BOUND_TRACES + 1}", parameters=bound
        ).result_rows
    ]
    if not traces:
        return {}
    out: dict[str, Any] = {}
    if len(traces) <= BOUND_TRACES:
        of = WALK_TRACES
        out["costattr_walk_traces"] = bound["costattr_walk_traces"] = traces
    else:
        of = f"({lacking})"
    lo, hi = client.query(
        f"SELECT min(start_time), max(start_time) FROM {spans} WHERE trace_id IN {of}",
        parameters=bound,
    ).result_rows[0]
    return {**out, "costattr_walk_lo": lo, "costattr_walk_hi": hi}


def _walk_sql(spans: str) -> str:
    """``_settle.sql`` over ``spans``, with the contract's own walk (``_calls.sql``, between
    its walk:steps and walk:end lines): the rule is written once."""
    from .dialect import over_spans

    folder = bundled_dir("queries") / "clickhouse"
    calls = (folder / "_calls.sql").read_text(encoding="utf-8")
    walk = calls[calls.index("    -- walk:steps") : calls.index("    -- walk:end")]
    text = (folder / "_settle.sql").read_text(encoding="utf-8")
    walk = walk.replace("{{walk_ancestors}}", WALK_LACKING)
    return over_spans(text.replace("{{walk}}", walk).replace("{{settled}}", SETTLED_TABLE), spans)


def _count(client: Any, kind: str) -> int:
    sql = f"SELECT uniqExact(trace_id, span_id) FROM {SETTLED_TABLE} WHERE kind = {{k:String}}"
    return int(client.query(sql, parameters={"k": kind}).result_rows[0][0])


def settle(client: Any, target: Target, spans: str, pricing: PriceTable | None = None) -> Settled:
    """Append to the settled table (created if missing) the facts not there yet, for the
    spans relation ``spans`` (`runner.spans_relation`) of ``target``. Raises the server's
    error: callers that must not raise (`Settler`) catch it."""
    from .client import SETTINGS

    client.command(create_settled_sql())
    before = _count(client, "identity")
    columns = ", ".join(name for name, _ in SETTLED_COLUMNS[:6])
    client.command(f"INSERT INTO {SETTLED_TABLE} ({columns}) {_walk_sql(spans)}", settings=SETTINGS)
    identities = _count(client, "identity") - before
    rows = price_rows(fetch_unstamped(client, target.table, spans, {}, settled=SETTLED_TABLE), pricing)
    if rows:
        names = ["trace_id", "span_id", "kind", *(name for name, _ in PRICED_COLUMNS)]
        client.insert(SETTLED_TABLE, [(t, s, "price", *rest) for t, s, *rest in rows], column_names=names)
    calls = 0
    if spans.isidentifier():  # the typed table
        from .typed import keep_view_current

        keep_view_current(client, target)  # after an upgrade, new rows are typed by its rules
        calls = _record_calls(client, spans)
    return Settled(identities, len(rows), calls)


# A call whose answer can no longer change: its identity on the span, or nothing to walk, or
# settled (the rule of needs_walk), and its cost stamped or settled.
_FINAL = f"""((feature IS NOT NULL AND agent_name IS NOT NULL) OR parent_span_id IS NULL
    OR (trace_id, span_id) IN (SELECT trace_id, span_id FROM {SETTLED_TABLE} WHERE kind = 'identity'))
  AND ifNull(cost_status, '') <> 'not_stamped'"""


def _record_calls(client: Any, typed: str, chain: Any = None) -> int:
    """The settled calls' pass (`ledger.record`) over the typed table ``typed``: the calls
    the facts above now settle, written through the contract itself (no walk: a call the
    facts do not settle is written unfinished, and walked by readers). ``chain``: as read
    before (a settle racing another, in the tests), else read now."""
    from ..rollups.custom import custom_query
    from .dialect import translate
    from .ledger import record
    from .prelude import calls_sql
    from .unstamped import priced_params_none

    query = custom_query(
        "settle_calls",
        "-- @about calls to settle\nSELECT * FROM costattr_calls(NULL, NULL, NULL, NULL, NULL)",
    )

    def contract(unsettled: str) -> str:
        return translate(
            query, calls_sql(settled=True, walk=False, call_row=False, unsettled=unsettled), typed
        )

    return record(client, typed, contract, _FINAL, params=priced_params_none(), chain=chain)


def settle_store(target: Target, pricing: PriceTable | None = None) -> Settled:
    """`settle` on ``target``'s spans relation (the typed table when there is one)."""
    from .client import connect
    from .runner import spans_relation

    client = connect(target)
    return settle(client, target, spans_relation(client, target), pricing)


class Settler:
    """`settle_store` every ``interval`` seconds on a thread, for ``serve --db clickhouse://``:
    that server writes only the settled tables (never ``otel_traces``). A failed
    settle is logged and tried again at the next tick; it never reaches a request."""

    def __init__(self, target: Target, interval: float = 60.0) -> None:
        if interval <= 0:
            raise ValueError(f"settle interval: {interval} (seconds, above 0)")
        self.target = target
        self.interval = interval
        self.runs = 0  # settles completed, for tests and logs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start settling (the first one at once: the backlog of a server just started)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="costattr-settle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the settle under way, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = settle_store(self.target)
                self.runs += 1
                if any(done):
                    logger.info(
                        "otel-costattr: settled %d identities, priced %d calls, wrote %d calls", *done
                    )
            except Exception:
                logger.exception("otel-costattr: settling %s failed; tried again", self.target.display())
            self._stop.wait(self.interval)
