-- Webhooks (issue 15): the endpoints a tenant's application registered, and one delivery per event
-- and endpoint. Each pending delivery also has a job in River's river_job table (River's own
-- migrations, run after these by MigrateUp), inserted in the same transaction.

CREATE TABLE webhook_endpoints (
    tenant_id       TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              TEXT        NOT NULL,
    url             TEXT        NOT NULL,
    -- events is a JSON array of the event types the endpoint receives.
    events          TEXT        NOT NULL,
    description     TEXT        NOT NULL DEFAULT '',
    enabled         INTEGER     NOT NULL,
    disabled_reason TEXT        NOT NULL DEFAULT '',
    -- secret and previous_secret are ciphertext (AES-256-GCM under the master key); the previous one
    -- still signs until previous_until (a rotation's overlap).
    secret          BLOB        NOT NULL,
    previous_secret BLOB,
    previous_until  TEXT,
    created_at      TEXT        NOT NULL,
    updated_at      TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
--bun:split

CREATE TABLE webhook_deliveries (
    tenant_id        TEXT        NOT NULL,
    id               TEXT        NOT NULL,
    endpoint_id      TEXT        NOT NULL,
    event_type       TEXT        NOT NULL,
    -- payload is the JSON body sent, as text: the signature covers its exact bytes.
    payload          TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    last_status_code INTEGER     NOT NULL DEFAULT 0,
    last_error       TEXT        NOT NULL DEFAULT '',
    created_at       TEXT        NOT NULL,
    updated_at       TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
--bun:split

CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC);
--bun:split

-- The queue depth and the oldest pending delivery (metrics).
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (created_at) WHERE status = 'pending';
