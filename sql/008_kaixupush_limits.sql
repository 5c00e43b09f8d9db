-- KaixuPush limits: what one customer may hold of the gateway's memory, database disk and
-- Netlify token at once.
--
-- push_pushes.state may now also be 'expired': the push's upload window
-- (KAIXUPUSH_RETENTION_H from its creation) and the day after it given to Netlify to
-- publish have passed without the deploy becoming ready; it is finished and never billed.
-- Failed inits ('init_failed') now count against the deploy rate limit (they cost a
-- Netlify call), still not against the cap (they are never billed).

-- When Netlify was last asked for the push's deploy: status, complete and the upkeep ask
-- at most once per KAIXUPUSH_STATUS_CACHE_S and answer from this row otherwise.
ALTER TABLE push_pushes ADD COLUMN polled_at timestamptz;

-- The upkeep empties the manifest of a finished push (its paths are needed only to send
-- files); this index finds the ones left to prune.
CREATE INDEX push_pushes_unpruned ON push_pushes (finished_at)
    WHERE finished_at IS NOT NULL AND manifest <> '{}'::jsonb;

-- Staging quotas add up the reservations of a customer's open jobs (those that hold or will
-- hold staged parts), at every file admitted.
CREATE INDEX push_jobs_customer_open ON push_jobs (customer_id)
    WHERE status IN ('receiving', 'queued', 'running', 'retry_wait', 'failed');

-- Requests of a customer running an init or an upload-complete right now, one row each
-- (KAIXUPUSH_CONCURRENT_PER_CUSTOMER at most). A row outlives a process that died holding
-- it only until expires_at.
CREATE TABLE push_busy (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_busy_customer ON push_busy (customer_id);

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

-- A token bucket per Netlify token (keyed by a keyed hash, never the token): p_per_s calls
-- a second on average, bursts of p_burst. Shared by every process of the gateway.
CREATE TABLE push_netlify_budget (
    token_hash  text PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL
);

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
