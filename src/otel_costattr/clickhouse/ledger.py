"""Settled calls: each final call written once, complete, so that rollups read it without a join.

The call contract over the typed table deduplicates (``LIMIT 1 BY``), joins the settled facts
and plans a walk on every query: four to ten times DuckDB's time. `settle.settle` therefore
also writes each call whose answer can no longer change into ``costattr_calls_settled_v2``, as
the contract gives it (identity, price, one row per call), and the contract reads those rows
as stored, UNION ALL only the typed rows no settle has covered, which it walks and prices at
read time as before. A rollup right after a settle reads one typed table, like DuckDB's.

What a settle covered is a watermark on the typed table's block numbers (MergeTree numbers
each insert's part in commit order, and ``enable_block_number_column`` keeps each row's
number through merges): a settle reads the highest number W, and covers every call at or
below W that was not covered before. A call it cannot finish (its identity still needs a
parent not stored yet) is written with ``final = 0``: readers take it from the typed table and
walk it, and the next settle tries again.

Settles may race each other and the Collector without a lock or a transaction:

- each settle first appends a ``begin`` mark to ``costattr_settle_marks``; its sequence number
  (``seq``) is that mark's block number, so a settle begun later has a higher one;
- it writes its rows tagged with ``seq``, then a ``done`` mark naming the settle it extends
  (``after``) and its watermark;
- readers follow the chain of done marks from the start, taking among settles that extend
  the same one the first done (the lowest block number of its done mark: a reader that saw
  one of them done can never see another done before it), and read the rows of the chain's
  settles only (`Chain.test`): those of a settle that lost a race, crashed or is still
  running are left out, and the typed rows above the chain's watermark stand in for them.

A span the Collector writes again after its call was settled (an exporter retry) is a typed
row above the watermark whose call is already in the chain: it is left out (`UNSETTLED`).

The settled calls also keep the attributes rollups read by key most as columns
(`prelude.ATTRIBUTE_COLUMNS`), ``MATERIALIZED`` from ``attributes``: written at insert, and
equal to the Map's value by construction.

The table is partitioned by the call's day, as ``otel_traces`` and the typed table are, and
ordered by call within a day: a window reads its days' parts only (the rollups the report
and the dashboard run read 7 days), and a call is still found by key (`UNSETTLED`'s look
for a span written again, found by key across every day, since a copy may carry another
Timestamp). The table is a plain MergeTree, appended to: nothing is folded across parts. Its
first layout (``costattr_calls_settled``:
one partition, ordered by call, every granule holding every day) cannot be changed in
place: the first settle of this version copies it (`install`: into a table of its own,
merged, then renamed, the one step readers see; racing settles each copy, one rename wins)
and drops it. Until then readers take the contract's path without settled calls. Settles
and servers of older versions are to be stopped before the upgrade: one that runs after it
makes the first layout's table again and settles calls into it; the next settle of this
version copies over those of its rows no settle of this version wrote before dropping it,
so until then readers miss them.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..rollups.contract import CALL_COLUMNS
from ..rollups.errors import first_line

__all__ = [
    "ABOVE_WATERMARK", "CALLS_TABLE", "Chain", "LEGACY_CALLS_TABLE", "MARKS_TABLE", "UNSETTLED", "WATERMARK",
    "create_sql", "install", "keep_ttl", "ledger_exists", "ledger_params", "read_chain", "record",
    "settled_calls_sql", "unsettled",
]  # fmt: skip

CALLS_TABLE = "costattr_calls_settled_v2"
# The first layout (ordered by call, one partition): copied into CALLS_TABLE, then dropped.
LEGACY_CALLS_TABLE = "costattr_calls_settled"
# Where `install` builds CALLS_TABLE before renaming it (a name per settle: racing ones copy apart).
_COPY_PREFIX = f"{CALLS_TABLE}_copy_"
# One partition per day of the call; by call within a day (see the module's docstring).
LAYOUT = "PARTITION BY toDate(start_time) ORDER BY (trace_id, span_id)"
# A settle's calls fall on any number of days (the first settle's: every day stored), and an
# INSERT refuses a block over more than 100 partitions by default.
INSERT_SETTINGS = {"max_partitions_per_insert_block": 0}
MARKS_TABLE = "costattr_settle_marks"
# The contract's columns, as the settled table stores them (the ClickHouse contract adds
# usd_repriced and call_row, which belong to the read, and the attribute columns, which the
# table derives: `install`).
COLUMNS = CALL_COLUMNS
# What a settled row stores besides the derived attribute columns (what a copy carries over).
_STORED = ", ".join((*COLUMNS, "seq", "final"))

# The bound parameters of the tests below: the chain's last settle, the settles to leave out,
# and the block range of typed rows read as not settled (`ledger_params`).
_SEQ = "{costattr_ledger_seq:UInt64}"
_ORPHANS = "{costattr_ledger_orphans:Array(UInt64)}"
_AFTER = "{costattr_ledger_after:UInt64}"
_UPTO = "{costattr_ledger_upto:UInt64}"
# A settled row that counts: final, and written by a settle of the chain.
IN_CHAIN = f"final AND seq <= {_SEQ} AND NOT has({_ORPHANS}, seq)"
# The typed rows a reader (or the next settle) must take itself, as a test on the contract's
# calls (the typed table is "spans" there): those above the watermark, and the calls the
# chain's last settle could not finish; never a call the chain holds (a span written again).
# The look for it reads every day of the settled calls: a span written again may carry
# another Timestamp (an exporter's retry after midnight), so its day is no key (restricted
# to the days of the rows above the watermark, such a call counted twice, for good).
_ABOVE = f"_block_number > {_AFTER} AND _block_number <= {_UPTO}"
# The chain's watermark (`ledger_params`), and a typed row the chain's last settle did not
# see: inserted since, found by its block number.
WATERMARK = _AFTER
ABOVE_WATERMARK = f"_block_number > {WATERMARK}"
_ABOVE_CALLS = f"FROM {{typed}} WHERE span_role = 'model_call' AND {_ABOVE}"
UNSETTLED = f"""(({_ABOVE})
            OR (trace_id, span_id) IN (
                SELECT trace_id, span_id FROM {CALLS_TABLE} WHERE seq = {_SEQ} AND NOT final))
          AND (trace_id, span_id) NOT IN (
              SELECT trace_id, span_id FROM {CALLS_TABLE}
              WHERE {IN_CHAIN} AND (trace_id, span_id) IN (SELECT trace_id, span_id {_ABOVE_CALLS}))"""
logger = logging.getLogger(__name__)
_NO_LIMIT = 2**64 - 1
# Each row keeps the number of the block that inserted it, through merges.
BLOCK_NUMBERS = "enable_block_number_column = 1"


def number_blocks(client: Any, typed: str) -> None:
    """Make the typed table ``typed`` keep block numbers (`init` makes it without, so that it
    works on any server): from then on rows keep theirs; rows stored before read as their
    part's first number, never above a later insert's, which is all the watermark needs."""
    create = client.query(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = currentDatabase() AND name = {n:String}",
        parameters={"n": typed},
    ).result_rows
    if create and "enable_block_number_column" not in create[0][0]:
        client.command(f"ALTER TABLE {typed} MODIFY SETTING {BLOCK_NUMBERS}")


@dataclass(frozen=True)
class Chain:
    """The settles readers count: the last one's ``seq`` and ``watermark``, the settles begun
    before it that are not in the chain (``orphans``), and whether it left calls unfinished."""

    seq: int = 0
    watermark: int = 0
    orphans: tuple[int, ...] = ()
    pending: bool = False
    members: tuple[int, ...] = field(default=(), repr=False)


# The marks table (idempotent).
MARKS_SQL = (
    f"CREATE TABLE IF NOT EXISTS {MARKS_TABLE} (token String, done Bool, seq UInt64, after UInt64,"
    " watermark UInt64, pending Bool, at DateTime64(6, 'UTC') DEFAULT now64(6))"
    f" ENGINE = MergeTree ORDER BY tuple() SETTINGS {BLOCK_NUMBERS}"
)


def create_sql(name: str, contract: str) -> str:
    """The statement that makes a settled-calls table ``name`` with the columns of the call
    contract ``contract`` (SQL, its parameters bound by the caller): `install` makes
    CALLS_TABLE so, under a name of its own first."""
    return (
        f"CREATE TABLE {name} ENGINE = MergeTree {LAYOUT}"
        f" EMPTY AS SELECT {', '.join(COLUMNS)}, toUInt64(0) AS seq, true AS final FROM ({contract})"
    )


def read_chain(client: Any) -> Chain:
    """The chain of done settles, from the marks (an empty `Chain` when none)."""
    rows = client.query(
        f"SELECT done, seq, after, watermark, pending, _block_number FROM {MARKS_TABLE}"
    ).result_rows
    begun = sorted(block for done, *_, block in rows if not done)
    done = {}  # settle extended -> the first settle done extending it
    for is_done, seq, after, watermark, pending, block in rows:
        if is_done and (after not in done or block < done[after][0]):
            done[after] = (block, seq, watermark, pending)
    chain, members = Chain(), []
    while chain.seq in done:
        _, seq, watermark, pending = done[chain.seq]
        members.append(seq)
        chain = Chain(seq, watermark, pending=bool(pending))
    kept = set(members)
    orphans = tuple(s for s in begun if s <= chain.seq and s not in kept)
    return Chain(chain.seq, chain.watermark, orphans, chain.pending, tuple(members))


def ledger_params(chain: Chain, upto: int = _NO_LIMIT) -> dict[str, Any]:
    """The bound parameters of `IN_CHAIN` and `UNSETTLED` for ``chain`` (typed rows up to
    block ``upto`` read as not settled: all of them for a reader)."""
    return {
        "costattr_ledger_seq": chain.seq,
        "costattr_ledger_orphans": list(chain.orphans),
        "costattr_ledger_after": chain.watermark,
        "costattr_ledger_upto": upto,
    }


def ledger_exists(client: Any, target: Any) -> bool:
    """Whether ``target``'s database holds the settled calls (a settle of this version ran on
    the typed table; a store of the first layout only is read as if never settled: `install`)."""
    from .client import has_table

    return has_table(client, target.database, CALLS_TABLE)


# The largest sets a reader binds (`unsettled`, `settle.walk_bounds`, `unstamped`): a bound
# parameter travels as one HTTP field, and a ClickHouse server refuses a field over 128 KiB
# (http_max_field_value_size): a trace id is 36 bytes there, a (trace id, span id) key 58.
# Past these, the reader takes a subquery instead (slower: it prunes nothing by key), or for
# the keys of calls written again, `UNSETTLED`.
BOUND_TRACES = 2_500
BOUND_KEYS = 1_500
_TYPED_CALL = "span_role = 'model_call'"
# The reader's test (`unsettled`): the typed rows above the watermark, within their times
# (a partition is read only when it holds some) and up to the highest block seen, less the
# calls the chain holds already (a span written again: bound keys); and the calls the
# chain's last settle left unfinished, within their typed rows' times when few.
_ABOVE_BOUND = (
    "(start_time >= {costattr_ledger_lo:DateTime64(6, 'UTC')}"
    " AND start_time <= {costattr_ledger_hi:DateTime64(6, 'UTC')} AND " + _ABOVE + "{rewritten})"
)
_REWRITTEN = " AND (trace_id, span_id) NOT IN {costattr_ledger_rewritten:Array(Tuple(String, String))}"
_UNFINISHED = (
    f"(trace_id, span_id) IN (SELECT trace_id, span_id FROM {CALLS_TABLE} WHERE seq = {_SEQ} AND NOT final)"
)
_PENDING_TIMES = (
    "start_time >= {costattr_ledger_plo:Nullable(DateTime64(6, 'UTC'))}"
    " AND start_time <= {costattr_ledger_phi:Nullable(DateTime64(6, 'UTC'))}"
)


def unsettled(client: Any, typed: str, chain: Chain) -> tuple[str, dict[str, Any]]:
    """What a reader takes from the typed table ``typed`` as calls: a test on its rows and
    the test's parameters, or ``false`` when no call is left there (none above the
    watermark, none unfinished): the contract then reads the settled calls alone.

    The test selects what `UNSETTLED` does, but the costly part is found here, once, and
    bound: a rollup inlines the test at every read of the contract's calls (six to eight
    times), and `UNSETTLED`'s look for a span written again scans every settled call's key
    (4.4 s a rollup at 10M spans with 2,000 traces not settled, against 0.4 s for DuckDB).
    Bound, the typed rows above the watermark are read from the days they fall on, the
    calls written again are keys (found by their traces as a constant set, which prunes by
    the settled calls' key: 17 ms at 10M; 215 ms as a subquery), and the unfinished calls
    are read within their typed rows' times. With more than `BOUND_KEYS` calls written
    again (a whole backlog exported twice), `UNSETTLED`. Rows arriving after this look are
    left to the next query (the block bound), as a settle leaves them to the next settle."""
    params = ledger_params(chain)
    stats = client.query(
        f"SELECT count(), min(start_time), max(start_time), max(_block_number),"
        f" groupUniqArray({BOUND_TRACES + 1})(trace_id)"
        f" FROM {typed} WHERE {_TYPED_CALL} AND _block_number > {_AFTER}",
        parameters=params,
    ).result_rows[0]
    above, lo, hi, upto, traces = stats
    if not above and not chain.pending:
        return "false", params
    branches = []
    if above:
        params |= {"costattr_ledger_lo": lo, "costattr_ledger_hi": hi, "costattr_ledger_upto": int(upto)}
        bounded = _ABOVE_BOUND.replace("{rewritten}", "")
        if len(traces) <= BOUND_TRACES:
            of_traces, extra = "{costattr_ledger_traces:Array(String)}", {"costattr_ledger_traces": traces}
        else:
            of_traces, extra = f"(SELECT trace_id FROM {typed} WHERE {_TYPED_CALL} AND {bounded})", {}
        # The calls above the watermark the chain holds already: a span written again. The
        # traces first (PREWHERE): the chain's test on every settled call's seq cost a third.
        rewritten = client.query(
            f"SELECT DISTINCT trace_id, span_id FROM {typed} WHERE {_TYPED_CALL} AND {bounded}"
            f" AND (trace_id, span_id) IN (SELECT trace_id, span_id FROM {CALLS_TABLE}"
            f" PREWHERE trace_id IN {of_traces} WHERE {IN_CHAIN}) LIMIT {BOUND_KEYS + 1}",
            parameters={**params, **extra},
        ).result_rows
        if len(rewritten) > BOUND_KEYS:
            return UNSETTLED.replace("{typed}", typed), ledger_params(chain)
        if rewritten:
            params["costattr_ledger_rewritten"] = [tuple(key) for key in rewritten]
        branches.append(_ABOVE_BOUND.replace("{rewritten}", _REWRITTEN if rewritten else ""))
    if chain.pending:
        unfinished = client.query(
            f"SELECT trace_id, span_id FROM {CALLS_TABLE} WHERE seq = {_SEQ} AND NOT final"
            f" LIMIT {BOUND_KEYS + 1}",
            parameters=params,
        ).result_rows
        if not above:  # rows arriving after this look wait for the next query, here too
            params["costattr_ledger_upto"] = chain.watermark
        if len(unfinished) > BOUND_KEYS:  # read from every day
            branches.append(f"(_block_number <= {_UPTO} AND {_UNFINISHED})")
        elif unfinished:
            # Their typed rows' times (a copy may carry another than the settled row's); the
            # keys bound prune by the typed table's key.
            plo, phi = client.query(
                f"SELECT min(start_time), max(start_time) FROM {typed} WHERE {_TYPED_CALL}"
                " AND (trace_id, span_id) IN {k:Array(Tuple(String, String))}",
                parameters={"k": [tuple(key) for key in unfinished]},
            ).result_rows[0]
            params |= {"costattr_ledger_plo": plo, "costattr_ledger_phi": phi}
            branches.append(f"({_PENDING_TIMES} AND _block_number <= {_UPTO} AND {_UNFINISHED})")
    if not branches:
        return "false", params
    return "(" + " OR ".join(branches) + ")", params


def settled_calls_sql() -> str:
    """The settled calls a reader counts, with the contract's columns (the call window and
    the chain's test left to the contract's text, ``_calls.sql``) and the attribute columns."""
    from .prelude import ATTRIBUTE_COLUMNS

    attributes = ", ".join(ATTRIBUTE_COLUMNS.values())
    return f"SELECT {', '.join(COLUMNS)}, {attributes} FROM {CALLS_TABLE} WHERE {IN_CHAIN}"


def install(client: Any, contract: str, params: dict[str, Any]) -> bool:
    """Make CALLS_TABLE when it is missing, with the columns of ``contract`` (`create_sql`,
    ``params`` bound): under a name of this settle's, given the attribute columns,
    filled with the first layout's rows when a store has them, merged to a part per day, then
    renamed CALLS_TABLE, the one step readers see. Returns whether this call installed it.

    Safe if cut short (the copy is left behind, and dropped by the next settle that finds
    CALLS_TABLE installed) and beside another settle (each copies; a rename fails when the
    name is taken, and the loser drops its copy). A settle of this version writes its calls
    only after this, so none writes to the first layout while it is copied; a settle of an
    older version running meanwhile would (stop them before upgrading)."""
    from .client import SETTINGS
    from .prelude import ATTRIBUTE_COLUMNS, attribute_value

    installed = False
    if not _has(client, CALLS_TABLE):
        copy = _COPY_PREFIX + uuid.uuid4().hex
        try:
            client.command(create_sql(copy, contract), parameters=params, settings=SETTINGS)
            adds = ", ".join(
                f"ADD COLUMN {column} Nullable(String) MATERIALIZED {attribute_value(key)}"
                for key, column in ATTRIBUTE_COLUMNS.items()
            )
            client.command(f"ALTER TABLE {copy} {adds}")
            if _has(client, LEGACY_CALLS_TABLE):
                # The attribute columns are not copied: written at insert from attributes.
                client.command(
                    f"INSERT INTO {copy} ({_STORED}) SELECT {_STORED} FROM {LEGACY_CALLS_TABLE}",
                    settings=INSERT_SETTINGS,
                )
                # Each block of the copy falls on every day: a part per block and day (268 at
                # 10M spans) read 3x slower than one per day until merged.
                client.command(f"OPTIMIZE TABLE {copy} FINAL")
            client.command(f"RENAME TABLE {copy} TO {CALLS_TABLE}")
            installed = True
        except Exception:
            # This copy is of no use now (its rename failed, or it is half made): dropped,
            # else a migration failing again (a timeout on a large table) left a full copy
            # behind at every try, one a minute under `serve`.
            client.command(f"DROP TABLE IF EXISTS {copy}")
            # Another settle installed it first (its rename taken, or this copy dropped).
            if not _has(client, CALLS_TABLE):
                raise
    _drop_leftovers(client)
    return installed


def keep_ttl(client: Any, typed: str) -> None:
    """Give CALLS_TABLE the TTL of the typed table ``typed`` (``clickhouse init --ttl-days``),
    or none when it has none: a settled call then expires with its typed row, so a rollup does
    not count calls whose spans are gone, and what the user chose not to keep longer (the
    calls' attributes, user ids among them) is not kept here either. Compared at every settle
    (one query). A TTL the settled calls cannot take whole (a user's clause over a column
    they lack, or to a volume) is logged once a process (`serve` settles every minute), and
    they get its plain deletes alone (never expiring a call before its spans), or none."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
        " AND name IN ({typed:String}, {calls:String})",
        parameters={"typed": typed, "calls": CALLS_TABLE},
    ).result_rows
    ttl = {name: _ttl(engine) for name, engine in rows}
    if CALLS_TABLE not in ttl or typed not in ttl:
        return
    want = ttl[typed]
    if want == ttl[CALLS_TABLE]:
        return
    refused = _set_ttl(client, want)
    if refused is None:
        return
    _once(want, "%s cannot take the TTL of %s (%s), only its plain deletes: %s", typed, want, refused)
    plain = ", ".join(c for c in _clauses(want) if _PLAIN_DELETE.fullmatch(c))
    if plain != ttl[CALLS_TABLE] and (refused := _set_ttl(client, plain)) is not None:
        _once(plain, "%s keeps its TTL (%s): %s", ttl[CALLS_TABLE] or "none", refused)


def _set_ttl(client: Any, ttl: str) -> str | None:
    """Give CALLS_TABLE ``ttl`` (none when empty); None when done, else why not."""
    try:
        client.command(f"ALTER TABLE {CALLS_TABLE} " + (f"MODIFY TTL {ttl}" if ttl else "REMOVE TTL"))
    except Exception as e:
        return first_line(e)
    return None


def _once(key: str, message: str, *args: Any) -> None:
    """Log ``message`` about CALLS_TABLE once a process for ``key``."""
    if key not in _TTL_REFUSED:
        _TTL_REFUSED.add(key)
        logger.warning("otel-costattr: " + message, CALLS_TABLE, *args)


_TTL_REFUSED: set[str] = set()  # TTLs `keep_ttl` could not give, logged once each
# A TTL clause that deletes by time alone: an expression, DELETE at most, no WHERE, TO, SET...
_PLAIN_DELETE = re.compile(r"(?:(?!\b(?:WHERE|TO|RECOMPRESS|GROUP|SET)\b).)+?(?: DELETE)?", re.S)


def _clauses(ttl: str) -> list[str]:
    """The comma-separated clauses of a TTL, split outside parentheses and quotes."""
    out, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(ttl):
        if quote:
            quote = "" if ch == quote and ttl[i - 1] != "\\" else quote
        elif ch in "'`\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(ttl[start:i].strip())
            start = i + 1
    out.append(ttl[start:].strip())
    return [c for c in out if c]


def _ttl(engine: str) -> str:
    """The TTL clause of a table's ``engine_full`` (system.tables), or '' when it has none:
    up to the last SETTINGS (ClickHouse prints them last, and a TTL's literal may say it)."""
    if " TTL " not in engine:
        return ""
    return engine.split(" TTL ", 1)[1].rsplit(" SETTINGS ", 1)[0].strip()


def _has(client: Any, name: str) -> bool:
    return bool(
        client.query(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
            parameters={"n": name},
        ).result_rows[0][0]
    )


def _drop_leftovers(client: Any) -> None:
    """Once CALLS_TABLE is installed: the first layout, and copies of `install` cut short or
    beaten to the rename (one racing still would fail, and be tried again)."""
    left = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()"
        " AND (name = {legacy:String} OR startsWith(name, {prefix:String}))",
        parameters={"legacy": LEGACY_CALLS_TABLE, "prefix": _COPY_PREFIX},
    ).result_rows
    for (name,) in left:
        if name == LEGACY_CALLS_TABLE:
            # Calls an older version settled into it since the copy (see the module's doc).
            client.command(
                f"INSERT INTO {CALLS_TABLE} ({_STORED}) SELECT {_STORED} FROM {name}"
                f" WHERE seq NOT IN (SELECT DISTINCT seq FROM {CALLS_TABLE})",
                settings=INSERT_SETTINGS,
            )
        client.command(f"DROP TABLE IF EXISTS {name}")


def record(
    client: Any,
    typed: str,
    contract: Callable[[str], str],
    final: str,
    params: dict[str, Any],
    chain: Chain | None = None,
) -> int:
    """One settle's pass over the settled calls: the typed table's calls not covered by
    ``chain`` (default: the chain as the marks say now) up to its highest block number,
    written through ``contract`` (the call contract whose calls pass a test, `UNSETTLED`, with
    ``params`` bound), ``final``
    the SQL test of a call whose answer can no longer change. Returns the calls written (0,
    and no marks, when nothing arrived since the chain's last settle and none is pending)."""
    from .client import SETTINGS

    try:
        number_blocks(client, typed)
    except Exception as e:  # a server older than block numbers: the contract as before
        logger.warning(
            "otel-costattr: %s keeps no block numbers (%s): no settled calls", typed, first_line(e)
        )
        return 0
    client.command(MARKS_SQL)
    install(client, contract("true"), params)
    keep_ttl(client, typed)
    chain = read_chain(client) if chain is None else chain
    upto = int(client.query(f"SELECT max(_block_number) FROM {typed}").result_rows[0][0] or 0)
    # Nothing new: a call left unfinished can only finish when a span arrives.
    if upto <= chain.watermark:
        return 0
    token = uuid.uuid4().hex
    client.command(
        f"INSERT INTO {MARKS_TABLE} (token, done, seq, after, watermark, pending)"
        " VALUES ({t:String}, 0, 0, 0, 0, 0)",
        parameters={"t": token},
    )
    seq = int(
        client.query(
            f"SELECT _block_number FROM {MARKS_TABLE} WHERE token = {{t:String}}", parameters={"t": token}
        ).result_rows[0][0]
    )
    params = {**params, **ledger_params(chain, upto), "costattr_ledger_new_seq": seq}
    client.command(
        f"INSERT INTO {CALLS_TABLE} ({', '.join(COLUMNS)}, seq, final)"
        f" SELECT {', '.join(COLUMNS)}, {{costattr_ledger_new_seq:UInt64}}, {final}"
        f" FROM ({contract(UNSETTLED.replace('{typed}', typed))})",
        parameters=params,
        settings={**SETTINGS, **INSERT_SETTINGS},
    )
    written, pending = client.query(
        f"SELECT count(), countIf(NOT final) FROM {CALLS_TABLE} WHERE seq = {{s:UInt64}}",
        parameters={"s": seq},
    ).result_rows[0]
    client.command(
        f"INSERT INTO {MARKS_TABLE} (token, done, seq, after, watermark, pending)"
        " VALUES ({t:String}, 1, {s:UInt64}, {a:UInt64}, {w:UInt64}, {p:Bool})",
        parameters={"t": token, "s": seq, "a": chain.seq, "w": upto, "p": bool(pending)},
    )
    return int(written)
