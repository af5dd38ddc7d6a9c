-- Rollway store schema 4 (PostgreSQL): a verification counts the probes that
-- failed in its stability window (seed 000: a PASS with tolerated failures
-- says how many). Rows written before it was counted hold 0, as their doc
-- reads (the field defaults to 0).
ALTER TABLE verifications ADD COLUMN failed_probes BIGINT NOT NULL DEFAULT 0;
