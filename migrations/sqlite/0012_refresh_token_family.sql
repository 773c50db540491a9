-- The refresh-token family of each session: a random value that every refresh token of
-- the session starts with, so a retired token is still known as the session's once its row
-- is gone. A refresh keeps only the token it retired (for the reuse grace) beside the live
-- one, instead of every token the session ever had. NULL for sessions from before this
-- migration: their next refresh gives them one. Their tokens have no family in front, so
-- only their rows recognise them: those rows are marked and kept until the session ends.
-- Kept in lockstep with migrations/postgres.
ALTER TABLE sessions ADD COLUMN refresh_family BLOB;
CREATE UNIQUE INDEX sessions_refresh_family ON sessions(refresh_family);
ALTER TABLE refresh_tokens ADD COLUMN before_families INTEGER NOT NULL DEFAULT 0;
UPDATE refresh_tokens SET before_families = 1;
