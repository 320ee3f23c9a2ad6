-- Prelude run by rollups/queries.py on every connection: costattr_runs (see _calls.sql) with
-- unpriced_tokens added, the input + output tokens of the run's calls that cost_usd leaves out
-- (unpriced, invalid usage, implausible): what per_run and top_runs show beside usd. Only the
-- runs kept (p_order, p_limit) that have unpriced calls are read again.
CREATE OR REPLACE TEMP MACRO costattr_runs_unpriced(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit) AS TABLE
WITH kept AS MATERIALIZED (
    SELECT * FROM costattr_runs(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit)
),
-- The calls are read again from the first call of the earliest such run only (each run's
-- calls start at or after its first_call): with none, from the end of time, which the scan
-- of spans skips at once instead of attributing every call of the window a second time.
unpriced AS (
    SELECT trace_id, sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens
    FROM costattr_calls(
        greatest(p_since, (SELECT coalesce(min(first_call), TIMESTAMP '9999-12-31')
                           FROM kept WHERE unpriced_calls > 0)),
        p_until, p_service, p_feature, p_agent)
    WHERE cost_usd IS NULL AND trace_id IN (SELECT trace_id FROM kept WHERE unpriced_calls > 0)
    GROUP BY trace_id
)
SELECT k.*, coalesce(u.tokens, 0) AS unpriced_tokens
FROM kept AS k
LEFT JOIN unpriced AS u ON u.trace_id = k.trace_id;
