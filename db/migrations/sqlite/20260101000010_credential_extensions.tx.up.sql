-- What a credential's registration learnt from WebAuthn Level 3 (credentials.Credential): whether it
-- is discoverable (the credProps extension's rk) and whether it has a pseudo-random function (the prf
-- extension's enabled output), each NULL when the client did not say (and for credentials registered
-- before), and whether it came from a conditional create (mediation "conditional"), which the user
-- may not have been present for. Nothing reads by them: no index.
ALTER TABLE credentials ADD COLUMN discoverable INTEGER;
--bun:split

ALTER TABLE credentials ADD COLUMN prf_enabled INTEGER;
--bun:split

ALTER TABLE credentials ADD COLUMN created_conditionally INTEGER NOT NULL DEFAULT 0;
