-- The change feed of tenants (tenant.Store.TenantChanges): one row per change to a tenant, its
-- config, API keys or signing keys, and per deleted tenant, written by the transaction of the change
-- as its last statement. Every instance reads the rows since its last read instead of every tenant's
-- revision, so checking for changes costs what changed, not how many tenants there are. No foreign
-- key: the row of a deleted tenant outlives it.
CREATE TABLE tenant_changes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    -- revision is the tenant's revision after the change; 0 when the change deleted the tenant.
    revision   bigint      NOT NULL,
    -- changed_at is the database's clock (clock_timestamp()) when the row was written.
    changed_at timestamptz NOT NULL
);
--bun:split

-- Readers read the last minute again (ids commit out of order), writers delete rows older than an hour.
CREATE INDEX tenant_changes_changed_at_idx ON tenant_changes (changed_at);
