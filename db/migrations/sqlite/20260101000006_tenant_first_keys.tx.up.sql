-- Every primary key and unique index leads with tenant_id: the SQLite edition of
-- migrations/postgres/20260101000006_tenant_first_keys.tx.up.sql, which says why and names the one
-- exception (api_keys.hash). SQLite cannot change a primary key or drop a constraint, so each table
-- is made again: created under a new name, filled from the old one, the old one dropped, the new one
-- renamed, its indexes made again. Rows and their values are kept as they are.
--
-- This runs in a transaction with foreign keys on (a PRAGMA cannot switch them off there), so the
-- order matters: dropping a table deletes its rows first, and that delete cascades to every table
-- whose foreign key names it. credentials and transactions are therefore made again first, pointing
-- at users_new; the old users table is dropped when nothing points at it any more; renaming
-- users_new to users rewrites the foreign keys of credentials and transactions to name users.

CREATE TABLE users_new (
    tenant_id    TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT        NOT NULL,
    -- user_id is the application's own, opaque id of the user.
    user_id      TEXT        NOT NULL,
    name         TEXT        NOT NULL DEFAULT '',
    display_name TEXT        NOT NULL DEFAULT '',
    icon         TEXT,
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id)
);
--bun:split
INSERT INTO users_new (tenant_id, id, user_id, name, display_name, icon, created_at, updated_at)
SELECT tenant_id, id, user_id, name, display_name, icon, created_at, updated_at FROM users;
--bun:split

CREATE TABLE credentials_new (
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
    FOREIGN KEY (tenant_id, user_id) REFERENCES users_new (tenant_id, id) ON DELETE CASCADE
);
--bun:split
INSERT INTO credentials_new (tenant_id, id, user_id, name, public_key, attestation_type, aaguid, sign_count,
    clone_warning, backup_eligible, backup_state, user_present, user_verified, transports,
    authenticator_attachment, is_mfa, created_at, updated_at, last_used_at)
SELECT tenant_id, id, user_id, name, public_key, attestation_type, aaguid, sign_count,
    clone_warning, backup_eligible, backup_state, user_present, user_verified, transports,
    authenticator_attachment, is_mfa, created_at, updated_at, last_used_at
FROM credentials;
--bun:split

CREATE TABLE transactions_new (
    tenant_id     TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            TEXT        NOT NULL,
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, identifier),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users_new (tenant_id, id) ON DELETE CASCADE
);
--bun:split
INSERT INTO transactions_new (tenant_id, id, user_id, identifier, data, data_hash, challenge, status,
    credential_id, created_at, updated_at, confirmed_at, expires_at)
SELECT tenant_id, id, user_id, identifier, data, data_hash, challenge, status,
    credential_id, created_at, updated_at, confirmed_at, expires_at
FROM transactions;
--bun:split

DROP TABLE transactions;
--bun:split
DROP TABLE credentials;
--bun:split
DROP TABLE users;
--bun:split
ALTER TABLE users_new RENAME TO users;
--bun:split
ALTER TABLE credentials_new RENAME TO credentials;
--bun:split
ALTER TABLE transactions_new RENAME TO transactions;
--bun:split
CREATE INDEX users_tenant_id_created_at_id_idx ON users (tenant_id, created_at, id);
--bun:split
CREATE INDEX credentials_tenant_id_user_id_created_at_id_idx ON credentials (tenant_id, user_id, created_at, id);
--bun:split
CREATE INDEX credentials_tenant_id_created_at_id_idx ON credentials (tenant_id, created_at, id);
--bun:split
CREATE INDEX transactions_tenant_id_challenge_idx ON transactions (tenant_id, challenge);
--bun:split
CREATE INDEX transactions_tenant_id_user_id_created_at_id_idx ON transactions (tenant_id, user_id, created_at, id);
--bun:split

CREATE TABLE signing_keys_new (
    tenant_id   TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- id is the key id, the "kid" of the JWK and of every token; unique within its tenant.
    id          TEXT        NOT NULL,
    algorithm   TEXT        NOT NULL,
    -- private_key is ciphertext (AES-256-GCM under the master key).
    private_key BLOB        NOT NULL,
    public_jwk  TEXT        NOT NULL,
    created_at  TEXT        NOT NULL,
    retired_at  TEXT,
    expires_at  TEXT,
    PRIMARY KEY (tenant_id, id)
);
--bun:split
INSERT INTO signing_keys_new (tenant_id, id, algorithm, private_key, public_jwk, created_at, retired_at, expires_at)
SELECT tenant_id, id, algorithm, private_key, public_jwk, created_at, retired_at, expires_at FROM signing_keys;
--bun:split
DROP TABLE signing_keys;
--bun:split
ALTER TABLE signing_keys_new RENAME TO signing_keys;
--bun:split

CREATE TABLE api_keys_new (
    tenant_id    TEXT        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    kind         TEXT        NOT NULL CHECK (kind IN ('secret', 'publishable')),
    -- hash is SHA-256 of the secret; the secret itself is never stored. Unique across tenants: the
    -- one unique index that does not lead with tenant_id (see the PostgreSQL edition).
    hash         BLOB        NOT NULL UNIQUE,
    hint         TEXT        NOT NULL,
    created_at   TEXT        NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
--bun:split
INSERT INTO api_keys_new (tenant_id, id, name, kind, hash, hint, created_at, last_used_at, expires_at)
SELECT tenant_id, id, name, kind, hash, hint, created_at, last_used_at, expires_at FROM api_keys;
--bun:split
DROP TABLE api_keys;
--bun:split
ALTER TABLE api_keys_new RENAME TO api_keys;
--bun:split

CREATE TABLE audit_logs_new (
    -- tenant_id is the nil UUID for deployment-wide (admin) events. No foreign key to tenants.
    tenant_id      TEXT        NOT NULL,
    id             TEXT        NOT NULL,
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
    updated_at     TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
--bun:split
INSERT INTO audit_logs_new (tenant_id, id, type, ceremony, error, request_id, source_ip, user_agent,
    actor_user_id, transaction_id, details, created_at, updated_at)
SELECT COALESCE(tenant_id, '00000000-0000-0000-0000-000000000000'), id, type, ceremony, error, request_id,
    source_ip, user_agent, actor_user_id, transaction_id, details, created_at, updated_at
FROM audit_logs;
--bun:split
DROP TABLE audit_logs;
--bun:split
ALTER TABLE audit_logs_new RENAME TO audit_logs;
--bun:split
CREATE INDEX audit_logs_tenant_id_created_at_id_idx ON audit_logs (tenant_id, created_at, id);
--bun:split
CREATE INDEX audit_logs_tenant_id_type_created_at_idx ON audit_logs (tenant_id, type, created_at);
--bun:split
CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);
