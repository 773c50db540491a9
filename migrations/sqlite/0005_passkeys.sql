-- Passkeys (WebAuthn credentials) and the ceremonies that register and use them.
-- Kept in lockstep with migrations/postgres.

-- The account's WebAuthn user handle: random, made at its first passkey registration,
-- so an authenticator never holds the account id or the email.
ALTER TABLE users ADD COLUMN webauthn_user_handle BLOB;
CREATE UNIQUE INDEX users_webauthn_user_handle ON users(webauthn_user_handle);

-- One row per registered passkey. `credential` is the relying party's stored credential
-- (public key, counter, flags) as JSON; `sign_count` repeats its counter so that the
-- counter rule is one conditional statement. A passkey whose counter went backwards is
-- disabled (`disabled_at`) and never accepted again.
CREATE TABLE passkeys (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    sign_count INTEGER NOT NULL,
    backup_eligible INTEGER NOT NULL,
    backed_up INTEGER NOT NULL,
    aaguid BLOB,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    disabled_at INTEGER
) STRICT;
CREATE INDEX passkeys_user ON passkeys(user_id);

-- A started registration or authentication ceremony: the relying party's state, bound to
-- what may finish it (`binding`: the session that began a registration, the hash of the
-- twoFactorToken of a second step, a fixed tag for a passwordless sign-in), consumed by
-- exactly one DELETE ... RETURNING before it expires.
CREATE TABLE webauthn_ceremonies (
    id BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    binding BLOB NOT NULL,
    user_id BLOB REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires_at);
