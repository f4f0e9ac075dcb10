CREATE INDEX transactions_tenant_id_user_id_created_at_idx ON transactions (tenant_id, user_id, created_at);
--bun:split

DROP INDEX transactions_tenant_id_user_id_created_at_id_idx;
--bun:split

DROP INDEX transactions_tenant_id_challenge_idx;
