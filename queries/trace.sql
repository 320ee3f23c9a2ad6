-- @about One run as a tree, depth first: each span with its own cost and its subtree's cost.
-- @param trace_id VARCHAR        the run's trace id (32 hex digits)
WITH RECURSIVE
run AS MATERIALIZED (
    SELECT * FROM spans WHERE trace_id = lower($trace_id)
),
calls AS MATERIALIZED (
    SELECT span_id, model, feature, agent, agent_version, step, cost_status, usd, usd_repriced
    FROM costattr_calls(NULL, NULL, NULL, NULL, NULL, p_trace := $trace_id)
),
-- Roots: no parent, or a parent this database never received (another process, dropped).
tree (span_id, depth, ancestors, sort_key) AS (
    SELECT span_id, 0, [span_id],
           [strftime(start_time, '%Y-%m-%dT%H:%M:%S.%f') || span_id]
    FROM run
    WHERE parent_span_id IS NULL
       OR parent_span_id NOT IN (SELECT span_id FROM run)
    UNION ALL
    SELECT s.span_id, t.depth + 1, list_append(t.ancestors, s.span_id),
           list_append(t.sort_key, strftime(s.start_time, '%Y-%m-%dT%H:%M:%S.%f') || s.span_id)
    FROM tree AS t
    JOIN run AS s ON s.parent_span_id = t.span_id
    WHERE t.depth < 64
),
subtree AS (
    SELECT
        ancestor AS span_id,
        count(*) AS calls,
        sum(c.usd) AS usd,
        sum(c.usd_repriced) AS usd_repriced
    FROM (SELECT unnest(ancestors) AS ancestor, span_id AS call_id FROM tree) AS a
    JOIN calls AS c ON c.span_id = a.call_id
    GROUP BY ancestor
)
SELECT
    t.depth,
    s.span_id,
    s.parent_span_id,
    s.name,
    s.span_role,
    s.start_time,
    s.duration_ms,
    coalesce(c.agent, s.agent_name) AS agent,
    coalesce(c.feature, s.feature) AS feature,
    c.step,
    c.model,
    CASE WHEN s.span_role = 'model_call' THEN s.input_tokens END AS input_tokens,
    CASE WHEN s.span_role = 'model_call' THEN s.output_tokens END AS output_tokens,
    c.cost_status,  -- as costattr_calls reads it: 'implausible' for a cost no call can have
    c.usd,
    coalesce(st.calls, 0) AS subtree_calls,
    st.usd AS subtree_usd,
    c.usd_repriced,
    st.usd_repriced AS subtree_usd_repriced
FROM tree AS t
JOIN run AS s USING (span_id)
LEFT JOIN calls AS c USING (span_id)
LEFT JOIN subtree AS st USING (span_id)
ORDER BY t.sort_key;
