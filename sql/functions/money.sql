-- Money in SQL: the one place the database converts cents to nano-dollars.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- 1 cent = 10,000,000 nano-dollars (shared/money.py: NANOS_PER_CENT).
CREATE OR REPLACE FUNCTION kx_nanos(p_cents bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT p_cents * 10000000 $$;
