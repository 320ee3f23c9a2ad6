-- @about The most expensive runs, with their call counts, unpriced calls and their tokens.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param limit INTEGER = 10      how many runs (0: all)
-- @nogroup it lists runs, one row each (a run's calls can carry several values): pick one value's runs with --where KEY=VALUE, or count runs per value with per-group --group-by KEY
-- usd leaves out unpriced calls: unpriced_calls and unpriced_tokens (input + output) say
-- what it does not cover.
SELECT
    trace_id, name AS run_name, agent_name AS agent, feature, start_time, calls, unpriced_calls,
    unpriced_tokens, cost_usd AS usd, usd_repriced, unpriced_calls_repriced
FROM costattr_runs_unpriced($since, $until, $service, $feature, $agent, 'cost', nullif($limit, 0))
ORDER BY usd DESC NULLS LAST, calls DESC, first_call DESC, trace_id;
