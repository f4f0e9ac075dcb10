DROP INDEX webhook_deliveries_finished_idx;
--bun:split

CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC);
--bun:split

DROP INDEX webhook_deliveries_list_idx;
