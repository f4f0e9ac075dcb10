-- Every primary key and unique index leads with tenant_id, so that the tables can later be
-- partitioned or distributed by tenant (PostgreSQL partitions and Citus both require the partition
-- or distribution column in every unique index) without a change to the code; every store query
-- already names the tenant first. tenants keeps PRIMARY KEY (id): its id is the tenant id.
--
-- users:        PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, user_id). The former UNIQUE
--               (tenant_id, id), which only served as target of the composite foreign keys of
--               credentials and transactions, is the primary key now; the foreign keys are made
--               again to point at it.
-- transactions: PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, identifier) as before.
-- signing_keys: PRIMARY KEY (tenant_id, id). A kid is unique within its tenant: a token names its
--               tenant in iss and is checked against that tenant's JWKS, and kids are random UUIDs.
--               The index on tenant_id alone is a prefix of the new key and goes.
-- api_keys:     PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, name) as before, and UNIQUE (hash)
--               kept: the one documented exception. A request with a key on a route without a tenant
--               finds the tenant by the key's hash alone (TenantStore.APIKeyByHash), so one hash must
--               name exactly one key of one tenant; UNIQUE (tenant_id, hash) would let two tenants
--               hold one secret and make that lookup ambiguous. The table is small (a few keys per
--               tenant); a distributed database keeps it as a reference table, or the hash as a
--               lookup table of its own distributed by hash.
-- audit_logs:   PRIMARY KEY (tenant_id, id); tenant_id NOT NULL, the nil UUID for deployment-wide
--               (admin) events, which were NULL (no tenant is ever created with the nil UUID), so
--               they form one more "tenant" of the same key. The foreign key to tenants goes: it made
--               every inserted event look up and lock its tenant's row, the largest share of an
--               event's cost after the row itself. TenantStore.DeleteTenant deletes the tenant's
--               events in its own transaction instead, and AuditStore.Insert leaves out events of
--               tenants deleted meanwhile with one lookup per tenant of a batch, not per event.

-- users, and the foreign keys that point at them.
ALTER TABLE credentials DROP CONSTRAINT credentials_tenant_id_user_id_fkey;
--bun:split
ALTER TABLE transactions DROP CONSTRAINT transactions_tenant_id_user_id_fkey;
--bun:split
ALTER TABLE users DROP CONSTRAINT users_pkey;
--bun:split
ALTER TABLE users DROP CONSTRAINT users_tenant_id_id_key;
--bun:split
ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (tenant_id, id);
--bun:split
ALTER TABLE credentials ADD CONSTRAINT credentials_tenant_id_user_id_fkey
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
--bun:split
ALTER TABLE transactions ADD CONSTRAINT transactions_tenant_id_user_id_fkey
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
--bun:split

ALTER TABLE transactions DROP CONSTRAINT transactions_pkey;
--bun:split
ALTER TABLE transactions ADD CONSTRAINT transactions_pkey PRIMARY KEY (tenant_id, id);
--bun:split

ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_pkey;
--bun:split
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_pkey PRIMARY KEY (tenant_id, id);
--bun:split
DROP INDEX signing_keys_tenant_id_idx;
--bun:split

ALTER TABLE api_keys DROP CONSTRAINT api_keys_pkey;
--bun:split
ALTER TABLE api_keys ADD CONSTRAINT api_keys_pkey PRIMARY KEY (tenant_id, id);
--bun:split

ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_tenant_id_fkey;
--bun:split
UPDATE audit_logs SET tenant_id = '00000000-0000-0000-0000-000000000000' WHERE tenant_id IS NULL;
--bun:split
ALTER TABLE audit_logs ALTER COLUMN tenant_id SET NOT NULL;
--bun:split
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey;
--bun:split
ALTER TABLE audit_logs ADD CONSTRAINT audit_logs_pkey PRIMARY KEY (tenant_id, id);
