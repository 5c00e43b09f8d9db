-- KaixuPush: customers' build tools deploy static sites to Netlify through the gateway.
-- A push is one Netlify deploy; its files are uploaded whole or in parts, parts are
-- staged (here as bytea, or in S3) until a durable job assembles, verifies and sends them.
-- Usage events are the billing record; push_invoices is their month total, kept current
-- in the same transaction as each event.

CREATE TABLE push_projects (
    id              bigserial PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    project_id      text NOT NULL,
    name            text NOT NULL,
    netlify_site_id text NOT NULL,
    registered_by   text NOT NULL CHECK (registered_by IN ('admin', 'key')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, project_id)
);
-- One site, one project: no customer can deploy over a site another project points at.
CREATE UNIQUE INDEX push_projects_site ON push_projects (netlify_site_id);

-- state: 'creating' until Netlify answered the deploy creation, 'init_failed' when it
-- refused (such pushes count against neither the deploy rate limit nor the cap), else the
-- deploy's Netlify state (preparing, prepared, uploading, processing, ready, error...).
CREATE TABLE push_pushes (
    id              bigserial PRIMARY KEY,
    push_id         text NOT NULL UNIQUE,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    api_key_id      bigint REFERENCES api_keys ON DELETE SET NULL,
    project_row_id  bigint REFERENCES push_projects ON DELETE SET NULL,
    project_id      text NOT NULL,
    netlify_site_id text NOT NULL,
    branch          text NOT NULL,
    title           text NOT NULL,
    draft           boolean NOT NULL DEFAULT false,
    deploy_id       text,
    state           text NOT NULL DEFAULT 'creating',
    url             text,
    error           text,
    manifest        jsonb NOT NULL,
    file_count      int NOT NULL,
    required        text[] NOT NULL DEFAULT '{}',
    idempotency_key text,
    request_hash    text,
    ready_at        timestamptz,
    finished_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_pushes_customer_created ON push_pushes (customer_id, created_at);
CREATE INDEX push_pushes_customer_id ON push_pushes (customer_id, id DESC);
CREATE INDEX push_pushes_project ON push_pushes (project_row_id, id DESC);
CREATE INDEX push_pushes_open ON push_pushes (updated_at) WHERE finished_at IS NULL;
CREATE UNIQUE INDEX push_pushes_idempotency ON push_pushes (customer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per required digest sent to Netlify: 'uploading' while a request holds the claim
-- (its bytes count against the cap), 'done' once Netlify stored it.
CREATE TABLE push_files (
    push_row_id bigint NOT NULL REFERENCES push_pushes ON DELETE CASCADE,
    sha1        text NOT NULL,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    mode        text NOT NULL CHECK (mode IN ('direct', 'chunked')),
    status      text NOT NULL CHECK (status IN ('uploading', 'done')),
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    uploaded_at timestamptz,
    PRIMARY KEY (push_row_id, sha1)
);

-- A file sent in parts. receiving -> queued -> running -> done | retry_wait | failed;
-- expired when its parts sat unused past the retention period.
CREATE TABLE push_jobs (
    id              bigserial PRIMARY KEY,
    push_row_id     bigint NOT NULL REFERENCES push_pushes ON DELETE CASCADE,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    sha1            text NOT NULL,
    path            text NOT NULL,
    parts           int NOT NULL CHECK (parts BETWEEN 1 AND 10000),
    status          text NOT NULL DEFAULT 'receiving'
                    CHECK (status IN ('receiving', 'queued', 'running', 'retry_wait', 'done', 'failed',
                                      'expired')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    locked_until    timestamptz,
    last_error      text,
    bytes           bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (push_row_id, sha1)
);
CREATE INDEX push_jobs_due ON push_jobs (next_attempt_at) WHERE status IN ('queued', 'retry_wait');
CREATE INDEX push_jobs_running ON push_jobs (locked_until) WHERE status = 'running';
CREATE INDEX push_jobs_customer ON push_jobs (customer_id, id DESC);
CREATE INDEX push_jobs_updated ON push_jobs (updated_at)
    WHERE status IN ('receiving', 'queued', 'retry_wait', 'failed');

-- A staged part: its bytes here (storage 'pg') or in S3 (storage 's3', data NULL).
CREATE TABLE push_parts (
    job_id     bigint NOT NULL REFERENCES push_jobs ON DELETE CASCADE,
    part       int NOT NULL CHECK (part >= 0),
    size       int NOT NULL CHECK (size > 0),
    sha1       text NOT NULL,
    storage    text NOT NULL CHECK (storage IN ('pg', 's3')),
    data       bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, part)
);

CREATE TABLE push_pricing_versions (
    version          int PRIMARY KEY CHECK (version > 0),
    currency         text NOT NULL DEFAULT 'usd',
    base_month_cents bigint NOT NULL DEFAULT 0 CHECK (base_month_cents >= 0),
    per_deploy_cents bigint NOT NULL CHECK (per_deploy_cents >= 0),
    per_gib_cents    bigint NOT NULL CHECK (per_gib_cents >= 0),
    created_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO push_pricing_versions (version, per_deploy_cents, per_gib_cents) VALUES (1, 10, 25);

-- A customer's push pricing and optional monthly push cap (NULL: no cap).
CREATE TABLE customer_push_billing (
    customer_id       bigint PRIMARY KEY REFERENCES customers ON DELETE CASCADE,
    pricing_version   int NOT NULL DEFAULT 1 REFERENCES push_pricing_versions,
    monthly_cap_cents bigint CHECK (monthly_cap_cents >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE push_usage_events (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    api_key_id  bigint REFERENCES api_keys ON DELETE SET NULL,
    push_row_id bigint REFERENCES push_pushes ON DELETE SET NULL,
    month       text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    kind        text NOT NULL CHECK (kind IN ('deploy_init', 'file_upload', 'deploy_ready', 'deploy_error')),
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    meta        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX push_usage_events_month ON push_usage_events (customer_id, month, kind);
CREATE UNIQUE INDEX push_usage_events_once ON push_usage_events (push_row_id, kind)
    WHERE kind IN ('deploy_init', 'deploy_ready', 'deploy_error');

-- The month's push charges, recomputed exactly from push_usage_events whenever one is
-- written. Read by invoice snapshots (customer_id, month, total_cents).
CREATE TABLE push_invoices (
    id              bigserial UNIQUE,
    customer_id     bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    month           text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    pricing_version int NOT NULL,
    total_cents     bigint NOT NULL,
    total_nanos     bigint NOT NULL,
    deploys         bigint NOT NULL,
    bytes           bigint NOT NULL,
    breakdown       jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, month)
);
