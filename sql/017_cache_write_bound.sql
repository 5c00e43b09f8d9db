-- A request passed through to its provider as it came may mark prompt blocks for caching
-- (Anthropic's cache_control), and the provider bills those tokens as cache writes: 1.25x the
-- input rate for five minutes, 2x for an hour. The admission bound priced every prompt token at
-- the input rate, so such a call could settle above what it reserved, and a month above its cap.
-- A reservation now says whether its prompt may write the cache, and ADMIT and kx_extend_lease
-- price that prompt at the dearest of the input and cache-write rates (sql/functions/pricing.sql).
ALTER TABLE reservations ADD COLUMN cache_writes boolean NOT NULL DEFAULT false;

-- ADMIT gains p_cache_writes (sql/functions/admit.sql): the old one goes, so a release still
-- calling it fails closed, and the file is applied afresh.
DROP FUNCTION IF EXISTS kx_admit(bytea, text, text, text, text, bigint, bigint, bigint, bigint, boolean, int, int);
DELETE FROM schema_functions WHERE name = 'functions/admit.sql';
