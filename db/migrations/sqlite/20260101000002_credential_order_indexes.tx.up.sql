-- Indexes that serve the credential store's reads in their order, with no sort: a user's credentials
-- oldest first (the start of every login), and a tenant's credentials by creation time, ties broken
-- by id (the paged list). They replace the indexes of the initial schema that lack the order columns;
-- without statistics SQLite otherwise scanned all of a tenant's credentials by created_at to find one
-- user's. The new (tenant_id, user_id, ...) index still serves the foreign key to users.

CREATE INDEX credentials_tenant_id_user_id_created_at_id_idx ON credentials (tenant_id, user_id, created_at, id);
--bun:split

DROP INDEX credentials_tenant_id_user_id_idx;
--bun:split

CREATE INDEX credentials_tenant_id_created_at_id_idx ON credentials (tenant_id, created_at, id);
--bun:split

DROP INDEX credentials_tenant_id_created_at_idx;
