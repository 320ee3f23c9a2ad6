-- Prelude run by rollups/queries.py only when repricing: costattr_calls with usd_repriced filled from
-- costattr_repriced (see _reprice.sql), after the default definition derived from _calls.sql.
CREATE TEMP TABLE IF NOT EXISTS costattr_repriced (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    usd DECIMAL(38, 18)
);

CREATE OR REPLACE TEMP MACRO costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
SELECT c.*, r.usd AS usd_repriced
FROM costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := p_trace) AS c
LEFT JOIN costattr_repriced AS r ON r.trace_id = c.trace_id AND r.span_id = c.span_id;
