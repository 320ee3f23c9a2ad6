-- The call contract: the relations every rollup reads, persisted in the database file as
-- views so that any DuckDB client gets the attribution rules (files starting with "_" are
-- not rollups). store/database.py runs this file as a migration; rollups/contract.py derives
-- the rollups' TEMP macros from this same text (lines marked "@rollups" read differently
-- there: see that module), so the rules are written once.
--
-- calls: one row per model call, all time, each counted once and attributed. Columns (named
-- as in the spans table; rollups/contract.py CALL_COLUMNS is the same list, checked by tests):
--   trace_id, span_id, parent_span_id, name, start_time, end_time, duration_ms,
--   service_name, provider, request_model, response_model,
--   model            priced_model, else response_model, else request_model
--   input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
--                    (input includes cache reads and writes, output includes reasoning)
--   cost_usd         the cost stamped at the time; NULL when unpriced or implausible
--   cost_status      as stamped, or 'implausible' (above $1,000,000 for one call, or
--                    negative; see mapping.MAX_CALL_USD)
--   cost_source, pricing_version, priced_model,
--   feature, agent_name, agent_version   the call's own, else its nearest ancestor's
--   step, conversation_id, attributes
--   attr_user_id, attr_enduser_id, attr_app_tenant, attr_tenant_id, attr_session_id,
--   attr_costattr_cost_source, attr_costattr_computed_cost
--                    the attributes of store/schema.py ATTRIBUTE_COLUMNS as text, as
--                    json_extract_string(attributes, ...) reads them (NULL when absent):
--                    stored columns filled at ingest, read instead of the JSON
--                    (rollups/dimensions.py); rollups/contract.py ATTRIBUTE_CALL_COLUMNS
-- runs: one row per trace with at least one model call (rollups/contract.py RUN_COLUMNS):
--   trace_id, name (the root span's), service_name, feature, agent_name, start_time,
--   end_time, duration_ms, calls, unpriced_calls, cost_usd
--
-- The rules:
--   * Only span_role = 'model_call' rows carry tokens and cost: agent and workflow spans
--     that repeat the summed usage of their children never add to a total.
--   * The rollups' window selects calls by their own start time (so every rollup over the
--     same window adds up to the same total): the same as filtering calls on start_time.
--   * feature, and agent (name and version together), are the call's own attributes or else
--     those of its nearest ancestor that has them, found by walking parent_span_id: the
--     processor copies identity down within a process, so this matters for calls from
--     another process or tool. The identity pass (_identity.sql, run after each ingest)
--     settles that answer once it can no longer change, in the settled_* columns; only
--     calls missing one of them and not settled walk here: two hops by span id
--     (one scan of the table each, for those calls only), then a recursive walk through
--     their traces for what is left. With nested agents (a handoff) the nearest agent wins.
--     When no span at all holds an agent (or a feature), nobody walks for it.
--   * step is gen_ai.agent.step as the processor numbered it (0-based among the model calls
--     of the nearest agent in the same process); NULL outside an agent, and for calls from a
--     process without the processor (it could not see the agent's other calls either).
--   * A run is a trace: its name, start, end, service, agent and feature come from the root
--     span, or from the first attributed call when the root is missing (a remote parent that
--     exported elsewhere).
--
-- Changing this file changes the views of new files only: add a migration in
-- store/database.py that runs it again (tests/test_calls_contract.py pins its digest).
--
-- In the rollups' macros, costattr_attributed(since, until, service, feature, agent
-- [, p_trace := trace_id]) is calls restricted to a window (of one trace when p_trace is
-- given; of the traces listed in the TEMP table costattr_traces with p_traces := true, as
-- rollups/facts.py reads the traces the rollup facts leave pending) with call_row added (the
-- spans row's rowid: names each stored call, even a span id stored twice, which is bad data);
-- costattr_runs(since, until, service, feature, agent, p_order, p_limit) is runs over that
-- window, p_order 'newest' (by first call) or 'cost', at most p_limit (NULL: all), roots read
-- and the per-run aggregates that do not order runs computed for the runs kept only.
-- @rollups: CREATE TEMP TABLE IF NOT EXISTS costattr_traces (trace_id VARCHAR NOT NULL);
CREATE OR REPLACE VIEW calls AS  -- @rollups: CREATE OR REPLACE TEMP MACRO costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL, p_traces := false) AS TABLE
WITH RECURSIVE
-- The columns of the contract, and call_row: resolving and joining by it counts every stored
-- call once. Feature and agent come last: they are what attribution replaces.
windowed AS NOT MATERIALIZED (
    SELECT
        trace_id, span_id, parent_span_id, name, start_time, end_time, duration_ms,
        service_name, provider, request_model, response_model, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_status,
        cost_source, pricing_version, priced_model, step, conversation_id, attributes,
        attr_user_id, attr_enduser_id, attr_app_tenant, attr_tenant_id, attr_session_id,
        attr_costattr_cost_source, attr_costattr_computed_cost,
        identity_settled IS NOT NULL AS settled, rowid AS call_row, feature, agent_name,
        agent_version, settled_feature, settled_agent_name, settled_agent_version
    FROM spans
    WHERE span_role = 'model_call'
      -- @rollups:   AND (p_since IS NULL OR start_time >= p_since)
      -- @rollups:   AND (p_until IS NULL OR start_time < p_until)
      -- @rollups:   AND (p_service IS NULL OR service_name = p_service)
      -- @rollups:   AND (p_trace IS NULL OR trace_id = lower(p_trace))
      -- @rollups:   AND (NOT p_traces OR trace_id IN (SELECT trace_id FROM costattr_traces))
),
-- Calls missing feature or agent that the identity pass has not settled (two scans with
-- simple filters on stored columns read less than one with OR).
lacking AS MATERIALIZED (
    SELECT * EXCLUDE (settled_feature, settled_agent_name, settled_agent_version)
    FROM windowed WHERE feature IS NULL AND NOT settled
    UNION ALL
    SELECT * EXCLUDE (settled_feature, settled_agent_name, settled_agent_version)
    FROM windowed WHERE feature IS NOT NULL AND agent_name IS NULL AND NOT settled
),
-- An ancestor can only supply what some span holds: when no span has an agent (a plain LLM
-- application) or a feature, calls do not walk for it. (A per-trace test is exact too, but
-- costs a scan of every trace concerned; this one stops at the first span found.)
holders AS MATERIALIZED (
    SELECT
        EXISTS (SELECT 1 FROM spans WHERE feature IS NOT NULL)
            AS any_feature,
        EXISTS (SELECT 1 FROM spans WHERE agent_name IS NOT NULL)
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
-- Each hop finds the parents of the calls still unresolved in one scan of the table,
-- filtered by span id (a model call is an ancestor as any span is: a tool's call below the
-- call that asked for it, or a framework's generation span around the client's call; the
-- walk stopped there, and such calls from a process without the processor had no feature or
-- agent, and never settled: reviews); the join checks the trace too (with
-- p_traces the scan keeps those traces' spans only: the same parents, found faster). Two
-- hops settle the usual cases: a parent with identity, or a service's entry span (which
-- carries none when that service runs without the processor) under a span that has it.
parents AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
    FROM spans
    WHERE span_id IN (SELECT parent_span_id FROM unresolved)
    -- @rollups:   AND (NOT p_traces OR trace_id IN (SELECT trace_id FROM costattr_traces))
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
    WHERE span_id IN (SELECT next_parent FROM pending)
    -- @rollups:   AND (NOT p_traces OR trace_id IN (SELECT trace_id FROM costattr_traces))
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
    WHERE trace_id IN (SELECT trace_id FROM deeper)
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
    -- Calls that carry their own identity (the usual case: the processor copied it) and calls
    -- whose identity the pass settled at ingest, in one scan (two cost 1.5-2x the CPU).
    SELECT
        * EXCLUDE (feature, agent_name, agent_version, settled_feature, settled_agent_name,
                   settled_agent_version),
        CASE WHEN settled THEN settled_feature ELSE feature END AS feature,
        CASE WHEN settled THEN settled_agent_name ELSE agent_name END AS agent_name,
        CASE WHEN settled THEN settled_agent_version ELSE agent_version END AS agent_version
    FROM windowed
    WHERE settled OR (feature IS NOT NULL AND agent_name IS NOT NULL)
    UNION ALL
    -- The others, with what their ancestors supplied.
    SELECT
        l.trace_id, l.span_id, l.parent_span_id, l.name, l.start_time, l.end_time,
        l.duration_ms, l.service_name, l.provider, l.request_model, l.response_model,
        l.input_tokens, l.output_tokens, l.cache_read_tokens, l.cache_write_tokens,
        l.reasoning_tokens, l.cost_usd, l.cost_status, l.cost_source, l.pricing_version,
        l.priced_model, l.step, l.conversation_id, l.attributes, l.attr_user_id, l.attr_enduser_id,
        l.attr_app_tenant, l.attr_tenant_id, l.attr_session_id, l.attr_costattr_cost_source,
        l.attr_costattr_computed_cost, l.settled, l.call_row,
        CASE WHEN r.call_row IS NULL THEN l.feature ELSE r.feature END AS feature,
        CASE WHEN r.call_row IS NULL THEN l.agent_name ELSE r.agent_name END AS agent_name,
        CASE WHEN r.call_row IS NULL THEN l.agent_version ELSE r.agent_version END AS agent_version
    FROM lacking AS l
    LEFT JOIN resolved AS r ON r.call_row = l.call_row
)
SELECT
    c.trace_id, c.span_id, c.parent_span_id, c.name, c.start_time, c.end_time,
    c.duration_ms, c.service_name, c.provider, c.request_model, c.response_model,
    coalesce(c.priced_model, c.response_model, c.request_model) AS model,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens,
    c.reasoning_tokens,
    -- A cost no model call can have (mapping.MAX_CALL_USD, $1,000,000, or negative), in a
    -- file written before the exporter refused them, is not summed: sums stay in range.
    CASE WHEN c.cost_usd BETWEEN 0 AND 1000000 THEN c.cost_usd END AS cost_usd,
    CASE WHEN c.cost_usd < 0 OR c.cost_usd > 1000000 THEN 'implausible' ELSE c.cost_status END
        AS cost_status,
    c.cost_source, c.pricing_version, c.priced_model,
    c.feature, c.agent_name, c.agent_version,
    c.step, c.conversation_id, c.attributes,
    c.attr_user_id, c.attr_enduser_id, c.attr_app_tenant, c.attr_tenant_id, c.attr_session_id,
    c.attr_costattr_cost_source, c.attr_costattr_computed_cost
    -- @rollups: , c.call_row
FROM attributed AS c
-- @rollups: WHERE (p_feature IS NULL OR c.feature = p_feature)
-- @rollups:   AND (p_agent IS NULL OR c.agent_name = p_agent)
;

-- The rollups read the calls with usd_repriced next to the stamped cost: NULL here, the
-- recomputed cost once _calls_repriced.sql redefines costattr_calls (a LEFT JOIN to an empty
-- table on every call doubled the time of a rollup).
-- @rollups: CREATE OR REPLACE TEMP MACRO costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
-- @rollups: SELECT *, NULL::DECIMAL(38, 18) AS usd_repriced
-- @rollups: FROM costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := p_trace);

CREATE OR REPLACE VIEW runs AS  -- @rollups: CREATE OR REPLACE TEMP MACRO costattr_runs(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit) AS TABLE
WITH
-- @rollups: -- The runs kept, when at most p_limit: chosen first from the narrow aggregates that
-- @rollups: -- order them, so that the wide ones (arg_min of strings) are computed for those runs only.
-- @rollups: chosen AS MATERIALIZED (
-- @rollups:     SELECT trace_id FROM costattr_calls(p_since, p_until, p_service, p_feature, p_agent)
-- @rollups:     WHERE p_limit IS NOT NULL GROUP BY trace_id
-- @rollups:     ORDER BY  -- as kept orders them
-- @rollups:         CASE WHEN p_order = 'cost' THEN sum(cost_usd) END DESC NULLS LAST,
-- @rollups:         CASE WHEN p_order = 'cost' THEN count(*) END DESC,
-- @rollups:         min(start_time) DESC,
-- @rollups:         trace_id
-- @rollups:     LIMIT p_limit
-- @rollups: ),  -- chosen
per_trace AS (
    SELECT
        trace_id,
        count(*) AS calls,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        sum(cost_usd) AS cost_usd,
        -- @rollups: sum(usd_repriced) AS usd_repriced,
        -- @rollups: count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced,
        min(start_time) AS first_call,
        max(end_time) AS last_call,
        arg_min(service_name, start_time) AS first_service,
        arg_min(agent_name, start_time) FILTER (WHERE agent_name IS NOT NULL) AS first_agent,
        arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL) AS first_feature
    FROM calls  -- @rollups: FROM costattr_calls(p_since, p_until, p_service, p_feature, p_agent)
    -- @rollups: WHERE p_limit IS NULL OR trace_id IN (SELECT trace_id FROM chosen)
    GROUP BY trace_id
),
kept AS MATERIALIZED (
    SELECT *
    FROM per_trace
    -- @rollups: ORDER BY
    -- @rollups:     CASE WHEN p_order = 'cost' THEN cost_usd END DESC NULLS LAST,
    -- @rollups:     CASE WHEN p_order = 'cost' THEN calls END DESC,
    -- @rollups:     first_call DESC,
    -- @rollups:     trace_id
    -- @rollups: LIMIT p_limit
),
roots AS (
    SELECT
        trace_id,
        arg_min(name, start_time) AS name,
        arg_min(service_name, start_time) AS service_name,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        arg_min(agent_name, start_time) FILTER (WHERE agent_name IS NOT NULL) AS agent_name,
        arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL) AS feature
    FROM spans
    WHERE parent_span_id IS NULL AND trace_id IN (SELECT trace_id FROM kept)
    GROUP BY trace_id
)
SELECT
    k.trace_id,
    r.name,
    coalesce(r.service_name, k.first_service) AS service_name,
    coalesce(r.feature, k.first_feature) AS feature,
    coalesce(r.agent_name, k.first_agent) AS agent_name,
    coalesce(r.start_time, k.first_call) AS start_time,
    coalesce(r.end_time, k.last_call) AS end_time,
    (epoch_us(coalesce(r.end_time, k.last_call))
     - epoch_us(coalesce(r.start_time, k.first_call))) / 1000.0 AS duration_ms,
    k.calls, k.unpriced_calls, k.cost_usd
    -- @rollups: , k.usd_repriced, k.unpriced_calls_repriced, k.first_call
FROM kept AS k
LEFT JOIN roots AS r ON r.trace_id = k.trace_id;
