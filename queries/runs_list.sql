-- @about The runs list (a run is a trace): newest (by first model call) or most expensive first, with duration, calls, unpriced calls and usd.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param order VARCHAR = newest  newest, or cost (the most expensive first)
-- @choices order newest cost
-- @param limit INTEGER = 100     at most this many runs (0: all)
-- @nogroup it lists runs, one row each (a run's calls can carry several values): pick one value's runs with --where KEY=VALUE, or count runs per value with per-group --group-by KEY
SELECT
    trace_id, name AS run_name, agent_name AS agent, feature, start_time, duration_ms, calls,
    unpriced_calls, cost_usd AS usd, usd_repriced, unpriced_calls_repriced
FROM costattr_runs(
    $since, $until, $service, $feature, $agent, $order, nullif($limit, 0)
)
ORDER BY CASE WHEN $order = 'cost' THEN usd END DESC NULLS LAST,
         CASE WHEN $order = 'cost' THEN calls END DESC,
         first_call DESC, trace_id;
