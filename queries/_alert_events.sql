-- The alerts' memory (store/database.py runs this file as migration 0005_alert_events; files
-- starting with "_" are not rollups). A released migration is frozen: change it by adding one.
--
-- alert_events: one row per state change of an alert key (rule, scope_value, window_key,
-- threshold), appended, never updated: the newest row of a key is its state (OK, FIRING,
-- RESOLVED, NO_DATA), so a restarted evaluator neither forgets nor re-fires. notified says
-- whether the change was handed to the channels (a cooldown or an unchanged key: false).
CREATE TABLE IF NOT EXISTS alert_events (
    recorded_at TIMESTAMP NOT NULL,         -- naive UTC
    rule VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,                 -- run, feature, agent, model, service or an attribute key
    scope_value VARCHAR NOT NULL,
    window_key VARCHAR NOT NULL,            -- 2026-12-02 / 2026-12 (calendar), 24h / 7d / run
    threshold VARCHAR NOT NULL,             -- the rule's threshold as written (exact decimal)
    state VARCHAR NOT NULL,
    value DECIMAL(38, 12),
    limit_value DECIMAL(38, 12),
    notified BOOLEAN NOT NULL,
    source VARCHAR NOT NULL,                -- store (alerts check / watch) or processor (in-process)
    payload JSON
);
-- alert_deliveries: each delivery of a notification to a channel, after its retries.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    recorded_at TIMESTAMP NOT NULL,
    rule VARCHAR NOT NULL,
    scope_value VARCHAR NOT NULL,
    window_key VARCHAR NOT NULL,
    event VARCHAR NOT NULL,                 -- firing or resolved
    channel VARCHAR NOT NULL,
    ok BOOLEAN NOT NULL,
    attempts INTEGER NOT NULL,
    error VARCHAR
);
