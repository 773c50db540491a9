-- Caps on what one account can add to the security event log (see service::events).
-- Kept in lockstep with migrations/postgres.

-- One row per account and capped event type: the current hour window, how many events of
-- the type it has seen, and the last one recorded, into which those past the cap are counted.
CREATE TABLE event_quotas (
    user_id BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    last_event_id BLOB NOT NULL,
    PRIMARY KEY (user_id, event_type)
) STRICT;
CREATE INDEX event_quotas_window ON event_quotas(window_start);

-- How many more events of the same type this row stands for (past the cap in its hour).
ALTER TABLE security_events ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
