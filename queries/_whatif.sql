-- @about What-if: actual cost against the cost of the selected calls' stored tokens at another model's prices, in total, per feature and per run.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param step INTEGER = NULL     only calls at this agent step
-- @param limit INTEGER = 20      at most this many runs, the largest differences (up or down) first (0: all)
-- Run by rollups/whatif.py after it repriced (_reprice.sql) every call whose reported model
-- it selected (--from) at the target's prices: costattr_model_map holds those models. A call
-- is selected when its model is mapped and its step matches; its what-if cost is the
-- repriced one, else (not selected, or the target cannot price its tokens: invalid or
-- missing usage) its actual cost. Totals sum what is priced, as every rollup does: a selected
-- call without an actual price (unpriced_calls) that the target prices adds to whatif_usd
-- only (the question "what would this unknown fine-tune cost on a known model?"), never to
-- change_usd and change_share, which compare the calls that have an actual price (an unknown
-- actual taken as zero read "+100%" for a target that changes nothing); they are unknown
-- (NULL) where calls were selected and none of them has an actual price: nothing was
-- compared (a review: "$0.000000 0.0%" for a what-if on an unknown fine-tune). Runs are
-- ranked by how far their what-if cost is from their actual one, unknown calls' repriced
-- cost included, so the runs holding the selected calls come first either way.
WITH marked AS (
    SELECT
        c.trace_id, c.feature, c.cost_usd, c.usd_repriced,
        m.model IS NOT NULL AND ($step IS NULL OR c.step = $step) AS selected
    FROM costattr_calls($since, $until, $service, $feature, $agent) AS c
    LEFT JOIN costattr_model_map AS m
      ON m.model = coalesce(c.response_model, c.request_model) AND m.provider IS NOT DISTINCT FROM c.provider
),
per_run AS (
    SELECT
        feature, trace_id,
        count(*) AS calls,
        count(*) FILTER (WHERE selected) AS selected_calls,
        count(*) FILTER (WHERE selected AND usd_repriced IS NULL) AS unpriceable_calls,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        count(*) FILTER (WHERE selected AND cost_usd IS NOT NULL) AS compared_calls,
        sum(cost_usd) AS actual_usd,
        sum(CASE WHEN selected AND usd_repriced IS NOT NULL THEN usd_repriced ELSE cost_usd END)
            AS whatif_usd,
        sum(CASE WHEN cost_usd IS NULL THEN NULL WHEN selected AND usd_repriced IS NOT NULL
                 THEN usd_repriced ELSE cost_usd END) AS compared_usd
    FROM marked
    GROUP BY feature, trace_id
),
-- A run whose calls serve two features (a sub-agent on another one) counts once in the
-- total and is one run row (its feature when it has one only), and once in each feature.
levels AS (
    SELECT
        CASE WHEN grouping(feature, trace_id) = 3 THEN 'total'
             WHEN grouping(feature, trace_id) = 1 THEN 'feature' ELSE 'run' END AS level,
        CASE WHEN grouping(feature) = 0 THEN feature
             WHEN grouping(trace_id) = 0 AND count(feature) = count(*) AND count(DISTINCT feature) = 1
             THEN min(feature) END AS feature,
        trace_id,
        count(DISTINCT trace_id) AS runs,
        -- counts are 0 over no calls (the total row of an empty window), money stays unknown
        coalesce(sum(calls), 0) AS calls, coalesce(sum(selected_calls), 0) AS selected_calls,
        coalesce(sum(unpriceable_calls), 0) AS unpriceable_calls,
        coalesce(sum(unpriced_calls), 0) AS unpriced_calls,
        coalesce(sum(compared_calls), 0) AS compared_calls,
        sum(actual_usd) AS actual_usd,
        CAST(sum(whatif_usd) AS DECIMAL(38, 12)) AS whatif_usd,
        CAST(sum(compared_usd) AS DECIMAL(38, 12)) AS compared_usd
    FROM per_run
    GROUP BY GROUPING SETS ((), (feature), (trace_id))
),
changed AS (
    SELECT
        *,
        CASE WHEN selected_calls = 0 OR compared_calls > 0 THEN compared_usd - actual_usd END AS change_usd,
        -- the largest differences, up or down (a dearer target raises runs: those are the news)
        abs(coalesce(whatif_usd, 0) - coalesce(actual_usd, 0)) AS moved
    FROM levels
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY level ORDER BY moved DESC, selected_calls DESC, trace_id) AS rank
    FROM changed
)
SELECT
    level, feature, trace_id, runs, calls, selected_calls, unpriceable_calls, unpriced_calls, actual_usd,
    whatif_usd, change_usd,
    CAST(change_usd / nullif(actual_usd, 0) AS DOUBLE) AS change_share
FROM ranked
WHERE level <> 'run' OR $limit = 0 OR rank <= $limit
ORDER BY CASE level WHEN 'total' THEN 0 WHEN 'feature' THEN 1 ELSE 2 END, moved DESC, selected_calls DESC,
         feature NULLS LAST, trace_id;
