DROP TABLE audit_logs;
--bun:split
DROP TABLE transactions;
--bun:split
DROP TABLE credentials;
--bun:split
DROP TABLE users;
--bun:split
DROP TABLE signing_keys;
--bun:split
DROP TABLE api_keys;
--bun:split
DROP TABLE tenants;
