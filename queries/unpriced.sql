-- @about Calls our prices did not price (unknown model, invalid or missing usage), by model, with their tokens; usd: a cost their spans carried from elsewhere (a bare gen_ai.usage.cost beside usage we cannot read), summed by the other rollups.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
SELECT
    {{group_columns}}cost_status,
    provider,
    model,
    count(*) AS calls,
    count(DISTINCT trace_id) AS runs,
    -- a call that reported no usage is stored with 0 tokens: unknown here, not 0 (per-step)
    CASE WHEN cost_status <> 'no_usage' THEN sum(input_tokens) END AS input_tokens,
    CASE WHEN cost_status <> 'no_usage' THEN sum(output_tokens) END AS output_tokens,
    CASE WHEN cost_status <> 'no_usage' THEN sum(cache_read_tokens) END AS cache_read_tokens,
    CASE WHEN cost_status <> 'no_usage' THEN sum(cache_write_tokens) END AS cache_write_tokens,
    -- A call whose usage our prices cannot read may carry a figure of its own (a bare
    -- gen_ai.usage.cost, an instrumentation's estimate), which stands, so the other rollups
    -- sum it and do not count the call in unpriced_calls: shown here, NULL when none.
    sum(cost_usd) AS usd,
    string_agg(DISTINCT feature, ', ' ORDER BY feature) AS features,
    max(start_time) AS last_seen,
    arg_max(trace_id, (start_time, trace_id)) AS example_trace_id,  -- ties: one answer on every engine
    sum(usd_repriced) AS usd_repriced,
    count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
FROM costattr_calls($since, $until, $service, $feature, $agent)
WHERE cost_usd IS NULL OR cost_status IS DISTINCT FROM 'priced'
GROUP BY {{group}}cost_status, provider, model
ORDER BY {{group}}calls DESC, cost_status, provider NULLS LAST, model NULLS LAST;
