-- @about The overview: runs, calls, cost and average call latency, in total (first row, model NULL) and per model.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
SELECT
    {{group_columns}}provider,
    model,
    count(DISTINCT trace_id) AS runs,
    count(*) AS calls,
    sum(cost_usd) AS usd,
    CAST(sum(cost_usd) AS DOUBLE)
        / CAST(sum(sum(cost_usd)) OVER (PARTITION BY {{group}}grouping(provider, model) = 0) AS DOUBLE)
        AS usd_share,
    avg(duration_ms) AS avg_call_ms,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
FROM costattr_calls($since, $until, $service, $feature, $agent)
GROUP BY {{group}}GROUPING SETS ((), (provider, model))
ORDER BY {{group}}grouping(provider, model) DESC, usd DESC NULLS LAST, provider NULLS LAST, model NULLS LAST;
