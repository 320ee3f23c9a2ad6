-- @about Cost per agent and version (did cost jump when the agent changed?): runs, calls, usd, unpriced calls.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- Two levels (run, then agent version) rather than count(DISTINCT): see per_feature.sql.
WITH per_run AS (
    SELECT
        {{group}}agent_name AS agent,
        agent_version,
        trace_id,
        min(start_time) AS first_call,
        count(*) AS calls,
        sum(cost_usd) AS usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        sum(usd_repriced) AS usd_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    GROUP BY {{group}}agent_name, agent_version, trace_id
)
SELECT
    {{group_columns}}agent,
    agent_version,
    min(first_call) AS first_seen,
    count(*) AS runs,
    sum(calls) AS calls,
    sum(usd) AS usd,
    costattr_per(sum(usd), count(usd)) AS usd_per_run,
    sum(unpriced_calls) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    sum(unpriced_calls_repriced) AS unpriced_calls_repriced
FROM per_run
GROUP BY {{group}}agent, agent_version
ORDER BY {{group}}sum(sum(usd)) OVER (PARTITION BY {{group}}agent) DESC NULLS LAST, agent NULLS LAST,
         first_seen, agent_version;
