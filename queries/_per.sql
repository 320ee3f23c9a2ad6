-- costattr_per(total, n): a sum of money over a count, as DECIMAL(38, 12), exact and rounded
-- half away from zero (as DuckDB and ClickHouse round a decimal). DuckDB divides a DECIMAL as
-- a DOUBLE: CAST(123456.789012345678 / 3 AS DECIMAL(38, 12)) is 41152.263004115224, not
-- ...226. Here the total in picodollars (a HUGEINT, exact for a scale of 12 or less) is
-- divided as integers and scaled back. n: a whole number; NULL when either is NULL or n is 0
-- (an integer division by zero is NULL). ClickHouse: clickhouse/dialect.py `_per`.
CREATE OR REPLACE TEMP MACRO costattr_per(total, n) AS
    CAST(
        CAST(
            sign(total) * ((2 * abs(CAST(total * 1000000000000 AS HUGEINT)) + n) // (2 * nullif(n, 0)))
            AS DECIMAL(38, 0)
        ) * CAST(0.000000000001 AS DECIMAL(13, 12))
        AS DECIMAL(38, 12)
    );
