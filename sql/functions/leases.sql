-- Leases: a stream's reservation grows a step at a time while the provider writes.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- Extend a reservation by p_add_tokens output tokens, priced at its admission's price and
-- sell versions, if the key still may call and the caps and prepaid credit still fit; with
-- p_add_tokens = 0 only the checks and the keep-alive (created_at, which the reaper reads).
-- One statement, one round trip; nothing is written unless the step is granted.
--
-- Refusals: 409 RESERVATION_GONE (released by the reaper, or lost with its asynchronously
-- committed admission), 401 KEY_REVOKED, 403 CUSTOMER_DISABLED, 403 ROLE_FORBIDDEN, 403
-- DEVICE_REVOKED, 402 CAP_REACHED (scope customer|key, with the month's figures) and 402
-- NO_CREDIT.
--
-- Concurrency: the reservation row first, then the customer's month row, then the key's, the
-- order SETTLE and the reaper take them in (ADMIT takes the month rows in the same order and
-- never an existing reservation), so an extension cannot deadlock with them; the month row
-- serialises it with every admission and extension of the customer, so parallel steps can
-- never pass a cap together. The caller never settles its call while a step is out.
CREATE OR REPLACE FUNCTION kx_extend_lease(
    p_reservation_id bigint, p_customer_id bigint, p_api_key_id bigint, p_add_tokens bigint,
    OUT status int, OUT code text, OUT scope text, OUT leased_tokens bigint, OUT month text,
    OUT cap_cents bigint, OUT spent_nanos bigint, OUT key_cap_cents bigint, OUT key_spent_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r reservations%ROWTYPE;
    k api_keys%ROWTYPE;
    c customers%ROWTYPE;
    p plans%ROWTYPE;
    v_cu monthly_usage%ROWTYPE;
    v_ku monthly_key_usage%ROWTYPE;
    v_price model_prices%ROWTYPE;
    v_sell sell_prices%ROWTYPE;
    v_key_capped boolean;
    v_leased bigint;
    v_add bigint;
    v_room bigint;
BEGIN
    -- As ADMIT's: a crash that loses a step loses no money (SETTLE bills the call's figures).
    PERFORM set_config('synchronous_commit', 'off', true);
    status := 0;
    SELECT * INTO r FROM reservations rs
    WHERE rs.id = p_reservation_id AND rs.customer_id = p_customer_id AND rs.api_key_id = p_api_key_id
    FOR UPDATE;
    IF NOT FOUND THEN
        status := 409; code := 'RESERVATION_GONE'; RETURN;
    END IF;
    leased_tokens := r.leased_tokens;
    month := r.month;
    SELECT * INTO k FROM api_keys WHERE id = r.api_key_id;
    IF NOT FOUND OR k.revoked_at IS NOT NULL THEN
        status := 401; code := 'KEY_REVOKED'; RETURN;
    END IF;
    SELECT * INTO c FROM customers WHERE id = r.customer_id;
    IF NOT FOUND OR NOT c.is_active THEN
        status := 403; code := 'CUSTOMER_DISABLED'; RETURN;
    END IF;
    IF k.role = 'viewer' THEN
        status := 403; code := 'ROLE_FORBIDDEN'; RETURN;
    END IF;
    IF r.install_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM key_devices d
        WHERE d.api_key_id = k.id AND d.install_id = r.install_id AND d.revoked_at IS NOT NULL
    ) THEN
        status := 403; code := 'DEVICE_REVOKED'; RETURN;
    END IF;
    IF p_add_tokens <= 0 THEN  -- a keep-alive: the call is still running
        UPDATE reservations SET created_at = now() WHERE id = r.id;
        RETURN;
    END IF;

    -- The step's price: the reservation priced with the step, less what it holds now.
    SELECT * INTO v_price FROM model_prices WHERE id = r.price_version_id;
    IF r.sell_version_id IS NOT NULL THEN
        SELECT * INTO v_sell FROM sell_prices WHERE id = r.sell_version_id;
    END IF;
    IF r.cache_writes THEN  -- priced as ADMIT priced it
        v_price := kx_cache_writing(v_price);
        v_sell := kx_cache_writing(v_sell);
    END IF;
    v_leased := r.leased_tokens + p_add_tokens;
    v_add := greatest(kx_sell(kx_cost(v_price, r.prompt_tokens, v_leased), v_sell, r.prompt_tokens, v_leased)
                      - r.reserved_nanos, 0);

    SELECT * INTO p FROM plans WHERE id = c.plan_id;
    v_cu := kx_customer_month(c.id, r.month);
    cap_cents := coalesce(c.monthly_cap_cents, p.monthly_cap_cents) + v_cu.topup_cents;
    key_cap_cents := coalesce(k.monthly_cap_cents, cap_cents);
    spent_nanos := v_cu.spent_nanos;
    v_key_capped := k.monthly_cap_cents IS NOT NULL;
    IF v_key_capped THEN
        v_ku := kx_key_month(k.id, c.id, r.month);
        key_spent_nanos := v_ku.spent_nanos;
    ELSE
        key_spent_nanos := coalesce((SELECT mk.spent_nanos FROM monthly_key_usage mk
                                     WHERE mk.api_key_id = k.id AND mk.month = r.month), 0);
    END IF;
    IF v_cu.spent_nanos + v_cu.reserved_nanos + v_add > kx_nanos(cap_cents) THEN
        status := 402; code := 'CAP_REACHED'; scope := 'customer'; RETURN;
    END IF;
    IF v_key_capped AND v_ku.spent_nanos + v_ku.reserved_nanos + v_add > kx_nanos(key_cap_cents) THEN
        status := 402; code := 'CAP_REACHED'; scope := 'key'; RETURN;
    END IF;
    v_room := kx_nanos(p.included_credit_cents + v_cu.topup_cents) + v_cu.carried_in_nanos
              - v_cu.spent_nanos - v_cu.reserved_nanos;
    IF p.prepaid AND v_add > v_room THEN
        status := 402; code := 'NO_CREDIT'; scope := 'customer'; RETURN;
    END IF;

    -- Granted: the rollups and the reservation hold the step (the key's month only when the
    -- key has a cap of its own, as at admission; SETTLE releases what the row holds).
    UPDATE monthly_usage mu SET reserved_nanos = mu.reserved_nanos + v_add
    WHERE mu.customer_id = c.id AND mu.month = r.month;
    IF v_key_capped THEN
        UPDATE monthly_key_usage mk SET reserved_nanos = mk.reserved_nanos + v_add
        WHERE mk.api_key_id = k.id AND mk.month = r.month;
    END IF;
    UPDATE reservations
    SET reserved_nanos = reserved_nanos + v_add,
        key_reserved_nanos = key_reserved_nanos + CASE WHEN v_key_capped THEN v_add ELSE 0 END,
        leased_tokens = v_leased, created_at = now()
    WHERE id = r.id;
    leased_tokens := v_leased;
END $$;
