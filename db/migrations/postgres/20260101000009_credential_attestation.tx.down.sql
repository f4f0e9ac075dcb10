ALTER TABLE credentials
    DROP COLUMN attestation_violations,
    DROP COLUMN certification_level,
    DROP COLUMN mds_status,
    DROP COLUMN attestation_root,
    DROP COLUMN attestation_verdict;
