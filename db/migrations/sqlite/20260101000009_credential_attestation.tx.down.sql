ALTER TABLE credentials DROP COLUMN attestation_violations;
--bun:split

ALTER TABLE credentials DROP COLUMN certification_level;
--bun:split

ALTER TABLE credentials DROP COLUMN mds_status;
--bun:split

ALTER TABLE credentials DROP COLUMN attestation_root;
--bun:split

ALTER TABLE credentials DROP COLUMN attestation_verdict;
