DROP INDEX IF EXISTS users_tenant_id_created_at_id_idx;
