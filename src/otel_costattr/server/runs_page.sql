-- @about One page of runs, newest first (by first model call), after a cursor.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param limit INTEGER = 50      runs on the page
-- @param after_call TIMESTAMP = NULL  cursor: first call of the last run on the previous page
-- @param after_trace VARCHAR = NULL   cursor: its trace id (NULL: the first page)
-- Runs whose calls came without a start time (OTLP's 0: unknown; first_call NULL) come last.
SELECT
    trace_id, name, service_name, feature, agent_name, start_time, end_time, duration_ms,
    calls, unpriced_calls, cost_usd, first_call
FROM costattr_runs($since, $until, $service, $feature, $agent, 'newest', NULL)
WHERE $after_trace IS NULL
   OR ($after_call IS NULL AND first_call IS NULL AND trace_id < $after_trace)
   OR ($after_call IS NOT NULL
       AND (first_call IS NULL OR first_call < $after_call
            OR (first_call = $after_call AND trace_id < $after_trace)))
ORDER BY first_call DESC NULLS LAST, trace_id DESC
LIMIT $limit + 1;
