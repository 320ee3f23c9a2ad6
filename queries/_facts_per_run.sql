-- per_run.sql answered from the rollup facts: a run whose calls all lie in the window is its
-- row of costattr_fact_run; one with calls on both sides of an edge is computed from its calls
-- in the window (costattr_fact_calls). The newest runs are chosen first, then their roots read
-- (kept with the run's facts: name, start, end, agent and feature as the contract's runs say).
-- A run with a call not final yet (listed in costattr_traces) is computed from the call
-- contract, all its calls in the window, and joins the others before the newest are chosen;
-- its roots are in its row of costattr_fact_run all the same (when it has one).
WITH across AS MATERIALIZED (
    SELECT rowid AS fact_row, trace_id, first_call, last_call
    FROM costattr_fact_run
    WHERE NOT (($since IS NULL OR first_call >= $since) AND ($until IS NULL OR last_call < $until))
      AND ($until IS NULL OR first_call < $until) AND ($since IS NULL OR last_call >= $since)
      AND tkey NOT IN (SELECT hash(trace_id) FROM costattr_traces)  -- @pending
),
per_trace AS (
    SELECT rowid AS fact_row, trace_id, calls, unpriced_calls, usd,
           unpriced_tokens::HUGEINT AS unpriced_tokens, first_call, last_end, first_agent,
           first_feature
    FROM costattr_fact_run
    WHERE calls > 0
      AND ($since IS NULL OR first_call >= $since) AND ($until IS NULL OR last_call < $until)
      AND tkey NOT IN (SELECT hash(trace_id) FROM costattr_traces)  -- @pending
    UNION ALL
    SELECT
        a.fact_row, c.trace_id, count(*), count(*) FILTER (WHERE cost_usd IS NULL), sum(cost_usd),
        coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))
                 FILTER (WHERE cost_usd IS NULL), 0),
        min(start_time), max(end_time),
        arg_min(agent_name, start_time) FILTER (WHERE agent_name IS NOT NULL),
        arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL)
    FROM costattr_fact_calls AS c
    JOIN across AS a ON a.trace_id = c.trace_id
    WHERE start_time >= (SELECT min(greatest(first_call, coalesce($since, first_call))) FROM across)
      AND start_time <= (SELECT max(least(last_call, coalesce($until, last_call))) FROM across)
      AND ($since IS NULL OR start_time >= $since) AND ($until IS NULL OR start_time < $until)
    GROUP BY a.fact_row, c.trace_id
    -- @pending begin: the runs listed in costattr_traces, from the contract
    UNION ALL
    SELECT f.fact_row, p.* EXCLUDE (tkey)
    FROM (
        SELECT
            hash(trace_id) AS tkey, trace_id, count(*), count(*) FILTER (WHERE cost_usd IS NULL),
            sum(cost_usd),
            coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))
                     FILTER (WHERE cost_usd IS NULL), 0),
            min(start_time), max(end_time),
            arg_min(agent_name, start_time) FILTER (WHERE agent_name IS NOT NULL),
            arg_min(feature, start_time) FILTER (WHERE feature IS NOT NULL)
        FROM costattr_attributed_pending($since, $until, NULL, NULL, NULL, p_traces := true)
        GROUP BY trace_id
    ) AS p
    -- (their rows found by key among all, then read: joined to the whole table, the join read
    -- and hashed every run's key and trace id, 80-90 ms of CPU at 10M spans)
    LEFT JOIN (
        SELECT rowid AS fact_row, tkey, trace_id FROM costattr_fact_run
        WHERE rowid IN (SELECT rowid FROM costattr_fact_run
                        WHERE tkey IN (SELECT hash(trace_id) FROM costattr_traces))
    ) AS f ON f.tkey = p.tkey AND f.trace_id = p.trace_id
    -- @pending end
),
kept AS MATERIALIZED (
    SELECT * FROM per_trace ORDER BY first_call DESC, trace_id LIMIT nullif($limit, 0)
),
roots AS (
    SELECT rowid AS fact_row, root_name AS name, root_start AS start_time, root_end AS end_time,
           root_agent AS agent_name, root_feature AS feature
    FROM costattr_fact_run
    WHERE rowid IN (SELECT fact_row FROM kept)
)
SELECT
    k.trace_id,
    r.name AS run_name,
    coalesce(r.agent_name, k.first_agent) AS agent,
    coalesce(r.feature, k.first_feature) AS feature,
    coalesce(r.start_time, k.first_call) AS start_time,
    (epoch_us(coalesce(r.end_time, k.last_end))
     - epoch_us(coalesce(r.start_time, k.first_call))) / 1000.0 AS duration_ms,
    k.calls, k.unpriced_calls, k.unpriced_tokens, k.usd
FROM kept AS k
LEFT JOIN roots AS r ON r.fact_row = k.fact_row
ORDER BY k.first_call DESC, k.trace_id;
