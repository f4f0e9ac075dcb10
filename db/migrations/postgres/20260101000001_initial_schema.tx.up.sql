-- The initial schema. All timestamps are timestamptz and written in UTC. Text is text, never
-- varchar(n): user agents, 64-byte user handles and 1,023-byte credential ids must fit.

CREATE TABLE tenants (
    id           uuid        PRIMARY KEY,
    display_name text        NOT NULL,
    -- config is the JSON of tenant.Config.
    config       jsonb       NOT NULL,
    -- revision grows with every change to the tenant, its API keys or its signing keys.
    revision     bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
--bun:split

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('secret', 'publishable')),
    -- hash is SHA-256 of the secret; the secret itself is never stored.
    hash         bytea       NOT NULL UNIQUE,
    hint         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    expires_at   timestamptz,
    UNIQUE (tenant_id, name)
);
--bun:split

CREATE TABLE signing_keys (
    -- id is the key id, the "kid" of the JWK and of every token.
    id          text        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    algorithm   text        NOT NULL,
    -- private_key is ciphertext (AES-256-GCM under the master key).
    private_key bytea       NOT NULL,
    public_jwk  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz,
    expires_at  timestamptz
);
--bun:split

CREATE INDEX signing_keys_tenant_id_idx ON signing_keys (tenant_id);
--bun:split

CREATE TABLE users (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- user_id is the application's own, opaque id of the user.
    user_id      text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    display_name text        NOT NULL DEFAULT '',
    icon         text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (tenant_id, user_id),
    -- Target of the composite foreign keys below: a row can only point at a user of its own tenant.
    UNIQUE (tenant_id, id)
);
--bun:split

CREATE TABLE credentials (
    tenant_id                uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- id is the base64url (unpadded) credential id.
    id                       text        NOT NULL,
    user_id                  uuid        NOT NULL,
    name                     text,
    public_key               bytea       NOT NULL,
    attestation_type         text        NOT NULL DEFAULT '',
    aaguid                   uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    sign_count               bigint      NOT NULL DEFAULT 0,
    clone_warning            boolean     NOT NULL DEFAULT false,
    backup_eligible          boolean     NOT NULL DEFAULT false,
    backup_state             boolean     NOT NULL DEFAULT false,
    user_present             boolean     NOT NULL DEFAULT false,
    user_verified            boolean     NOT NULL DEFAULT false,
    -- transports is a JSON array of strings.
    transports               text        NOT NULL DEFAULT '[]',
    authenticator_attachment text,
    is_mfa                   boolean     NOT NULL DEFAULT false,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    last_used_at             timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
--bun:split

CREATE INDEX credentials_tenant_id_user_id_idx ON credentials (tenant_id, user_id);
--bun:split

CREATE INDEX credentials_tenant_id_created_at_idx ON credentials (tenant_id, created_at);
--bun:split

CREATE TABLE transactions (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       uuid        NOT NULL,
    identifier    text        NOT NULL,
    -- data is the canonical JSON of the transaction; data_hash its SHA-256.
    data          text        NOT NULL,
    data_hash     bytea       NOT NULL,
    challenge     text        NOT NULL,
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'confirmed', 'failed', 'expired')),
    credential_id text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    confirmed_at  timestamptz,
    expires_at    timestamptz,
    UNIQUE (tenant_id, identifier),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
--bun:split

CREATE INDEX transactions_tenant_id_user_id_created_at_idx ON transactions (tenant_id, user_id, created_at);
--bun:split

CREATE TABLE audit_logs (
    id             uuid        PRIMARY KEY,
    -- tenant_id is NULL for deployment-wide (admin) events.
    tenant_id      uuid        REFERENCES tenants (id) ON DELETE CASCADE,
    type           text        NOT NULL,
    ceremony       text,
    error          text,
    request_id     text        NOT NULL DEFAULT '',
    source_ip      text        NOT NULL DEFAULT '',
    user_agent     text        NOT NULL DEFAULT '',
    actor_user_id  text,
    transaction_id text,
    details        jsonb,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
--bun:split

CREATE INDEX audit_logs_tenant_id_created_at_idx ON audit_logs (tenant_id, created_at DESC);
--bun:split

CREATE INDEX audit_logs_tenant_id_type_created_at_idx ON audit_logs (tenant_id, type, created_at);
