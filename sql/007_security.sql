-- Security (keys, abuse, billing of calls that did not end well): the tables. ADMIT, SETTLE
-- and the reaper's release that use them are in sql/functions/.
--
-- Roles, least to most power: viewer (reads: KaixuPush status and billing), caller (+ gateway
-- calls; the new default), deployer (+ KaixuPush deploys), admin (+ registering projects),
-- owner (the master key). Every existing key keeps the role it has, so none silently gains or
-- loses power; the keys that got `deployer` only because it was the default are listed in one
-- audit event (`key.roles_introduced`) for the operator to review.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'caller', 'deployer', 'admin', 'owner'));
ALTER TABLE api_keys ALTER COLUMN role SET DEFAULT 'caller';
INSERT INTO audit_events (actor, action, target, details)
SELECT 'migration', 'key.roles_introduced', 'keys',
       jsonb_build_object('deployer_keys', jsonb_agg(id ORDER BY id),
                          'note', 'These keys were created with the deployer role, the default until roles '
                                  'could be chosen: they may deploy sites. Lower the role of those that do not.')
FROM api_keys WHERE role = 'deployer' AND revoked_at IS NULL
HAVING count(*) > 0;

-- Concurrent calls: per customer (null: DEFAULT_MAX_CONCURRENT) and per key (null: no limit
-- of its own); 0 means unlimited. Counted from the open reservations.
ALTER TABLE customers ADD COLUMN max_concurrent int CHECK (max_concurrent >= 0);
ALTER TABLE api_keys ADD COLUMN max_concurrent int CHECK (max_concurrent >= 0);
CREATE INDEX reservations_customer ON reservations (customer_id);
CREATE INDEX reservations_key ON reservations (api_key_id);

-- The prompt's bound and its cost, kept with the reservation: what an abandoned call bills.
ALTER TABLE reservations ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0,
                         ADD COLUMN prompt_nanos bigint NOT NULL DEFAULT 0 CHECK (prompt_nanos >= 0);

-- kx_admit gains three arguments (sql/functions/admit.sql). The seven-argument one of 002 stays
-- for the release still running while this one deploys; a later migration drops it.

