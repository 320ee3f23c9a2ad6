-- Prelude shared by every rollup (files starting with "_" are not rollups). rollups/queries.py runs
-- it once per connection: TEMP objects only, so it works on a read-only connection and
-- leaves the database file untouched.
--
-- costattr_calls(since, until, service, feature, agent [, p_trace := trace_id]): the model
-- calls of the window (of one trace when p_trace is given), each counted once and attributed.
--   * Only span_role = 'model_call' rows carry tokens and cost: agent and workflow spans
--     that repeat the summed usage of their children never add to a total.
--   * The window selects calls by their own start time, so every rollup over the same window
--     adds up to the same total.
--   * feature, and agent (name and version together), are the call's own attributes or else
--     those of its nearest ancestor that has them, found by walking parent_span_id: the
--     processor copies identity down within a process, so this matters for calls from
--     another process or tool. Only calls missing one of them walk: two hops by span id
--     (one scan of the table each, for those calls only), then a recursive walk through
--     their traces for what is left. With nested agents (a handoff) the nearest agent wins.
--     When no span at all holds an agent (or a feature), nobody walks for it.
--   * step is gen_ai.agent.step as the processor numbered it (0-based among the model calls
--     of the nearest agent in the same process); NULL outside an agent, and for calls from a
--     process without the processor (it could not see the agent's other calls either).
--   * usd is the cost stamped at the time, NULL when unpriced or implausible (cost_status
--     'implausible': above $1,000,000 for one call, or negative; see mapping.MAX_CALL_USD).
--     usd_repriced is NULL here, and the recomputed cost when rollups/queries.py reprices
--     (it then redefines costattr_calls: _calls_repriced.sql; a LEFT JOIN to an empty table
--     on every call doubled the time of a rollup).
CREATE OR REPLACE TEMP MACRO costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
WITH RECURSIVE
-- call_row (the row's rowid) names each stored call, even a span id stored twice (bad
-- data): resolving and joining by it counts every stored call once.
windowed AS NOT MATERIALIZED (
    SELECT *, rowid AS call_row
    FROM spans
    WHERE span_role = 'model_call'
      AND (p_since IS NULL OR start_time >= p_since)
      AND (p_until IS NULL OR start_time < p_until)
      AND (p_service IS NULL OR service_name = p_service)
      AND (p_trace IS NULL OR trace_id = lower(p_trace))
),
-- Calls missing feature or agent (two scans with simple filters read less than one with OR).
lacking AS MATERIALIZED (
    SELECT * FROM windowed WHERE feature IS NULL
    UNION ALL
    SELECT * FROM windowed WHERE feature IS NOT NULL AND agent_name IS NULL
),
-- An ancestor can only supply what some span holds: when no span has an agent (a plain LLM
-- application) or a feature, calls do not walk for it. (A per-trace test is exact too, but
-- costs a scan of every trace concerned; this one stops at the first span found.)
holders AS MATERIALIZED (
    SELECT
        EXISTS (SELECT 1 FROM spans WHERE span_role <> 'model_call' AND feature IS NOT NULL)
            AS any_feature,
        EXISTS (SELECT 1 FROM spans WHERE span_role <> 'model_call' AND agent_name IS NOT NULL)
            AS any_agent
),
unresolved AS MATERIALIZED (
    SELECT
        l.call_row, l.trace_id, l.span_id, l.parent_span_id, l.feature, l.agent_name,
        l.agent_version
    FROM lacking AS l, holders AS h
    WHERE l.parent_span_id IS NOT NULL
      AND ((l.feature IS NULL AND h.any_feature) OR (l.agent_name IS NULL AND h.any_agent))
),
-- Each hop finds the parents of the calls still unresolved in one scan of the table's
-- non-model spans, filtered by span id (a model call is never an ancestor here: one wrapped
-- in another is double instrumentation, not a scope); the join checks the trace too. Two
-- hops settle the usual cases: a parent with identity, or a service's entry span (which
-- carries none when that service runs without the processor) under a span that has it.
parents AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
    FROM spans
    WHERE span_role <> 'model_call' AND span_id IN (SELECT parent_span_id FROM unresolved)
),
hop AS MATERIALIZED (
    SELECT
        u.call_row, u.trace_id, u.span_id,
        p.parent_span_id AS next_parent,
        coalesce(u.feature, p.feature) AS feature,
        CASE WHEN u.agent_name IS NULL THEN p.agent_name ELSE u.agent_name END AS agent_name,
        CASE WHEN u.agent_name IS NULL THEN p.agent_version ELSE u.agent_version END AS agent_version
    FROM unresolved AS u
    LEFT JOIN parents AS p ON p.trace_id = u.trace_id AND p.span_id = u.parent_span_id
),
pending AS MATERIALIZED (
    SELECT *
    FROM hop
    WHERE (feature IS NULL OR agent_name IS NULL) AND next_parent IS NOT NULL
),
grandparents AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
    FROM spans
    WHERE span_role <> 'model_call' AND span_id IN (SELECT next_parent FROM pending)
),
hop2 AS MATERIALIZED (
    SELECT
        u.call_row, u.trace_id, u.span_id,
        g.parent_span_id AS next_parent,
        coalesce(u.feature, g.feature) AS feature,
        CASE WHEN u.agent_name IS NULL THEN g.agent_name ELSE u.agent_name END AS agent_name,
        CASE WHEN u.agent_name IS NULL THEN g.agent_version ELSE u.agent_version END AS agent_version
    FROM pending AS u
    LEFT JOIN grandparents AS g ON g.trace_id = u.trace_id AND g.span_id = u.next_parent
),
-- Further up, only for what two hops left unresolved (chains of spans without identity):
-- through the traces concerned; stops at the root, or after 64 levels (a cycle in bad data,
-- or a chain deeper than any agent's): the call then keeps what was found, and counts all the same.
deeper AS MATERIALIZED (
    SELECT *
    FROM hop2
    WHERE (feature IS NULL OR agent_name IS NULL) AND next_parent IS NOT NULL
),
ancestors AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
    FROM spans
    WHERE span_role <> 'model_call' AND trace_id IN (SELECT trace_id FROM deeper)
),
walk (call_row, trace_id, span_id, parent, depth, feature, agent_name, agent_version)
    USING KEY (call_row) AS (
    SELECT call_row, trace_id, span_id, next_parent, 2, feature, agent_name, agent_version
    FROM deeper
    UNION
    SELECT w.call_row, w.trace_id, w.span_id, a.parent_span_id, w.depth + 1,
           coalesce(w.feature, a.feature),
           CASE WHEN w.agent_name IS NULL THEN a.agent_name ELSE w.agent_name END,
           CASE WHEN w.agent_name IS NULL THEN a.agent_version ELSE w.agent_version END
    FROM walk AS w
    JOIN ancestors AS a ON a.trace_id = w.trace_id AND a.span_id = w.parent
    WHERE (w.feature IS NULL OR w.agent_name IS NULL) AND w.depth < 64
),
-- One answer per call: an ancestor's span id stored twice gives the hops two. Either copy
-- will do (they normally agree); ordering them to choose cost 15-20% on every rollup.
resolved AS MATERIALIZED (
    SELECT DISTINCT ON (call_row) *
    FROM (
        SELECT call_row, feature, agent_name, agent_version
        FROM hop
        WHERE (feature IS NOT NULL AND agent_name IS NOT NULL) OR next_parent IS NULL
        UNION ALL
        SELECT call_row, feature, agent_name, agent_version
        FROM hop2
        WHERE (feature IS NOT NULL AND agent_name IS NOT NULL) OR next_parent IS NULL
        UNION ALL
        SELECT call_row, feature, agent_name, agent_version
        FROM walk
    )
),
attributed AS NOT MATERIALIZED (
    -- Calls that carry their own identity (the usual case: the processor copied it).
    SELECT * EXCLUDE (agent_name), agent_name AS agent
    FROM windowed
    WHERE feature IS NOT NULL AND agent_name IS NOT NULL
    UNION ALL BY NAME
    -- The others, with what their ancestors supplied.
    SELECT
        l.* EXCLUDE (feature, agent_name, agent_version),
        CASE WHEN r.call_row IS NULL THEN l.feature ELSE r.feature END AS feature,
        CASE WHEN r.call_row IS NULL THEN l.agent_name ELSE r.agent_name END AS agent,
        CASE WHEN r.call_row IS NULL THEN l.agent_version ELSE r.agent_version END AS agent_version
    FROM lacking AS l
    LEFT JOIN resolved AS r ON r.call_row = l.call_row
),
calls AS NOT MATERIALIZED (
    SELECT
        c.trace_id, c.span_id, c.parent_span_id, c.name, c.start_time, c.end_time,
        c.duration_ms, c.service_name, c.provider, c.request_model, c.response_model,
        coalesce(c.priced_model, c.response_model, c.request_model) AS model,
        c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens,
        c.reasoning_tokens,
        -- A cost no model call can have (mapping.MAX_CALL_USD, $1,000,000, or negative), in a
        -- file written before the exporter refused them, is not summed: sums stay in range.
        CASE WHEN c.cost_usd BETWEEN 0 AND 1000000 THEN c.cost_usd END AS usd,
        CASE WHEN c.cost_usd < 0 OR c.cost_usd > 1000000 THEN 'implausible' ELSE c.cost_status END
            AS cost_status,
        c.pricing_version,
        c.step, c.conversation_id, c.attributes,
        c.feature, c.agent, c.agent_version, c.call_row
    FROM attributed AS c
)
SELECT *
FROM calls
WHERE (p_feature IS NULL OR feature = p_feature)
  AND (p_agent IS NULL OR agent = p_agent);

CREATE OR REPLACE TEMP MACRO costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
SELECT *, NULL::DECIMAL(38, 18) AS usd_repriced
FROM costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := p_trace);

-- costattr_runs(since, until, service, feature, agent, p_order, p_limit): the runs (a run is
-- a trace) with calls in the window, p_order 'newest' (by first call) or 'cost', at most
-- p_limit (NULL: all): cost of those calls, and name, start, duration, agent and feature
-- from the root span, or from the first attributed call when the root is missing (a remote
-- parent that exported elsewhere). Roots are read for the runs kept only.
CREATE OR REPLACE TEMP MACRO costattr_runs(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit) AS TABLE
WITH per_trace AS (
    SELECT
        trace_id,
        count(*) AS calls,
        count(*) FILTER (WHERE usd IS NULL) AS unpriced_calls,
        sum(usd) AS usd,
        sum(usd_repriced) AS usd_repriced,
        min(start_time) AS first_call,
        max(end_time) AS last_call,
        arg_min(agent, start_time) FILTER (WHERE agent IS NOT NULL) AS first_agent,
        arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL) AS first_feature
    FROM costattr_calls(p_since, p_until, p_service, p_feature, p_agent)
    GROUP BY trace_id
),
kept AS MATERIALIZED (
    SELECT *
    FROM per_trace
    ORDER BY
        CASE WHEN p_order = 'cost' THEN usd END DESC NULLS LAST,
        CASE WHEN p_order = 'cost' THEN calls END DESC,
        first_call DESC,
        trace_id
    LIMIT p_limit
),
roots AS (
    SELECT
        trace_id,
        arg_min(name, start_time) AS name,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        arg_min(agent_name, start_time) FILTER (WHERE agent_name IS NOT NULL) AS agent,
        arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL) AS feature
    FROM spans
    WHERE parent_span_id IS NULL AND trace_id IN (SELECT trace_id FROM kept)
    GROUP BY trace_id
)
SELECT
    k.trace_id,
    r.name AS run_name,
    coalesce(r.agent, k.first_agent) AS agent,
    coalesce(r.feature, k.first_feature) AS feature,
    coalesce(r.start_time, k.first_call) AS start_time,
    (epoch_us(coalesce(r.end_time, k.last_call))
     - epoch_us(coalesce(r.start_time, k.first_call))) / 1000.0 AS duration_ms,
    k.calls, k.unpriced_calls, k.usd, k.usd_repriced, k.first_call
FROM kept AS k
LEFT JOIN roots AS r USING (trace_id);
