-- A fingerprint of each symmetric key the data depends on (the master key that seals TOTP
-- secrets, the pepper that keys backup-code and device hashes), recorded on first start.
-- A server started with other keys refuses to run. Kept in lockstep with migrations/sqlite.

CREATE TABLE key_fingerprints (
    name TEXT PRIMARY KEY NOT NULL,
    fingerprint TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
