-- @about Cost per user, tenant, session or any identity key (--group-by KEY): runs, calls, tokens, usd, unpriced calls.
-- @param since TIMESTAMP = NULL  start of the window (inclusive, UTC)
-- @param until TIMESTAMP = NULL  end of the window (exclusive, UTC)
-- @param service VARCHAR = NULL  only spans of this service.name
-- @param feature VARCHAR = NULL  only calls attributed to this feature
-- @param agent VARCHAR = NULL    only calls attributed to this agent
-- @param group_by VARCHAR = user.id  the key: an identity key on the calls (user.id, app.tenant, gen_ai.conversation.id, ...) or model, provider, service, feature, agent
-- value is the key's value on each call (NULL: calls without it). A run counts once under
-- each value its calls carry. Two levels (run, then value): see per_feature.sql.
WITH per_run AS (
    SELECT
        {{dimension($group_by)}} AS value,
        trace_id,
        count(*) AS calls,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_usd) AS usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
        sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) FILTER (WHERE cost_usd IS NULL)
            AS unpriced_tokens,
        sum(usd_repriced) AS usd_repriced,
        count(*) FILTER (WHERE usd_repriced IS NULL) AS unpriced_calls_repriced
    FROM costattr_calls($since, $until, $service, $feature, $agent)
    GROUP BY value, trace_id
)
SELECT
    $group_by AS "key",
    value,
    count(*) AS runs,
    sum(calls) AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(usd) AS usd,
    costattr_per(sum(usd), count(usd)) AS usd_per_run,
    sum(unpriced_calls) AS unpriced_calls,
    coalesce(sum(unpriced_tokens), 0) AS unpriced_tokens,
    sum(usd_repriced) AS usd_repriced,
    sum(unpriced_calls_repriced) AS unpriced_calls_repriced  -- --reprice: not in usd_repriced
FROM per_run
GROUP BY value
ORDER BY sum(usd) DESC NULLS LAST, value NULLS LAST;
