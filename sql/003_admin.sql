-- The admin API's own state: idempotent writes, Stripe fulfilment, and the indexes its
-- lists and rollups filter by.

-- A write sent with an Idempotency-Key header is done once. The row is claimed in the same
-- transaction as the write, so a concurrent duplicate waits for it and then replays the
-- stored response; a failed write rolls the claim back with it.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- A Stripe top-up names its Checkout Session; one session credits at most once.
ALTER TABLE topups ADD COLUMN stripe_session_id text;
CREATE UNIQUE INDEX topups_stripe_session ON topups (stripe_session_id) WHERE stripe_session_id IS NOT NULL;

-- Every Stripe event that credited money, claimed in the credit's transaction: a replayed
-- event (same id) or a second event for the same session (completed, then
-- async_payment_succeeded) finds its row and credits nothing.
CREATE TABLE stripe_events (
    event_id     text PRIMARY KEY,
    session_id   text NOT NULL UNIQUE,
    event_type   text NOT NULL,
    customer_id  bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    amount_cents bigint NOT NULL CHECK (amount_cents > 0),
    month        text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    topup_id     bigint REFERENCES topups ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Usage lists filter by customer and month and page newest first.
CREATE INDEX usage_events_customer_month_id ON usage_events (customer_id, month, id DESC);
-- The audit list filters by actor (action and target have indexes already).
CREATE INDEX audit_events_actor ON audit_events (actor, id DESC);
