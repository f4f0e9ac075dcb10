CREATE INDEX credentials_tenant_id_created_at_idx ON credentials (tenant_id, created_at);
--bun:split

DROP INDEX credentials_tenant_id_created_at_id_idx;
--bun:split

CREATE INDEX credentials_tenant_id_user_id_idx ON credentials (tenant_id, user_id);
--bun:split

DROP INDEX credentials_tenant_id_user_id_created_at_id_idx;
