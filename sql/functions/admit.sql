-- ADMIT: one statement that authorises, rate limits and reserves a gateway call.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- ADMIT. Concurrency: the month rollups and the key's rate rings are locked rows, and new
-- device seats are claimed under a per-key advisory lock, so parallel calls can never pass a
-- limit together. The customer's month row is locked before any of the key's rows: a batch of
-- admissions in one transaction (shared/gateway/group_commit.py) runs in customer and key
-- order, so two batches take their locks in one order. Nothing is reserved or taken unless the
-- call is admitted.
--
-- Output reserved: p_lease_tokens of the p_max_tokens asked for (a stream's first slice, which
-- kx_extend_lease grows; all of max_tokens otherwise), or all of them for a model with hidden
-- reasoning. When that does not fit the caps or the prepaid credit, the call is admitted with
-- the most output at least p_clamp_min that does (clamped_to), else refused as before.
--
-- A prompt that may write the provider's cache (p_cache_writes: the body marks cache_control)
-- is priced at the dearest of the input and cache-write rates (kx_cache_writing), and the
-- reservation remembers it so that every lease step is priced the same way.
--
-- An admitted call learns the prompt bound reserved and the price and sell versions by id and
-- the moment each row was written (the gateway reads a version once: its rows never change,
-- and the moment tells a reused id from the row it named before a restore). No sell version
-- (NULL): sold at cost.
CREATE OR REPLACE FUNCTION kx_admit(
    p_key_hash bytea, p_provider text, p_model text, p_install_id text, p_user_agent text,
    p_prompt_tokens bigint, p_max_tokens bigint, p_lease_tokens bigint, p_clamp_min bigint,
    p_embedding boolean, p_default_rpm int, p_default_concurrency int, p_cache_writes boolean,
    OUT status int, OUT code text, OUT scope text, OUT limit_value int, OUT retry_after_s int,
    OUT reservation_id bigint, OUT customer_id bigint, OUT api_key_id bigint, OUT month text,
    OUT cap_cents bigint, OUT spent_nanos bigint, OUT key_cap_cents bigint, OUT key_spent_nanos bigint,
    OUT balance_nanos bigint, OUT leased_tokens bigint, OUT clamped_to bigint, OUT prompt_tokens bigint,
    OUT price_version_id bigint, OUT price_written_at timestamptz, OUT sell_version_id bigint,
    OUT sell_written_at timestamptz)
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
    p plans%ROWTYPE;
    m models%ROWTYPE;
    v_price model_prices%ROWTYPE;
    v_sell sell_prices%ROWTYPE;
    v_prompt bigint;
    v_out bigint;
    v_worst bigint;
    v_room bigint;
    v_low bigint;
    v_high bigint;
    v_mid bigint;
    v_prompt_cost bigint;
    v_prompt_sell bigint;
    v_credit bigint;
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
    SELECT * INTO p FROM plans WHERE id = c.plan_id;

    -- The model and the cost price in force (exact name or alias; a retired model is unpriced).
    SELECT mo.* INTO m FROM model_names n JOIN models mo ON mo.id = n.model_id
    WHERE n.provider = p_provider AND n.name = p_model AND mo.retired_at IS NULL;
    IF FOUND THEN
        SELECT * INTO v_price FROM model_prices mp WHERE mp.model_id = m.id AND mp.effective_from <= v_now
        ORDER BY mp.effective_from DESC, mp.id DESC LIMIT 1;
    END IF;
    IF v_price.id IS NULL THEN
        status := 409; code := 'UNPRICED_MODEL'; RETURN;
    END IF;
    IF (m.mode = 'embedding') <> p_embedding THEN
        status := 400; code := CASE WHEN p_embedding THEN 'NOT_AN_EMBEDDING_MODEL' ELSE 'EMBEDDING_MODEL' END;
        RETURN;
    END IF;
    IF p_max_tokens > m.max_output_tokens THEN
        status := 400; code := 'MAX_TOKENS_TOO_LARGE'; limit_value := m.max_output_tokens; RETURN;
    END IF;

    -- Policy: the key's value replaces the customer's, the customer's the plan's, when set.
    v_providers := coalesce(k.allowed_providers, c.allowed_providers, p.allowed_providers);
    IF v_providers IS NOT NULL AND NOT (p_provider = ANY (v_providers) OR '*' = ANY (v_providers)) THEN
        status := 403; code := 'PROVIDER_NOT_ALLOWED'; RETURN;
    END IF;
    v_models := coalesce(k.allowed_models, c.allowed_models, p.allowed_models);
    IF v_models IS NOT NULL THEN
        v_listed := coalesce(v_models -> p_provider, v_models -> '*');
        IF v_listed IS NULL OR NOT (v_listed ? '*' OR v_listed ? p_model) THEN
            status := 403; code := 'MODEL_NOT_ALLOWED'; RETURN;
        END IF;
    END IF;

    -- The customer's month rollup, locked first (see above); caps are checked against it below.
    v_cu := kx_customer_month(c.id, v_month);
    month := v_month;

    -- Device seats, per key.
    v_seats := nullif(coalesce(k.max_devices, c.max_devices_per_key, p.max_devices_per_key), 0);
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
    v_rpm := coalesce(k.rpm_limit, c.rpm_limit, p.rpm_limit, p_default_rpm);
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
    v_rpd := coalesce(k.rpd_limit, c.rpd_limit, p.rpd_limit);
    IF v_rpd > 0 THEN
        v_day := kx_ring_lock(k.id, 'day', v_rpd);
        v_block := kx_ring_blocker(v_day, interval '1 day', v_now);
        IF v_block IS NOT NULL THEN
            status := 429; code := 'RATE_LIMITED'; scope := 'day'; limit_value := v_rpd;
            retry_after_s := greatest(1, ceil(extract(epoch FROM v_block + interval '1 day' - v_now)))::int;
            RETURN;
        END IF;
    END IF;

    -- Concurrent calls: the customer's month row, locked above, serialises every
    -- admission of this customer, so the open reservations counted here cannot change under us.
    v_concurrency := coalesce(c.max_concurrent, p.max_concurrent, p_default_concurrency);
    IF v_concurrency > 0 AND (SELECT count(*) FROM reservations r WHERE r.customer_id = c.id) >= v_concurrency THEN
        status := 429; code := 'CONCURRENCY_LIMIT'; scope := 'customer'; limit_value := v_concurrency;
        retry_after_s := 1; RETURN;
    END IF;
    IF k.max_concurrent > 0 AND (SELECT count(*) FROM reservations r WHERE r.api_key_id = k.id) >= k.max_concurrent THEN
        status := 429; code := 'CONCURRENCY_LIMIT'; scope := 'key'; limit_value := k.max_concurrent;
        retry_after_s := 1; RETURN;
    END IF;

    -- The reservation at the sell price in force: the prompt's bound (at most the model's
    -- context) and the output leased now, at the long-context tier when the prompt is above it.
    -- A model that reasons unseen leases all of max_tokens: no streamed byte bounds its output.
    v_sell := kx_sell_rule(c.id, c.plan_id, m.id, v_now);
    IF p_cache_writes THEN  -- the prompt may be billed as cache writes, dearer than input
        v_price := kx_cache_writing(v_price);
        v_sell := kx_cache_writing(v_sell);
    END IF;
    v_prompt := least(p_prompt_tokens, m.max_input_tokens);
    v_out := CASE WHEN m.hidden_reasoning THEN p_max_tokens ELSE least(p_lease_tokens, p_max_tokens) END;
    v_worst := kx_sell(kx_cost(v_price, v_prompt, v_out), v_sell, v_prompt, v_out);
    v_prompt_cost := kx_cost(v_price, v_prompt, 0);
    v_prompt_sell := kx_sell(v_prompt_cost, v_sell, v_prompt, 0);

    -- Caps: the customer's month, and the key's when the key has a cap of its own (otherwise
    -- the customer's check covers it).
    cap_cents := coalesce(c.monthly_cap_cents, p.monthly_cap_cents) + v_cu.topup_cents;
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
    v_credit := kx_nanos(p.included_credit_cents + v_cu.topup_cents) + v_cu.carried_in_nanos;
    balance_nanos := v_credit - v_cu.spent_nanos;
    -- Room: what the customer's cap, the key's cap and (prepaid) the credit leave, the least.
    v_room := kx_nanos(cap_cents) - v_cu.spent_nanos - v_cu.reserved_nanos;
    IF v_key_capped THEN
        v_room := least(v_room, kx_nanos(key_cap_cents) - v_ku.spent_nanos - v_ku.reserved_nanos);
    END IF;
    -- A prepaid plan spends credit only: a balance that cannot cover the call blocks it.
    IF p.prepaid THEN
        v_room := least(v_room, v_credit - v_cu.spent_nanos - v_cu.reserved_nanos);
    END IF;
    IF v_worst > v_room THEN
        -- Clamp: the most output, at least the minimum, that fits. The sell price grows with
        -- the output tokens, so a binary search between the minimum (fits) and v_out (does not)
        -- finds it exactly, in at most about twenty prices. A model with hidden reasoning is
        -- never clamped (its answer would be spent on thinking).
        v_low := CASE WHEN m.hidden_reasoning THEN v_out ELSE least(p_clamp_min, v_out) END;
        v_worst := kx_sell(kx_cost(v_price, v_prompt, v_low), v_sell, v_prompt, v_low);
        IF v_worst > v_room THEN  -- not even the minimum fits: refused, naming the limit
            status := 402; code := 'CAP_REACHED'; scope := 'customer';
            IF v_cu.spent_nanos + v_cu.reserved_nanos + v_worst <= kx_nanos(cap_cents) THEN
                IF v_key_capped AND v_ku.spent_nanos + v_ku.reserved_nanos + v_worst > kx_nanos(key_cap_cents) THEN
                    scope := 'key';
                ELSE
                    code := 'NO_CREDIT';
                END IF;
            END IF;
            RETURN;
        END IF;
        v_high := v_out;
        WHILE v_high - v_low > 1 LOOP
            v_mid := (v_low + v_high) / 2;
            IF kx_sell(kx_cost(v_price, v_prompt, v_mid), v_sell, v_prompt, v_mid) <= v_room THEN
                v_low := v_mid;
            ELSE
                v_high := v_mid;
            END IF;
        END LOOP;
        v_out := v_low;
        v_worst := kx_sell(kx_cost(v_price, v_prompt, v_out), v_sell, v_prompt, v_out);
        clamped_to := v_out;
    END IF;
    leased_tokens := v_out;

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
    UPDATE monthly_usage mu SET reserved_nanos = mu.reserved_nanos + v_worst
    WHERE mu.customer_id = c.id AND mu.month = v_month;
    IF v_key_capped THEN
        UPDATE monthly_key_usage mk SET reserved_nanos = mk.reserved_nanos + v_worst
        WHERE mk.api_key_id = k.id AND mk.month = v_month;
    END IF;
    INSERT INTO reservations (customer_id, api_key_id, month, reserved_nanos, key_reserved_nanos, provider,
                              model, install_id, prompt_tokens, prompt_nanos, prompt_cost_nanos,
                              price_version_id, sell_version_id, leased_tokens, cache_writes)
    VALUES (c.id, k.id, v_month, v_worst, CASE WHEN v_key_capped THEN v_worst ELSE 0 END,
            p_provider, p_model, p_install_id, v_prompt, v_prompt_sell, v_prompt_cost, v_price.id, v_sell.id,
            v_out, p_cache_writes)
    RETURNING id INTO reservation_id;
    prompt_tokens := v_prompt;
    price_version_id := v_price.id;
    price_written_at := v_price.created_at;
    sell_version_id := v_sell.id;
    sell_written_at := v_sell.created_at;
END $$;
