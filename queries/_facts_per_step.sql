-- per_step.sql answered from the rollup facts: whole UTC days of the window from
-- costattr_fact_step, the calls of the days at its edges (partly inside) from
-- costattr_fact_calls. avg_input_tokens is the average of the calls that report input tokens
-- (not NULL, not 0: per_step.sql), usage_calls.
-- A call not final yet is absent from the facts (costattr_fact_pending), and every other call is
-- in them as the contract attributes it: each row here is one call's (agent, step, model) with
-- sums that compose (avg_input_tokens too: tokens over calls reporting them), so the pending
-- calls are added as the contract attributes them now, and nothing else changes.
WITH parts AS (
    SELECT agent_name, step, model, calls, input_tokens, usage_calls, usd, unpriced_calls
    FROM costattr_fact_step
    WHERE ($since IS NULL OR day >= $since) AND ($until IS NULL OR day + INTERVAL 1 DAY <= $until)
    UNION ALL
    SELECT agent_name, step, model, 1, input_tokens, CASE WHEN coalesce(input_tokens, 0) = 0 THEN 0 ELSE 1 END, cost_usd,
           CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END
    FROM costattr_fact_calls
    WHERE $since IS NOT NULL AND start_time >= $since
      AND start_time < date_trunc('day', $since::TIMESTAMP) + INTERVAL 1 DAY
      AND ($until IS NULL OR start_time < $until)
      AND NOT (date_trunc('day', start_time) >= $since
               AND ($until IS NULL OR date_trunc('day', start_time) + INTERVAL 1 DAY <= $until))
    UNION ALL  -- the last day, unless it is the first one too
    SELECT agent_name, step, model, 1, input_tokens, CASE WHEN coalesce(input_tokens, 0) = 0 THEN 0 ELSE 1 END, cost_usd,
           CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END
    FROM costattr_fact_calls
    WHERE $until IS NOT NULL AND start_time >= date_trunc('day', $until::TIMESTAMP) AND start_time < $until
      AND ($since IS NULL OR start_time >= date_trunc('day', $since::TIMESTAMP) + INTERVAL 1 DAY)
      AND date_trunc('day', start_time) + INTERVAL 1 DAY > $until
    -- @pending begin: the calls not final yet, of the traces listed in costattr_traces
    UNION ALL
    SELECT agent_name, step, model, 1, input_tokens, CASE WHEN coalesce(input_tokens, 0) = 0 THEN 0 ELSE 1 END, cost_usd,
           CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END
    FROM costattr_attributed_pending($since, $until, NULL, NULL, NULL, p_traces := true)
    WHERE call_row IN (SELECT call_row FROM costattr_fact_pending)
    -- @pending end
)
SELECT
    agent_name AS agent,
    step,
    model,
    sum(calls)::BIGINT AS calls,
    round(sum(input_tokens) / nullif(sum(usage_calls), 0))::BIGINT AS avg_input_tokens,
    sum(usd) AS usd,
    sum(unpriced_calls)::BIGINT AS unpriced_calls
FROM parts
GROUP BY agent_name, step, model
ORDER BY agent_name NULLS LAST, step NULLS LAST, usd DESC NULLS LAST, model NULLS LAST;
