"""Time the identity pass and the rollup facts' upkeep per ingest while calls wait for parents.

    python benchmarks/bench_upkeep_pending.py --db D/bench-10000000-100.duckdb --batches 6
    PYTHONPATH=OLD/src python benchmarks/bench_upkeep_pending.py --db ...   # another tree

Works on a copy of ``--db`` (left untouched; a database bench_rollups.py made). Each batch
stores 682 model calls from a service without the processor (no feature, no agent), each in
a trace of its own, and the two parents (a SERVER span without identity, under an agent span
with both) of the previous batch's calls: 2,046 spans, about an exporter batch. So every
ingest walks new calls, leaves them pending (their parents are not stored yet) and settles
the previous ones, and the upkeep copies the spans of the runs that became pending
(queries/_facts_spans.sql). Per batch: the pass (`identity.run_pass`) and the upkeep
(`aggregates.maintain`) as ingest runs them after each insert, wall and CPU ms; then the
medians of all batches but the first (the store's first upkeep catches up). Alternate two
trees in fresh processes with PYTHONPATH to compare them; the load average is printed.
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

from otel_costattr.store import aggregates, identity
from otel_costattr.store import database as store

CALLS = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ms,
    status_code, service_name, scope_name, span_role, operation, input_tokens, output_tokens, attributes)
SELECT lower(md5('orphan' || $b || '-' || i)), substr(md5('call' || $b || '-' || i), 1, 16),
       substr(md5('server' || $b || '-' || i), 1, 16), 'chat', 'CLIENT', TIMESTAMP '2026-10-20',
       TIMESTAMP '2026-10-20', 0, 'UNSET', 'sidecar', 'bench', 'model_call', 'chat', 10, 1, '{}'
FROM range($n) AS t(i)
"""
PARENTS = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ms,
    status_code, service_name, scope_name, span_role, operation, agent_name, feature, attributes)
SELECT lower(md5('orphan' || $b || '-' || i)),
       substr(md5(CASE WHEN k = 0 THEN 'server' ELSE 'agent' END || $b || '-' || i), 1, 16),
       CASE WHEN k = 0 THEN substr(md5('agent' || $b || '-' || i), 1, 16) END,
       'span', CASE WHEN k = 0 THEN 'SERVER' ELSE 'INTERNAL' END, TIMESTAMP '2026-10-20',
       TIMESTAMP '2026-10-20', 0, 'UNSET', 'svc', 'bench', CASE WHEN k = 0 THEN 'other' ELSE 'agent' END,
       'chat', CASE WHEN k = 1 THEN 'a' END, CASE WHEN k = 1 THEN 'f' END, '{}'
FROM range($n) AS t(i), range(2) AS s(k)
"""
CALLS_PER_BATCH = 682  # + 2 x 682 parents = 2,046 spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a database bench_rollups.py made")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--tmp", type=Path, default=None, help="where the copy goes")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "spans.duckdb"
        shutil.copyfile(args.db, path)
        con = store.connect(path)
        try:
            rows = []
            for b in range(args.batches):
                con.execute(CALLS, {"b": b, "n": CALLS_PER_BATCH})
                if b:
                    con.execute(PARENTS, {"b": b - 1, "n": CALLS_PER_BATCH})
                t, c = time.perf_counter(), time.process_time()
                identity.run_pass(con)
                t1, c1 = time.perf_counter(), time.process_time()
                assert aggregates.maintain(con)
                t2, c2 = time.perf_counter(), time.process_time()
                rows.append([(t1 - t) * 1e3, (c1 - c) * 1e3, (t2 - t1) * 1e3, (c2 - c1) * 1e3])
                pending = aggregates.pending_traces(con)
                print(
                    f"batch {b}: pass {rows[-1][0]:.0f} / {rows[-1][1]:.0f}, upkeep {rows[-1][2]:.0f}"
                    f" / {rows[-1][3]:.0f} ms wall / cpu; {pending:,} traces pending"
                )
        finally:
            con.close()
    if len(rows) > 1:
        med = [statistics.median(r[k] for r in rows[1:]) for k in range(4)]
        print(
            f"median of batches 1-{len(rows) - 1}: pass {med[0]:.0f} / {med[1]:.0f},"
            f" upkeep {med[2]:.0f} / {med[3]:.0f} ms wall / cpu"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
