-- @about Cost per provider and model, with tokens by kind (cache and reasoning included).
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
SELECT
    {{group_columns}}provider,
    model,
    count(*) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
FROM costattr_calls($since, $until, $service, $feature, $agent)
GROUP BY {{group}}provider, model
ORDER BY {{group}}usd DESC NULLS LAST, provider NULLS LAST, model NULLS LAST;
