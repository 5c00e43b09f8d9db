-- KaixuPush: what one customer may hold at once, and the Netlify budget per token.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- Take a place among the customer's busy requests: the new row's id, or NULL when the
-- customer already has p_limit live ones. Serialised per customer, so concurrent requests
-- in any number of processes never pass the limit together.
CREATE OR REPLACE FUNCTION kx_push_enter(p_customer bigint, p_limit int, p_ttl_s double precision)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('kaixupush-busy:' || p_customer, 0));
    DELETE FROM push_busy WHERE customer_id = p_customer AND expires_at < clock_timestamp();
    IF (SELECT count(*) FROM push_busy WHERE customer_id = p_customer) >= p_limit THEN
        RETURN NULL;
    END IF;
    INSERT INTO push_busy (customer_id, expires_at)
    VALUES (p_customer, clock_timestamp() + make_interval(secs => p_ttl_s))
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- Spend one call of the token's budget: 0 when spent, else the seconds until one is free
-- (nothing is spent then).
CREATE OR REPLACE FUNCTION kx_netlify_take(p_token_hash text, p_per_s double precision, p_burst double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_now    timestamptz := clock_timestamp();
    v_tokens double precision;
BEGIN
    INSERT INTO push_netlify_budget (token_hash, tokens, refilled_at) VALUES (p_token_hash, p_burst, v_now)
    ON CONFLICT (token_hash) DO NOTHING;
    SELECT least(p_burst, b.tokens + greatest(0, extract(epoch FROM v_now - b.refilled_at)) * p_per_s)
    INTO v_tokens FROM push_netlify_budget b WHERE b.token_hash = p_token_hash FOR UPDATE;
    IF v_tokens >= 1 THEN
        UPDATE push_netlify_budget SET tokens = v_tokens - 1, refilled_at = v_now WHERE token_hash = p_token_hash;
        RETURN 0;
    END IF;
    UPDATE push_netlify_budget SET tokens = v_tokens, refilled_at = v_now WHERE token_hash = p_token_hash;
    RETURN (1 - v_tokens) / p_per_s;
END
$$;
