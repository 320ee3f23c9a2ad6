-- per_feature.sql answered from the rollup facts (rollups/facts.py, when they are current;
-- store/aggregates.py keeps them). A run and feature whose calls all lie in the window is
-- one row of costattr_fact_feature; one with calls on both sides of an edge of the window is
-- computed from its calls (costattr_fact_calls) in the window. A run with a call not final
-- yet (the traces of costattr_fact_pending, listed in costattr_traces by rollups/facts.py) is
-- left out of the facts and read from the call contract instead: all its calls in the window,
-- attributed as the contract attributes them now.
WITH across AS MATERIALIZED (
    SELECT trace_id, feature, first_call, last_call
    FROM costattr_fact_feature
    WHERE NOT (($since IS NULL OR first_call >= $since) AND ($until IS NULL OR last_call < $until))
      AND ($until IS NULL OR first_call < $until) AND ($since IS NULL OR last_call >= $since)
      AND tkey NOT IN (SELECT hash(trace_id) FROM costattr_traces)  -- @pending
),
per_run AS (
    SELECT feature, count(*) AS runs, count(usd) AS priced_runs, sum(calls) AS calls,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(usd) AS usd,
           sum(unpriced_calls) AS unpriced_calls
    FROM costattr_fact_feature
    WHERE ($since IS NULL OR first_call >= $since) AND ($until IS NULL OR last_call < $until)
      AND tkey NOT IN (SELECT hash(trace_id) FROM costattr_traces)  -- @pending
    GROUP BY feature
    UNION ALL
    SELECT feature,
           1, (sum(cost_usd) IS NOT NULL)::INT, count(*), sum(input_tokens), sum(output_tokens),
           sum(cost_usd), count(*) FILTER (WHERE cost_usd IS NULL)
    FROM costattr_fact_calls AS c
    WHERE start_time >= (SELECT min(greatest(first_call, coalesce($since, first_call))) FROM across)
      AND start_time <= (SELECT max(least(last_call, coalesce($until, last_call))) FROM across)
      AND ($since IS NULL OR start_time >= $since) AND ($until IS NULL OR start_time < $until)
      AND EXISTS (SELECT 1 FROM across AS a
                  WHERE a.trace_id = c.trace_id AND a.feature IS NOT DISTINCT FROM c.feature)
    GROUP BY feature, trace_id
    -- @pending begin: the runs listed in costattr_traces, from the contract
    UNION ALL
    SELECT feature,
           1, (sum(cost_usd) IS NOT NULL)::INT, count(*), sum(input_tokens), sum(output_tokens),
           sum(cost_usd), count(*) FILTER (WHERE cost_usd IS NULL)
    FROM costattr_attributed_pending($since, $until, NULL, NULL, NULL, p_traces := true)
    GROUP BY feature, trace_id
    -- @pending end
)
SELECT
    feature,
    sum(runs)::BIGINT AS runs,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(usd) AS usd,
    costattr_per(sum(usd), sum(priced_runs)::BIGINT) AS usd_per_run,
    sum(unpriced_calls) AS unpriced_calls
FROM per_run
GROUP BY feature
ORDER BY sum(usd) DESC NULLS LAST, feature NULLS LAST;
