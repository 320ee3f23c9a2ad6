"""The rollups on ClickHouse (chDB, the embedded engine) against DuckDB, on the same spans.

    python benchmarks/bench_clickhouse.py --spans 1000000 --repeat 3
    python benchmarks/bench_clickhouse.py --spans 10000000 --dir /tmp/bench --no-map   # the issue's scale

The spans are bench_rollups.py's generated agent traffic (10% of calls from a service
without the processor: no identity, so attribution walks up). They are written to the DuckDB
store, then laid out as the Collector's clickhouse exporter writes ``otel_traces`` (every
attribute a text value in the SpanAttributes Map) and loaded into chDB. Each rollup is timed
three ways, side by side in one process: DuckDB's typed store; ClickHouse reading the Map
columns as the Collector left them (nothing settled); ClickHouse reading the typed table
``otel-costattr clickhouse init`` keeps, settled (``clickhouse settle``). Medians of
``--repeat`` runs (after one warm-up) of wall time and of this process's CPU time (chDB and
DuckDB both run their threads here; on a shared machine CPU time is the steadier figure);
the load average is printed. With ``--dir`` the stores are kept and reused (at 10M spans,
making them takes most of an hour on 2 shared cores); ``--no-map`` skips the Map columns
(tens of seconds per rollup at 10M); ``--json`` prints one line of medians for
``ab_bench.py`` (this code against another commit's, on the same ``--dir``); ``--since`` and
``--limit`` are given to the rollups that take them (a narrow window, a short list); ``--users N``
gives the spans an application's attributes (bench_rollups.py), which per-group and reconcile
read. ``--pending N``: N traces arrive after the settle and stay unsettled, and ``--arrivals``
more before each timed run (what a dashboard reads between two of ``serve``'s settles: the
queries' bound values change at each refresh). Target (issue 16): every rollup on the typed
table within 2x of DuckDB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_rollups import open_db, store_name  # noqa: E402

from otel_costattr.clickhouse.client import connect  # noqa: E402
from otel_costattr.clickhouse.collector import create_table_sql  # noqa: E402
from otel_costattr.clickhouse.settle import settle_store  # noqa: E402
from otel_costattr.clickhouse.target import parse_target  # noqa: E402
from otel_costattr.clickhouse.typed import initialise  # noqa: E402
from otel_costattr.rollups.catalog import query, rollups  # noqa: E402
from otel_costattr.rollups.queries import rollup  # noqa: E402

# The spans table as otel_traces rows: attributes back into a Map of text, missing keys absent.
EXPORT = """
COPY (
    SELECT
        epoch_ns(start_time) AS ts, trace_id AS TraceId, span_id AS SpanId,
        coalesce(parent_span_id, '') AS ParentSpanId, name AS SpanName,
        CASE kind WHEN 'CLIENT' THEN 'Client' WHEN 'SERVER' THEN 'Server' ELSE 'Internal' END AS SpanKind,
        service_name AS ServiceName,
        map_from_entries(list_filter([
            {'k': 'gen_ai.operation.name', 'v': operation},
            {'k': 'gen_ai.provider.name', 'v': provider},
            {'k': 'gen_ai.request.model', 'v': request_model},
            {'k': 'gen_ai.response.model', 'v': response_model},
            {'k': 'gen_ai.usage.input_tokens', 'v': input_tokens::VARCHAR},
            {'k': 'gen_ai.usage.output_tokens', 'v': output_tokens::VARCHAR},
            {'k': 'gen_ai.usage.cache_read.input_tokens', 'v': cache_read_tokens::VARCHAR},
            {'k': 'gen_ai.usage.cost', 'v': cost_usd::VARCHAR},
            {'k': 'costattr.status', 'v': CASE WHEN cost_usd IS NOT NULL THEN cost_status END},
            {'k': 'costattr.pricing_version', 'v': CASE WHEN cost_usd IS NOT NULL THEN pricing_version END},
            {'k': 'costattr.model', 'v': CASE WHEN cost_usd IS NOT NULL THEN priced_model END},
            {'k': 'gen_ai.agent.name', 'v': agent_name},
            {'k': 'gen_ai.agent.version', 'v': agent_version},
            {'k': 'gen_ai.agent.step', 'v': step::VARCHAR},
            {'k': 'gen_ai.tool.name', 'v': tool_name},
            {'k': 'app.feature', 'v': feature},
            -- the rest of the attributes (bench_rollups.py --users): each key once
            {'k': 'user.id', 'v': attributes->>'$."user.id"'},
            {'k': 'app.tenant', 'v': attributes->>'$."app.tenant"'},
            {'k': 'gen_ai.response.id', 'v': attributes->>'$."gen_ai.response.id"'},
            {'k': 'gen_ai.response.finish_reasons', 'v': attributes->>'$."gen_ai.response.finish_reasons"'},
            {'k': 'gen_ai.request.temperature', 'v': attributes->>'$."gen_ai.request.temperature"'},
            {'k': 'gen_ai.request.max_tokens', 'v': attributes->>'$."gen_ai.request.max_tokens"'},
            {'k': 'server.address', 'v': attributes->>'$."server.address"'},
            {'k': 'server.port', 'v': attributes->>'$."server.port"'}
        ], lambda e: e.v IS NOT NULL)) AS SpanAttributes,
        (epoch_ns(end_time) - epoch_ns(start_time))::UBIGINT AS Duration
    FROM spans
) TO '{path}' (FORMAT parquet)
"""
LOAD = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    SpanAttributes, Duration, StatusCode)
SELECT fromUnixTimestamp64Nano(ts), TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    SpanAttributes, Duration, 'Unset'
FROM file('{path}', Parquet)
"""

# --pending: N stored traces again under new trace ids, moved to end at the store's last
# instant (the calls of a dashboard's last hour), through the Collector's table (the typed
# table's view fills it), not settled.
PENDING = """
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    SpanAttributes, Duration, StatusCode)
SELECT fromUnixTimestamp64Nano(toUnixTimestamp64Nano(t.Timestamp) + toUnixTimestamp64Nano(m.last)
        - max(toUnixTimestamp64Nano(t.Timestamp)) OVER (PARTITION BY t.TraceId)),
    lower(hex(substring(MD5(concat(t.TraceId, {salt:String})), 1, 16))), t.SpanId, t.ParentSpanId,
    t.SpanName, t.SpanKind, t.ServiceName, t.SpanAttributes, t.Duration, t.StatusCode
FROM otel_traces AS t, (SELECT max(Timestamp) AS last FROM otel_traces) AS m
WHERE TraceId IN (
    SELECT TraceId FROM otel_traces GROUP BY TraceId ORDER BY cityHash64(TraceId, {salt:String})
    LIMIT {n:UInt64})
"""


def timed(
    name: str, db: object, repeat: int, arrive: Callable[[], None] | None = None, **params: object
) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``repeat`` runs after a warm-up; ``arrive`` (not timed)
    before each."""
    rollup(name, db, **params)  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        if arrive is not None:
            arrive()
        t, c = time.perf_counter(), time.process_time()
        rollup(name, db, **params)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep the generated stores here")
    parser.add_argument("--only", action="append", help="time only this rollup (repeatable)")
    parser.add_argument("--no-map", action="store_true", help="skip ClickHouse over the Map columns")
    parser.add_argument(
        "--since",
        type=dt.datetime.fromisoformat,
        help="a narrow window: from this instant (UTC), where a rollup takes it",
    )
    parser.add_argument("--limit", type=int, help="--limit, where a rollup takes it (runs: 0 is all)")
    parser.add_argument(
        "--users", type=int, default=0, help="application attributes, N users (bench_rollups.py --users)"
    )
    parser.add_argument(
        "--pending",
        type=int,
        default=0,
        help="after the settle, N more traces arrive unsettled (copies of stored ones, ending at the"
        " store's last instant): what a dashboard reads between two settles. They go to the typed"
        " store only, and stay there: use a copy of --dir (DuckDB's store and the Map one differ"
        " from it by them, 0.2%% at 10M with 2,000)",
    )
    parser.add_argument(
        "--arrivals",
        type=int,
        default=20,
        help="with --pending: this many more traces arrive before each timed run (new values for"
        " the queries' bound parameters: ClickHouse's condition cache has not seen them)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one line of medians (ms) for ab_bench.py; implies --no-map"
    )
    args = parser.parse_args(argv)
    args.no_map = args.no_map or args.json
    say = (lambda *a, **k: None) if args.json else print
    say(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        duck = folder / store_name(args.spans, 0.1, args.users)
        con = open_db(duck, args.spans, 0.1, args.users)
        count = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        suffix = f"-u{args.users}" if args.users else ""
        parquet = folder / f"otel_traces-{args.spans}{suffix}.parquet"
        if not parquet.exists():
            con.execute(EXPORT.replace("{path}", str(parquet)))
        con.close()
        chdb = f"chdb://{folder / f'chdb{suffix}'}"
        plain, typed = parse_target(chdb + "?database=plain"), parse_target(chdb + "?database=typed")
        for target in (plain, typed):
            client = connect(target, create=True)  # a read refuses a store it would make
            if not client.query("EXISTS TABLE otel_traces").result_rows[0][0]:
                client.command(create_table_sql())
                t = time.perf_counter()
                client.command(LOAD.replace("{path}", str(parquet)))
                say(f"loaded {count:,} spans into {target.database} in {time.perf_counter() - t:.0f} s")
        client = connect(typed)
        if not client.query("EXISTS TABLE costattr_spans").result_rows[0][0]:
            t = time.perf_counter()
            initialise(client, typed)
            say(f"clickhouse init (typed table, backfill) in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        say(f"clickhouse settle: {settle_store(typed)} in {time.perf_counter() - t:.1f} s")
        arrive = None
        if args.pending:
            t = time.perf_counter()
            client.command(PENDING, parameters={"n": args.pending, "salt": os.urandom(8).hex()})
            say(f"{args.pending:,} traces arrived after the settle in {time.perf_counter() - t:.1f} s")

            def arrive() -> None:  # a few more before each run, as between a dashboard's refreshes
                client.command(PENDING, parameters={"n": args.arrivals, "salt": os.urandom(8).hex()})

        say(f"{count:,} spans; median of {args.repeat} runs, ms (wall / CPU of this process)")
        head = f"{'rollup':<12}{'duckdb':>14}{'ch map':>16}{'ch typed+settled':>18}"
        say(f"{head}{'map/duck':>10}{'typed/duck (wall / CPU)':>24}")
        figures: dict[str, float] = {}
        worst = 0.0
        # trace: the run with the most calls (one run's tree, a few queries each side)
        biggest = {"trace_id": rollup("top_runs", str(duck), limit=1)[0]["trace_id"]}
        for name in args.only or rollups():
            params = dict(biggest) if name == "trace" else {}
            takes = {p.name for p in query(name).params}
            params |= {
                k: v
                for k, v in (("since", args.since), ("limit", args.limit))
                if v is not None and k in takes
            }
            d = timed(name, str(duck), args.repeat, **params)
            m = (
                (math.nan, math.nan)
                if args.no_map
                else timed(name, chdb + "?database=plain", args.repeat, **params)
            )
            ty = timed(name, chdb + "?database=typed", args.repeat, arrive, **params)
            worst = max(worst, ty[0] / d[0])
            figures.update({
                f"{name}_duck_cpu": d[1] * 1000, f"{name}_ch_cpu": ty[1] * 1000,
                f"{name}_duck_wall": d[0] * 1000, f"{name}_ch_wall": ty[0] * 1000,
            })  # fmt: skip
            cells = "".join(
                f"{w * 1000:>{width},.0f} / {c * 1000:,.0f}" for (w, c), width in ((d, 7), (m, 9), (ty, 11))
            )
            say(f"{name:<12}{cells}{m[0] / d[0]:>10.1f}{ty[0] / d[0]:>9.1f} / {ty[1] / d[1]:.1f}")
    say(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    say(f"worst typed+settled/duckdb wall ratio: {worst:.1f}x (target 2x)")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
