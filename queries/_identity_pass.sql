-- The identity pass's watermark (queries/_identity.sql): spans whose rowid is above it were
-- stored after the last pass, and only the calls of their traces are walked again. One row;
-- -1 before any pass, so a file migrated with calls still unsettled has them tried once more.
CREATE TABLE costattr_identity_pass (watermark BIGINT NOT NULL);
INSERT INTO costattr_identity_pass VALUES (-1);
