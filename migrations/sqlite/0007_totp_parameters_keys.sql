-- Per-authenticator TOTP parameters and learned clock drift; signing keys that rotate.
-- Kept in lockstep with migrations/postgres.

-- The confirmed authenticator's hash (SHA1, SHA256, SHA512), digits (6 or 8) and period
-- (30 or 60 seconds); enrolments keep the defaults, imports bring their own. `drift` is
-- the authenticator's clock offset in steps, learned from each accepted code (RFC 6238
-- section 6): the window of accepted steps is centred on it.
ALTER TABLE totp_credentials ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'SHA1';
ALTER TABLE totp_credentials ADD COLUMN digits INTEGER NOT NULL DEFAULT 6;
ALTER TABLE totp_credentials ADD COLUMN period INTEGER NOT NULL DEFAULT 30;
ALTER TABLE totp_credentials ADD COLUMN drift INTEGER NOT NULL DEFAULT 0;

-- Access-token signing keys, the private half sealed under the master key. One is current
-- (activated, not retired); a key prepared ahead has no `activated_at` yet; a retired key
-- is published until the last token it signed has expired.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    public_x TEXT NOT NULL,
    private_key_enc BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    activated_at INTEGER,
    retired_at INTEGER
) STRICT;
