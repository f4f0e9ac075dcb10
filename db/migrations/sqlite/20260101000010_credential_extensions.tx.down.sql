ALTER TABLE credentials DROP COLUMN created_conditionally;
--bun:split

ALTER TABLE credentials DROP COLUMN prf_enabled;
--bun:split

ALTER TABLE credentials DROP COLUMN discoverable;
