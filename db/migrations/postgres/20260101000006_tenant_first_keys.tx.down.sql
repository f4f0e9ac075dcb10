-- Events of tenants that no longer exist (written after their tenant's deletion) would break the
-- foreign key to tenants that comes back; nobody can read them, so they go.
DELETE FROM audit_logs
WHERE tenant_id <> '00000000-0000-0000-0000-000000000000'
  AND NOT EXISTS (SELECT 1 FROM tenants WHERE tenants.id = audit_logs.tenant_id);
--bun:split
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey;
--bun:split
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (id);
--bun:split
ALTER TABLE audit_logs ALTER COLUMN tenant_id DROP NOT NULL;
--bun:split
UPDATE audit_logs SET tenant_id = NULL WHERE tenant_id = '00000000-0000-0000-0000-000000000000';
--bun:split
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
--bun:split

ALTER TABLE api_keys DROP CONSTRAINT api_keys_pkey;
--bun:split
ALTER TABLE api_keys ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);
--bun:split

CREATE INDEX signing_keys_tenant_id_idx ON signing_keys (tenant_id);
--bun:split
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_pkey;
--bun:split
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_pkey PRIMARY KEY (id);
--bun:split

ALTER TABLE transactions DROP CONSTRAINT transactions_pkey;
--bun:split
ALTER TABLE transactions ADD CONSTRAINT transactions_pkey PRIMARY KEY (id);
--bun:split

ALTER TABLE credentials DROP CONSTRAINT credentials_tenant_id_user_id_fkey;
--bun:split
ALTER TABLE transactions DROP CONSTRAINT transactions_tenant_id_user_id_fkey;
--bun:split
ALTER TABLE users DROP CONSTRAINT users_pkey;
--bun:split
ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
--bun:split
ALTER TABLE users ADD CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id);
--bun:split
ALTER TABLE credentials ADD CONSTRAINT credentials_tenant_id_user_id_fkey
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
--bun:split
ALTER TABLE transactions ADD CONSTRAINT transactions_tenant_id_user_id_fkey
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
