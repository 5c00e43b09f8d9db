-- Stripe: money that goes back takes its credit back.
--
-- A paid Checkout Session records its payment intent, so that a refund (`charge.refunded`) or
-- a dispute (`charge.dispute.created`) of that payment can find the credit it paid for. The
-- reversal is a negative top-up on the same ledger (invoices and caps see it), never more in
-- all than the payment credited; what could not be taken back is recorded, not dropped.
ALTER TABLE stripe_events ADD COLUMN payment_intent text;
CREATE INDEX stripe_events_payment_intent ON stripe_events (payment_intent) WHERE payment_intent IS NOT NULL;

ALTER TABLE topups DROP CONSTRAINT topups_amount_cents_check;
ALTER TABLE topups ADD CONSTRAINT topups_amount_cents_check CHECK (amount_cents <> 0);
ALTER TABLE topups DROP CONSTRAINT topups_source_check;
ALTER TABLE topups ADD CONSTRAINT topups_source_check CHECK (
    (source IN ('manual', 'stripe') AND amount_cents > 0) OR (source = 'stripe_reversal' AND amount_cents < 0)
);

CREATE TABLE stripe_reversals (
    event_id        text PRIMARY KEY,          -- the refund or dispute event: reversed once
    event_type      text NOT NULL,
    payment_intent  text NOT NULL,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    month           text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    asked_cents     bigint NOT NULL CHECK (asked_cents > 0),   -- what Stripe took back
    reversed_cents  bigint NOT NULL CHECK (reversed_cents >= 0), -- what came off the credit
    topup_id        bigint REFERENCES topups ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_reversals_payment_intent ON stripe_reversals (payment_intent);
