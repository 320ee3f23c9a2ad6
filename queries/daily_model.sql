-- @about Cost per day (UTC) and model, for cost over time by model.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
SELECT
    {{group_columns}}CAST(start_time AS DATE) AS day,
    provider,
    model,
    count(*) AS calls,
    sum(cost_usd) AS usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
FROM costattr_calls($since, $until, $service, $feature, $agent)
GROUP BY {{group}}day, provider, model
ORDER BY {{group}}day, usd DESC NULLS LAST, provider NULLS LAST, model NULLS LAST;
