-- The initial schema, the SQLite edition of migrations/postgres. SQLite has no uuid, timestamptz,
-- jsonb or boolean: uuids are TEXT in canonical form, timestamps TEXT in Bun's UTC format
-- ('2006-01-02 15:04:05.999999+00:00', which sorts in time order), booleans INTEGER 0/1, JSON TEXT.
-- Column types are declared TEXT rather than TIMESTAMP so the driver hands values to Bun unparsed.

CREATE TABLE tenants (
    id           TEXT        NOT NULL PRIMARY KEY,
    display_name TEXT        NOT NULL,
    -- config is the JSON of tenant.Config.
    config       TEXT        NOT NULL,
    -- revision grows with every change to the tenant, its API keys or its signing keys.
    revision     INTEGER     NOT NULL DEFAULT 1,
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL
);
--bun:split

CREATE TABLE api_keys (
    id           TEXT        NOT NULL PRIMARY KEY,
    tenant_id    TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL,
    kind         TEXT        NOT NULL CHECK (kind IN ('secret', 'publishable')),
    -- hash is SHA-256 of the secret; the secret itself is never stored.
    hash         BLOB        NOT NULL UNIQUE,
    hint         TEXT        NOT NULL,
    created_at   TEXT        NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    UNIQUE (tenant_id, name)
);
--bun:split

CREATE TABLE signing_keys (
    -- id is the key id, the "kid" of the JWK and of every token.
    id          TEXT        NOT NULL PRIMARY KEY,
    tenant_id   TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    algorithm   TEXT        NOT NULL,
    -- private_key is ciphertext (AES-256-GCM under the master key).
    private_key BLOB        NOT NULL,
    public_jwk  TEXT        NOT NULL,
    created_at  TEXT        NOT NULL,
    retired_at  TEXT,
    expires_at  TEXT        );
--bun:split

CREATE INDEX signing_keys_tenant_id_idx ON signing_keys (tenant_id);
--bun:split

CREATE TABLE users (
    id           TEXT        NOT NULL PRIMARY KEY,
    tenant_id    TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- user_id is the application's own, opaque id of the user.
    user_id      TEXT        NOT NULL,
    name         TEXT        NOT NULL DEFAULT '',
    display_name TEXT        NOT NULL DEFAULT '',
    icon         TEXT,
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL,
    UNIQUE (tenant_id, user_id),
    -- Target of the composite foreign keys below: a row can only point at a user of its own tenant.
    UNIQUE (tenant_id, id)
);
--bun:split

CREATE TABLE credentials (
    tenant_id                TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- id is the base64url (unpadded) credential id.
    id                       TEXT        NOT NULL,
    user_id                  TEXT        NOT NULL,
    name                     TEXT,
    public_key               BLOB        NOT NULL,
    attestation_type         TEXT        NOT NULL DEFAULT '',
    aaguid                   TEXT        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    sign_count               INTEGER     NOT NULL DEFAULT 0,
    clone_warning            INTEGER     NOT NULL DEFAULT 0,
    backup_eligible          INTEGER     NOT NULL DEFAULT 0,
    backup_state             INTEGER     NOT NULL DEFAULT 0,
    user_present             INTEGER     NOT NULL DEFAULT 0,
    user_verified            INTEGER     NOT NULL DEFAULT 0,
    -- transports is a JSON array of strings.
    transports               TEXT        NOT NULL DEFAULT '[]',
    authenticator_attachment TEXT,
    is_mfa                   INTEGER     NOT NULL DEFAULT 0,
    created_at               TEXT        NOT NULL,
    updated_at               TEXT        NOT NULL,
    last_used_at             TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
--bun:split

CREATE INDEX credentials_tenant_id_user_id_idx ON credentials (tenant_id, user_id);
--bun:split

CREATE INDEX credentials_tenant_id_created_at_idx ON credentials (tenant_id, created_at);
--bun:split

CREATE TABLE transactions (
    id            TEXT        NOT NULL PRIMARY KEY,
    tenant_id     TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id       TEXT        NOT NULL,
    identifier    TEXT        NOT NULL,
    -- data is the canonical JSON of the transaction; data_hash its SHA-256.
    data          TEXT        NOT NULL,
    data_hash     BLOB        NOT NULL,
    challenge     TEXT        NOT NULL,
    status        TEXT        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'confirmed', 'failed', 'expired')),
    credential_id TEXT,
    created_at    TEXT        NOT NULL,
    updated_at    TEXT        NOT NULL,
    confirmed_at  TEXT,
    expires_at    TEXT,
    UNIQUE (tenant_id, identifier),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
--bun:split

CREATE INDEX transactions_tenant_id_user_id_created_at_idx ON transactions (tenant_id, user_id, created_at);
--bun:split

CREATE TABLE audit_logs (
    id             TEXT        NOT NULL PRIMARY KEY,
    -- tenant_id is NULL for deployment-wide (admin) events.
    tenant_id      TEXT        REFERENCES tenants (id) ON DELETE CASCADE,
    type           TEXT        NOT NULL,
    ceremony       TEXT,
    error          TEXT,
    request_id     TEXT        NOT NULL DEFAULT '',
    source_ip      TEXT        NOT NULL DEFAULT '',
    user_agent     TEXT        NOT NULL DEFAULT '',
    actor_user_id  TEXT,
    transaction_id TEXT,
    details        TEXT,
    created_at     TEXT        NOT NULL,
    updated_at     TEXT        NOT NULL
);
--bun:split

CREATE INDEX audit_logs_tenant_id_created_at_idx ON audit_logs (tenant_id, created_at DESC);
--bun:split

CREATE INDEX audit_logs_tenant_id_type_created_at_idx ON audit_logs (tenant_id, type, created_at);
