-- Recompute each call's cost from its stored tokens with the prices in costattr_prices
-- (loaded by rollups.load_prices), exactly as otel_costattr.compute_cost does: the period in
-- force at the call's start; in it, the call's service tier when the period prices it, else
-- a time-of-day window the call started in, else the standard rates; then the highest
-- long-context tier the request's input exceeds; cached tokens at the cache rates only,
-- reasoning at the reasoning rate. Stored tokens are normalised
-- (input includes cache reads and writes, output includes reasoning). Calls whose model the
-- table does not know, or without usage, get no row: usd_repriced stays NULL.
-- The placeholders in double braces (the billable buckets, their cost, the input total) are
-- rendered from the one billing rule, otel_costattr.cost.billing.BUCKETS, by rollups.queries.
INSERT INTO costattr_repriced
WITH counts AS (
    SELECT
        trace_id, span_id, start_time, provider,
        (epoch_us(start_time) // 1000000) % 86400 AS second_of_day,
        coalesce(response_model, request_model) AS reported_model,
        -- the first spelling present and not empty, as semconv.read_call_fields reads it
        lower(list_filter(json_extract_string(attributes, $tier_paths),
                          lambda t: t IS NOT NULL AND t <> '')[1]) AS tier,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        CASE WHEN cache_write_tokens > 0
             THEN coalesce(TRY_CAST(list_filter(json_extract_string(attributes, $write_1h_paths),
                                                lambda t: t IS NOT NULL)[1] AS BIGINT), 0)
             ELSE 0 END AS cache_write_1h_tokens
    FROM costattr_calls($since, $until, $service, $feature, $agent, p_trace := $trace_id)
    WHERE input_tokens IS NOT NULL
      -- A call that reported no usage stores zero counts: it is not a call that cost nothing.
      AND cost_status IS DISTINCT FROM 'no_usage'
      -- Nor is a call that cost something from no tokens: it carried a cost (its
      -- provider's, a bare figure) without its usage, so its zero counts say nothing.
      AND NOT (coalesce(cost_usd, 0) > 0 AND input_tokens = 0 AND coalesce(output_tokens, 0) = 0
               AND coalesce(cache_read_tokens, 0) = 0 AND coalesce(cache_write_tokens, 0) = 0
               AND coalesce(reasoning_tokens, 0) = 0)
      -- Counts the engine would call invalid (over cost.engine.MAX_TOKENS, 100,000,000, or
      -- negative: rows another tool wrote) get no price, as in compute_cost.
      AND greatest(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                   reasoning_tokens) <= 100000000
      AND least(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                reasoning_tokens) >= 0
),
usage AS (
    SELECT
        *,
        {{buckets}}
    FROM counts
),
candidates AS (
    SELECT
        u.trace_id, u.span_id,
        ({{usd}}) * 0.000001 AS usd,
        row_number() OVER (
            PARTITION BY u.trace_id, u.span_id
            ORDER BY coalesce(p.service_tier = u.tier, false) DESC, p.window_start IS NOT NULL DESC,
                     p.above DESC NULLS LAST
        ) AS pick
    FROM usage AS u
    JOIN costattr_model_map AS m
      ON m.model = u.reported_model AND m.provider IS NOT DISTINCT FROM u.provider
    JOIN costattr_prices AS p
      ON p.provider = m.price_provider AND p.model = m.price_model
     AND (p.valid_from IS NULL OR u.start_time >= p.valid_from)
     AND (p.valid_until IS NULL OR u.start_time < p.valid_until)
     AND (p.service_tier = u.tier OR p.service_tier = 'standard')
     AND (p.window_start IS NULL
          OR (p.window_start <= p.window_end AND u.second_of_day >= p.window_start
              AND u.second_of_day < p.window_end)
          OR (p.window_start > p.window_end AND (u.second_of_day >= p.window_start
                                                 OR u.second_of_day < p.window_end)))
     AND (p.above IS NULL OR {{total_input}} > p.above)
    WHERE u.cache_write_1h_tokens BETWEEN 0 AND u.cache_write_tokens  -- else invalid usage: no price
)
SELECT trace_id, span_id, usd
FROM candidates
-- The bound a stored cost has (spans.rows.MAX_CALL_USD): beyond it a repriced call is
-- implausible too, and is never summed.
WHERE pick = 1 AND usd BETWEEN 0 AND 1000000;
