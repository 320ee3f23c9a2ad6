-- @about Calls whose input tokens jump over the same agent's previous call in the run (a stuffed document, an untruncated tool result), with the tool that ran in between.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param min_ratio DOUBLE = 2     input at least this many times the previous call's
-- @param min_tokens INTEGER = 20000  and at least this many tokens more
WITH ordered AS (
    SELECT
        {{group}}trace_id, span_id, start_time, agent_name AS agent, feature, step, model, input_tokens,
        cost_usd AS usd,
        usd_repriced,
        lag(input_tokens) OVER run AS prev_input_tokens,
        lag(step) OVER run AS prev_step,
        lag(start_time) OVER run AS prev_start
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    -- A call without usage (a refused request, a stream without its counts) read no known
    -- input: never the previous call. And a sub-agent's calls carry its own context, not
    -- the calling agent's: each agent is compared with itself.
    WHERE coalesce(cost_status, '') NOT IN ('no_usage', 'invalid_usage', 'duplicate')
    WINDOW run AS (PARTITION BY {{group}}trace_id, agent_name ORDER BY start_time, span_id)
),
jumps AS MATERIALIZED (
    SELECT *
    FROM ordered
    WHERE prev_input_tokens > 0  -- a jump is a multiple of a known, non-zero input
      AND input_tokens >= prev_input_tokens * $min_ratio
      AND input_tokens - prev_input_tokens >= $min_tokens
),
tools AS (
    SELECT trace_id, coalesce(tool_name, name) AS tool, start_time, end_time
    FROM spans
    WHERE span_role = 'tool' AND trace_id IN (SELECT trace_id FROM jumps)
),
between_calls AS (
    SELECT j.trace_id, j.span_id, arg_max(t.tool, t.end_time) AS tool
    FROM jumps AS j
    JOIN tools AS t
      ON t.trace_id = j.trace_id AND t.start_time >= j.prev_start AND t.start_time < j.start_time
    GROUP BY j.trace_id, j.span_id
)
SELECT
    {{group_columns(j)}}j.trace_id, j.span_id, j.agent, j.feature, j.prev_step, b.tool AS after_tool, j.step,
    j.model, j.prev_input_tokens, j.input_tokens,
    j.input_tokens - j.prev_input_tokens AS jump_tokens,
    round(j.input_tokens / j.prev_input_tokens, 1) AS ratio, j.usd, j.usd_repriced
FROM jumps AS j
LEFT JOIN between_calls AS b USING (trace_id, span_id)
ORDER BY {{group(j)}}jump_tokens DESC, j.trace_id, j.start_time;
