-- The judgement of each credential's attestation at registration (package attestation), for auditors:
-- the verdict (verified, unverified, self, none; '' for credentials registered before it was judged),
-- the subject of the FIDO metadata root the attestation chain verified to, the authenticator's MDS
-- status (updated when a login under a monitoring policy finds it revoked since) and its
-- certification level, and the rules of the tenant's attestation policy it broke (a JSON array of
-- strings, '[]' for none), which a monitoring policy records instead of refusing. The login re-check
-- reads aaguid and mds_status with the credential it already loads: no index is needed.
ALTER TABLE credentials
    ADD COLUMN attestation_verdict    TEXT NOT NULL DEFAULT '',
    ADD COLUMN attestation_root       TEXT,
    ADD COLUMN mds_status             TEXT,
    ADD COLUMN certification_level    TEXT,
    ADD COLUMN attestation_violations TEXT NOT NULL DEFAULT '[]';
