"""Prototype, not the product: what the exporting thread would pay if it spooled raw columns
and DuckDB did the typed extraction at ingest (issue 12's "bigger direction").

    python benchmarks/proto_raw_columns.py [--spans 32768] [--batch 2048] [--rounds 5]

Both designs run in this one process on the same records (``bench_exporter.py``'s agent
runs), alternating round by round; figures are thread CPU µs a span, medians:

- now: ``SpanMapper.table`` (every column in Python: role, tokens, price, identity) and
  ``spool.write_spool`` (the spool file as it is written today, fsynced);
- raw: the record's own fields as columns, the attributes and resource JSON with the content
  rule applied (``SpanMapper._clean``, the template path of ``spans/batch.py``), and the
  same spool write. What the Python side must keep: the content rule (nothing a model read
  or wrote may reach the disk).
- ingest: the DuckDB SQL that would turn the raw columns into the typed ones at ingest
  (role, operation, provider, models, tokens, agent, feature, step, tool, conversation),
  one thread, CPU µs a span of the whole process. Left out, and needed before it could
  land: pricing unstamped calls (``queries/_reprice.sql`` prices in SQL already), tokens
  normalised per convention (``semconv.read_call_fields``' plans), the step's and text
  columns' odd cases, and a property test against ``SpanMapper.rows``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from bench_exporter import batches, make_spans

from otel_costattr.pricing.table import load_pricing
from otel_costattr.sdk.seam_records import records_from_sdk
from otel_costattr.spans import batch as batch_mapping
from otel_costattr.spans.encode import to_json
from otel_costattr.spans.rows import SpanMapper
from otel_costattr.store import spool

ROOT = Path(__file__).resolve().parents[1]

RAW = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start_time", pa.timestamp("us")),
        ("end_time", pa.timestamp("us")),
        ("status_code", pa.string()),
        ("service_name", pa.string()),
        ("attributes", pa.string()),
        ("resource", pa.string()),
    ]
)

# The typed columns, read from the attributes JSON by DuckDB (the common spellings only).
EXTRACT = """
SELECT trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status_code,
       service_name,
       CASE WHEN op IN ('chat', 'text_completion', 'generate_content', 'embeddings')
            THEN 'model_call' WHEN op = 'invoke_agent' THEN 'agent'
            WHEN op = 'execute_tool' THEN 'tool' ELSE 'other' END AS span_role,
       op AS operation,
       a->>'$."gen_ai.provider.name"' AS provider,
       a->>'$."gen_ai.request.model"' AS request_model,
       a->>'$."gen_ai.response.model"' AS response_model,
       TRY_CAST(a->>'$."gen_ai.usage.input_tokens"' AS BIGINT) AS input_tokens,
       TRY_CAST(a->>'$."gen_ai.usage.output_tokens"' AS BIGINT) AS output_tokens,
       TRY_CAST(a->>'$."gen_ai.usage.cache_read.input_tokens"' AS BIGINT) AS cache_read_tokens,
       a->>'$."gen_ai.agent.name"' AS agent_name,
       a->>'$."app.feature"' AS feature,
       TRY_CAST(a->>'$."gen_ai.agent.step"' AS INTEGER) AS step,
       a->>'$."gen_ai.tool.name"' AS tool_name,
       a->>'$."gen_ai.conversation.id"' AS conversation_id,
       attributes, resource
FROM (SELECT *, attributes::JSON AS a, attributes::JSON->>'$."gen_ai.operation.name"' AS op FROM raw)
"""


def raw_table(mapper: SpanMapper, records: list) -> pa.Table:
    """The raw columns of a batch: own fields, and attributes without message content."""
    (trace, span, parent, start, end, name, kind, status, _description, resource, service,
     _scope, _version, attrs, _events, _links) = zip(*records, strict=True)  # fmt: skip
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, a in enumerate(attrs):
        groups.setdefault(tuple(a), []).append(i)
    attributes: list[str | None] = [None] * len(records)
    for shape, rows in groups.items():
        group = [attrs[i] for i in rows]
        cleaned = [mapper._clean(a) for a in group]
        encoded = None
        if not any(d for _, d in cleaned):
            values = list(zip(*[a.values() for a in group], strict=True)) if shape else []
            encoded = batch_mapping._shape_json(shape, values, len(rows))
        if encoded is None:
            encoded = [to_json(k) for k, _ in cleaned]
        for i, text in zip(rows, encoded, strict=True):
            attributes[i] = text
    columns = [
        trace,
        span,
        parent,
        name,
        kind,
        [s // 1000 for s in start],
        [e // 1000 for e in end],
        status,
        service,
        attributes,
        batch_mapping._resources(mapper, resource),
    ]
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, RAW, strict=True)], schema=RAW)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--spans", type=int, default=32768)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    pricing = load_pricing([str(ROOT / "tests" / "data" / "test_prices.toml")], bundled=False, use_env=False)
    work = [records_from_sdk(b) for b in batches(make_spans(args.spans), args.batch)]
    mapper = SpanMapper(pricing)
    mapper.table(work[0])
    raw_table(mapper, work[0])
    got: dict[str, list[float]] = {"now": [], "raw": [], "ingest": []}
    with tempfile.TemporaryDirectory(prefix="proto-raw-") as tmp:
        db = Path(tmp) / "x.duckdb"
        for r in range(args.rounds):
            designs = [("now", mapper.table), ("raw", lambda b: raw_table(mapper, b))]
            for label, build in designs if r % 2 == 0 else reversed(designs):
                t = time.thread_time()
                tables = []
                for records in work:
                    table = build(records)
                    spool.write_spool(db, table)
                    tables.append(table)
                got[label].append((time.thread_time() - t) / args.spans * 1e6)
                for f in spool.pending_spool(db):
                    f.unlink()
                if label == "raw":
                    raw = pa.concat_tables(tables)  # noqa: F841 - DuckDB reads the local by name
                    con = duckdb.connect()
                    con.execute("SET threads = 1")
                    t = time.process_time()
                    con.execute(f"CREATE TABLE typed AS {EXTRACT}")
                    got["ingest"].append((time.process_time() - t) / args.spans * 1e6)
                    con.close()
    for label, values in got.items():
        print(f"{label:>7}: {statistics.median(values):6.2f} µs a span  {[round(v, 2) for v in values]}")


if __name__ == "__main__":
    main()
