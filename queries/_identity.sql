-- The identity pass (store/identity.py runs it after each ingest): settles, once, the feature
-- and agent of the model calls that lack one, so that the call contract (_calls.sql) walks
-- ancestors at query time only for calls still unsettled. The answer is the contract's own:
-- feature is the call's, else its nearest ancestor's; agent (name and version together) the
-- call's, else its nearest ancestor's that has one; ancestors are the spans, model calls
-- too, found by parent_span_id within the trace, at most 64 of them.
--
-- A call is settled only when that answer can no longer change as spans arrive: both found,
-- or its chain ends at a root span (parent_span_id NULL), or 64 ancestors were read. A call
-- whose chain reaches a span not stored (yet: a child exported before its parent, or a parent
-- exported elsewhere) stays unsettled: the contract walks for it as before, and a later pass
-- tries it again (the late pass) once its trace has received a span: only then can the answer
-- change, since ancestors are looked for in the call's own trace. Spans stored since the last
-- pass are those whose rowid is above the watermark (costattr_identity_pass, advanced by each
-- pass; spans are only ever appended), so a call whose parent was exported elsewhere is walked
-- once, not by every ingest. Whatever the pass does, the views' answers are the same
-- (tests/test_identity.py checks it against the walk on random trees in random orders).
--
-- Six statements, in one transaction: the calls to walk (kept in a TEMP table, which
-- store/identity.py counts), their traces' spans, the walk, the calls it settles updated, the
-- watermark moved up, and the last rowid the pass read.
CREATE OR REPLACE TEMP TABLE costattr_identity_todo AS
SELECT rowid AS call_row, trace_id, parent_span_id, feature, agent_name, agent_version
FROM spans
WHERE span_role = 'model_call' AND identity_settled IS NULL
  AND (feature IS NULL OR agent_name IS NULL)
  AND trace_id IN (
      SELECT trace_id FROM spans WHERE rowid > (SELECT max(watermark) FROM costattr_identity_pass)
  );

-- Every span of the traces to walk, any role (the walk reads them all): the one scan
-- of the whole table's trace ids. Kept after the pass on this connection, with the last rowid
-- it saw (costattr_identity_read, after the watermark moves): the rollup facts' upkeep, which
-- follows, copies from it the older spans of a run whose call the pass leaves pending
-- (_facts_spans.sql) instead of scanning the table again. store/identity.py runs this and
-- the last statement only when there are calls to walk, so the two always come from one pass.
-- Their rowids first, then those rows: in one step the scan read each column of every row for
-- the join to keep a few (0.33 s against 0.12 s for the trace ids alone, at 10M spans).
CREATE OR REPLACE TEMP TABLE costattr_identity_spans AS
SELECT rowid AS span_row, trace_id, span_id, parent_span_id, span_role, feature, agent_name, agent_version
FROM spans
WHERE rowid IN (
    SELECT rowid FROM spans
    WHERE trace_id IN (SELECT trace_id FROM costattr_identity_todo WHERE parent_span_id IS NOT NULL)
);

-- What the walk found for the calls it can settle, kept apart so that the UPDATE joins the
-- spans table with a relation whose size DuckDB knows (joined to the walk directly, it
-- hashed every rowid of the table: 0.5 s at 2M spans for a thousand calls).
CREATE OR REPLACE TEMP TABLE costattr_identity_found AS
    WITH RECURSIVE
    todo AS MATERIALIZED (SELECT * FROM costattr_identity_todo),
    ancestors AS MATERIALIZED (
        SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
        FROM costattr_identity_spans
    ),
    -- One row per call and depth; `parent` is the next span to read (NULL: the chain ended at
    -- a root), `lost` that it was looked for and is not stored.
    walk (call_row, trace_id, parent, depth, feature, agent_name, agent_version, lost)
        USING KEY (call_row) AS (
        SELECT call_row, trace_id, parent_span_id, 0, feature, agent_name, agent_version, FALSE
        FROM todo
        UNION
        SELECT w.call_row, w.trace_id, a.parent_span_id, w.depth + 1,
               coalesce(w.feature, a.feature),
               CASE WHEN w.agent_name IS NULL THEN a.agent_name ELSE w.agent_name END,
               CASE WHEN w.agent_name IS NULL THEN a.agent_version ELSE w.agent_version END,
               a.span_id IS NULL
        FROM walk AS w
        LEFT JOIN ancestors AS a ON a.trace_id = w.trace_id AND a.span_id = w.parent
        WHERE NOT w.lost AND w.parent IS NOT NULL AND w.depth < 64
          AND (w.feature IS NULL OR w.agent_name IS NULL)
    )
    SELECT call_row, feature, agent_name, agent_version
    FROM walk
    WHERE NOT lost
      AND ((feature IS NOT NULL AND agent_name IS NOT NULL) OR parent IS NULL OR depth >= 64);

UPDATE spans
SET identity_settled = TRUE,
    settled_feature = s.feature,
    settled_agent_name = s.agent_name,
    settled_agent_version = s.agent_version
FROM costattr_identity_found AS s
WHERE spans.rowid = s.call_row;

UPDATE costattr_identity_pass SET watermark = (SELECT coalesce(max(rowid), -1) FROM spans);

CREATE OR REPLACE TEMP TABLE costattr_identity_read AS SELECT watermark AS upto FROM costattr_identity_pass;
