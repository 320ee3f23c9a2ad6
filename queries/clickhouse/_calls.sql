-- The call contract in ClickHouse dialect: the table macros costattr_calls and costattr_runs
-- that queries/_calls.sql gives DuckDB (same columns, rollups/contract.py CALL_COLUMNS and
-- RUN_COLUMNS; same rules: read that file's header), written for the relation "spans" that
-- queries/clickhouse/_spans.sql makes of the Collector's otel_traces. ClickHouse has no table
-- macros: otel_costattr.clickhouse.dialect expands each call "name(args)" in a rollup into
-- the body below as a subquery, parameters replaced by the arguments. Differences, each
-- forced by the engine:
--   * no rowid: a call is named by (trace_id, span_id), kept once (LIMIT 1 BY) where the
--     DuckDB store drops a repeated span on insert (the Collector writes a span again when
--     an export is retried); call_row is a hash of the row's ids and times
--     (clickhouse/prelude.py ROW_KEY, which the dialect also puts for a rollup's rowid:
--     trace.sql joins the two), computed for trace.sql only;
--   * the settled facts (clickhouse/settle.py, queries/clickhouse/_settle.sql: identities
--     walked and unstamped calls priced once, the counterpart of the DuckDB store's settled_*
--     columns) are joined to the calls that lack identity or cost; the rest is walked (one
--     recursive walk, same 64-level stop; the DuckDB text does two hops by span id first)
--     and priced (bound arrays, clickhouse/unstamped.py) at read time;
--   * on the typed table, the calls a settle wrote complete (clickhouse/ledger.py: one row per
--     call, identity and price final) are read as stored, UNION ALL the typed rows no settle
--     covered (the unsettled test in calls_in_window), which take the path above;
--   * attributes is the call's SpanAttributes Map (content left out,
--     see _spans.sql), read by key (dialect.py translates the JSON reads); the keys of
--     clickhouse/prelude.py ATTRIBUTE_COLUMNS are also columns after it (attr_*: stored in
--     the settled calls, computed from the Map in the other rows), which the dialect reads
--     instead of the Map: a key of a Map is read with the whole Map;
--   * the last test of costattr_calls is the --where filter (rendered by clickhouse/prelude.py: DuckDB redefines
--     costattr_calls in _calls_repriced.sql instead).
-- @macro costattr_calls(p_since, p_until, p_service, p_feature, p_agent, p_trace := NULL)
SELECT *
FROM (
    -- typed:begin (the typed rows read as calls; prelude.calls_sql leaves this out when the
    -- settled calls cover them all)
    WITH RECURSIVE
    -- Calls that arrived without a cost, priced as the DuckDB exporter prices them (bound by
    -- otel_costattr.clickhouse.unstamped, which calls the exporter's own function).
    priced AS (
        SELECT
            tupleElement(p, 1) AS trace_id, tupleElement(p, 2) AS span_id,
            tupleElement(p, 3) AS input_tokens, tupleElement(p, 4) AS output_tokens,
            tupleElement(p, 5) AS cache_read_tokens, tupleElement(p, 6) AS cache_write_tokens,
            tupleElement(p, 7) AS reasoning_tokens,
            CAST(toDecimal128OrNull(tupleElement(p, 8), 12) AS Nullable(Decimal(38, 12))) AS cost_usd,
            tupleElement(p, 9) AS cost_status, tupleElement(p, 10) AS cost_source,
            tupleElement(p, 11) AS pricing_version, tupleElement(p, 12) AS priced_model,
            1 AS hit
        FROM (
            SELECT arrayJoin(arrayZip(
                {costattr_priced_trace_id:Array(String)}, {costattr_priced_span_id:Array(String)},
                {costattr_priced_input_tokens:Array(Nullable(Int64))},
                {costattr_priced_output_tokens:Array(Nullable(Int64))},
                {costattr_priced_cache_read_tokens:Array(Nullable(Int64))},
                {costattr_priced_cache_write_tokens:Array(Nullable(Int64))},
                {costattr_priced_reasoning_tokens:Array(Nullable(Int64))},
                {costattr_priced_cost_usd:Array(Nullable(String))},
                {costattr_priced_cost_status:Array(Nullable(String))},
                {costattr_priced_cost_source:Array(Nullable(String))},
                {costattr_priced_pricing_version:Array(Nullable(String))},
                {costattr_priced_priced_model:Array(Nullable(String))}
            )) AS p
        )
    ),
    -- What `otel-costattr clickhouse settle` settled (clickhouse/settle.py): per call, its
    -- identity once it can no longer change (identity = 1) and its price when it arrived
    -- unstamped (priced = 1); an empty relation when nothing was ever settled.
    settled AS ({{settled}}),
    -- The window's calls, each once: a span the Collector wrote twice (an exporter retry) is
    -- one call, as the DuckDB store keeps one on insert (the copies are the same span, so both
    -- fall on the same side of the split below, and LIMIT BY on each side is exact).
    calls_in_window AS (
        SELECT *
        FROM spans
        WHERE span_role = 'model_call'
          AND (p_since IS NULL OR start_time >= p_since)
          AND (p_until IS NULL OR start_time < p_until)
          AND (p_service IS NULL OR service_name = p_service)
          AND (p_trace IS NULL OR trace_id = lower(p_trace))
          -- With settled calls (clickhouse/ledger.py): only the typed rows no settle covered.
          AND {{unsettled}}
    ),
    -- Calls that carry their identity and a cost stamp (the processor ran): taken as stored.
    -- Kept apart because a join costs even when nothing matches (a third of a rollup).
    complete AS (
        SELECT *
        FROM calls_in_window
        WHERE feature IS NOT NULL AND agent_name IS NOT NULL AND cost_status <> 'not_stamped'
        LIMIT 1 BY trace_id, span_id
    ),
    -- The others, with what was settled for them, or what the read-time pricing gives.
    windowed AS (
        SELECT
            s.trace_id AS trace_id, s.span_id AS span_id, s.parent_span_id AS parent_span_id,
            s.name AS name, s.start_time AS start_time, s.end_time AS end_time,
            s.duration_ms AS duration_ms, s.service_name AS service_name, s.provider AS provider,
            s.request_model AS request_model, s.response_model AS response_model,
            ifNull(st.priced, 0) = 1 AS priced_before, p.hit IS NOT NULL AS priced_now,
            multiIf(priced_before, st.input_tokens, priced_now, p.input_tokens, s.input_tokens) AS input_tokens,
            multiIf(priced_before, st.output_tokens, priced_now, p.output_tokens, s.output_tokens)
                AS output_tokens,
            multiIf(priced_before, st.cache_read_tokens, priced_now, p.cache_read_tokens, s.cache_read_tokens)
                AS cache_read_tokens,
            multiIf(priced_before, st.cache_write_tokens, priced_now, p.cache_write_tokens, s.cache_write_tokens)
                AS cache_write_tokens,
            multiIf(priced_before, st.reasoning_tokens, priced_now, p.reasoning_tokens, s.reasoning_tokens)
                AS reasoning_tokens,
            multiIf(priced_before, st.cost_usd, priced_now, p.cost_usd, s.cost_usd) AS cost_usd,
            multiIf(priced_before, st.cost_status, priced_now, p.cost_status, s.cost_status) AS cost_status,
            multiIf(priced_before, st.cost_source, priced_now, p.cost_source, s.cost_source) AS cost_source,
            multiIf(priced_before, st.pricing_version, priced_now, p.pricing_version, s.pricing_version)
                AS pricing_version,
            multiIf(priced_before, st.priced_model, priced_now, p.priced_model, s.priced_model) AS priced_model,
            s.step AS step, s.conversation_id AS conversation_id,
            ifNull(st.identity, 0) = 1 AS settled,
            if(settled, st.feature, s.feature) AS feature,
            if(settled, st.agent_name, s.agent_name) AS agent_name,
            if(settled, st.agent_version, s.agent_version) AS agent_version,
            s.attributes AS attributes,
            {{call_row}} AS call_row
        FROM (
            SELECT *
            FROM calls_in_window
            WHERE feature IS NULL OR agent_name IS NULL OR cost_status = 'not_stamped'
            LIMIT 1 BY trace_id, span_id
        ) AS s
        LEFT JOIN priced AS p ON p.trace_id = s.trace_id AND p.span_id = s.span_id
        LEFT JOIN settled AS st ON st.trace_id = s.trace_id AND st.span_id = s.span_id
    ),
    -- Calls still missing feature or agent whose identity was not settled: walked here. When
    -- the window holds none (clickhouse/settle.py `needs_walk`), prelude.calls_sql puts an
    -- empty `resolved` in place of the lines between the walk markers: the walk's plan alone
    -- cost a third of a rollup.
    -- walk:begin
    lacking AS (
        SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
        FROM windowed
        WHERE (feature IS NULL OR agent_name IS NULL) AND parent_span_id IS NOT NULL AND NOT settled
    ),
    -- walk:steps (from here to walk:end, the settle pass walks too: _settle.sql). The
    -- ancestors are read at every step, of lacking's traces (or of bound traces that hold
    -- them), within their spans' start times when those are bound (prelude.calls_sql): the
    -- days they fall on, not every day. A reader walks few calls in Python instead
    -- (clickhouse/walk.py, this rule step for step), and binds the answers as resolved.
    ancestors AS (
        SELECT trace_id, span_id, parent_span_id, feature, agent_name, agent_version
        FROM spans
        WHERE {{walk_ancestors}}
    ),
    walk AS (
        SELECT trace_id, span_id, parent_span_id AS parent, toUInt32(0) AS depth, feature,
               agent_name, agent_version
        FROM lacking
        UNION ALL
        -- DISTINCT: a span stored twice (an exporter retry) would double a step's rows, and
        -- inside a cycle of parent ids every turn doubled them (2^64 at the limit).
        SELECT DISTINCT w.trace_id, w.span_id, a.parent_span_id, toUInt32(w.depth + 1),
               coalesce(w.feature, a.feature),
               if(w.agent_name IS NULL, a.agent_name, w.agent_name),
               if(w.agent_name IS NULL, a.agent_version, w.agent_version)
        FROM walk AS w
        INNER JOIN ancestors AS a ON a.trace_id = w.trace_id AND a.span_id = w.parent
        WHERE (w.feature IS NULL OR w.agent_name IS NULL) AND w.depth < 64
    ),
    -- One answer per call: the furthest the walk went (it only carries what it found up),
    -- and whether its chain ended at a root, and how deep (what settling needs).
    resolved AS (
        SELECT trace_id, span_id, 1 AS hit,
               argMax(tuple(feature, agent_name, agent_version, parent IS NULL, depth), depth) AS found
        FROM walk
        GROUP BY trace_id, span_id
    )
    -- walk:end
    SELECT
        trace_id, span_id, parent_span_id, name, start_time, end_time, duration_ms,
        service_name, provider, request_model, response_model,
        coalesce(priced_model, response_model, request_model) AS model,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        cost_usd, cost_status, cost_source, pricing_version, priced_model, feature, agent_name,
        agent_version, step, conversation_id, attributes, {{attribute_columns}},
        CAST(NULL AS Nullable(Decimal(38, 18))) AS usd_repriced, {{call_row_complete}} AS call_row
    FROM complete
    UNION ALL
    SELECT
        c.trace_id AS trace_id, c.span_id AS span_id, c.parent_span_id AS parent_span_id,
        c.name AS name, c.start_time AS start_time, c.end_time AS end_time,
        c.duration_ms AS duration_ms, c.service_name AS service_name, c.provider AS provider,
        c.request_model AS request_model, c.response_model AS response_model,
        coalesce(c.priced_model, c.response_model, c.request_model) AS model,
        c.input_tokens AS input_tokens, c.output_tokens AS output_tokens,
        c.cache_read_tokens AS cache_read_tokens, c.cache_write_tokens AS cache_write_tokens,
        c.reasoning_tokens AS reasoning_tokens,
        c.cost_usd AS cost_usd, c.cost_status AS cost_status, c.cost_source AS cost_source,
        c.pricing_version AS pricing_version, c.priced_model AS priced_model,
        if(r.hit IS NULL, c.feature, tupleElement(r.found, 1)) AS feature,
        if(r.hit IS NULL, c.agent_name, tupleElement(r.found, 2)) AS agent_name,
        if(r.hit IS NULL, c.agent_version, tupleElement(r.found, 3)) AS agent_version,
        c.step AS step, c.conversation_id AS conversation_id,
        c.attributes AS attributes, {{attribute_columns(c)}},
        CAST(NULL AS Nullable(Decimal(38, 18))) AS usd_repriced, c.call_row AS call_row
    FROM windowed AS c
    LEFT JOIN resolved AS r ON r.trace_id = c.trace_id AND r.span_id = c.span_id
    -- ledger:begin (the calls settles wrote once, complete: read as stored, no join, no
    -- LIMIT BY; prelude.calls_sql leaves this out when there are none)
    UNION ALL
    -- typed:end
    SELECT *, CAST(NULL AS Nullable(Decimal(38, 18))) AS usd_repriced, {{call_row_settled}} AS call_row
    FROM ({{settled_calls}}) AS settled_calls
    WHERE (p_since IS NULL OR start_time >= p_since)
      AND (p_until IS NULL OR start_time < p_until)
      AND (p_service IS NULL OR service_name = p_service)
      AND (p_trace IS NULL OR trace_id = lower(p_trace))
    -- ledger:end
)
WHERE (p_feature IS NULL OR feature = p_feature)
  AND (p_agent IS NULL OR agent_name = p_agent)
  AND {{where}}
-- @macro costattr_runs(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit)
-- One body for both run macros (below): ClickHouse inlines a CTE at each read, so the runs
-- are aggregated once, with the unpriced tokens, and runs_list leaves those out.
SELECT * EXCEPT (unpriced_tokens)
FROM costattr_runs_unpriced(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit)
-- @macro costattr_runs_unpriced(p_since, p_until, p_service, p_feature, p_agent, p_order, p_limit)
-- queries/_runs_unpriced.sql's macro: costattr_runs with unpriced_tokens, the input + output
-- tokens of the run's calls that cost_usd leaves out. Summed in the same pass as the run's
-- other aggregates (DuckDB reads the calls of the kept runs with unpriced calls again: here a
-- second read of the kept runs would aggregate every call again, CTEs being inlined).
WITH
per_trace AS (
    SELECT
        trace_id,
        count(*) AS calls,
        countIf(cost_usd IS NULL) AS unpriced_calls,
        sum(cost_usd) AS cost_usd,
        sum(usd_repriced) AS usd_repriced,
        countIf(usd_repriced IS NULL) AS unpriced_calls_repriced,
        min(start_time) AS first_call,
        max(end_time) AS last_call,
        argMin(service_name, start_time) AS first_service,
        argMinIf(agent_name, start_time, agent_name IS NOT NULL) AS first_agent,
        argMinIf(feature, start_time, feature IS NOT NULL) AS first_feature,
        sumIf(coalesce(input_tokens, 0) + coalesce(output_tokens, 0), cost_usd IS NULL) AS unpriced_tokens
    FROM costattr_calls(p_since, p_until, p_service, p_feature, p_agent)
    GROUP BY trace_id
),
-- The first p_limit runs in the rollups' order (trace_id last: a total order, so the same
-- runs as DuckDB's). LIMIT takes a constant expression, which the bound parameter is: a
-- top-N sort, where numbering the rows (a window) sorted every run of the window (900k runs
-- at 10M spans: 0.9 s of runs-list's 2.1 s of CPU).
kept AS (
    SELECT *
    FROM per_trace
    ORDER BY
        if(p_order = 'cost', cost_usd, NULL) DESC NULLS LAST,
        if(p_order = 'cost', calls, NULL) DESC,
        first_call DESC,
        trace_id
    LIMIT ifNull(toUInt64(p_limit), 18446744073709551615)
),
-- The kept runs' root spans, joined and then aggregated: a filter "trace_id IN kept" would
-- read kept again, which ClickHouse computes again (every call aggregated a second time).
-- Not bounded by the window: a root may start before its calls (or anywhere: the services'
-- clocks differ), and DuckDB reads every root of a kept run.
root_spans AS (
    SELECT trace_id, name, service_name, start_time, end_time, agent_name, feature, 1 AS hit
    FROM spans
    WHERE parent_span_id IS NULL
),
runs AS (
    SELECT
        k.trace_id AS trace_id,
        -- one value per kept run (the join repeats it per root span)
        any(k.calls) AS calls, any(k.unpriced_calls) AS unpriced_calls, any(k.cost_usd) AS cost_usd,
        any(k.usd_repriced) AS usd_repriced, any(k.unpriced_calls_repriced) AS unpriced_calls_repriced,
        any(k.first_call) AS first_call,
        any(k.last_call) AS last_call, any(k.first_service) AS first_service,
        any(k.first_agent) AS first_agent, any(k.first_feature) AS first_feature,
        any(k.unpriced_tokens) AS unpriced_tokens,
        max(r.hit) AS hit,
        argMin(r.name, r.start_time) AS name,
        argMin(r.service_name, r.start_time) AS root_service,
        min(r.start_time) AS root_start,
        max(r.end_time) AS root_end,
        argMinIf(r.agent_name, r.start_time, r.agent_name IS NOT NULL) AS root_agent,
        argMinIf(r.feature, r.start_time, r.feature IS NOT NULL) AS root_feature
    -- kept LEFT JOIN root_spans, written as a RIGHT JOIN so that kept (at most the window's
    -- runs) is the side held in memory, not every root span of the store; where the server
    -- has join runtime filters (enable_join_runtime_filters: chDB 4.4 has), the roots of other runs are then
    -- dropped as they are read, before the join. Trace ids are random and the tables are
    -- partitioned by day: no set of a window's trace ids skips granules (EXPLAIN indexes = 1
    -- on 1M spans over 30 days: 149 of 149 read for two days' 6,253 runs): the test
    -- parent_span_id IS NULL still reads every span's null map (one byte each).
    FROM root_spans AS r
    RIGHT JOIN kept AS k ON r.trace_id = k.trace_id
    GROUP BY k.trace_id
)
SELECT
    trace_id,
    name,
    coalesce(root_service, first_service) AS service_name,
    coalesce(root_feature, first_feature) AS feature,
    coalesce(root_agent, first_agent) AS agent_name,
    if(hit IS NULL, first_call, root_start) AS start_time,
    if(hit IS NULL, last_call, root_end) AS end_time,
    (toUnixTimestamp64Micro(if(hit IS NULL, last_call, root_end))
     - toUnixTimestamp64Micro(if(hit IS NULL, first_call, root_start))) / 1000.0 AS duration_ms,
    calls, unpriced_calls, cost_usd, usd_repriced, unpriced_calls_repriced, first_call, unpriced_tokens
FROM runs
