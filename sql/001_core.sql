-- The core: customers, keys, devices, usage and its month rollups, rate limiting,
-- the monitor and the audit log. Money is integer nano-dollars (1 cent = 10,000,000);
-- caps are configured in whole cents. Months are UTC 'YYYY-MM'.

CREATE TABLE customers (
    id                   bigserial PRIMARY KEY,
    email                text NOT NULL,
    plan                 text NOT NULL DEFAULT 'starter',
    monthly_cap_cents    bigint NOT NULL DEFAULT 2000 CHECK (monthly_cap_cents >= 0),
    is_active            boolean NOT NULL DEFAULT true,
    max_devices_per_key  int CHECK (max_devices_per_key >= 0),
    require_install_id   boolean NOT NULL DEFAULT false,
    allowed_providers    text[],
    allowed_models       jsonb,
    rpm_limit            int CHECK (rpm_limit >= 0),
    rpd_limit            int CHECK (rpd_limit >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email));

CREATE TABLE api_keys (
    id                   bigserial PRIMARY KEY,
    customer_id          bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    key_hash             bytea NOT NULL UNIQUE,
    key_last4            text NOT NULL,
    kind                 text NOT NULL DEFAULT 'sub' CHECK (kind IN ('master', 'sub')),
    role                 text NOT NULL DEFAULT 'deployer'
                         CHECK (role IN ('viewer', 'deployer', 'admin', 'owner')),
    label                text,
    -- overrides: NULL means "inherit the customer's"
    monthly_cap_cents    bigint CHECK (monthly_cap_cents >= 0),
    rpm_limit            int CHECK (rpm_limit >= 0),
    rpd_limit            int CHECK (rpd_limit >= 0),
    max_devices          int CHECK (max_devices >= 0),
    require_install_id   boolean,
    allowed_providers    text[],
    allowed_models       jsonb,
    rotated_from_id      bigint REFERENCES api_keys,
    created_at           timestamptz NOT NULL DEFAULT now(),
    revoked_at           timestamptz,
    last_seen_at         timestamptz,
    last_seen_install_id text
);
CREATE INDEX api_keys_customer ON api_keys (customer_id, id DESC);

CREATE TABLE key_devices (
    api_key_id    bigint NOT NULL REFERENCES api_keys ON DELETE CASCADE,
    install_id    text NOT NULL,
    customer_id   bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    user_agent    text,
    revoked_at    timestamptz,
    revoked_by    text,
    PRIMARY KEY (api_key_id, install_id)
);
CREATE INDEX key_devices_customer ON key_devices (customer_id, last_seen_at DESC);

-- Month rollups. reserved_nanos holds the worst-case cost of calls in flight.
CREATE TABLE monthly_usage (
    customer_id    bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    month          text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    spent_nanos    bigint NOT NULL DEFAULT 0,
    reserved_nanos bigint NOT NULL DEFAULT 0,
    topup_cents    bigint NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    calls          bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, month)
);

CREATE TABLE monthly_key_usage (
    api_key_id     bigint NOT NULL REFERENCES api_keys ON DELETE CASCADE,
    month          text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    customer_id    bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    spent_nanos    bigint NOT NULL DEFAULT 0,
    reserved_nanos bigint NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    calls          bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, month)
);
CREATE INDEX monthly_key_usage_customer ON monthly_key_usage (customer_id, month);

-- An admitted call that has not settled yet: its worst-case cost is held in the rollups.
-- No foreign keys: the row lives for one call, and a foreign-key check would share-lock the
-- customer and key rows on every admission.
CREATE TABLE reservations (
    id             bigserial PRIMARY KEY,
    customer_id    bigint NOT NULL,
    api_key_id     bigint NOT NULL,
    month          text NOT NULL,
    reserved_nanos bigint NOT NULL CHECK (reserved_nanos >= 0),
    key_reserved_nanos bigint NOT NULL DEFAULT 0,  -- held on the key's month too (keys with own cap)
    provider       text NOT NULL,
    model          text NOT NULL,
    install_id     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_created ON reservations (created_at);

-- One row per admitted call, written by SETTLE. outcome says how the call ended.
CREATE TABLE usage_events (
    id            bigserial PRIMARY KEY,
    reservation_id bigint UNIQUE,  -- the admission this call settled; one event per admission
    created_at    timestamptz NOT NULL DEFAULT now(),
    customer_id   bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    api_key_id    bigint NOT NULL REFERENCES api_keys ON DELETE CASCADE,
    month         text NOT NULL,
    provider      text NOT NULL,
    model         text NOT NULL,
    input_tokens  bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cost_nanos    bigint NOT NULL DEFAULT 0 CHECK (cost_nanos >= 0),
    outcome       text NOT NULL DEFAULT 'ok'
                  CHECK (outcome IN ('ok', 'upstream_error', 'client_disconnect', 'stream_error',
                                     'abandoned')),
    estimated     boolean NOT NULL DEFAULT false,
    install_id    text,
    app           text,
    build         text,
    request_id    text,
    duration_ms   real
);
CREATE INDEX usage_events_customer ON usage_events (customer_id, id DESC);
CREATE INDEX usage_events_key ON usage_events (api_key_id, id DESC);

-- Exact sliding-window rate limiting: a ring of the last `size` admission times per key and
-- period. A call is admitted when the slot it would overwrite (the size-th most recent
-- admission) is older than the window, so no window ever holds more than `size` calls.
CREATE TABLE rate_limit_rings (
    api_key_id bigint NOT NULL REFERENCES api_keys ON DELETE CASCADE,
    period     text NOT NULL CHECK (period IN ('minute', 'day')),
    size       int NOT NULL CHECK (size > 0),
    admitted   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (api_key_id, period)
);
CREATE TABLE rate_limit_slots (
    api_key_id  bigint NOT NULL,
    period      text NOT NULL,
    slot        int NOT NULL,
    admitted_at timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, period, slot),
    FOREIGN KEY (api_key_id, period) REFERENCES rate_limit_rings ON DELETE CASCADE
);

-- Fixed-window counters for unauthenticated callers (client error reports, logins), by a
-- hashed client address: never the raw IP.
CREATE TABLE throttle_windows (
    scope        text NOT NULL,
    subject      text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         int NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, subject, window_start)
);
CREATE INDEX throttle_windows_start ON throttle_windows (window_start);

-- The monitor: one row per request (and client-reported errors).
CREATE TABLE gateway_events (
    id            bigserial PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    request_id    text,
    level         text NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    kind          text NOT NULL DEFAULT 'http',
    function_name text NOT NULL,
    method        text,
    app           text,
    build         text,
    status        int,
    duration_ms   real,
    customer_id   bigint,
    api_key_id    bigint,
    provider      text,
    model         text,
    summary       text,
    extra         jsonb
);
CREATE INDEX gateway_events_created ON gateway_events (created_at);
CREATE INDEX gateway_events_request ON gateway_events (request_id);
CREATE INDEX gateway_events_level ON gateway_events (level, id DESC);
CREATE INDEX gateway_events_function ON gateway_events (function_name, id DESC);
CREATE INDEX gateway_events_app ON gateway_events (app, id DESC);

CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text,
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_action ON audit_events (action, id DESC);
CREATE INDEX audit_events_target ON audit_events (target, id DESC);
