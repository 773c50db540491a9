-- Accounts, second factors, sessions, trusted devices, security events, throttles.
-- Times are unix seconds. Booleans are INTEGER 0/1. Kept in lockstep with migrations/postgres.

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    phone_number TEXT,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER,
    last_login_ip TEXT,
    two_factor_enabled INTEGER NOT NULL DEFAULT 0,
    two_factor_enabled_at INTEGER,
    backup_codes_generated_at INTEGER,
    pw_failures INTEGER NOT NULL DEFAULT 0,
    pw_window_start INTEGER NOT NULL DEFAULT 0,
    pw_blocked_until INTEGER NOT NULL DEFAULT 0,
    sf_attempts INTEGER NOT NULL DEFAULT 0,
    sf_failures INTEGER NOT NULL DEFAULT 0,
    sf_lockouts INTEGER NOT NULL DEFAULT 0,
    sf_locked_until INTEGER NOT NULL DEFAULT 0,
    totp_suspended INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE totp_credentials (
    user_id BLOB PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_enc BLOB,
    confirmed_at INTEGER,
    last_step INTEGER NOT NULL DEFAULT -1,
    pending_secret_enc BLOB,
    pending_expires_at INTEGER
) STRICT;

CREATE TABLE backup_codes (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;
CREATE INDEX backup_codes_user ON backup_codes(user_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    auth_time INTEGER NOT NULL,
    amr TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    ip_address TEXT,
    user_agent TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE two_factor_challenges (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER,
    abandoned_reported INTEGER NOT NULL DEFAULT 0,
    ip_address TEXT,
    user_agent TEXT
) STRICT;
CREATE INDEX two_factor_challenges_expires ON two_factor_challenges(expires_at);

CREATE TABLE trusted_devices (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    fingerprint_hash BLOB NOT NULL,
    device_name TEXT NOT NULL,
    device_type TEXT NOT NULL,
    browser_info TEXT,
    ip_address TEXT,
    location TEXT,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX trusted_devices_user ON trusted_devices(user_id);
CREATE INDEX trusted_devices_expires ON trusted_devices(expires_at);

CREATE TABLE security_events (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    details TEXT NOT NULL
) STRICT;
CREATE INDEX security_events_user_time ON security_events(user_id, occurred_at, seq);
CREATE INDEX security_events_time ON security_events(occurred_at);

CREATE TABLE ip_throttles (
    ip TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
) STRICT;
