DROP TABLE IF EXISTS tenant_changes;
