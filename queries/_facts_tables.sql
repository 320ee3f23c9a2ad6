-- The rollup facts (store/aggregates.py keeps them after each ingest's identity pass; the
-- fast forms of per_feature, per_step, per_run and per_agent read them): what the call
-- contract (_calls.sql) says of each call whose attribution is final, and per-run totals
-- keyed so that a rollup counts runs with count(*). DuckDB-only, never part of a span's row.
--
-- costattr_fact_calls: one row per final call (its identity settled, or its own feature and
-- agent), with the contract's columns the four rollups read.
CREATE TABLE costattr_fact_calls (
    trace_id VARCHAR, start_time TIMESTAMP, end_time TIMESTAMP,
    feature VARCHAR, agent_name VARCHAR, agent_version VARCHAR, step INTEGER, model VARCHAR,
    input_tokens BIGINT, output_tokens BIGINT, cost_usd DECIMAL(38, 12)
);
-- One row per run and feature, per run and agent version, per run: sums over the final calls,
-- the first and last call start (a row lies wholly inside a window or not). `tkey`, a hash of
-- the trace id, finds a run's row among a million by an integer scan (the trace id then
-- decides); there is no index: DuckDB's upsert scans the whole table for every batch.
CREATE TABLE costattr_fact_feature (
    tkey UBIGINT, trace_id VARCHAR, feature VARCHAR,
    calls BIGINT, input_tokens BIGINT, output_tokens BIGINT, usd DECIMAL(38, 12),
    unpriced_calls BIGINT, first_call TIMESTAMP, last_call TIMESTAMP
);
-- (unpriced_calls last in costattr_fact_agent and costattr_fact_step: migration
-- 0014_rollup_facts_unpriced adds it there to the tables of a store made before it, and
-- _facts.sql fills every table by position, so a new store's tables have the same layout;
-- usage_calls after it in costattr_fact_step, from migration 0015_rollup_facts_usage_calls.)
CREATE TABLE costattr_fact_agent (
    tkey UBIGINT, trace_id VARCHAR, agent_name VARCHAR, agent_version VARCHAR,
    calls BIGINT, usd DECIMAL(38, 12), first_call TIMESTAMP, last_call TIMESTAMP,
    unpriced_calls BIGINT
);
-- Per run, also: first_agent and first_feature (arg_min by start time, as the contract's runs)
-- with the start they were taken at, and its root spans' (parent_span_id NULL) name, start,
-- end, agent and feature, as the contract's runs read them (a run whose root came before its
-- calls has a row with calls = 0 meanwhile).
CREATE TABLE costattr_fact_run (
    tkey UBIGINT, trace_id VARCHAR,
    calls BIGINT, unpriced_calls BIGINT, usd DECIMAL(38, 12), unpriced_tokens BIGINT,
    first_call TIMESTAMP, last_call TIMESTAMP, last_end TIMESTAMP,
    first_agent VARCHAR, first_agent_at TIMESTAMP, first_feature VARCHAR, first_feature_at TIMESTAMP,
    root_name VARCHAR, root_start TIMESTAMP, root_end TIMESTAMP,
    root_agent VARCHAR, root_agent_at TIMESTAMP, root_feature VARCHAR, root_feature_at TIMESTAMP
);
-- Per agent, step, model and UTC day (a window holds whole days but at its edges).
-- usage_calls: the calls that report input (input_tokens neither NULL nor 0: a call without
-- usage is stored with 0), which per_step's average input is over; input_calls (not NULL
-- alone) is what versions before 0015 averaged over, kept for them.
CREATE TABLE costattr_fact_step (
    day TIMESTAMP, agent_name VARCHAR, step INTEGER, model VARCHAR,
    calls BIGINT, input_tokens HUGEINT, input_calls BIGINT, usd DECIMAL(38, 12), unpriced_calls BIGINT,
    usage_calls BIGINT
);
-- Calls stored whose attribution is not final yet (the identity pass has not settled them):
-- kept out of the facts, and while any is left the rollups take the contract's path.
CREATE TABLE costattr_fact_pending (call_row BIGINT, trace_id VARCHAR);
-- Which spans the facts cover: rowids up to `watermark`, `spans` rows in all. A store with
-- another row count was written by someone who did not keep the facts: the rollups then take
-- the contract's path until the next ingest here catches up (spans are only appended).
CREATE TABLE costattr_facts_state (watermark BIGINT NOT NULL, spans BIGINT NOT NULL);
INSERT INTO costattr_facts_state VALUES (-1, -1);
