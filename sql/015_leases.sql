-- Caps that fit the call. A stream's reservation is a lease: ADMIT reserves the prompt bound
-- and a first slice of output, and kx_extend_lease (sql/functions/leases.sql) adds a step at a
-- time while the stream runs. A call the month cannot afford whole is clamped to the largest
-- max_tokens it can afford (at least CLAMP_MIN_TOKENS), or refused as before.

-- The output tokens a reservation holds now (the first slice, then each step granted); what
-- the reservation's reserved_nanos prices, at the admission's price and sell versions.
-- Reservations made before this migration held all of their max_tokens: 0 is never extended.
ALTER TABLE reservations ADD COLUMN leased_tokens bigint NOT NULL DEFAULT 0 CHECK (leased_tokens >= 0);

-- How a call was held to its budget: clamped_to is the max_tokens the provider was called with
-- when the month could not afford what the call asked for; a stream stopped because its lease
-- could not grow ends 'stopped', with the refusal's code (CAP_REACHED, NO_CREDIT,
-- KEY_REVOKED, CUSTOMER_DISABLED, RESERVATION_GONE) in stopped_code.
ALTER TABLE usage_events ADD COLUMN clamped_to bigint CHECK (clamped_to > 0),
                         ADD COLUMN stopped_code text;
ALTER TABLE usage_events DROP CONSTRAINT usage_events_outcome_check,
                         ADD CONSTRAINT usage_events_outcome_check
                             CHECK (outcome IN ('ok', 'upstream_error', 'client_disconnect', 'stream_error',
                                                'abandoned', 'stopped'));

-- Models that think before they write, unasked, and bill that thinking as output without
-- streaming it (OpenAI's o-series and GPT-5, Gemini 2.5 and 3): the streamed bytes do not
-- bound their output, so their calls reserve all of max_tokens up front and are never clamped.
ALTER TABLE models ADD COLUMN hidden_reasoning boolean NOT NULL DEFAULT false;
UPDATE models SET hidden_reasoning = true
WHERE (provider, name) IN (
    ('openai', 'gpt-5'), ('openai', 'gpt-5-mini'), ('openai', 'gpt-5-nano'), ('openai', 'gpt-5.1'),
    ('openai', 'gpt-5.2'), ('openai', 'o1'), ('openai', 'o3'), ('openai', 'o3-mini'), ('openai', 'o4-mini'),
    ('gemini', 'gemini-2.5-flash'), ('gemini', 'gemini-2.5-pro'),
    ('gemini', 'gemini-3-flash-preview'), ('gemini', 'gemini-3.1-pro-preview'));

-- ADMIT and SETTLE change their arguments and answers (sql/functions/): the old ones go, so a
-- release still calling them fails closed, and both files are applied afresh.
DROP FUNCTION IF EXISTS kx_admit(bytea, text, text, text, text, bigint, bigint, boolean, int, int);
DROP FUNCTION IF EXISTS kx_settle(bigint, bigint, bigint, text, text, text, text, bigint, bigint, bigint, bigint,
                                  bigint, bigint, text, boolean, text, text, text, text, int, real, text, text);
DELETE FROM schema_functions WHERE name IN ('functions/admit.sql', 'functions/settle.sql');
