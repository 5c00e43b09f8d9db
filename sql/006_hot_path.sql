-- Two changes on the gateway's hot path, measured with pgbench (ADMIT+SETTLE pairs, 8 clients,
-- two cores) and bench/run.py.
--
-- SETTLE updates the month rollups last. They are every call's hot rows (ADMIT locks the
-- customer's month row too) and a settlement holds their locks until its durable commit has
-- reached the disk: taken last, they are held for little more than that flush.
--
-- A rate ring fills its slots in order, so while it has admitted fewer calls than its size the
-- next slot cannot exist yet: insert it without first looking for it.

CREATE OR REPLACE FUNCTION kx_ring_take(p_ring rate_limit_rings, p_now timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rate_limit_rings SET admitted = admitted + 1
    WHERE api_key_id = p_ring.api_key_id AND period = p_ring.period;
    IF p_ring.admitted < p_ring.size THEN
        INSERT INTO rate_limit_slots (api_key_id, period, slot, admitted_at)
        VALUES (p_ring.api_key_id, p_ring.period, p_ring.admitted::int, p_now);
    ELSE
        UPDATE rate_limit_slots SET admitted_at = p_now
        WHERE api_key_id = p_ring.api_key_id AND period = p_ring.period
          AND slot = (p_ring.admitted % p_ring.size)::int;
    END IF;
END $$;

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
BEGIN
    DELETE FROM reservations WHERE id = p_reservation_id
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
    VALUES (p_customer_id, p_month, p_cost_nanos, p_input_tokens, p_output_tokens, v_calls)
    ON CONFLICT ON CONSTRAINT monthly_usage_pkey DO UPDATE
    SET reserved_nanos = mu.reserved_nanos - v_held, spent_nanos = mu.spent_nanos + p_cost_nanos,
        input_tokens = mu.input_tokens + p_input_tokens, output_tokens = mu.output_tokens + p_output_tokens,
        calls = mu.calls + v_calls, updated_at = now()
    RETURNING mu.spent_nanos INTO spent_nanos;
    INSERT INTO monthly_key_usage AS mk (api_key_id, month, customer_id, spent_nanos, input_tokens,
                                         output_tokens, calls)
    VALUES (p_api_key_id, p_month, p_customer_id, p_cost_nanos, p_input_tokens, p_output_tokens, v_calls)
    ON CONFLICT ON CONSTRAINT monthly_key_usage_pkey DO UPDATE
    SET reserved_nanos = mk.reserved_nanos - v_key_held, spent_nanos = mk.spent_nanos + p_cost_nanos,
        input_tokens = mk.input_tokens + p_input_tokens, output_tokens = mk.output_tokens + p_output_tokens,
        calls = mk.calls + v_calls, updated_at = now()
    RETURNING mk.spent_nanos INTO key_spent_nanos;
    month := p_month;
END $$;
