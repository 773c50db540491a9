-- The admin API's audit log: every call that concerns no single account's event log (a
-- listing, a deletion, an import, a key rotation), naming the key that made it. Kept in
-- lockstep with migrations/postgres.
CREATE TABLE admin_audit (
    -- Insertion order: newest first even within one second.
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    occurred_at INTEGER NOT NULL,
    api_key_id BLOB NOT NULL,
    api_key_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target_user_id BLOB,
    ip_address TEXT,
    user_agent TEXT,
    details TEXT NOT NULL
) STRICT;

CREATE INDEX admin_audit_occurred_at ON admin_audit (occurred_at);
