-- @about One run as a tree, depth first: each span with its own cost and its subtree's cost, unpriced calls and their tokens.
-- @param trace_id VARCHAR        the run's trace id (32 hex digits, or a prefix of 4 or more that only it starts with)
-- @nogroup it shows one run's tree, every span of it: per value of a key, ask per-group --group-by KEY or any other rollup
--
-- Every stored span of the trace appears exactly once, whatever its parent links say, and the
-- subtree costs of the roots add up to the run's total:
--   * a span whose parent never arrived (another process, dropped) is a root;
--   * bad data can link spans in a cycle (a span its own parent, a -> b -> a): each cycle is
--     broken at its first span (by start time, then span id), which is shown as a root with
--     cycle_broken = true; what hangs below the cycle hangs below that span;
--   * a span id stored twice is two rows; children hang below the first of them.
-- No depth limit: every walk below follows each row once, so none can loop, and each runs as
-- many rounds as the tree is deep (a 10,000-deep chain is 10,000 small rounds, not 10,000^2).
WITH RECURSIVE
-- rid numbers the rows in start order: it tells copies of a span id apart, orders siblings,
-- and chooses where a cycle is cut.
run AS MATERIALIZED (
    SELECT *, rowid AS span_row, row_number() OVER (ORDER BY start_time, span_id, end_time, rowid) AS rid
    FROM spans
    WHERE trace_id = lower($trace_id)
),
linked AS MATERIALIZED (
    SELECT r.rid, min(p.rid) AS prid
    FROM run AS r
    LEFT JOIN run AS p ON p.span_id = r.parent_span_id
    GROUP BY r.rid
),
-- Down from the roots. A row has one parent, so this meets each row at most once and cannot
-- loop; rows on a parent cycle, or below one, are never met: they are the strays.
rooted (rid, depth) AS (
    SELECT rid, 0 FROM linked WHERE prid IS NULL
    UNION ALL
    SELECT l.rid, t.depth + 1 FROM rooted AS t JOIN linked AS l ON l.prid = t.rid
),
stray AS MATERIALIZED (
    SELECT * FROM linked WHERE rid NOT IN (SELECT rid FROM rooted)
),
-- The first row of each cycle, by pointer doubling over the strays: after round k, anc is the
-- row 2^k parents up and low the smallest rid among the row and those 2^k parents. Once 2^k
-- reaches the strays' count every walk has gone round its cycle: the rows some walk ends on
-- (anc) are exactly the rows on cycles, and such a row's low is its cycle's smallest rid. That
-- is log2(n) rounds of n rows; a walk one parent a round took n rounds of up to n rows, and
-- one hostile export of a 40,000-span cycle made its run's page take minutes (a review).
jumps (k, rid, anc, low) AS (
    SELECT 0, rid, prid, least(rid, prid) FROM stray
    UNION ALL
    SELECT j.k + 1, j.rid, a.anc, least(j.low, a.low)
    FROM jumps AS j JOIN jumps AS a ON a.rid = j.anc
    WHERE pow(2, j.k) < (SELECT count(*) FROM stray)
),
jumped AS MATERIALIZED (
    SELECT rid, anc, low FROM jumps WHERE k = (SELECT max(k) FROM jumps)
),
breaks AS MATERIALIZED (
    SELECT rid FROM jumped WHERE low = rid AND rid IN (SELECT anc FROM jumped)
),
hung (rid, depth) AS (
    SELECT rid, 0 FROM breaks
    UNION ALL
    SELECT s.rid, h.depth + 1
    FROM hung AS h
    JOIN stray AS s ON s.prid = h.rid
    WHERE s.rid NOT IN (SELECT rid FROM breaks)
),
tree AS MATERIALIZED (
    SELECT t.rid, l.prid, t.depth, false AS cycle_broken
    FROM rooted AS t JOIN linked AS l USING (rid)
    UNION ALL
    SELECT h.rid, CASE WHEN h.depth > 0 THEN s.prid END, h.depth, h.depth = 0
    FROM hung AS h JOIN stray AS s USING (rid)
),
-- The attributed calls, each on its own row (costattr_calls names them by rowid).
own AS MATERIALIZED (
    SELECT r.rid, c.*
    FROM costattr_calls(NULL, NULL, NULL, NULL, NULL, p_trace := $trace_id) AS c
    JOIN run AS r ON r.span_row = c.call_row
),
nodes AS MATERIALIZED (
    SELECT t.rid, t.prid, t.depth, (o.rid IS NOT NULL)::BIGINT AS calls, o.cost_usd AS usd, o.usd_repriced,
           (o.rid IS NOT NULL AND o.cost_usd IS NULL)::BIGINT AS unpriced,
           (o.rid IS NOT NULL AND o.usd_repriced IS NULL)::BIGINT AS unpriced_repriced,
           CASE WHEN o.rid IS NOT NULL AND o.cost_usd IS NULL
                THEN coalesce(o.input_tokens, 0) + coalesce(o.output_tokens, 0) ELSE 0 END
               AS unpriced_tokens
    FROM tree AS t
    LEFT JOIN own AS o USING (rid)
),
-- Subtree totals, bottom up one depth at a time (all children of a row are one level below it).
totals (rid, prid, depth, size, calls, usd, usd_repriced, unpriced, unpriced_tokens, unpriced_repriced) AS (
    SELECT rid, prid, depth, 1::BIGINT, calls, usd, usd_repriced, unpriced, unpriced_tokens, unpriced_repriced
    FROM nodes
    WHERE depth = (SELECT max(depth) FROM nodes)
    UNION ALL
    SELECT
        n.rid, n.prid, n.depth, 1 + coalesce(k.size, 0), n.calls + coalesce(k.calls, 0),
        coalesce(n.usd + k.usd, n.usd, k.usd),
        coalesce(n.usd_repriced + k.usd_repriced, n.usd_repriced, k.usd_repriced),
        n.unpriced + coalesce(k.unpriced, 0), n.unpriced_tokens + coalesce(k.unpriced_tokens, 0),
        n.unpriced_repriced + coalesce(k.unpriced_repriced, 0)
    -- A filter, not a join: joined, the planner paired every row with the children first
    -- (100M intermediate rows on a 10,000-deep chain, 5x slower).
    FROM (SELECT * FROM nodes WHERE depth = (SELECT any_value(depth) - 1 FROM totals)) AS n
    LEFT JOIN (
        SELECT prid, sum(size) AS size, sum(calls) AS calls, sum(usd) AS usd,
               sum(usd_repriced) AS usd_repriced, sum(unpriced) AS unpriced,
               sum(unpriced_tokens) AS unpriced_tokens, sum(unpriced_repriced) AS unpriced_repriced
        FROM totals
        GROUP BY prid
    ) AS k ON k.prid = n.rid
),
-- Depth-first position: a row comes after its parent and after the subtrees of its earlier
-- siblings (siblings, and roots, in start time order).
placed AS MATERIALIZED (
    SELECT
        *,
        coalesce(sum(size) OVER (PARTITION BY prid ORDER BY rid
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM totals
),
ordered (rid, pos) AS (
    SELECT rid, before FROM placed WHERE prid IS NULL
    UNION ALL
    SELECT p.rid, o.pos + 1 + p.before FROM ordered AS o JOIN placed AS p ON p.prid = o.rid
)
SELECT
    p.depth,
    s.span_id,
    s.parent_span_id,
    s.name,
    s.span_role,
    s.start_time,
    s.duration_ms,
    coalesce(c.agent_name, s.agent_name) AS agent,
    coalesce(c.feature, s.feature) AS feature,
    c.step,
    c.model,
    -- a call that reported no usage is stored with 0 tokens: unknown here, not 0 (per-step)
    CASE WHEN s.span_role = 'model_call' AND coalesce(c.cost_status, '') <> 'no_usage' THEN s.input_tokens END
        AS input_tokens,
    CASE WHEN s.span_role = 'model_call' AND coalesce(c.cost_status, '') <> 'no_usage' THEN s.output_tokens END
        AS output_tokens,
    c.cost_status,
    c.cost_usd AS usd,
    p.calls AS subtree_calls,
    p.usd AS subtree_usd,
    -- what subtree_usd leaves out: the subtree's unpriced calls and their input + output tokens
    p.unpriced AS subtree_unpriced_calls,
    p.unpriced_tokens AS subtree_unpriced_tokens,
    c.usd_repriced,
    p.usd_repriced AS subtree_usd_repriced,
    p.unpriced_repriced AS subtree_unpriced_calls_repriced,  -- --reprice: left out of subtree_usd_repriced
    t.cycle_broken
FROM ordered AS o
JOIN placed AS p USING (rid)
JOIN tree AS t USING (rid)
JOIN run AS s USING (rid)
LEFT JOIN own AS c USING (rid)
ORDER BY o.pos;
