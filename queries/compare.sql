-- @about This period against the one before it, of the same length, per feature (or --group-by KEY): usd then and now, the change, the biggest movers first.
-- @param since TIMESTAMP = 7d    start of this period (inclusive, UTC; default: 7 days before until)
-- @param until TIMESTAMP = NOW   end of this period (exclusive, UTC; default: now)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param group_by VARCHAR = feature  what to compare: feature, agent, model, provider, service or an identity key
-- The previous period is [since - (until - since), since). The first row (level 'total') is
-- the whole window; then one row per value, the largest absolute change first. A value
-- present in one period only has NULL usd in the other (new, or gone); change_share is NULL
-- when the previous period cost nothing. A period without calls cost 0; one with an unpriced
-- call cost what no one knows: change_usd and change_share are then NULL (a model switch the
-- prices have not caught up with is no drop to zero), whatever the grouping; unpriced_calls and
-- previous_unpriced_calls say why (with --reprice, the *_unpriced_calls_repriced: calls the
-- prices given could not price, left out of *_usd_repriced). Every count and sum is per period: previous_* for the
-- period before, the bare name for this one.
WITH windowed AS (
    SELECT
        {{dimension($group_by)}} AS value,
        start_time >= $since AS is_current,
        trace_id, cost_usd, usd_repriced
    FROM costattr_calls($since - ($until - $since), $until, $service, $feature, $agent)
),
per_value AS (
    SELECT
        CASE WHEN grouping(value) = 1 THEN 'total' ELSE 'group' END AS level,
        value,
        count(DISTINCT trace_id) FILTER (WHERE NOT is_current) AS previous_runs,
        count(DISTINCT trace_id) FILTER (WHERE is_current) AS runs,
        count(*) FILTER (WHERE NOT is_current) AS previous_calls,
        count(*) FILTER (WHERE is_current) AS calls,
        sum(cost_usd) FILTER (WHERE NOT is_current) AS previous_usd,
        sum(cost_usd) FILTER (WHERE is_current) AS usd,
        count(*) FILTER (WHERE cost_usd IS NULL AND NOT is_current) AS previous_unpriced_calls,
        count(*) FILTER (WHERE cost_usd IS NULL AND is_current) AS unpriced_calls,
        sum(usd_repriced) FILTER (WHERE NOT is_current) AS previous_usd_repriced,
        sum(usd_repriced) FILTER (WHERE is_current) AS usd_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL AND NOT is_current) AS previous_unpriced_calls_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL AND is_current) AS unpriced_calls_repriced
    FROM windowed
    GROUP BY GROUPING SETS ((), (value))
),
-- A change is known only where both periods are wholly priced: an unpriced call costs what
-- no one knows (a feature gone to a model the prices lack read -100%, and the total beside
-- it -88.9%, or not, by the grouping: reviews).
compared AS (
    SELECT *, unpriced_calls = 0 AND previous_unpriced_calls = 0 AS known
    FROM per_value
)
SELECT
    level, $group_by AS "key", value, previous_runs, runs, previous_calls, calls, previous_usd, usd,
    CASE WHEN known AND (usd IS NOT NULL OR previous_usd IS NOT NULL)
        THEN coalesce(usd, 0) - coalesce(previous_usd, 0) END AS change_usd,
    CASE WHEN known
        THEN CAST((coalesce(usd, 0) - previous_usd) / nullif(previous_usd, 0) AS DOUBLE) END AS change_share,
    previous_unpriced_calls, unpriced_calls, previous_usd_repriced, usd_repriced,
    previous_unpriced_calls_repriced, unpriced_calls_repriced
FROM compared
ORDER BY level = 'group', abs(coalesce(usd, 0) - coalesce(previous_usd, 0)) DESC, value NULLS LAST;
