-- costattr_per(total, n): a sum of money over a count, as DECIMAL(38, 12), exact and rounded
-- half away from zero (as DuckDB and ClickHouse round a decimal). DuckDB divides a DECIMAL as
-- a DOUBLE: CAST(123456.789012345678 / 3 AS DECIMAL(38, 12)) is 41152.263004115224, not
-- ...226. Here the total in picodollars (a HUGEINT, exact for a scale of 12 or less: its
-- whole dollars and its fraction scaled apart, so any DECIMAL(38, 12) total fits) is divided
-- as integers and scaled back. n: a whole number; NULL when either is NULL or n is 0 (an
-- integer division by zero is NULL). ClickHouse: clickhouse/dialect.py `_per`.
CREATE OR REPLACE TEMP MACRO costattr_picos(total) AS
    CAST(trunc(total) AS HUGEINT) * 1000000000000
    + CAST((total - trunc(total)) * 1000000000000 AS HUGEINT);
CREATE OR REPLACE TEMP MACRO costattr_per_picos(a, n) AS  -- a >= 0: a / n, half rounded up
    a // nullif(n, 0) + CASE WHEN 2 * (a % nullif(n, 0)) >= n THEN 1 ELSE 0 END;
CREATE OR REPLACE TEMP MACRO costattr_per(total, n) AS
    CAST(
        CAST(sign(total) * costattr_per_picos(abs(costattr_picos(total)), n) AS DECIMAL(38, 0))
        * CAST(0.000000000001 AS DECIMAL(13, 12))
        AS DECIMAL(38, 12)
    );
