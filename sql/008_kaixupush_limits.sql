-- KaixuPush limits: what one customer may hold of the gateway's memory, database disk and
-- Netlify token at once.
--
-- push_pushes.state may now also be 'expired': the push's upload window
-- (KAIXUPUSH_RETENTION_H from its creation) and the day after it given to Netlify to
-- publish have passed without the deploy becoming ready; it is finished and never billed.
-- Failed inits ('init_failed') now count against the deploy rate limit (they cost a
-- Netlify call), still not against the cap (they are never billed).

-- When Netlify was last asked for the push's deploy: status, complete and the upkeep ask
-- at most once per KAIXUPUSH_STATUS_CACHE_S and answer from this row otherwise.
ALTER TABLE push_pushes ADD COLUMN polled_at timestamptz;

-- The upkeep empties the manifest of a finished push (its paths are needed only to send
-- files); this index finds the ones left to prune.
CREATE INDEX push_pushes_unpruned ON push_pushes (finished_at)
    WHERE finished_at IS NOT NULL AND manifest <> '{}'::jsonb;

-- Staging quotas add up the reservations of a customer's open jobs (those that hold or will
-- hold staged parts), at every file admitted.
CREATE INDEX push_jobs_customer_open ON push_jobs (customer_id)
    WHERE status IN ('receiving', 'queued', 'running', 'retry_wait', 'failed');

-- Requests of a customer running an init or an upload-complete right now, one row each
-- (KAIXUPUSH_CONCURRENT_PER_CUSTOMER at most). A row outlives a process that died holding
-- it only until expires_at.
CREATE TABLE push_busy (
    id          bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_busy_customer ON push_busy (customer_id);


-- A token bucket per Netlify token (keyed by a keyed hash, never the token): p_per_s calls
-- a second on average, bursts of p_burst. Shared by every process of the gateway.
CREATE TABLE push_netlify_budget (
    token_hash  text PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz NOT NULL
);

