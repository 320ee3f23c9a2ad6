-- The copy of the pending runs' spans (_facts_spans_tables.sql) brought up to date, after
-- _facts.sql in the same transaction (store/aggregates.py), costattr_fact_pending already
-- updated, $watermark still the facts' watermark before this upkeep. It holds, for each trace
-- with a call pending, every span of it at or below the facts' watermark, as `spans` holds it.
-- Rows are only ever appended to spans, and the only ones updated are calls not final (the
-- identity pass settles them), so each upkeep: drops the traces no longer pending, reads
-- again the copies of calls that were not final, adds the spans stored since ($watermark),
-- and for a trace that has just become pending its older spans (a late child may bring a
-- call whose run began long ago): from what the identity pass read just before, else by a
-- scan of the whole table's trace ids. Past aggregates.MAX_PENDING_TRACES traces pending
-- this does not run: the copy is emptied and marked not kept (watermark -2) instead.

-- A copy the facts moved without (store/aggregates.py `pending_traces` refuses it), one not
-- kept (past the cap) or made again with spans' columns (one was added) is rebuilt.
DELETE FROM costattr_fact_spans
WHERE (SELECT watermark FROM costattr_fact_spans_state) IS DISTINCT FROM $watermark;
-- The traces just become pending, and whether the identity pass (_identity.sql) read all
-- their spans up to the facts' watermark or beyond: a call left pending was walked by the pass
-- that ran just before (it is new, so its trace received a span), which kept every span of
-- the traces it walked (costattr_identity_spans, up to costattr_identity_read's rowid; on
-- this connection; rowids never change). Otherwise (no pass ran here, or a rebuild) the
-- table is scanned.
CREATE TEMP TABLE IF NOT EXISTS costattr_identity_spans (span_row BIGINT, trace_id VARCHAR);
CREATE TEMP TABLE IF NOT EXISTS costattr_identity_read (upto BIGINT);
CREATE OR REPLACE TEMP TABLE costattr_fact_newly AS
SELECT
    trace_id,
    trace_id IN (SELECT trace_id FROM costattr_identity_spans)
        AND coalesce((SELECT max(upto) FROM costattr_identity_read) >= $watermark, false) AS read
FROM (
    SELECT DISTINCT trace_id FROM costattr_fact_pending
    WHERE trace_id NOT IN (SELECT trace_id FROM costattr_fact_spans)
);
CREATE OR REPLACE TEMP TABLE costattr_fact_reread AS
SELECT span_row FROM costattr_fact_spans
WHERE span_role = 'model_call' AND identity_settled IS NULL AND (feature IS NULL OR agent_name IS NULL)
  AND trace_id IN (SELECT trace_id FROM costattr_fact_pending);
DELETE FROM costattr_fact_spans
WHERE trace_id NOT IN (SELECT trace_id FROM costattr_fact_pending)
   OR span_row IN (SELECT span_row FROM costattr_fact_reread);
INSERT INTO costattr_fact_spans
SELECT rowid AS span_row, * FROM spans
WHERE rowid > $watermark AND trace_id IN (SELECT trace_id FROM costattr_fact_pending);
INSERT INTO costattr_fact_spans
SELECT rowid AS span_row, * FROM spans
WHERE rowid IN (SELECT span_row FROM costattr_fact_reread);
INSERT INTO costattr_fact_spans
SELECT rowid AS span_row, * FROM spans
WHERE rowid IN (
    SELECT span_row FROM costattr_identity_spans
    WHERE span_row <= $watermark AND trace_id IN (SELECT trace_id FROM costattr_fact_newly WHERE read)
);
INSERT INTO costattr_fact_spans
SELECT rowid AS span_row, * FROM spans
WHERE rowid IN (
    SELECT rowid FROM spans
    WHERE rowid <= $watermark AND trace_id IN (SELECT trace_id FROM costattr_fact_newly WHERE NOT read)
);
UPDATE costattr_fact_spans_state SET watermark = (SELECT watermark FROM costattr_facts_state);

DROP TABLE costattr_fact_newly;
DROP TABLE costattr_fact_reread;
-- (store/aggregates.py drops what the pass read, costattr_identity_*, after the upkeep,
-- whether it succeeded or failed.)
