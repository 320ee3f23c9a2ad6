-- The settle pass's walk, in ClickHouse dialect (otel_costattr.clickhouse.settle runs it; the
-- counterpart of queries/_identity.sql for the DuckDB store). For the model calls that lack
-- feature or agent and whose identity is not settled yet, walk the ancestors as the call
-- contract does (queries/clickhouse/_calls.sql: the spans of the same trace, nearest
-- first, at most 64) and keep the answer only when it can no longer change as spans arrive:
-- both found, or the chain ended at a root (its parent_span_id empty), or 64 ancestors read.
-- A chain that reaches a span not stored yet (a child inserted before its parent, a parent
-- exported elsewhere) is not settled: the contract walks for that call at read time, and the
-- next pass tries again.
--
-- "spans" is the spans relation (the typed table or the SELECT over otel_traces), as in the
-- contract; the placeholders (double braces) are the table of settled facts and the walk.
-- The SELECT gives the rows to insert there.
WITH RECURSIVE
lacking AS (
    SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
    FROM spans AS c
    WHERE c.span_role = 'model_call'
      AND (c.feature IS NULL OR c.agent_name IS NULL) AND c.parent_span_id IS NOT NULL
      AND (c.trace_id, c.span_id) NOT IN (
          SELECT trace_id, span_id FROM {{settled}} WHERE kind = 'identity'
      )
    -- a span the Collector wrote twice is one call
    LIMIT 1 BY trace_id, span_id
),
-- The contract's walk, as _calls.sql writes it (its walk:steps), ending in `resolved`.
{{walk}}
SELECT trace_id, span_id, 'identity' AS kind,
       tupleElement(found, 1) AS feature,
       tupleElement(found, 2) AS agent_name,
       tupleElement(found, 3) AS agent_version
FROM resolved
WHERE (tupleElement(found, 1) IS NOT NULL AND tupleElement(found, 2) IS NOT NULL)
   OR tupleElement(found, 4)
   OR tupleElement(found, 5) >= 64
