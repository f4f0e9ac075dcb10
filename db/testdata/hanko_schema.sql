-- The tables of a Hanko Passkey API server (github.com/teamhanko/passkeys, server/persistence/migrations)
-- that `passkey-server import hanko` reads, as its fizz migrations create them on PostgreSQL (pop's
-- translation: "string" is varchar(255), columns are NOT NULL unless "null": true, t.Timestamps() adds
-- created_at and updated_at), after every migration up to 20240322134127_create_mfa_configs:
--   20231107190551_create_tenants, 20231107190727_create_configs, 20231107190913_create_webauthn_configs,
--   20231107190959_create_relying_parties, webauthn_origins (20231026084439, the model of 20231107191059),
--   20231107191208_create_cors, 20231107191230_create_cors_origins, 20231107191413_create_secrets,
--   20231107191655_create_webauthn_users, 20231107192813_create_webauthn_credentials,
--   20231107192944_create_webauthn_credential_transports, 20231108143016_change_user_id_to_varchar,
--   20231123102742_create_transactions, 20240220140353_add_webauthn_options, 20240301140353_add_mfa_identifier,
--   20240322082442_add_is_mfa_to_webauthn_credential, 20240322134127_create_mfa_configs.
-- Written for the tests from those files; Hanko's session data, audit log and JWK tables are not read.

CREATE TABLE tenants (
    id           uuid         PRIMARY KEY,
    display_name varchar(255) NOT NULL,
    created_at   timestamp    NOT NULL,
    updated_at   timestamp    NOT NULL
);

CREATE TABLE configs (
    id         uuid      PRIMARY KEY,
    tenant_id  uuid      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
);

CREATE TABLE webauthn_configs (
    id                       uuid         PRIMARY KEY,
    timeout                  integer      NOT NULL DEFAULT 60000,
    user_verification        varchar(255) NOT NULL DEFAULT 'preferred',
    config_id                uuid         NOT NULL REFERENCES configs (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at               timestamp    NOT NULL,
    updated_at               timestamp    NOT NULL,
    attachment               varchar(255),
    attestation_preference   varchar(255) NOT NULL DEFAULT 'none',
    resident_key_requirement varchar(255) NOT NULL DEFAULT 'required',
    is_mfa                   boolean      NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX webauthn_mfa_config_idx ON webauthn_configs (config_id, is_mfa);

CREATE TABLE relying_parties (
    id                 uuid         PRIMARY KEY,
    rp_id              varchar(255) NOT NULL,
    display_name       varchar(255) NOT NULL,
    icon               varchar(255),
    webauthn_config_id uuid         NOT NULL UNIQUE REFERENCES webauthn_configs (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at         timestamp    NOT NULL,
    updated_at         timestamp    NOT NULL
);

CREATE TABLE webauthn_origins (
    id               uuid         PRIMARY KEY,
    origin           varchar(255) NOT NULL,
    relying_party_id uuid         NOT NULL REFERENCES relying_parties (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at       timestamp    NOT NULL,
    updated_at       timestamp    NOT NULL
);
CREATE UNIQUE INDEX webauthn_origins_origin_relying_party_id_idx ON webauthn_origins (origin, relying_party_id);

CREATE TABLE cors (
    id           uuid      PRIMARY KEY,
    allow_unsafe boolean   NOT NULL DEFAULT false,
    config_id    uuid      NOT NULL REFERENCES configs (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at   timestamp NOT NULL,
    updated_at   timestamp NOT NULL
);

CREATE TABLE cors_origins (
    id         uuid         PRIMARY KEY,
    origin     varchar(255) NOT NULL UNIQUE,
    cors_id    uuid         NOT NULL REFERENCES cors (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at timestamp    NOT NULL,
    updated_at timestamp    NOT NULL
);

CREATE TABLE secrets (
    id            uuid         PRIMARY KEY,
    name          varchar(255) NOT NULL,
    key           varchar(200) NOT NULL,
    is_api_secret boolean      NOT NULL DEFAULT true,
    config_id     uuid         NOT NULL REFERENCES configs (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at    timestamp    NOT NULL,
    updated_at    timestamp    NOT NULL
);
CREATE UNIQUE INDEX secrets_key_config_id_idx ON secrets (key, config_id);
CREATE UNIQUE INDEX secrets_name_config_id_idx ON secrets (name, config_id);

CREATE TABLE mfa_configs (
    id                       uuid         PRIMARY KEY,
    timeout                  integer      NOT NULL DEFAULT 60000,
    user_verification        varchar(255) NOT NULL DEFAULT 'discouraged',
    attachment               varchar(255) NOT NULL DEFAULT 'cross-platform',
    attestation_preference   varchar(255) NOT NULL DEFAULT 'direct',
    resident_key_requirement varchar(255) NOT NULL DEFAULT 'discouraged',
    config_id                uuid         NOT NULL REFERENCES configs (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at               timestamp    NOT NULL,
    updated_at               timestamp    NOT NULL
);

CREATE TABLE webauthn_users (
    id           uuid         PRIMARY KEY,
    user_id      varchar(255) NOT NULL UNIQUE,
    name         varchar(255) NOT NULL,
    icon         varchar(255) NOT NULL,
    display_name varchar(255) NOT NULL,
    tenant_id    uuid         NOT NULL REFERENCES tenants (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at   timestamp    NOT NULL,
    updated_at   timestamp    NOT NULL
);
CREATE UNIQUE INDEX webauthn_users_user_id_tenant_id_idx ON webauthn_users (user_id, tenant_id);

CREATE TABLE webauthn_credentials (
    id               varchar(255) PRIMARY KEY,
    user_id          varchar(255) NOT NULL,
    public_key       text         NOT NULL,
    attestation_type varchar(255) NOT NULL,
    aaguid           uuid         NOT NULL,
    sign_count       integer      NOT NULL,
    name             varchar(255),
    last_used_at     timestamp,
    backup_eligible  bool         NOT NULL DEFAULT false,
    backup_state     bool         NOT NULL DEFAULT false,
    webauthn_user_id uuid         REFERENCES webauthn_users (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at       timestamp    NOT NULL,
    updated_at       timestamp    NOT NULL,
    is_mfa           boolean      NOT NULL DEFAULT false
);

CREATE TABLE webauthn_credential_transports (
    id                     varchar(255) PRIMARY KEY,
    name                   varchar(255) NOT NULL,
    webauthn_credential_id varchar(255) NOT NULL REFERENCES webauthn_credentials (id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX webauthn_credential_transports_name_webauthn_credential_id_idx ON webauthn_credential_transports (name, webauthn_credential_id);

CREATE TABLE transactions (
    id               uuid         PRIMARY KEY,
    identifier       varchar(255) NOT NULL,
    data             text         NOT NULL,
    challenge        varchar(255) NOT NULL,
    webauthn_user_id uuid         NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE ON UPDATE CASCADE,
    tenant_id        uuid         NOT NULL REFERENCES tenants (id) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at       timestamp    NOT NULL,
    updated_at       timestamp    NOT NULL
);
CREATE UNIQUE INDEX transactions_identifier_tenant_id_idx ON transactions (identifier, tenant_id);
