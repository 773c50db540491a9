-- Passkeys (WebAuthn credentials) and the ceremonies that register and use them.
-- Kept in lockstep with migrations/postgres.

-- The account's WebAuthn user handle: random, made at its first passkey registration,
-- so an authenticator never holds the account id or the email.
ALTER TABLE users ADD COLUMN webauthn_user_handle UUID;
CREATE UNIQUE INDEX users_webauthn_user_handle ON users(webauthn_user_handle);

-- One row per registered passkey. `credential` is the relying party's stored credential
-- (public key, counter, flags) as JSON; `sign_count` repeats its counter so that the
-- counter rule is one conditional statement. A passkey whose counter went backwards is
-- disabled (`disabled_at`) and never accepted again.
CREATE TABLE passkeys (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    sign_count BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backed_up BOOLEAN NOT NULL,
    aaguid UUID,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    disabled_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);

-- A started registration or authentication ceremony: the relying party's state, bound to
-- what may finish it (`binding`: the session that began a registration, the hash of the
-- twoFactorToken of a second step, a fixed tag for a passwordless sign-in), consumed by
-- exactly one DELETE ... RETURNING before it expires.
CREATE TABLE webauthn_ceremonies (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    binding BYTEA NOT NULL,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires_at);
