-- @about Per agent and step: calls, average input tokens, usd, usd per priced call and unpriced calls (does each agent's cost climb with the step?).
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
SELECT
    {{group_columns}}agent_name AS agent,
    step,
    count(*) AS calls,
    round(avg(nullif(input_tokens, 0)))::BIGINT AS avg_input_tokens,  -- as per_step.sql
    sum(cost_usd) AS usd,
    costattr_per(sum(cost_usd), count(cost_usd)) AS usd_per_call,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
FROM costattr_calls($since, $until, $service, $feature, $agent)
GROUP BY {{group}}agent_name, step
ORDER BY {{group}}sum(sum(cost_usd)) OVER (PARTITION BY {{group}}agent_name) DESC NULLS LAST, agent NULLS LAST, step NULLS LAST;
