-- @about Cost per feature: runs, calls, input and output tokens, usd and usd per run.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- Two levels (run, then feature) rather than count(DISTINCT): same result, and DuckDB then
-- streams the calls once instead of materialising them for the distinct count.
WITH per_run AS (
    SELECT
        {{group}}feature,
        trace_id,
        count(*) AS calls,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_usd) AS usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        sum(usd_repriced) AS usd_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    GROUP BY {{group}}feature, trace_id
)
SELECT
    {{group_columns}}feature,
    count(*) AS runs,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(usd) AS usd,
    costattr_per(sum(usd), count(usd)) AS usd_per_run,
    sum(unpriced_calls) AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    sum(unpriced_calls_repriced) AS unpriced_calls_repriced
FROM per_run
GROUP BY {{group}}feature
ORDER BY {{group}}sum(usd) DESC NULLS LAST, feature NULLS LAST;
