-- Indexes that serve the transaction store's reads: finding a tenant's transaction by its WebAuthn
-- challenge (every confirmation), and a user's transactions newest first, ties broken by id (the
-- paged list), with no sort. The list index replaces the one of the initial schema that lacks id; it
-- still serves the foreign key to users.
--
-- The challenge index is not UNIQUE: challenges start with 32 random bytes and end with a hash of
-- the tenant-unique identifier, so they never collide, and the store finds a transaction by tenant
-- and challenge either way.

CREATE INDEX transactions_tenant_id_challenge_idx ON transactions (tenant_id, challenge);
--bun:split

CREATE INDEX transactions_tenant_id_user_id_created_at_id_idx ON transactions (tenant_id, user_id, created_at, id);
--bun:split

DROP INDEX transactions_tenant_id_user_id_created_at_idx;
