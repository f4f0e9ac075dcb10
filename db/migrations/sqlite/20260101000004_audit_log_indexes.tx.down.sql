DROP INDEX audit_logs_created_at_idx;
--bun:split

CREATE INDEX audit_logs_tenant_id_created_at_idx ON audit_logs (tenant_id, created_at DESC);
--bun:split

DROP INDEX audit_logs_tenant_id_created_at_id_idx;
