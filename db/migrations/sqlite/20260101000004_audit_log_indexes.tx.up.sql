-- Indexes that serve the audit log: a tenant's events newest first, ties broken by id (the paged
-- list, with or without time bounds), with no sort; and the retention job's deletion of old events
-- of every tenant by time. The list index replaces the one of the initial schema that lacks id.
-- (tenant_id, type, created_at) of the initial schema still serves the type filter.

CREATE INDEX audit_logs_tenant_id_created_at_id_idx ON audit_logs (tenant_id, created_at, id);
--bun:split

DROP INDEX audit_logs_tenant_id_created_at_idx;
--bun:split

CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);
