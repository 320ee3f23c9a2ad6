-- Prelude run by rollups/queries.py only when repricing, filtering (--where) or grouping
-- (--group-by): costattr_calls
-- with usd_repriced filled from costattr_repriced (see _reprice.sql) and only the calls whose
-- dimensions match costattr_where, after the default definition derived from _calls.sql.
-- Both tables are loaded with bound values, never SQL text. queries.py renders the
-- placeholders: {{usd_repriced}} and {{repriced_join}} read costattr_repriced when repricing,
-- else NULL and nothing (a LEFT JOIN to an empty table doubles the time of a rollup), and
-- {{where}} one test per key of costattr_where (by position: a key given twice matches
-- either value; every key must match; rollups/dimensions.py names the dimensions), else true,
-- and {{group_value}} the column group_value, each call's value of the key in costattr_group
-- (read once: an uncorrelated lookup), when grouping, else nothing.
CREATE TEMP TABLE IF NOT EXISTS costattr_repriced (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    usd DECIMAL(38, 18)
);

CREATE TEMP TABLE IF NOT EXISTS costattr_where (
    pos INTEGER NOT NULL,
    key VARCHAR NOT NULL,
    match_values VARCHAR[] NOT NULL
);

CREATE TEMP TABLE IF NOT EXISTS costattr_group (
    key VARCHAR NOT NULL
);

CREATE OR REPLACE TEMP MACRO costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL) AS TABLE
SELECT c.*, {{usd_repriced}} AS usd_repriced{{group_value}}
FROM costattr_attributed(p_since, p_until, p_service, p_feature, p_agent, p_trace := p_trace) AS c
{{repriced_join}}
WHERE {{where}};
