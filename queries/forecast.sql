-- @about Month to date and a linear month-end projection, per feature (or --group-by KEY), beside last month's cost.
-- @param until TIMESTAMP = NOW   as of this time (UTC; default: now): its month is the one projected
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param group_by VARCHAR = feature  what to project: feature, agent, model, provider, service or an identity key
-- projected_usd = month-to-date usd x (seconds in the month / seconds elapsed), exact to
-- the 12th place (past 10^13 USD to date, a double's 16 digits): a straight
-- line through the month so far, no seasonality (early in a month it swings widely:
-- month_elapsed says how much of the month it stands on). A row whose calls begin this month
-- (none the month before: a store, or a feature, started on the 20th) is projected from its
-- first day with a call (UTC), in both figures, not read as 19 days of nothing. Each month's
-- unpriced calls are counted beside its cost (last_month_usd is the priced part). The first
-- row is the total, its own line through every call, the same whatever the grouping (the
-- rows, each from its own first day, may sum above it: every user first seen this month
-- projected as if they went on daily), never the rows' sum.
WITH bounds AS (
    SELECT
        date_trunc('month', $until) AS month_start,
        date_trunc('month', $until) - INTERVAL 1 MONTH AS last_month_start,
        date_trunc('month', $until) + INTERVAL 1 MONTH AS month_end
),
windowed AS (
    SELECT {{dimension($group_by)}} AS value, c.start_time >= b.month_start AS this_month, c.trace_id, c.cost_usd,
           c.usd_repriced, c.start_time
    FROM costattr_calls((SELECT last_month_start FROM bounds), $until, $service, $feature, $agent) AS c, bounds AS b
),
per_value AS (
    SELECT
        CASE WHEN grouping(value) = 1 THEN 'total' ELSE 'group' END AS level,
        value,
        count(DISTINCT trace_id) FILTER (WHERE this_month) AS runs,
        sum(cost_usd) FILTER (WHERE this_month) AS month_to_date_usd,
        sum(cost_usd) FILTER (WHERE NOT this_month) AS last_month_usd,
        count(*) FILTER (WHERE this_month AND cost_usd IS NULL) AS unpriced_calls,
        count(*) FILTER (WHERE NOT this_month AND cost_usd IS NULL) AS last_month_unpriced_calls,
        sum(usd_repriced) FILTER (WHERE this_month) AS month_to_date_usd_repriced,
        count(*) FILTER (WHERE this_month AND usd_repriced IS NULL) AS unpriced_calls_repriced,
        min(start_time) AS first_call
    FROM windowed
    GROUP BY GROUPING SETS ((), (value))
),
covered AS (  -- per row: the month's start, or its first day with a call when its calls begin
    -- this month (a feature launched on the 20th, or a store started then): one rule for a
    -- value's row and the same value filtered alone (--feature new read 5x its row: a review)
    SELECT p.level, p.value, greatest(b.month_start, coalesce(date_trunc('day', p.first_call), b.month_start)) AS since
    FROM bounds AS b, per_value AS p
),
elapsed AS (  -- in microseconds, whole numbers: the projection divides them exactly
    SELECT
        c.level, c.value,
        CAST((epoch($until) - epoch(c.since)) * 1000000 AS BIGINT) AS us_elapsed,
        CAST((epoch(b.month_end) - epoch(c.since)) * 1000000 AS BIGINT) AS us_to_project,
        CAST((epoch(b.month_end) - epoch(b.month_start)) * 1000000 AS BIGINT) AS us_in_month
    FROM bounds AS b, covered AS c
)
SELECT
    p.level, $group_by AS "key", p.value, p.runs, p.month_to_date_usd,
    CASE WHEN abs(p.month_to_date_usd) < 10000000000000  -- exact: the product fits DECIMAL(38, 12)
        THEN costattr_per(p.month_to_date_usd * e.us_to_project, e.us_elapsed)
        ELSE CAST(p.month_to_date_usd * e.us_to_project / nullif(e.us_elapsed, 0) AS DECIMAL(38, 12))
    END AS projected_usd,
    p.last_month_usd, p.last_month_unpriced_calls,
    CAST(e.us_elapsed / e.us_in_month AS DOUBLE) AS month_elapsed,
    p.unpriced_calls, p.month_to_date_usd_repriced, p.unpriced_calls_repriced
FROM per_value AS p
JOIN elapsed AS e ON e.level = p.level AND e.value IS NOT DISTINCT FROM p.value
ORDER BY p.level = 'group', projected_usd DESC NULLS LAST, p.value NULLS LAST;
