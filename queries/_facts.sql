-- The rollup facts kept up to date (store/aggregates.py runs this after each ingest's identity
-- pass, in one transaction; the migration that creates the tables, _facts_tables.sql, runs it
-- once over the spans already stored). Only calls whose attribution can no longer change
-- enter the facts: settled by the identity pass, or carrying their own feature and agent
-- (the call contract, _calls.sql, then reads them as stored). Each such call is added once:
-- new calls are those above the watermark, and calls left pending by an earlier run are
-- looked at again until they are final.
--
-- Every per-run column is an aggregate that composes (sum, min, max, arg_min by the start it
-- was taken at), so a run's row merges with its new calls by aggregating both again: each new
-- call (or root span) becomes a row of the table's shape, the run's stored row is taken out,
-- and the two are grouped into one. A trace is one run whichever ingest brought its spans.
-- The stored rows are found in two steps: their rowids by the hash of the trace id (a scan of
-- one integer column), then those rows alone, the trace id deciding (a hash may collide); one
-- step read every column of every row group (40-50 ms a batch at 10M spans, as DuckDB's own
-- upsert did: it joins with the whole table).
--
-- The contract's per-call columns, as _calls.sql computes them for a final call (the model,
-- the implausible cost left out); tests/test_rollup_facts.py checks every fast rollup against
-- the contract's path on random workloads.
-- $watermark is bound by store/aggregates.py (the migration reads -1): a constant, so that
-- the scans of spans skip the row groups below it. Compared with a subquery, DuckDB read every
-- row group of the table, and kept what it read: the exporter's peak RSS over 1M spans grew
-- from +52 to +156 MB. Calls left pending widen what is read back to the oldest of them.
CREATE OR REPLACE TEMP TABLE costattr_fact_rows AS
SELECT rowid AS call_row FROM spans WHERE span_role = 'model_call' AND rowid > $watermark;
INSERT INTO costattr_fact_rows SELECT call_row FROM costattr_fact_pending;
CREATE OR REPLACE TEMP TABLE costattr_fact_new AS
SELECT
    rowid AS call_row, trace_id, hash(trace_id) AS tkey, start_time, end_time,
    identity_settled IS NOT NULL OR (feature IS NOT NULL AND agent_name IS NOT NULL) AS final,
    CASE WHEN identity_settled IS NOT NULL THEN settled_feature ELSE feature END AS feature,
    CASE WHEN identity_settled IS NOT NULL THEN settled_agent_name ELSE agent_name END AS agent_name,
    CASE WHEN identity_settled IS NOT NULL THEN settled_agent_version ELSE agent_version END
        AS agent_version,
    step, coalesce(priced_model, response_model, request_model) AS model,
    input_tokens, output_tokens,
    CASE WHEN cost_usd BETWEEN 0 AND 1000000 THEN cost_usd END AS cost_usd
FROM spans
WHERE rowid IN (SELECT call_row FROM costattr_fact_rows);

DELETE FROM costattr_fact_new WHERE NOT final AND call_row IN (SELECT call_row FROM costattr_fact_pending);
DELETE FROM costattr_fact_pending WHERE call_row IN (SELECT call_row FROM costattr_fact_new);
INSERT INTO costattr_fact_pending SELECT call_row, trace_id FROM costattr_fact_new WHERE NOT final;
DELETE FROM costattr_fact_new WHERE NOT final;

INSERT INTO costattr_fact_calls BY NAME
SELECT * EXCLUDE (call_row, tkey, final) FROM costattr_fact_new;

-- Per run and feature.
CREATE OR REPLACE TEMP TABLE costattr_fact_delta AS
SELECT tkey, trace_id, feature, 1 AS calls, input_tokens, output_tokens, cost_usd AS usd,
       CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END AS unpriced_calls,
       start_time AS first_call, start_time AS last_call
FROM costattr_fact_new;
CREATE OR REPLACE TEMP TABLE costattr_fact_old AS
SELECT rowid AS fact_row, * FROM costattr_fact_feature
WHERE rowid IN (SELECT rowid FROM costattr_fact_feature WHERE tkey IN (SELECT tkey FROM costattr_fact_delta));
DELETE FROM costattr_fact_old WHERE trace_id NOT IN (SELECT trace_id FROM costattr_fact_delta);
DELETE FROM costattr_fact_feature WHERE rowid IN (SELECT fact_row FROM costattr_fact_old);
INSERT INTO costattr_fact_feature
SELECT tkey, trace_id, feature, sum(calls), sum(input_tokens), sum(output_tokens), sum(usd),
       sum(unpriced_calls), min(first_call), max(last_call)
FROM (SELECT * EXCLUDE (fact_row) FROM costattr_fact_old UNION ALL BY NAME SELECT * FROM costattr_fact_delta)
GROUP BY tkey, trace_id, feature;

-- Per run and agent version.
CREATE OR REPLACE TEMP TABLE costattr_fact_delta AS
SELECT tkey, trace_id, agent_name, agent_version, 1 AS calls, cost_usd AS usd,
       start_time AS first_call, start_time AS last_call,
       CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END AS unpriced_calls
FROM costattr_fact_new;
CREATE OR REPLACE TEMP TABLE costattr_fact_old AS
SELECT rowid AS fact_row, * FROM costattr_fact_agent
WHERE rowid IN (SELECT rowid FROM costattr_fact_agent WHERE tkey IN (SELECT tkey FROM costattr_fact_delta));
DELETE FROM costattr_fact_old WHERE trace_id NOT IN (SELECT trace_id FROM costattr_fact_delta);
DELETE FROM costattr_fact_agent WHERE rowid IN (SELECT fact_row FROM costattr_fact_old);
INSERT INTO costattr_fact_agent
SELECT tkey, trace_id, agent_name, agent_version, sum(calls), sum(usd), min(first_call), max(last_call),
       sum(unpriced_calls)
FROM (SELECT * EXCLUDE (fact_row) FROM costattr_fact_old UNION ALL BY NAME SELECT * FROM costattr_fact_delta)
GROUP BY tkey, trace_id, agent_name, agent_version;

-- Per run: its calls, and its root spans stored since the last run (any role, as the
-- contract's runs read them).
CREATE OR REPLACE TEMP TABLE costattr_fact_delta AS
SELECT
    tkey, trace_id, 1 AS calls, CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END AS unpriced_calls,
    cost_usd AS usd,
    CASE WHEN cost_usd IS NULL THEN coalesce(input_tokens, 0) + coalesce(output_tokens, 0) ELSE 0 END
        AS unpriced_tokens,
    start_time AS first_call, start_time AS last_call, end_time AS last_end,
    agent_name AS first_agent, CASE WHEN agent_name IS NOT NULL THEN start_time END AS first_agent_at,
    feature AS first_feature, CASE WHEN feature IS NOT NULL THEN start_time END AS first_feature_at
FROM costattr_fact_new
UNION ALL BY NAME
SELECT
    hash(trace_id) AS tkey, trace_id, 0 AS calls, 0 AS unpriced_calls, 0 AS unpriced_tokens,
    name AS root_name, start_time AS root_start, end_time AS root_end,
    agent_name AS root_agent, CASE WHEN agent_name IS NOT NULL THEN start_time END AS root_agent_at,
    feature AS root_feature, CASE WHEN feature IS NOT NULL THEN start_time END AS root_feature_at
FROM spans
WHERE parent_span_id IS NULL AND rowid > $watermark;
CREATE OR REPLACE TEMP TABLE costattr_fact_old AS
SELECT rowid AS fact_row, * FROM costattr_fact_run
WHERE rowid IN (SELECT rowid FROM costattr_fact_run WHERE tkey IN (SELECT tkey FROM costattr_fact_delta));
DELETE FROM costattr_fact_old WHERE trace_id NOT IN (SELECT trace_id FROM costattr_fact_delta);
DELETE FROM costattr_fact_run WHERE rowid IN (SELECT fact_row FROM costattr_fact_old);
INSERT INTO costattr_fact_run
SELECT
    tkey, trace_id, sum(calls), sum(unpriced_calls), sum(usd), sum(unpriced_tokens),
    min(first_call), max(last_call), max(last_end),
    arg_min(first_agent, first_agent_at), min(first_agent_at),
    arg_min(first_feature, first_feature_at), min(first_feature_at),
    arg_min(root_name, root_start), min(root_start), max(root_end),
    arg_min(root_agent, root_agent_at), min(root_agent_at),
    arg_min(root_feature, root_feature_at), min(root_feature_at)
FROM (SELECT * EXCLUDE (fact_row) FROM costattr_fact_old UNION ALL BY NAME SELECT * FROM costattr_fact_delta)
GROUP BY tkey, trace_id;

-- Per agent, step, model and day.
CREATE OR REPLACE TEMP TABLE costattr_fact_delta AS
SELECT date_trunc('day', start_time) AS day, agent_name, step, model, 1 AS calls, input_tokens,
       CASE WHEN input_tokens IS NULL THEN 0 ELSE 1 END AS input_calls, cost_usd AS usd,
       CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END AS unpriced_calls,
       CASE WHEN coalesce(input_tokens, 0) = 0 THEN 0 ELSE 1 END AS usage_calls
FROM costattr_fact_new;
CREATE OR REPLACE TEMP TABLE costattr_fact_old AS
SELECT rowid AS fact_row, * FROM costattr_fact_step
-- (A call stored without a start time has a NULL day, which IN never matches: its rows are
-- merged too, or each ingest would add one more.)
WHERE day IN (SELECT day FROM costattr_fact_delta)
   OR (day IS NULL AND EXISTS (SELECT 1 FROM costattr_fact_delta WHERE day IS NULL));
DELETE FROM costattr_fact_step WHERE rowid IN (SELECT fact_row FROM costattr_fact_old);
INSERT INTO costattr_fact_step
SELECT day, agent_name, step, model, sum(calls), sum(input_tokens), sum(input_calls), sum(usd),
       sum(unpriced_calls), sum(usage_calls)
FROM (SELECT * EXCLUDE (fact_row) FROM costattr_fact_old UNION ALL BY NAME SELECT * FROM costattr_fact_delta)
GROUP BY day, agent_name, step, model;

-- (max(rowid) over the new rows only: over the whole table it is a scan, 8 ms at 10M spans.)
UPDATE costattr_facts_state
SET watermark = coalesce(
        (SELECT max(rowid) FROM spans WHERE rowid > $watermark),
        watermark),
    spans = (SELECT count(*) FROM spans);

DROP TABLE costattr_fact_rows;
DROP TABLE costattr_fact_new;
DROP TABLE costattr_fact_delta;
DROP TABLE costattr_fact_old;
