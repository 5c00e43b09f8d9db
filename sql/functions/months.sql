-- Month rollups, locked for an admission.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- Lock a customer's month rollup (created on first use).
CREATE OR REPLACE FUNCTION kx_customer_month(p_customer bigint, p_month text) RETURNS monthly_usage
LANGUAGE plpgsql AS $$
DECLARE
    v_row monthly_usage%ROWTYPE;
BEGIN
    SELECT * INTO v_row FROM monthly_usage WHERE customer_id = p_customer AND month = p_month FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO monthly_usage (customer_id, month) VALUES (p_customer, p_month) ON CONFLICT DO NOTHING;
        SELECT * INTO v_row FROM monthly_usage WHERE customer_id = p_customer AND month = p_month FOR UPDATE;
    END IF;
    RETURN v_row;
END $$;

-- Lock a key's month rollup (created on first use).
CREATE OR REPLACE FUNCTION kx_key_month(p_key bigint, p_customer bigint, p_month text) RETURNS monthly_key_usage
LANGUAGE plpgsql AS $$
DECLARE
    v_row monthly_key_usage%ROWTYPE;
BEGIN
    SELECT * INTO v_row FROM monthly_key_usage WHERE api_key_id = p_key AND month = p_month FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO monthly_key_usage (api_key_id, month, customer_id) VALUES (p_key, p_month, p_customer)
        ON CONFLICT DO NOTHING;
        SELECT * INTO v_row FROM monthly_key_usage WHERE api_key_id = p_key AND month = p_month FOR UPDATE;
    END IF;
    RETURN v_row;
END $$;
