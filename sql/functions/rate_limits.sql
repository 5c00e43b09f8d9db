-- Rate limits: exact sliding windows, one ring of admission times per key and period.
--
-- The current definition, re-applied by `python -m shared.migrate` whenever this file
-- changes (see shared/migrate.py). Edit it here; never in a numbered migration.

-- Rebuild a key's ring when its limit changed: keep the newest `p_size` admissions in
-- time order. The old ring held every admission of the last window (it never admitted
-- more), so the new one does too.
CREATE OR REPLACE FUNCTION kx_ring_resize(p_key bigint, p_period text, p_size int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_times timestamptz[];
BEGIN
    SELECT array_agg(t ORDER BY t) INTO v_times
    FROM (SELECT admitted_at AS t FROM rate_limit_slots
          WHERE api_key_id = p_key AND period = p_period
          ORDER BY admitted_at DESC LIMIT p_size) newest;
    DELETE FROM rate_limit_slots WHERE api_key_id = p_key AND period = p_period;
    INSERT INTO rate_limit_slots (api_key_id, period, slot, admitted_at)
    SELECT p_key, p_period, (n - 1)::int, t FROM unnest(v_times) WITH ORDINALITY AS u(t, n);
    UPDATE rate_limit_rings SET size = p_size, admitted = coalesce(cardinality(v_times), 0)
    WHERE api_key_id = p_key AND period = p_period;
END $$;

-- Lock the key's ring for a period, creating it on first use and rebuilding it when the limit
-- changed. The row lock serialises the key's admissions for that period until commit.
CREATE OR REPLACE FUNCTION kx_ring_lock(p_key bigint, p_period text, p_size int) RETURNS rate_limit_rings
LANGUAGE plpgsql AS $$
DECLARE
    v_ring rate_limit_rings%ROWTYPE;
BEGIN
    SELECT * INTO v_ring FROM rate_limit_rings WHERE api_key_id = p_key AND period = p_period FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_limit_rings (api_key_id, period, size) VALUES (p_key, p_period, p_size)
        ON CONFLICT DO NOTHING;
        SELECT * INTO v_ring FROM rate_limit_rings WHERE api_key_id = p_key AND period = p_period FOR UPDATE;
    END IF;
    IF v_ring.size <> p_size THEN
        PERFORM kx_ring_resize(p_key, p_period, p_size);
        SELECT * INTO v_ring FROM rate_limit_rings WHERE api_key_id = p_key AND period = p_period;
    END IF;
    RETURN v_ring;
END $$;

-- NULL when one more call fits in the window ending now; else the admission that blocks it
-- (the size-th most recent, which the next admission would overwrite).
CREATE OR REPLACE FUNCTION kx_ring_blocker(p_ring rate_limit_rings, p_window interval, p_now timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT admitted_at FROM rate_limit_slots
    WHERE api_key_id = p_ring.api_key_id AND period = p_ring.period
      AND slot = (p_ring.admitted % p_ring.size)::int AND admitted_at > p_now - p_window
$$;

-- Take the next slot of the ring for an admitted call. A ring fills its slots in order, so
-- while it has admitted fewer calls than its size the next slot cannot exist yet: insert it
-- without first looking for it (measured with pgbench: one statement less per call).
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
