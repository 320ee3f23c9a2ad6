-- Recompute each call's cost from its stored tokens with the prices in costattr_prices
-- (loaded by rollups.load_prices), exactly as otel_costattr.compute_cost does: the period in
-- force at the call's start; in it, the call's service tier when the period prices it, else
-- a time-of-day window the call started in, else the standard rates; then the highest
-- long-context tier the request's input exceeds; cached tokens at the cache rates only,
-- reasoning at the reasoning rate. Stored tokens are normalised
-- (input includes cache reads and writes, output includes reasoning). Calls whose model the
-- table does not know, or without usage, get no row: usd_repriced stays NULL.
INSERT INTO costattr_repriced
WITH usage AS (
    SELECT
        trace_id, span_id, start_time, provider,
        (epoch_us(start_time) // 1000000) % 86400 AS second_of_day,
        coalesce(response_model, request_model) AS reported_model,
        nullif(lower(list_filter(json_extract_string(attributes, $tier_paths),
                                 lambda t: t IS NOT NULL)[1]), '') AS tier,
        greatest(input_tokens - cache_read_tokens - cache_write_tokens, 0) AS n_uncached,
        cache_read_tokens AS n_read,
        cache_write_tokens AS n_write,
        CASE WHEN cache_write_tokens > 0
             THEN coalesce(TRY_CAST(json_extract_string(attributes, $write_1h_path) AS BIGINT), 0)
             ELSE 0 END AS n_write_1h,
        greatest(output_tokens - reasoning_tokens, 0) AS n_visible,
        reasoning_tokens AS n_reasoning
    FROM costattr_calls($since, $until, $service, $feature, $agent, p_trace := $trace_id)
    WHERE input_tokens IS NOT NULL
),
candidates AS (
    SELECT
        u.trace_id, u.span_id,
        (u.n_uncached * p.input + u.n_read * p.cache_read
         + (u.n_write - u.n_write_1h) * p.cache_write + u.n_write_1h * p.cache_write_1h
         + u.n_visible * p.output + u.n_reasoning * p.reasoning) * 0.000001 AS usd,
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
     AND (p.above IS NULL OR u.n_uncached + u.n_read + u.n_write > p.above)
    WHERE u.n_write_1h BETWEEN 0 AND u.n_write  -- else invalid usage: no price
)
SELECT trace_id, span_id, usd
FROM candidates
WHERE pick = 1;
