-- ADMIT names the price and sell versions it found (id and the moment the row was written)
-- instead of returning both rows as JSON on every call: the rows never change (a change is a
-- new version), so the gateway reads each one once per process (shared/gateway/versions.py).
-- Its answer changes, so the old function goes and sql/functions/admit.sql is applied afresh.
DROP FUNCTION IF EXISTS kx_admit(bytea, text, text, text, text, bigint, bigint, bigint, bigint, boolean, int, int);
DELETE FROM schema_functions WHERE name = 'functions/admit.sql';
