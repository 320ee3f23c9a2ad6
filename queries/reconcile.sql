-- @about Calls whose provider-reported cost differs from ours by more than pct percent, with their run's totals.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param pct DOUBLE = 1          list a call when the two differ by more than this many percent
-- A cost the provider reported is the call's cost (costattr.cost_source = 'provider', see
-- cost/reported.py); our own figure is kept beside it in costattr.computed_cost. usd_diff is
-- provider minus ours; diff_pct is relative to ours (NULL when ours is 0). The run columns
-- sum every provider-reported call of the run, listed or not. Both attributes are read from
-- their columns (attr_*, the contract's: the JSON read gives the same text, parsing all of it).
WITH reported AS (
    SELECT
        {{group}}trace_id,
        span_id,
        start_time,
        service_name,
        feature,
        provider,
        model,
        priced_model,
        cost_usd AS provider_usd,
        TRY_CAST(attr_costattr_computed_cost AS DECIMAL(38, 12)) AS computed_usd
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    WHERE attr_costattr_cost_source = 'provider'
), runs AS (
    SELECT
        {{group}}trace_id,
        sum(provider_usd) AS run_provider_usd,
        sum(computed_usd) AS run_computed_usd
    FROM reported
    GROUP BY {{group}}trace_id
)
SELECT
    {{group_columns(r)}}r.trace_id,
    r.span_id,
    r.start_time,
    r.service_name,
    r.feature,
    r.provider,
    r.model,
    r.priced_model,
    r.provider_usd,
    r.computed_usd,
    r.provider_usd - r.computed_usd AS usd_diff,
    round(100 * (r.provider_usd - r.computed_usd) / nullif(r.computed_usd, 0), 2) AS diff_pct,
    u.run_provider_usd,
    u.run_computed_usd,
    round(100 * (u.run_provider_usd - u.run_computed_usd) / nullif(u.run_computed_usd, 0), 2) AS run_diff_pct
FROM reported AS r
JOIN runs AS u ON u.trace_id = r.trace_id{{group_join(u, r)}}
WHERE r.computed_usd IS NOT NULL
  AND r.provider_usd IS NOT NULL
  AND abs(r.provider_usd - r.computed_usd) * 100 > $pct * r.computed_usd
ORDER BY {{group(r)}}abs(r.provider_usd - r.computed_usd) DESC, r.start_time, r.span_id;
