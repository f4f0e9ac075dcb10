-- Webhooks (issue 15): the endpoints a tenant's application registered, and one delivery per event
-- and endpoint. Each pending delivery also has a job in River's river_job table (River's own
-- migrations, run after these by MigrateUp), inserted in the same transaction.

CREATE TABLE webhook_endpoints (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              uuid        NOT NULL,
    url             text        NOT NULL,
    -- events is a JSON array of the event types the endpoint receives.
    events          text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    enabled         boolean     NOT NULL,
    disabled_reason text        NOT NULL DEFAULT '',
    -- secret and previous_secret are ciphertext (AES-256-GCM under the master key); the previous one
    -- still signs until previous_until (a rotation's overlap).
    secret          bytea       NOT NULL,
    previous_secret bytea,
    previous_until  timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
--bun:split

CREATE TABLE webhook_deliveries (
    tenant_id        uuid        NOT NULL,
    id               uuid        NOT NULL,
    endpoint_id      uuid        NOT NULL,
    event_type       text        NOT NULL,
    -- payload is the JSON body sent, as text: the signature covers its exact bytes.
    payload          text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer     NOT NULL DEFAULT 0,
    last_error       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
--bun:split

CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC);
--bun:split

-- The queue depth and the oldest pending delivery (metrics).
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (created_at) WHERE status = 'pending';
