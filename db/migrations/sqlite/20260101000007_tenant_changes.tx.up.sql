-- The change feed of tenants (tenant.Store.TenantChanges): one row per change to a tenant, its
-- config, API keys or signing keys, and per deleted tenant, written by the transaction of the change
-- as its last statement. Every instance reads the rows since its last read instead of every tenant's
-- revision, so checking for changes costs what changed, not how many tenants there are. No foreign
-- key: the row of a deleted tenant outlives it. AUTOINCREMENT: an id is never used again, even after
-- the newest rows were deleted, so a reader's cursor never skips a new row.
CREATE TABLE tenant_changes (
    id         INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT        NOT NULL,
    -- revision is the tenant's revision after the change; 0 when the change deleted the tenant.
    revision   INTEGER     NOT NULL,
    changed_at TEXT        NOT NULL
);
--bun:split

-- Readers read the last minute again, writers delete rows older than an hour.
CREATE INDEX tenant_changes_changed_at_idx ON tenant_changes (changed_at);
