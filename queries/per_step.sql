-- @about The shape of the loop: per agent, step and model, calls, average input tokens, usd and unpriced calls (does cost climb with the step?).
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- Per agent and model too: agents with different models share step numbers, and one agent's
-- final answers are not "step 2" of another's. avg_input_tokens leaves out the calls that
-- report no input (stored as 0: a stream without its usage, a refused request; every
-- request a model reads has at least one input token).
SELECT
    {{group_columns}}agent_name AS agent,
    step,
    model,
    count(*) AS calls,
    round(avg(nullif(input_tokens, 0)))::BIGINT AS avg_input_tokens,
    sum(cost_usd) AS usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
FROM costattr_calls($since, $until, $service, $feature, $agent)
GROUP BY {{group}}agent_name, step, model
ORDER BY {{group}}agent_name NULLS LAST, step NULLS LAST, usd DESC NULLS LAST, model NULLS LAST;
