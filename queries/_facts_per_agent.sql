-- per_agent.sql answered from the rollup facts: as _facts_per_feature.sql, per run and agent
-- version (costattr_fact_agent); a run with a call not final yet read from the contract.
WITH across AS MATERIALIZED (
    SELECT trace_id, agent_name, agent_version, first_call, last_call
    FROM costattr_fact_agent
    WHERE NOT (($since IS NULL OR first_call >= $since) AND ($until IS NULL OR last_call < $until))
      AND ($until IS NULL OR first_call < $until) AND ($since IS NULL OR last_call >= $since)
      AND tkey NOT IN (SELECT hash(trace_id) FROM costattr_traces)  -- @pending
),
per_run AS (
    SELECT agent_name AS agent, agent_version, min(first_call) AS first_call, count(*) AS runs,
           count(usd) AS priced_runs, sum(calls) AS calls, sum(usd) AS usd, sum(unpriced_calls) AS unpriced_calls
    FROM costattr_fact_agent
    WHERE ($since IS NULL OR first_call >= $since) AND ($until IS NULL OR last_call < $until)
      AND tkey NOT IN (SELECT hash(trace_id) FROM costattr_traces)  -- @pending
    GROUP BY agent_name, agent_version
    UNION ALL
    SELECT agent_name, agent_version, min(start_time),
           1, (sum(cost_usd) IS NOT NULL)::INT, count(*), sum(cost_usd),
           count(*) FILTER (WHERE cost_usd IS NULL)
    FROM costattr_fact_calls AS c
    WHERE start_time >= (SELECT min(greatest(first_call, coalesce($since, first_call))) FROM across)
      AND start_time <= (SELECT max(least(last_call, coalesce($until, last_call))) FROM across)
      AND ($since IS NULL OR start_time >= $since) AND ($until IS NULL OR start_time < $until)
      AND EXISTS (SELECT 1 FROM across AS a
                  WHERE a.trace_id = c.trace_id AND a.agent_name IS NOT DISTINCT FROM c.agent_name
                    AND a.agent_version IS NOT DISTINCT FROM c.agent_version)
    GROUP BY agent_name, agent_version, trace_id
    -- @pending begin: the runs listed in costattr_traces, from the contract
    UNION ALL
    SELECT agent_name, agent_version, min(start_time),
           1, (sum(cost_usd) IS NOT NULL)::INT, count(*), sum(cost_usd),
           count(*) FILTER (WHERE cost_usd IS NULL)
    FROM costattr_attributed_pending($since, $until, NULL, NULL, NULL, p_traces := true)
    GROUP BY agent_name, agent_version, trace_id
    -- @pending end
)
SELECT
    agent,
    agent_version,
    min(first_call) AS first_seen,
    sum(runs)::BIGINT AS runs,
    sum(calls) AS calls,
    sum(usd) AS usd,
    costattr_per(sum(usd), sum(priced_runs)::BIGINT) AS usd_per_run,
    sum(unpriced_calls) AS unpriced_calls
FROM per_run
GROUP BY agent, agent_version
ORDER BY sum(sum(usd)) OVER (PARTITION BY agent) DESC NULLS LAST, agent NULLS LAST,
         first_seen, agent_version;
