"""Time the identity pass after an ingest when some calls can never be settled.

    python benchmarks/bench_identity.py --db D/bench-2000000-100.duckdb --lost 1000 --rounds 5

Works on a copy of a database bench_rollups.py made (``--db``, left untouched). Adds
``--lost`` model calls whose parent was exported elsewhere (never stored: they stay unsettled
for good), runs one pass (which walks them and finds the parent missing), then per round
stores ``--batch`` new spans of other traces (an agent and its call, identity on the agent
only, as a service without the processor sends them) and times the pass two ways, alternated:

- ``fresh only``: the pass as shipped, walking the calls of traces that received spans since
  the last pass (the watermark in ``costattr_identity_pass``);
- ``every unsettled``: the same pass with the watermark put back to -1 first, so that it walks
  every unsettled call, as the pass did before the watermark (the same SQL otherwise).

Each round stores a batch before each way's pass, so both see the same number of new spans:
the figures are median wall and CPU per pass, and the calls walked. The load average is
printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from otel_costattr.store import database as store
from otel_costattr.store import identity

LOST = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ms,
    status_code, service_name, scope_name, span_role, operation, input_tokens, output_tokens, attributes)
SELECT lower(md5('lost' || i)), substr(md5('lost-call' || i), 1, 16), substr(md5('elsewhere' || i), 1, 16),
       'chat gpt-4o', 'CLIENT', TIMESTAMP '2026-10-15', TIMESTAMP '2026-10-15', 0, 'UNSET', 'gateway',
       'bench', 'model_call', 'chat', 10, 1, '{}'
FROM range($n) AS t(i)
"""
BATCH = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ms,
    status_code, service_name, scope_name, span_role, operation, agent_name, feature, input_tokens,
    output_tokens, attributes)
SELECT lower(md5($tag || i // 2)), substr(md5($tag || i), 1, 16),
       CASE WHEN i % 2 = 1 THEN substr(md5($tag || (i - 1)), 1, 16) END,
       'span', 'INTERNAL', TIMESTAMP '2026-10-20', TIMESTAMP '2026-10-20', 0, 'UNSET', 'svc', 'bench',
       CASE WHEN i % 2 = 0 THEN 'agent' ELSE 'model_call' END, 'chat',
       CASE WHEN i % 2 = 0 THEN 'a' END, CASE WHEN i % 2 = 0 THEN 'f' END, 10, 1, '{}'
FROM range($n) AS t(i)
"""


def timed_pass(con, every: bool) -> tuple[float, float, int]:
    if every:
        con.execute("UPDATE costattr_identity_pass SET watermark = -1")
    t, c = time.perf_counter(), time.process_time()
    done = identity.run_pass(con)
    return time.perf_counter() - t, time.process_time() - c, done.walked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a database bench_rollups.py made")
    parser.add_argument("--lost", type=int, default=1000, help="calls whose parent is never stored")
    parser.add_argument("--batch", type=int, default=2048, help="spans stored before each pass")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.duckdb"
        shutil.copyfile(args.db, path)
        con = store.connect(path)
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute(LOST, {"n": args.lost})
            first = identity.run_pass(con)
            print(f"first pass: walked {first.walked:,}, settled {first.settled:,}")
            runs: dict[str, list[tuple[float, float, int]]] = {"fresh only": [], "every unsettled": []}
            for r in range(args.rounds):
                for way, every in (("fresh only", False), ("every unsettled", True)):
                    con.execute(BATCH, {"n": args.batch, "tag": f"{way}{r}"})
                    runs[way].append(timed_pass(con, every))
        finally:
            con.close()
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"per pass after {args.batch:,} new spans, {args.lost:,} calls never settled; median of {args.rounds}"
    )
    for way, rows in runs.items():
        wall = statistics.median(w for w, _, _ in rows) * 1e3
        cpu = statistics.median(c for _, c, _ in rows) * 1e3
        walked = statistics.median(n for _, _, n in rows)
        print(f"{way:<16} wall {wall:8.1f} ms  cpu {cpu:8.1f} ms  calls walked {walked:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
