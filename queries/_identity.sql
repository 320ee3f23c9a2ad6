-- The identity pass (store/identity.py runs it after each ingest): settles, once, the feature
-- and agent of the model calls that lack one, so that the call contract (_calls.sql) walks
-- ancestors at query time only for calls still unsettled. The answer is the contract's own:
-- feature is the call's, else its nearest ancestor's; agent (name and version together) the
-- call's, else its nearest ancestor's that has one; ancestors are non-model spans, found by
-- parent_span_id within the trace, at most 64 of them.
--
-- A call is settled only when that answer can no longer change as spans arrive: both found,
-- or its chain ends at a root span (parent_span_id NULL), or 64 ancestors were read. A call
-- whose chain reaches a span not stored (yet: a child exported before its parent, or a parent
-- exported elsewhere) stays unsettled: the contract walks for it as before, and every later
-- pass tries it again (the late pass). Whatever the pass does, the views' answers are the
-- same (tests/test_identity.py checks it against the walk on random trees in random orders).
UPDATE spans
SET identity_settled = TRUE,
    settled_feature = s.feature,
    settled_agent_name = s.agent_name,
    settled_agent_version = s.agent_version
FROM (
    WITH RECURSIVE
    todo AS MATERIALIZED (
        SELECT rowid AS call_row, trace_id, parent_span_id, feature, agent_name, agent_version
        FROM spans
        WHERE span_role = 'model_call' AND identity_settled IS NULL
          AND (feature IS NULL OR agent_name IS NULL)
    ),
    ancestors AS MATERIALIZED (
        SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
        FROM spans
        WHERE span_role <> 'model_call'
          AND trace_id IN (SELECT trace_id FROM todo WHERE parent_span_id IS NOT NULL)
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
      AND ((feature IS NOT NULL AND agent_name IS NOT NULL) OR parent IS NULL OR depth >= 64)
) AS s
WHERE spans.rowid = s.call_row;
