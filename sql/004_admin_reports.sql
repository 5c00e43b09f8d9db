-- Admin reports and operator features: immutable invoice snapshots, customers' Netlify
-- tokens encrypted at rest, and durable cap-alert webhook deliveries.

-- An invoice snapshot is never updated: taking another one for the same month adds a
-- version. total_cents is what the customer owes for the month (usage + push charges).
CREATE TABLE invoice_snapshots (
    id              bigserial PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    month           text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    version         int NOT NULL CHECK (version > 0),
    snapshot        jsonb NOT NULL,
    total_cents     bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    UNIQUE (customer_id, month, version)
);
CREATE INDEX invoice_snapshots_customer ON invoice_snapshots (customer_id, id DESC);

-- token_enc is "v1.<key id>.<nonce>.<ciphertext>" (AES-256-GCM, the customer id as
-- associated data); key_id repeats the key id so a rotation can find rows to re-encrypt.
CREATE TABLE customer_netlify_tokens (
    customer_id bigint PRIMARY KEY REFERENCES customers ON DELETE CASCADE,
    token_enc   text NOT NULL,
    key_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_netlify_tokens_key ON customer_netlify_tokens (key_id);

-- One row per alert that must reach the webhook: at most one per customer, key (0 for the
-- customer scope), month and type. Rows exist only when a webhook is configured.
CREATE TABLE alert_deliveries (
    id              bigserial PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    api_key_id      bigint NOT NULL DEFAULT 0,
    month           text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    alert_type      text NOT NULL CHECK (alert_type IN ('cap_warning', 'cap_reached')),
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (customer_id, api_key_id, month, alert_type)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';

-- Monitor filters the admin screen offers beyond the core indexes.
CREATE INDEX gateway_events_kind ON gateway_events (kind, id DESC);
CREATE INDEX gateway_events_status ON gateway_events (status, id DESC);
