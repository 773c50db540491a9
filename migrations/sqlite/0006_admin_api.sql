-- The admin HTTP API and the enforced second factor. Kept in lockstep with migrations/postgres.

-- Admin API keys: stored only as the SHA-256 of the key (a 256-bit random token), with the
-- scopes they grant (space-separated) and when they were revoked.
CREATE TABLE admin_api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

-- A disabled account cannot sign in or refresh (unix seconds; NULL while enabled).
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
-- The account must have a second factor, whatever `require_second_factor` says.
ALTER TABLE users ADD COLUMN second_factor_required INTEGER NOT NULL DEFAULT 0;

-- What a pending token of this table stands for: `second_factor` (a login's second step),
-- `enrolment` (a login that must enrol an authenticator first) or `set_password` (the
-- single-use link of an account created without a password).
ALTER TABLE two_factor_challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'second_factor';
