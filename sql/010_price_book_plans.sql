-- Pricing, plans and margin: the price book moves into the database, versioned; customers
-- belong to plans; every call records what it cost the operator and what it sold for.
--
-- Prices are never changed in place: a change is a new row effective from a timestamp (never
-- in the past), so a call is billed at the version in force when it was admitted, and an
-- invoice can show calls before and after a change at their own prices.

-- The catalogue: one row per model a provider offers here. A retired model is refused.
CREATE TABLE models (
    id                bigserial PRIMARY KEY,
    provider          text NOT NULL CHECK (provider IN ('openai', 'anthropic', 'gemini')),
    name              text NOT NULL,
    mode              text NOT NULL DEFAULT 'chat' CHECK (mode IN ('chat', 'embedding')),
    max_input_tokens  int NOT NULL CHECK (max_input_tokens > 0),
    max_output_tokens int NOT NULL CHECK (max_output_tokens >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    retired_at        timestamptz,
    UNIQUE (provider, name)
);

-- Every name a model answers to at its provider (its own and its dated aliases): exact match
-- only, so gpt-4o can never price gpt-4o-mini.
CREATE TABLE model_names (
    provider text NOT NULL,
    name     text NOT NULL,
    model_id bigint NOT NULL REFERENCES models ON DELETE CASCADE,
    PRIMARY KEY (provider, name)
);
CREATE INDEX model_names_model ON model_names (model_id);

-- Cost prices (what the provider charges), in whole nano-dollars per token; the row's id is
-- the price version a usage event records. A long-context tier applies to the whole request
-- once its prompt exceeds the threshold. request_nanos is a per-call fee.
CREATE TABLE model_prices (
    id                   bigserial PRIMARY KEY,
    model_id             bigint NOT NULL REFERENCES models ON DELETE CASCADE,
    effective_from       timestamptz NOT NULL,
    input_nanos          bigint NOT NULL CHECK (input_nanos >= 0),
    output_nanos         bigint NOT NULL CHECK (output_nanos >= 0),
    cache_read_nanos     bigint NOT NULL CHECK (cache_read_nanos >= 0),
    cache_write_5m_nanos bigint NOT NULL CHECK (cache_write_5m_nanos >= 0),
    cache_write_1h_nanos bigint NOT NULL CHECK (cache_write_1h_nanos >= 0),
    request_nanos        bigint NOT NULL DEFAULT 0 CHECK (request_nanos >= 0),
    long_context_threshold int CHECK (long_context_threshold > 0),
    lc_input_nanos          bigint CHECK (lc_input_nanos >= 0),
    lc_output_nanos         bigint CHECK (lc_output_nanos >= 0),
    lc_cache_read_nanos     bigint CHECK (lc_cache_read_nanos >= 0),
    lc_cache_write_5m_nanos bigint CHECK (lc_cache_write_5m_nanos >= 0),
    lc_cache_write_1h_nanos bigint CHECK (lc_cache_write_1h_nanos >= 0),
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((long_context_threshold IS NULL) = (lc_input_nanos IS NULL)
           AND num_nulls(lc_input_nanos, lc_output_nanos, lc_cache_read_nanos, lc_cache_write_5m_nanos,
                         lc_cache_write_1h_nanos) IN (0, 5))
);
CREATE INDEX model_prices_in_force ON model_prices (model_id, effective_from DESC, id DESC);

-- The plan catalogue. A customer's own policy field overrides its plan's; NULL on the
-- customer means "the plan's value", NULL on the plan means no limit (rpm: the deployment's
-- default). included_credit_cents is usage the plan includes each month; a prepaid plan
-- admits a call only while the month's credit covers it, so a negative balance blocks calls.
CREATE TABLE plans (
    id                    bigserial PRIMARY KEY,
    name                  text NOT NULL,
    monthly_cap_cents     bigint NOT NULL CHECK (monthly_cap_cents >= 0),
    rpm_limit             int CHECK (rpm_limit >= 0),
    rpd_limit             int CHECK (rpd_limit >= 0),
    max_devices_per_key   int CHECK (max_devices_per_key >= 0),
    max_concurrent        int CHECK (max_concurrent >= 0),
    allowed_providers     text[],
    allowed_models        jsonb,
    included_credit_cents bigint NOT NULL DEFAULT 0 CHECK (included_credit_cents >= 0),
    stripe_topups         boolean NOT NULL DEFAULT true,
    prepaid               boolean NOT NULL DEFAULT false,
    is_default            boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_name_key ON plans (lower(name));
CREATE UNIQUE INDEX plans_one_default ON plans (is_default) WHERE is_default;

-- Sell prices: versioned rules over the cost. Scope: a plan or a customer; a model or every
-- model (model_id NULL). kind 'markup' sells at cost x (1 + markup_bp / 10000); 'fixed' sells
-- at its own per-token rates; 'inherit' ends an override (the next scope's rule applies).
-- Precedence at a call: customer+model, customer, plan+model, plan; within a scope the newest
-- version in force.
CREATE TABLE sell_prices (
    id              bigserial PRIMARY KEY,
    plan_id         bigint REFERENCES plans ON DELETE CASCADE,
    customer_id     bigint REFERENCES customers ON DELETE CASCADE,
    model_id        bigint REFERENCES models ON DELETE CASCADE,
    effective_from  timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('markup', 'fixed', 'inherit')),
    markup_bp       int CHECK (markup_bp BETWEEN -10000 AND 1000000),
    input_nanos          bigint CHECK (input_nanos >= 0),
    output_nanos         bigint CHECK (output_nanos >= 0),
    cache_read_nanos     bigint CHECK (cache_read_nanos >= 0),
    cache_write_5m_nanos bigint CHECK (cache_write_5m_nanos >= 0),
    cache_write_1h_nanos bigint CHECK (cache_write_1h_nanos >= 0),
    request_nanos        bigint CHECK (request_nanos >= 0),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(plan_id, customer_id) = 1),
    CHECK ((kind = 'markup') = (markup_bp IS NOT NULL)),
    CHECK ((kind = 'fixed') = (input_nanos IS NOT NULL)),
    CHECK (kind <> 'fixed' OR (model_id IS NOT NULL AND num_nulls(output_nanos, cache_read_nanos,
           cache_write_5m_nanos, cache_write_1h_nanos, request_nanos) = 0))
);
CREATE INDEX sell_prices_plan ON sell_prices (plan_id, model_id, effective_from DESC) WHERE plan_id IS NOT NULL;
CREATE INDEX sell_prices_customer ON sell_prices (customer_id, model_id, effective_from DESC)
    WHERE customer_id IS NOT NULL;

-- Plans for the customers there are: the default 'starter' (the old default cap of 20 USD)
-- and one per other label in use. Every value a customer has stays its own override, so no
-- customer's limits or bill change; clear a field to follow the plan.
INSERT INTO plans (name, monthly_cap_cents, is_default) VALUES ('starter', 2000, true);
INSERT INTO plans (name, monthly_cap_cents)
SELECT DISTINCT plan, 2000 FROM customers WHERE lower(plan) <> 'starter';
ALTER TABLE customers ADD COLUMN plan_id bigint REFERENCES plans;
UPDATE customers c SET plan_id = p.id FROM plans p WHERE lower(p.name) = lower(c.plan);
ALTER TABLE customers ALTER COLUMN plan_id SET NOT NULL;
ALTER TABLE customers DROP COLUMN plan;
ALTER TABLE customers ALTER COLUMN monthly_cap_cents DROP NOT NULL;
ALTER TABLE customers ALTER COLUMN monthly_cap_cents DROP DEFAULT;
CREATE INDEX customers_plan ON customers (plan_id);

-- What each call cost the operator and what it sold for. spent_nanos (caps, invoices) is the
-- sell amount; calls billed before this release sold at cost.
ALTER TABLE usage_events ADD COLUMN sell_nanos bigint,
                         ADD COLUMN price_version_id bigint,
                         ADD COLUMN sell_version_id bigint;
UPDATE usage_events SET sell_nanos = cost_nanos;
ALTER TABLE usage_events ALTER COLUMN sell_nanos SET NOT NULL,
                         ADD CONSTRAINT usage_events_sell_nanos_check CHECK (sell_nanos >= 0);
CREATE INDEX usage_events_month ON usage_events (month, created_at);

ALTER TABLE monthly_usage ADD COLUMN cost_nanos bigint NOT NULL DEFAULT 0,
                          ADD COLUMN carried_in_nanos bigint NOT NULL DEFAULT 0;
UPDATE monthly_usage SET cost_nanos = spent_nanos;

ALTER TABLE reservations ADD COLUMN prompt_cost_nanos bigint NOT NULL DEFAULT 0,
                         ADD COLUMN price_version_id bigint,
                         ADD COLUMN sell_version_id bigint;

-- ADMIT and SETTLE change their arguments (sql/functions/): the old ones go, so a release
-- still calling them fails closed instead of admitting against a nullable cap.
DROP FUNCTION IF EXISTS kx_admit(bytea, text, text, text, text, bigint, int);
DROP FUNCTION IF EXISTS kx_admit(bytea, text, text, text, text, bigint, int, bigint, bigint, int);
DROP FUNCTION IF EXISTS kx_release_reservation(bigint);
DROP FUNCTION IF EXISTS kx_settle(bigint, bigint, bigint, text, text, text, text, bigint, bigint, bigint, text,
                                  boolean, text, text, text, text, int, real, text, text);
DELETE FROM schema_functions WHERE name IN ('functions/admit.sql', 'functions/settle.sql');

-- Invoices: numbered when issued (gapless: one counter row, created by the first issue and
-- taken with an upsert in the issuing transaction, so a rolled-back issue burns no number),
-- then paid or void; a draft is any snapshot not issued. The month's reconciliation (usage,
-- KaixuPush, included credit, top-ups, reversals, carried credit) is in the snapshot.
CREATE TABLE invoice_counter (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_number bigint NOT NULL DEFAULT 0
);
ALTER TABLE invoice_snapshots ADD COLUMN status text NOT NULL DEFAULT 'draft'
                                  CHECK (status IN ('draft', 'issued', 'paid', 'void')),
                              ADD COLUMN number bigint UNIQUE,
                              ADD COLUMN issued_at timestamptz,
                              ADD COLUMN paid_at timestamptz,
                              ADD COLUMN voided_at timestamptz,
                              ADD COLUMN carried_out_nanos bigint NOT NULL DEFAULT 0,
                              ADD CONSTRAINT invoice_snapshots_numbered CHECK ((status = 'draft') = (number IS NULL));
-- At most one live (issued or paid) invoice per customer and month.
CREATE UNIQUE INDEX invoice_snapshots_live ON invoice_snapshots (customer_id, month)
    WHERE status IN ('issued', 'paid');

-- Stripe payments that failed, for the operator's overview.
CREATE TABLE stripe_payment_failures (
    event_id     text PRIMARY KEY,
    event_type   text NOT NULL,
    session_id   text,
    customer_id  bigint REFERENCES customers ON DELETE CASCADE,
    amount_cents bigint,
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_payment_failures_created ON stripe_payment_failures (created_at);
