-- @about The headline of a window, one row: runs, calls, usd, usd per run, unpriced calls.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- Two levels (run, then all) as per_feature.sql does: usd_per_run divides by the runs of the
-- window with a price (unpriced_calls says what the cost leaves out: a run of an unknown
-- model counted at no cost made the average 10x too low), each run's calls counted once.
WITH per_run AS (
    SELECT
        {{group}}trace_id,
        count(*) AS calls,
        sum(cost_usd) AS usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        sum(usd_repriced) AS usd_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    GROUP BY {{group}}trace_id
)
SELECT
    {{group_columns}}count(*) AS runs,
    coalesce(sum(calls), 0)::BIGINT AS calls,
    sum(usd) AS usd,
    costattr_per(sum(usd), count(usd)) AS usd_per_run,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls,
    sum(usd_repriced) AS usd_repriced,
    -- --reprice: the calls the prices given could not price, left out of usd_repriced
    coalesce(sum(unpriced_calls_repriced), 0)::BIGINT AS unpriced_calls_repriced
FROM per_run
GROUP BY ALL
ORDER BY {{group}}runs DESC;
