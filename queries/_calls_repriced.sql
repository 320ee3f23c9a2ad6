-- Prelude run by rollups/queries.py only when repricing or filtering (--where): costattr_calls
-- with usd_repriced filled from costattr_repriced (see _reprice.sql) and only the calls whose
-- dimensions match costattr_where (a key given twice matches either value; every key must
-- match; rollups/dimensions.py names the dimensions), after the default definition derived
-- from _calls.sql. Both tables are loaded with bound values, never SQL text.
CREATE TEMP TABLE IF NOT EXISTS costattr_repriced (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    usd DECIMAL(38, 18)
);

CREATE TEMP TABLE IF NOT EXISTS costattr_where (
    key VARCHAR NOT NULL,
    match_values VARCHAR[] NOT NULL
);

CREATE OR REPLACE TEMP MACRO costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
SELECT c.*, r.usd AS usd_repriced
FROM costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := p_trace) AS c
LEFT JOIN costattr_repriced AS r ON r.trace_id = c.trace_id AND r.span_id = c.span_id
WHERE NOT EXISTS (
    SELECT 1
    FROM costattr_where AS w
    WHERE NOT coalesce(list_contains(w.match_values, {{dimension(w.key, c)}}), false)
);
