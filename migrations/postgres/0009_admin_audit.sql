-- The admin API's audit log: every call that concerns no single account's event log (a
-- listing, a deletion, an import, a key rotation), naming the key that made it. Kept in
-- lockstep with migrations/sqlite.
CREATE TABLE admin_audit (
    -- Insertion order: newest first even within one second.
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    occurred_at BIGINT NOT NULL,
    api_key_id UUID NOT NULL,
    api_key_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target_user_id UUID,
    ip_address TEXT,
    user_agent TEXT,
    details TEXT NOT NULL
);

CREATE INDEX admin_audit_occurred_at ON admin_audit (occurred_at);
