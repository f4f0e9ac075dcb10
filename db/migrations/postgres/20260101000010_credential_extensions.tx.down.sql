ALTER TABLE credentials
    DROP COLUMN created_conditionally,
    DROP COLUMN prf_enabled,
    DROP COLUMN discoverable;
