-- The soak's witnesses, installed in the soak's own throw-away database (never by a
-- migration): triggers that write down, at the moment it happens, what the invariants are
-- about, so that the checks afterwards are exact rather than inferred from the client's clock.
-- UNLOGGED: a witness need not survive a crash, and it should cost the hot path little.

-- Every admission (a reservation row is ADMIT's only insert into reservations): when its
-- statement started, when it reserved, and how many calls of its customer and key were in
-- flight counting itself (ADMIT holds the customer's month row, so the count is exact).
CREATE UNLOGGED TABLE soak_admissions (
    reservation_id     bigint PRIMARY KEY,
    customer_id        bigint NOT NULL,
    api_key_id         bigint NOT NULL,
    month              text NOT NULL,
    install_id         text,
    reserved_nanos     bigint NOT NULL,
    statement_at       timestamptz NOT NULL,
    admitted_at        timestamptz NOT NULL,
    customer_in_flight int NOT NULL,
    key_in_flight      int NOT NULL
);

CREATE FUNCTION soak_on_admission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO soak_admissions VALUES (
        NEW.id, NEW.customer_id, NEW.api_key_id, NEW.month, NEW.install_id, NEW.reserved_nanos,
        statement_timestamp(), clock_timestamp(),
        (SELECT count(*) FROM reservations r WHERE r.customer_id = NEW.customer_id),
        (SELECT count(*) FROM reservations r WHERE r.api_key_id = NEW.api_key_id));
    RETURN NULL;
END $$;
CREATE TRIGGER soak_admission AFTER INSERT ON reservations
    FOR EACH ROW EXECUTE FUNCTION soak_on_admission();

-- Every slot a rate ring hands out, with the very time the ring recorded (kx_ring_take).
CREATE UNLOGGED TABLE soak_rate_takes (
    api_key_id  bigint NOT NULL,
    period      text NOT NULL,
    admitted_at timestamptz NOT NULL,
    operation   text NOT NULL
);

CREATE FUNCTION soak_on_rate_take() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO soak_rate_takes VALUES (NEW.api_key_id, NEW.period, NEW.admitted_at, TG_OP);
    RETURN NULL;
END $$;
CREATE TRIGGER soak_rate_take AFTER INSERT OR UPDATE OF admitted_at ON rate_limit_slots
    FOR EACH ROW EXECUTE FUNCTION soak_on_rate_take();

-- Every change of a month rollup, checked in the order the row lock serialises them: the
-- spend never above the cap (with the month's top-ups), spend plus what is reserved never
-- above it either, and nothing reserved below zero. Only a breach is written down.
CREATE UNLOGGED TABLE soak_rollup_breaches (
    rollup         text NOT NULL,
    customer_id    bigint NOT NULL,
    api_key_id     bigint,
    month          text NOT NULL,
    spent_nanos    bigint NOT NULL,
    reserved_nanos bigint NOT NULL,
    cap_nanos      bigint,
    breach         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION soak_on_customer_month() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_cap bigint := kx_nanos((SELECT monthly_cap_cents FROM customers WHERE id = NEW.customer_id)
                             + NEW.topup_cents);
BEGIN
    IF NEW.reserved_nanos < 0 THEN
        INSERT INTO soak_rollup_breaches (rollup, customer_id, month, spent_nanos, reserved_nanos, cap_nanos, breach)
        VALUES ('customer', NEW.customer_id, NEW.month, NEW.spent_nanos, NEW.reserved_nanos, v_cap, 'reserved < 0');
    END IF;
    IF NEW.spent_nanos > v_cap THEN
        INSERT INTO soak_rollup_breaches (rollup, customer_id, month, spent_nanos, reserved_nanos, cap_nanos, breach)
        VALUES ('customer', NEW.customer_id, NEW.month, NEW.spent_nanos, NEW.reserved_nanos, v_cap, 'spent > cap');
    ELSIF NEW.spent_nanos + NEW.reserved_nanos > v_cap THEN
        INSERT INTO soak_rollup_breaches (rollup, customer_id, month, spent_nanos, reserved_nanos, cap_nanos, breach)
        VALUES ('customer', NEW.customer_id, NEW.month, NEW.spent_nanos, NEW.reserved_nanos, v_cap,
                'spent + reserved > cap');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER soak_customer_month AFTER INSERT OR UPDATE ON monthly_usage
    FOR EACH ROW EXECUTE FUNCTION soak_on_customer_month();

CREATE FUNCTION soak_on_key_month() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_cap bigint := kx_nanos((SELECT monthly_cap_cents FROM api_keys WHERE id = NEW.api_key_id));
BEGIN
    IF NEW.reserved_nanos < 0 THEN
        INSERT INTO soak_rollup_breaches (rollup, customer_id, api_key_id, month, spent_nanos, reserved_nanos,
                                          cap_nanos, breach)
        VALUES ('key', NEW.customer_id, NEW.api_key_id, NEW.month, NEW.spent_nanos, NEW.reserved_nanos, v_cap,
                'reserved < 0');
    END IF;
    IF v_cap IS NULL THEN
        RETURN NULL;  -- no cap of its own: the customer's month holds it
    END IF;
    IF NEW.spent_nanos > v_cap THEN
        INSERT INTO soak_rollup_breaches (rollup, customer_id, api_key_id, month, spent_nanos, reserved_nanos,
                                          cap_nanos, breach)
        VALUES ('key', NEW.customer_id, NEW.api_key_id, NEW.month, NEW.spent_nanos, NEW.reserved_nanos, v_cap,
                'spent > cap');
    ELSIF NEW.spent_nanos + NEW.reserved_nanos > v_cap THEN
        INSERT INTO soak_rollup_breaches (rollup, customer_id, api_key_id, month, spent_nanos, reserved_nanos,
                                          cap_nanos, breach)
        VALUES ('key', NEW.customer_id, NEW.api_key_id, NEW.month, NEW.spent_nanos, NEW.reserved_nanos, v_cap,
                'spent + reserved > cap');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER soak_key_month AFTER INSERT OR UPDATE ON monthly_key_usage
    FOR EACH ROW EXECUTE FUNCTION soak_on_key_month();
