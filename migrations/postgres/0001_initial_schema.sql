-- Accounts, second factors, sessions, trusted devices, security events, throttles.
-- Times are unix seconds. Booleans are BIGINT 0/1. Kept in lockstep with migrations/postgres.

CREATE TABLE users (
    id UUID PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    phone_number TEXT,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT,
    last_login_ip TEXT,
    two_factor_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    two_factor_enabled_at BIGINT,
    backup_codes_generated_at BIGINT,
    pw_failures BIGINT NOT NULL DEFAULT 0,
    pw_window_start BIGINT NOT NULL DEFAULT 0,
    pw_blocked_until BIGINT NOT NULL DEFAULT 0,
    sf_attempts BIGINT NOT NULL DEFAULT 0,
    sf_failures BIGINT NOT NULL DEFAULT 0,
    sf_lockouts BIGINT NOT NULL DEFAULT 0,
    sf_locked_until BIGINT NOT NULL DEFAULT 0,
    totp_suspended BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE totp_credentials (
    user_id UUID PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_enc BYTEA,
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT -1,
    pending_secret_enc BYTEA,
    pending_expires_at BIGINT
);

CREATE TABLE backup_codes (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX backup_codes_user ON backup_codes(user_id);

CREATE TABLE sessions (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    ip_address TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    session_id UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

CREATE TABLE two_factor_challenges (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT,
    abandoned_reported BOOLEAN NOT NULL DEFAULT FALSE,
    ip_address TEXT,
    user_agent TEXT
);
CREATE INDEX two_factor_challenges_expires ON two_factor_challenges(expires_at);

CREATE TABLE trusted_devices (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    fingerprint_hash BYTEA NOT NULL,
    device_name TEXT NOT NULL,
    device_type TEXT NOT NULL,
    browser_info TEXT,
    ip_address TEXT,
    location TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX trusted_devices_user ON trusted_devices(user_id);
CREATE INDEX trusted_devices_expires ON trusted_devices(expires_at);

CREATE TABLE security_events (
    id UUID PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    details TEXT NOT NULL
);
CREATE INDEX security_events_user_time ON security_events(user_id, occurred_at, seq);
CREATE INDEX security_events_time ON security_events(occurred_at);

CREATE TABLE ip_throttles (
    ip TEXT PRIMARY KEY NOT NULL,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);
