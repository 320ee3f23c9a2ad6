-- Migration 0015_rollup_facts_usage_calls: per_step's average input is over the calls that
-- report input; a call without usage (a stream without its counts, a refused request) is
-- stored with 0 input tokens, and the per-step facts' input_calls, which versions before this
-- one average over, counts it, lowering the average. costattr_fact_step gains usage_calls (the
-- calls whose input_tokens is neither NULL nor 0), added last as 0014 added unpriced_calls:
-- _facts.sql fills the table by position, so the upkeep of a version before this one now
-- fails on it (the rollups read the contract until this version's next upkeep) instead of
-- counting such calls. The counts are set, not adjusted, from costattr_fact_calls, which
-- holds every call the per-step rows sum (0014): right whoever built the facts, a store
-- made since (whose table has the column already) included. Every per-step row has calls
-- there; a row whose calls all lack usage keeps 0.
ALTER TABLE costattr_fact_step ADD COLUMN IF NOT EXISTS usage_calls BIGINT DEFAULT 0;
ALTER TABLE costattr_fact_step ALTER COLUMN usage_calls DROP DEFAULT;
UPDATE costattr_fact_step SET usage_calls = 0;
UPDATE costattr_fact_step AS s SET usage_calls = u.usage_calls
FROM (
    SELECT date_trunc('day', start_time) AS day, agent_name, step, model, count(*) AS usage_calls
    FROM costattr_fact_calls WHERE input_tokens <> 0
    GROUP BY date_trunc('day', start_time), agent_name, step, model
) AS u
WHERE s.day = u.day AND s.agent_name IS NOT DISTINCT FROM u.agent_name
  AND s.step IS NOT DISTINCT FROM u.step AND s.model IS NOT DISTINCT FROM u.model;
