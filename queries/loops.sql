-- @about Runs whose agent made far more model calls than in its median run (a loop that does not stop).
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param factor DOUBLE = 3        at least this many times the agent's median calls per run
-- @param min_calls INTEGER = 6    and at least this many calls
WITH per_run AS (
    SELECT
        {{group}}trace_id,
        agent_name AS agent,
        arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL) AS feature,
        count(*) AS calls,
        sum(cost_usd) AS usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))
                 FILTER (WHERE cost_usd IS NULL), 0) AS unpriced_tokens,
        sum(usd_repriced) AS usd_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    GROUP BY {{group}}trace_id, agent_name
),
typical AS (
    SELECT {{group}}agent, median(calls) AS median_calls, count(*) AS agent_runs
    FROM per_run
    GROUP BY {{group}}agent
)
SELECT
    {{group_columns(r)}}r.trace_id, r.agent, r.feature, r.calls, t.median_calls,
    round(r.calls / t.median_calls, 1) AS ratio, t.agent_runs, r.usd, r.unpriced_calls,
    r.unpriced_tokens, r.usd_repriced, r.unpriced_calls_repriced
FROM per_run AS r
JOIN typical AS t ON t.agent IS NOT DISTINCT FROM r.agent{{group_join(t, r)}}
WHERE r.calls >= $factor * t.median_calls AND r.calls >= $min_calls
ORDER BY {{group(r)}}ratio DESC, r.usd DESC NULLS LAST, r.trace_id;
