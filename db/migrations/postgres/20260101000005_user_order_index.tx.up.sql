-- The admin user list orders a tenant's users by creation (newest first) and pages through them.
CREATE INDEX users_tenant_id_created_at_id_idx ON users (tenant_id, created_at, id);
