-- The copy of the pending runs' spans (migration 0011_rollup_facts_spans; store/aggregates.py
-- keeps it with the facts, _facts_spans.sql). The fast rollups read a run with a call pending
-- (costattr_fact_pending) from the call contract, which read `spans` for those traces: with
-- random trace ids no row group is skipped, so each of the contract's scans read the trace
-- ids of the whole table (0.5-0.7 s at 10M spans for 100 pending runs). Here are every span
-- of those traces, all columns, with the rowid it has in `spans` (span_row: the contract's
-- call_row), so that the contract over them (rollups/contract.py `pending_macro`) reads a few
-- thousand rows. A span's row never changes but a call's settled identity (the identity
-- pass): the copies of calls not final are read again by each upkeep.
CREATE TABLE costattr_fact_spans AS SELECT rowid AS span_row, * FROM spans LIMIT 0;
-- The facts' watermark the copy was last brought to: another one in costattr_facts_state
-- means the facts moved without it (a version that did not keep it): the next upkeep rebuilds
-- it, and meanwhile the rollups read the contract (store/aggregates.py `pending_traces`).
CREATE TABLE costattr_fact_spans_state (watermark BIGINT NOT NULL);
INSERT INTO costattr_fact_spans_state SELECT watermark FROM costattr_facts_state;
INSERT INTO costattr_fact_spans
SELECT rowid AS span_row, * FROM spans
WHERE rowid IN (
    SELECT rowid FROM spans
    WHERE rowid <= (SELECT watermark FROM costattr_facts_state)
      AND trace_id IN (SELECT trace_id FROM costattr_fact_pending)
);
