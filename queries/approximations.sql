-- @about Calls priced at an approximate model (an unknown newer snapshot of a known request model), by model, for audit.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- The processor records where the priced model came from in costattr.model_source (see
-- cost/approximate.py): 'request' when the response model was unknown and priced at the
-- request model's price. Add the response model to the price table to price them exactly.
SELECT
    {{group_columns}}json_extract_string(attributes, '$."costattr.model_source"') AS model_source,
    provider,
    response_model,
    request_model,
    priced_model,
    count(*) AS calls,
    count(DISTINCT trace_id) AS runs,
    sum(cost_usd) AS usd,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen,
    arg_max(trace_id, (start_time, trace_id)) AS example_trace_id  -- ties: one answer on every engine
FROM costattr_calls($since, $until, $service, $feature, $agent)
WHERE json_extract_string(attributes, '$."costattr.model_source"') IS NOT NULL
GROUP BY ALL
ORDER BY {{group}}calls DESC, response_model, request_model;
