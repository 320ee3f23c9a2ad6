-- Migration 0015_rollup_facts_input_calls: per_step's average input tokens leaves out the calls
-- that report no input (stored with 0 input tokens: a stream without its usage, a refused
-- request), which the facts kept before it counted in input_calls, lowering the average. The
-- per-step facts (costattr_fact_step) are corrected from the facts' own calls
-- (costattr_fact_calls holds every call the per-step rows sum, as in 0014): the spans are not
-- read again. A store made since counts them so already: then no row has such a call.
UPDATE costattr_fact_step AS s SET input_calls = s.input_calls - z.calls
FROM (
    SELECT date_trunc('day', start_time) AS day, agent_name, step, model, count(*) AS calls
    FROM costattr_fact_calls WHERE input_tokens = 0
    GROUP BY date_trunc('day', start_time), agent_name, step, model
) AS z
WHERE s.day = z.day AND s.agent_name IS NOT DISTINCT FROM z.agent_name
  AND s.step IS NOT DISTINCT FROM z.step AND s.model IS NOT DISTINCT FROM z.model;
