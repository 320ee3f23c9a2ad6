"""Repricing on ClickHouse (chDB) against DuckDB, on the same spans: ``--reprice`` and ``whatif``.

    python benchmarks/bench_clickhouse_reprice.py --spans 1000000 --repeat 3 --dir /tmp/bench

The spans and their ``otel_traces`` layout are bench_clickhouse.py's (bench_rollups.py's
generated traffic, 10% of calls from a service without the processor). On ClickHouse the
calls of the window are selected there and repriced by the DuckDB SQL in memory
(`otel_costattr.clickhouse.local`): the table shows each question on DuckDB's store, on
ClickHouse, and how much of the ClickHouse time is the selection (the calls crossing into
DuckDB). Medians of ``--repeat`` runs after a warm-up, wall and CPU seconds of this process
(chDB runs in it); the load average before and after (a shared machine stretches every
figure, the ratios less).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_clickhouse import EXPORT, LOAD  # noqa: E402
from bench_rollups import open_db  # noqa: E402

from otel_costattr.clickhouse.client import connect  # noqa: E402
from otel_costattr.clickhouse.collector import create_table_sql  # noqa: E402
from otel_costattr.clickhouse.local import local_calls  # noqa: E402
from otel_costattr.clickhouse.target import parse_target  # noqa: E402
from otel_costattr.pricing.table import default_pricing  # noqa: E402
from otel_costattr.rollups.queries import rollup  # noqa: E402
from otel_costattr.rollups.whatif import whatif  # noqa: E402


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``fn`` over ``repeat`` runs, after one warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _pull(url: str) -> int:
    with local_calls(parse_target(url), {}) as con:
        row = con.execute("SELECT count(*) FROM costattr_window_calls").fetchone()
        return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep the generated stores here")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench-{args.spans}-100.duckdb"
        con = open_db(path, args.spans, 0.1)
        duck = str(path)
        count = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        parquet = folder / f"otel_traces-{args.spans}.parquet"
        if not parquet.exists():
            con.execute(EXPORT.replace("{path}", str(parquet)))
        con.close()
        url = f"chdb://{folder / 'chdb'}?database=plain"
        client = connect(parse_target(url), create=True)  # a read refuses a store it would make
        if not client.query("EXISTS TABLE otel_traces").result_rows[0][0]:
            client.command(create_table_sql())
            client.command(LOAD.replace("{path}", str(parquet)))
        table = default_pricing()
        questions: list[tuple[str, Callable[[str], Any]]] = [
            ("per-feature", lambda db: rollup("per_feature", db)),
            ("per-feature --reprice", lambda db: rollup("per_feature", db, reprice=table)),
            ("per-run --reprice", lambda db: rollup("per_run", db, reprice=table, limit=20)),
            ("whatif gpt-4o-mini", lambda db: whatif(db, "gpt-4o-mini", reprice=table)),
        ]
        print(f"{count:,} spans, {_pull(url):,} calls; median of {args.repeat} runs, seconds")
        heads = ("duck wall", "duck cpu", "ch wall", "ch cpu")
        print(f"{'question':<24}" + "".join(f"{h:>10}" for h in heads) + f"{'ch/duck cpu':>12}")
        for name, ask in questions:
            d = timed(lambda ask=ask: ask(duck), args.repeat)
            c = timed(lambda ask=ask: ask(url), args.repeat)
            print(f"{name:<24}{d[0]:>10.2f}{d[1]:>10.2f}{c[0]:>10.2f}{c[1]:>10.2f}{c[1] / d[1]:>12.1f}")
        pull = timed(lambda: _pull(url), args.repeat)
        print(f"{'(the calls selected)':<24}{'':>20}{pull[0]:>10.2f}{pull[1]:>10.2f}")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
