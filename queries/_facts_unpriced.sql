-- Migration 0014_rollup_facts_unpriced: the unpriced calls per run and agent version
-- (costattr_fact_agent) and per agent, step, model and day (costattr_fact_step), which the
-- facts kept before it did not count, so that per_agent and per_step read from the facts carry
-- unpriced_calls as their own files do. A store made since has the column already
-- (_facts_tables.sql, migration 0010): then every statement finds it as it would leave it.
--
-- The counts come from costattr_fact_calls, which holds every call the per-run and per-step
-- rows sum (_facts.sql adds each final call to all of them in one transaction): the spans are
-- not read again. A column added with a default is filled without an UPDATE of every row; the
-- rows with an unpriced call (few, in a store that prices its models) are then set. The
-- default is dropped again, so that the table is as _facts_tables.sql makes it.
ALTER TABLE costattr_fact_agent ADD COLUMN IF NOT EXISTS unpriced_calls BIGINT DEFAULT 0;
ALTER TABLE costattr_fact_agent ALTER COLUMN unpriced_calls DROP DEFAULT;
UPDATE costattr_fact_agent AS a SET unpriced_calls = u.unpriced_calls
FROM (
    SELECT trace_id, agent_name, agent_version, count(*) AS unpriced_calls
    FROM costattr_fact_calls WHERE cost_usd IS NULL
    GROUP BY trace_id, agent_name, agent_version
) AS u
WHERE a.trace_id = u.trace_id AND a.agent_name IS NOT DISTINCT FROM u.agent_name
  AND a.agent_version IS NOT DISTINCT FROM u.agent_version;

ALTER TABLE costattr_fact_step ADD COLUMN IF NOT EXISTS unpriced_calls BIGINT DEFAULT 0;
ALTER TABLE costattr_fact_step ALTER COLUMN unpriced_calls DROP DEFAULT;
UPDATE costattr_fact_step AS s SET unpriced_calls = u.unpriced_calls
FROM (
    SELECT date_trunc('day', start_time) AS day, agent_name, step, model, count(*) AS unpriced_calls
    FROM costattr_fact_calls WHERE cost_usd IS NULL
    GROUP BY date_trunc('day', start_time), agent_name, step, model
) AS u
WHERE s.day = u.day AND s.agent_name IS NOT DISTINCT FROM u.agent_name
  AND s.step IS NOT DISTINCT FROM u.step AND s.model IS NOT DISTINCT FROM u.model;
