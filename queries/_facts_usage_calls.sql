-- Migration 0015_rollup_facts_usage_calls: per_step's average input is over the calls that
-- report input; a call without usage (a stream without its counts, a refused request) is
-- stored with 0 input tokens, and the per-step facts' input_calls, which versions before this
-- one average over, counts it, lowering the average. costattr_fact_step gains usage_calls (the
-- calls whose input_tokens is neither NULL nor 0), added last as 0014 added unpriced_calls:
-- _facts.sql fills the table by position, so the upkeep of a version before this one now
-- fails on it (the rollups read the contract until this version's next upkeep) instead of
-- counting such calls.
--
-- The per-step rows are then made again from costattr_fact_calls, which holds every call they
-- sum (0014), each count as _facts.sql counts it: right whoever built the facts, a store made
-- since included, and for calls stored without a start time (OTLP's start 0), whose NULL day
-- no join on the day matches, and whose rows the upkeep kept apart until this version.
ALTER TABLE costattr_fact_step ADD COLUMN IF NOT EXISTS usage_calls BIGINT DEFAULT 0;
ALTER TABLE costattr_fact_step ALTER COLUMN usage_calls DROP DEFAULT;
DELETE FROM costattr_fact_step;
INSERT INTO costattr_fact_step
SELECT date_trunc('day', start_time), agent_name, step, model, count(*), sum(input_tokens),
       count(input_tokens), sum(cost_usd), count(*) FILTER (WHERE cost_usd IS NULL),
       count(*) FILTER (WHERE input_tokens <> 0)
FROM costattr_fact_calls
GROUP BY date_trunc('day', start_time), agent_name, step, model;
