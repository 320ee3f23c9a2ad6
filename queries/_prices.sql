-- Prelude for repricing (see rollups.load_prices): a pricing table as TEMP rows, one per
-- model, price period, service tier, long-context tier and time-of-day window, USD per
-- million tokens with the documented fallbacks applied (a missing cache_read rate is the
-- input rate, and so on). above is NULL for the base rates; a tier row applies when a
-- request's input tokens (cache reads and writes included) exceed it. window_start and
-- window_end (seconds after UTC midnight, [start, end), wrapping past midnight when start >
-- end) mark the rows of a time-of-day window.
CREATE OR REPLACE TEMP TABLE costattr_prices (
    pricing_version VARCHAR NOT NULL,
    provider VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    since DATE,
    valid_from TIMESTAMP,
    valid_until TIMESTAMP,
    service_tier VARCHAR NOT NULL,
    above BIGINT,
    window_start INTEGER,
    window_end INTEGER,
    input DECIMAL(38, 12) NOT NULL,
    output DECIMAL(38, 12) NOT NULL,
    cache_read DECIMAL(38, 12) NOT NULL,
    cache_write DECIMAL(38, 12) NOT NULL,
    cache_write_1h DECIMAL(38, 12) NOT NULL,
    reasoning DECIMAL(38, 12) NOT NULL
);

-- (model, provider) as spans reported them -> the priced entry, resolved in Python with the
-- table's own rules (normalisation, match rules, provider fallbacks).
CREATE OR REPLACE TEMP TABLE costattr_model_map (
    model VARCHAR NOT NULL,
    provider VARCHAR,
    price_provider VARCHAR NOT NULL,
    price_model VARCHAR NOT NULL
);
