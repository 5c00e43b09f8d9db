-- Security (keys, abuse, billing of calls that did not end well).
--
-- Roles, least to most power: viewer (reads: KaixuPush status and billing), caller (+ gateway
-- calls; the new default), deployer (+ KaixuPush deploys), admin (+ registering projects),
-- owner (the master key). Every existing key keeps the role it has, so none silently gains or
-- loses power; the keys that got `deployer` only because it was the default are listed in one
-- audit event (`key.roles_introduced`) for the operator to review.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'caller', 'deployer', 'admin', 'owner'));
ALTER TABLE api_keys ALTER COLUMN role SET DEFAULT 'caller';
INSERT INTO audit_events (actor, action, target, details)
SELECT 'migration', 'key.roles_introduced', 'keys',
       jsonb_build_object('deployer_keys', jsonb_agg(id ORDER BY id),
                          'note', 'These keys were created with the deployer role, the default until roles '
                                  'could be chosen: they may deploy sites. Lower the role of those that do not.')
FROM api_keys WHERE role = 'deployer' AND revoked_at IS NULL
HAVING count(*) > 0;

-- Concurrent calls: per customer (null: DEFAULT_MAX_CONCURRENT) and per key (null: no limit
-- of its own); 0 means unlimited. Counted from the open reservations.
ALTER TABLE customers ADD COLUMN max_concurrent int CHECK (max_concurrent >= 0);
ALTER TABLE api_keys ADD COLUMN max_concurrent int CHECK (max_concurrent >= 0);
CREATE INDEX reservations_customer ON reservations (customer_id);
CREATE INDEX reservations_key ON reservations (api_key_id);

-- The prompt's bound and its cost, kept with the reservation: what an abandoned call bills.
ALTER TABLE reservations ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0,
                         ADD COLUMN prompt_nanos bigint NOT NULL DEFAULT 0 CHECK (prompt_nanos >= 0);

DROP FUNCTION kx_admit(bytea, text, text, text, text, bigint, int);

-- ADMIT. Concurrency: the key's rate rings and the month rollups are locked rows, and new
-- device seats are claimed under a per-key advisory lock, so parallel calls can never pass a
-- limit together. Nothing is written unless the call is admitted.
CREATE FUNCTION kx_admit(
    p_key_hash bytea, p_provider text, p_model text, p_install_id text, p_user_agent text,
    p_worst_nanos bigint, p_default_rpm int, p_prompt_tokens bigint, p_prompt_nanos bigint,
    p_default_concurrency int,
    OUT status int, OUT code text, OUT scope text, OUT limit_value int, OUT retry_after_s int,
    OUT reservation_id bigint, OUT customer_id bigint, OUT api_key_id bigint, OUT month text,
    OUT cap_cents bigint, OUT spent_nanos bigint, OUT key_cap_cents bigint, OUT key_spent_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    k api_keys%ROWTYPE;
    c customers%ROWTYPE;
    v_now timestamptz := now();
    v_month text := to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM');
    v_providers text[];
    v_models jsonb;
    v_listed jsonb;
    v_seats int;
    v_device key_devices%ROWTYPE;
    v_new_device boolean := false;
    v_rpm int;
    v_rpd int;
    v_minute rate_limit_rings;
    v_day rate_limit_rings;
    v_block timestamptz;
    v_cu monthly_usage%ROWTYPE;
    v_ku monthly_key_usage%ROWTYPE;
    v_key_capped boolean;
    v_concurrency int;
BEGIN
    -- The admission need not wait for its WAL flush: settlement is durable and bills from the
    -- call's own figures, so a crash losing a just-admitted reservation loses no money.
    PERFORM set_config('synchronous_commit', 'off', true);
    status := 0;
    SELECT * INTO k FROM api_keys WHERE key_hash = p_key_hash;
    IF NOT FOUND THEN
        status := 401; code := 'INVALID_KEY'; RETURN;
    END IF;
    api_key_id := k.id;
    customer_id := k.customer_id;
    IF k.revoked_at IS NOT NULL THEN
        status := 401; code := 'KEY_REVOKED'; RETURN;
    END IF;
    SELECT * INTO c FROM customers WHERE id = k.customer_id;
    IF NOT c.is_active THEN
        status := 403; code := 'CUSTOMER_DISABLED'; RETURN;
    END IF;
    IF k.role = 'viewer' THEN  -- a viewer key reads, it never spends
        status := 403; code := 'ROLE_FORBIDDEN'; RETURN;
    END IF;

    -- Allowlists: the key's value replaces the customer's when set.
    v_providers := coalesce(k.allowed_providers, c.allowed_providers);
    IF v_providers IS NOT NULL AND NOT (p_provider = ANY (v_providers) OR '*' = ANY (v_providers)) THEN
        status := 403; code := 'PROVIDER_NOT_ALLOWED'; RETURN;
    END IF;
    v_models := coalesce(k.allowed_models, c.allowed_models);
    IF v_models IS NOT NULL THEN
        v_listed := coalesce(v_models -> p_provider, v_models -> '*');
        IF v_listed IS NULL OR NOT (v_listed ? '*' OR v_listed ? p_model) THEN
            status := 403; code := 'MODEL_NOT_ALLOWED'; RETURN;
        END IF;
    END IF;

    -- Device seats, per key.
    v_seats := nullif(coalesce(k.max_devices, c.max_devices_per_key), 0);
    IF p_install_id IS NULL THEN
        IF coalesce(k.require_install_id, c.require_install_id) OR v_seats IS NOT NULL THEN
            status := 400; code := 'INSTALL_ID_REQUIRED'; RETURN;
        END IF;
    ELSE
        SELECT * INTO v_device FROM key_devices d WHERE d.api_key_id = k.id AND d.install_id = p_install_id;
        IF NOT FOUND AND v_seats IS NOT NULL THEN
            -- A new device takes a seat: serialise this key's seat claims, then look again.
            PERFORM pg_advisory_xact_lock(hashtextextended('kx_seats:' || k.id, 0));
            SELECT * INTO v_device FROM key_devices d WHERE d.api_key_id = k.id AND d.install_id = p_install_id;
        END IF;
        IF FOUND THEN
            IF v_device.revoked_at IS NOT NULL THEN
                status := 403; code := 'DEVICE_REVOKED'; RETURN;
            END IF;
        ELSIF v_seats IS NOT NULL AND (SELECT count(*) FROM key_devices d
                                       WHERE d.api_key_id = k.id AND d.revoked_at IS NULL) >= v_seats THEN
            status := 403; code := 'DEVICE_LIMIT'; limit_value := v_seats; RETURN;
        ELSE
            v_new_device := true;
        END IF;
    END IF;

    -- Rate limits: exact sliding windows; refused calls take nothing.
    v_rpm := coalesce(k.rpm_limit, c.rpm_limit, p_default_rpm);
    IF v_rpm > 0 THEN
        v_minute := kx_ring_lock(k.id, 'minute', v_rpm);
        v_now := clock_timestamp();  -- after the wait for the lock: admissions stay in time order
        v_block := kx_ring_blocker(v_minute, interval '60 seconds', v_now);
        IF v_block IS NOT NULL THEN
            status := 429; code := 'RATE_LIMITED'; scope := 'minute'; limit_value := v_rpm;
            retry_after_s := greatest(1, ceil(extract(epoch FROM v_block + interval '60 seconds' - v_now)))::int;
            RETURN;
        END IF;
    END IF;
    v_rpd := coalesce(k.rpd_limit, c.rpd_limit);
    IF v_rpd > 0 THEN
        v_day := kx_ring_lock(k.id, 'day', v_rpd);
        v_block := kx_ring_blocker(v_day, interval '1 day', v_now);
        IF v_block IS NOT NULL THEN
            status := 429; code := 'RATE_LIMITED'; scope := 'day'; limit_value := v_rpd;
            retry_after_s := greatest(1, ceil(extract(epoch FROM v_block + interval '1 day' - v_now)))::int;
            RETURN;
        END IF;
    END IF;

    -- Caps: reserve the worst case against the customer's month, and against the key's when
    -- the key has a cap of its own (otherwise the customer's check covers it).
    v_cu := kx_customer_month(c.id, v_month);
    month := v_month;

    -- Concurrent calls: the customer's month row, locked just above, serialises every
    -- admission of this customer, so the open reservations counted here cannot change under us.
    v_concurrency := coalesce(c.max_concurrent, p_default_concurrency);
    IF v_concurrency > 0 AND (SELECT count(*) FROM reservations r WHERE r.customer_id = c.id) >= v_concurrency THEN
        status := 429; code := 'CONCURRENCY_LIMIT'; scope := 'customer'; limit_value := v_concurrency;
        retry_after_s := 1; RETURN;
    END IF;
    IF k.max_concurrent > 0 AND (SELECT count(*) FROM reservations r WHERE r.api_key_id = k.id) >= k.max_concurrent THEN
        status := 429; code := 'CONCURRENCY_LIMIT'; scope := 'key'; limit_value := k.max_concurrent;
        retry_after_s := 1; RETURN;
    END IF;

    cap_cents := c.monthly_cap_cents + v_cu.topup_cents;
    key_cap_cents := coalesce(k.monthly_cap_cents, cap_cents);
    spent_nanos := v_cu.spent_nanos;
    v_key_capped := k.monthly_cap_cents IS NOT NULL;
    IF v_key_capped THEN
        v_ku := kx_key_month(k.id, c.id, v_month);
        key_spent_nanos := v_ku.spent_nanos;
    ELSE
        key_spent_nanos := coalesce((SELECT mk.spent_nanos FROM monthly_key_usage mk
                                     WHERE mk.api_key_id = k.id AND mk.month = v_month), 0);
    END IF;
    IF v_cu.spent_nanos + v_cu.reserved_nanos + p_worst_nanos > cap_cents * 10000000 THEN
        status := 402; code := 'CAP_REACHED'; scope := 'customer'; RETURN;
    END IF;
    IF v_key_capped AND v_ku.spent_nanos + v_ku.reserved_nanos + p_worst_nanos > key_cap_cents * 10000000 THEN
        status := 402; code := 'CAP_REACHED'; scope := 'key'; RETURN;
    END IF;

    -- Admitted: take the rate slots, the seat and the reservation.
    IF v_rpm > 0 THEN
        PERFORM kx_ring_take(v_minute, v_now);
    END IF;
    IF v_rpd > 0 THEN
        PERFORM kx_ring_take(v_day, v_now);
    END IF;
    IF v_new_device THEN
        INSERT INTO key_devices (api_key_id, install_id, customer_id, user_agent)
        VALUES (k.id, p_install_id, c.id, p_user_agent)
        ON CONFLICT DO NOTHING;
    END IF;
    UPDATE monthly_usage mu SET reserved_nanos = mu.reserved_nanos + p_worst_nanos
    WHERE mu.customer_id = c.id AND mu.month = v_month;
    IF v_key_capped THEN
        UPDATE monthly_key_usage mk SET reserved_nanos = mk.reserved_nanos + p_worst_nanos
        WHERE mk.api_key_id = k.id AND mk.month = v_month;
    END IF;
    INSERT INTO reservations (customer_id, api_key_id, month, reserved_nanos, key_reserved_nanos, provider,
                              model, install_id, prompt_tokens, prompt_nanos)
    VALUES (c.id, k.id, v_month, p_worst_nanos, CASE WHEN v_key_capped THEN p_worst_nanos ELSE 0 END,
            p_provider, p_model, p_install_id, p_prompt_tokens, p_prompt_nanos)
    RETURNING id INTO reservation_id;
END $$;

-- SETTLE, as in 006, deleting the reservation only when it is the call's own (customer and
-- key match), and taking a release's prompt charge into account.
CREATE OR REPLACE FUNCTION kx_settle(
    p_reservation_id bigint, p_customer_id bigint, p_api_key_id bigint, p_month text,
    p_provider text, p_model text, p_install_id text,
    p_input_tokens bigint, p_output_tokens bigint, p_cost_nanos bigint, p_outcome text,
    p_estimated boolean, p_request_id text, p_function text, p_app text, p_build text,
    p_status int, p_duration_ms real, p_summary text, p_user_agent text,
    OUT month text, OUT spent_nanos bigint, OUT key_spent_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_held bigint := 0;
    v_key_held bigint := 0;
    v_event_id bigint;
    v_prior usage_events%ROWTYPE;
    v_calls int := 1;
    v_cost bigint := p_cost_nanos;
    v_input bigint := p_input_tokens;
    v_output bigint := p_output_tokens;
BEGIN
    DELETE FROM reservations
    WHERE id = p_reservation_id AND customer_id = p_customer_id AND api_key_id = p_api_key_id
    RETURNING reserved_nanos, key_reserved_nanos INTO v_held, v_key_held;
    v_held := coalesce(v_held, 0);
    v_key_held := coalesce(v_key_held, 0);
    INSERT INTO usage_events (reservation_id, customer_id, api_key_id, month, provider, model, input_tokens,
                              output_tokens, cost_nanos, outcome, estimated, install_id, app, build,
                              request_id, duration_ms)
    VALUES (p_reservation_id, p_customer_id, p_api_key_id, p_month, p_provider, p_model, p_input_tokens,
            p_output_tokens, p_cost_nanos, p_outcome, p_estimated, p_install_id, p_app, p_build,
            p_request_id, p_duration_ms)
    ON CONFLICT (reservation_id) DO NOTHING
    RETURNING id INTO v_event_id;
    IF v_event_id IS NULL THEN
        SELECT * INTO v_prior FROM usage_events WHERE reservation_id = p_reservation_id FOR UPDATE;
        IF v_prior.outcome <> 'abandoned' OR p_outcome = 'abandoned' THEN
            RETURN;  -- already settled
        END IF;
        UPDATE usage_events
        SET input_tokens = p_input_tokens, output_tokens = p_output_tokens, cost_nanos = p_cost_nanos,
            outcome = p_outcome, estimated = p_estimated, app = p_app, build = p_build,
            request_id = p_request_id, duration_ms = p_duration_ms
        WHERE id = v_prior.id;
        v_calls := 0;
        -- The release billed the prompt bound already: the rollups take only the difference.
        v_cost := p_cost_nanos - v_prior.cost_nanos;
        v_input := p_input_tokens - v_prior.input_tokens;
        v_output := p_output_tokens - v_prior.output_tokens;
    END IF;

    -- Last seen, at most once a second per key and device: keeps the hot key row cool.
    UPDATE api_keys SET last_seen_at = now(), last_seen_install_id = coalesce(p_install_id, last_seen_install_id)
    WHERE id = p_api_key_id AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 second');
    IF p_install_id IS NOT NULL THEN
        UPDATE key_devices d SET last_seen_at = now(), user_agent = coalesce(p_user_agent, d.user_agent)
        WHERE d.api_key_id = p_api_key_id AND d.install_id = p_install_id
          AND d.last_seen_at < now() - interval '1 second';
    END IF;
    INSERT INTO gateway_events (request_id, level, kind, function_name, method, app, build, status,
                                duration_ms, customer_id, api_key_id, provider, model, summary)
    VALUES (p_request_id, CASE WHEN p_status >= 500 THEN 'error' WHEN p_status >= 400 THEN 'warn' ELSE 'info' END,
            'http', p_function, 'POST', p_app, p_build, p_status, p_duration_ms, p_customer_id, p_api_key_id,
            p_provider, p_model, p_summary);
    INSERT INTO monthly_usage AS mu (customer_id, month, spent_nanos, input_tokens, output_tokens, calls)
    VALUES (p_customer_id, p_month, v_cost, v_input, v_output, v_calls)
    ON CONFLICT ON CONSTRAINT monthly_usage_pkey DO UPDATE
    SET reserved_nanos = mu.reserved_nanos - v_held, spent_nanos = mu.spent_nanos + v_cost,
        input_tokens = mu.input_tokens + v_input, output_tokens = mu.output_tokens + v_output,
        calls = mu.calls + v_calls, updated_at = now()
    RETURNING mu.spent_nanos INTO spent_nanos;
    INSERT INTO monthly_key_usage AS mk (api_key_id, month, customer_id, spent_nanos, input_tokens,
                                         output_tokens, calls)
    VALUES (p_api_key_id, p_month, p_customer_id, v_cost, v_input, v_output, v_calls)
    ON CONFLICT ON CONSTRAINT monthly_key_usage_pkey DO UPDATE
    SET reserved_nanos = mk.reserved_nanos - v_key_held, spent_nanos = mk.spent_nanos + v_cost,
        input_tokens = mk.input_tokens + v_input, output_tokens = mk.output_tokens + v_output,
        calls = mk.calls + v_calls, updated_at = now()
    RETURNING mk.spent_nanos INTO key_spent_nanos;
    month := p_month;
END $$;

-- Release a reservation whose call has not settled long after it could have (its process
-- died). The provider has at least read the prompt, so the call is billed at its admission's
-- prompt bound, marked estimated and abandoned; should the call still end after all, its
-- settlement replaces that record (and the rollups take the difference).
CREATE OR REPLACE FUNCTION kx_release_reservation(p_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r reservations%ROWTYPE;
BEGIN
    SELECT * INTO r FROM reservations WHERE id = p_id FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM kx_settle(r.id, r.customer_id, r.api_key_id, r.month, r.provider, r.model, r.install_id,
                      r.prompt_tokens, 0, r.prompt_nanos, 'abandoned', true, NULL, 'maintenance', NULL, NULL,
                      499, NULL, 'reservation released: the call did not settle in time; billed its prompt',
                      NULL);
    RETURN true;
END $$;
