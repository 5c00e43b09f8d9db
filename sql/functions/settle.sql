-- SETTLE: one statement that bills a call and releases its reservation; and the reaper's release.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- SETTLE: the actual cost replaces the reservation, one usage event per admission (keyed by
-- its id; should a crash hand an id out twice, the second call's event goes without it),
-- rollups (spend at the sell price, cost beside it), last-seen and the monitor row. Works from the call's own figures, so it
-- bills correctly even when the reservation is gone: released by the reaper while a long
-- stream still ran (the real ending then replaces the 'abandoned' record, and the rollups take
-- only the difference from the prompt charge the release made), or lost with an
-- asynchronously committed admission in a database crash. Deletes the reservation only when it
-- is the call's own (customer and key match), releasing what it holds now (its first slice and
-- every step of its lease since). A repeated settlement changes nothing and
-- returns NULLs. Returns the month's spend after the call. The month rollups, every call's hot
-- rows, are updated last: a settlement holds their locks until its durable commit.
CREATE OR REPLACE FUNCTION kx_settle(
    p_reservation_id bigint, p_customer_id bigint, p_api_key_id bigint, p_month text,
    p_provider text, p_model text, p_install_id text,
    p_input_tokens bigint, p_output_tokens bigint, p_cost_nanos bigint, p_sell_nanos bigint,
    p_price_version_id bigint, p_sell_version_id bigint, p_outcome text,
    p_estimated boolean, p_request_id text, p_function text, p_app text, p_build text,
    p_status int, p_duration_ms real, p_summary text, p_user_agent text, p_clamped_to bigint,
    p_stopped_code text,
    OUT month text, OUT spent_nanos bigint, OUT key_spent_nanos bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_held bigint := 0;
    v_key_held bigint := 0;
    v_event_id bigint;
    v_prior usage_events%ROWTYPE;
    v_calls int := 1;
    v_cost bigint := p_cost_nanos;
    v_sell bigint := p_sell_nanos;
    v_input bigint := p_input_tokens;
    v_output bigint := p_output_tokens;
BEGIN
    DELETE FROM reservations
    WHERE id = p_reservation_id AND customer_id = p_customer_id AND api_key_id = p_api_key_id
    RETURNING reserved_nanos, key_reserved_nanos INTO v_held, v_key_held;
    v_held := coalesce(v_held, 0);
    v_key_held := coalesce(v_key_held, 0);
    INSERT INTO usage_events (reservation_id, customer_id, api_key_id, month, provider, model, input_tokens,
                              output_tokens, cost_nanos, sell_nanos, price_version_id, sell_version_id,
                              outcome, estimated, install_id, app, build, request_id, duration_ms,
                              clamped_to, stopped_code)
    VALUES (p_reservation_id, p_customer_id, p_api_key_id, p_month, p_provider, p_model, p_input_tokens,
            p_output_tokens, p_cost_nanos, p_sell_nanos, p_price_version_id, p_sell_version_id,
            p_outcome, p_estimated, p_install_id, p_app, p_build, p_request_id, p_duration_ms,
            p_clamped_to, p_stopped_code)
    ON CONFLICT (reservation_id) DO NOTHING
    RETURNING id INTO v_event_id;
    IF v_event_id IS NULL THEN
        SELECT * INTO v_prior FROM usage_events WHERE reservation_id = p_reservation_id FOR UPDATE;
        IF v_prior.outcome = 'abandoned' AND p_outcome <> 'abandoned' THEN
            UPDATE usage_events
            SET input_tokens = p_input_tokens, output_tokens = p_output_tokens, cost_nanos = p_cost_nanos,
                sell_nanos = p_sell_nanos, price_version_id = p_price_version_id,
                sell_version_id = p_sell_version_id, outcome = p_outcome, estimated = p_estimated, app = p_app, build = p_build,
                request_id = p_request_id, duration_ms = p_duration_ms, clamped_to = p_clamped_to,
                stopped_code = p_stopped_code
            WHERE id = v_prior.id;
            v_calls := 0;
            -- The release billed the prompt bound already: the rollups take only the difference.
            v_cost := p_cost_nanos - v_prior.cost_nanos;
            v_sell := p_sell_nanos - v_prior.sell_nanos;
            v_input := p_input_tokens - v_prior.input_tokens;
            v_output := p_output_tokens - v_prior.output_tokens;
        ELSIF (v_prior.request_id, v_prior.customer_id, v_prior.api_key_id, v_prior.outcome, v_prior.cost_nanos)
              IS NOT DISTINCT FROM (p_request_id, p_customer_id, p_api_key_id, p_outcome, p_cost_nanos) THEN
            RETURN;  -- already settled: this very settlement, repeated
        ELSE
            -- Another call was billed under this id: a database crash lost an asynchronously
            -- committed admission, and the sequence's advance with it, so the id was handed out
            -- again. Bill this call too, on an event of its own.
            INSERT INTO usage_events (customer_id, api_key_id, month, provider, model, input_tokens,
                                      output_tokens, cost_nanos, sell_nanos, price_version_id,
                                      sell_version_id, outcome, estimated, install_id, app, build,
                                      request_id, duration_ms, clamped_to, stopped_code)
            VALUES (p_customer_id, p_api_key_id, p_month, p_provider, p_model, p_input_tokens,
                    p_output_tokens, p_cost_nanos, p_sell_nanos, p_price_version_id, p_sell_version_id,
                    p_outcome, p_estimated, p_install_id, p_app, p_build, p_request_id, p_duration_ms,
                    p_clamped_to, p_stopped_code);
        END IF;
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
                                duration_ms, customer_id, api_key_id, provider, model, summary, code)
    VALUES (p_request_id, CASE WHEN p_status >= 500 THEN 'error' WHEN p_status >= 400 THEN 'warn' ELSE 'info' END,
            'http', p_function, 'POST', p_app, p_build, p_status, p_duration_ms, p_customer_id, p_api_key_id,
            p_provider, p_model, p_summary, p_stopped_code);
    INSERT INTO monthly_usage AS mu (customer_id, month, spent_nanos, cost_nanos, input_tokens, output_tokens,
                                     calls)
    VALUES (p_customer_id, p_month, v_sell, v_cost, v_input, v_output, v_calls)
    ON CONFLICT ON CONSTRAINT monthly_usage_pkey DO UPDATE
    SET reserved_nanos = mu.reserved_nanos - v_held, spent_nanos = mu.spent_nanos + v_sell,
        cost_nanos = mu.cost_nanos + v_cost,
        input_tokens = mu.input_tokens + v_input, output_tokens = mu.output_tokens + v_output,
        calls = mu.calls + v_calls, updated_at = now()
    RETURNING mu.spent_nanos INTO spent_nanos;
    INSERT INTO monthly_key_usage AS mk (api_key_id, month, customer_id, spent_nanos, input_tokens,
                                         output_tokens, calls)
    VALUES (p_api_key_id, p_month, p_customer_id, v_sell, v_input, v_output, v_calls)
    ON CONFLICT ON CONSTRAINT monthly_key_usage_pkey DO UPDATE
    SET reserved_nanos = mk.reserved_nanos - v_key_held, spent_nanos = mk.spent_nanos + v_sell,
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
    PERFORM kx_settle(
        p_reservation_id => r.id, p_customer_id => r.customer_id, p_api_key_id => r.api_key_id,
        p_month => r.month, p_provider => r.provider, p_model => r.model, p_install_id => r.install_id,
        p_input_tokens => r.prompt_tokens, p_output_tokens => 0, p_cost_nanos => r.prompt_cost_nanos,
        p_sell_nanos => r.prompt_nanos, p_price_version_id => r.price_version_id,
        p_sell_version_id => r.sell_version_id, p_outcome => 'abandoned', p_estimated => true,
        p_request_id => NULL, p_function => 'maintenance', p_app => NULL, p_build => NULL, p_status => 499,
        p_duration_ms => NULL,
        p_summary => 'reservation released: the call did not settle in time; billed its prompt',
        p_user_agent => NULL, p_clamped_to => NULL, p_stopped_code => NULL);
    RETURN true;
END $$;
