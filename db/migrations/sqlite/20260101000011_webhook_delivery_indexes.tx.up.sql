-- Indexes that serve webhook deliveries (issue 15): an endpoint's deliveries listed newest first,
-- paged by cursor and filtered by status (db.WebhookStore.ListDeliveries), and the retention job's
-- deletion of finished deliveries of every tenant by the time of their last attempt
-- (DeleteFinishedBefore). No one index serves both: the listing names a tenant and an endpoint, the
-- deletion neither (it runs over every tenant), so an index led by tenant_id, like the primary key,
-- cannot give it a range, and one led by the time cannot give the listing its endpoint.
--
-- The listing index has status before the time, so each status is one range already in the
-- listing's order (a listing of several statuses merges one range per status), and id after it, for
-- the cursor's ties. It replaces webhook_deliveries_endpoint_idx of migration 000008, which lacks
-- both; its (tenant_id, endpoint_id) prefix still serves the cascade of an endpoint's deletion and
-- SucceededSince.

CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (tenant_id, endpoint_id, status, created_at, id);
--bun:split

DROP INDEX webhook_deliveries_endpoint_idx;
--bun:split

-- Partial, like webhook_deliveries_pending_idx: a pending delivery is never deleted, so it is left
-- out, and its attempts (each sets updated_at) add no entry here.
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (updated_at) WHERE status <> 'pending';
