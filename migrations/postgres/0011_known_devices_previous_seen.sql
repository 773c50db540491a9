-- When each known device was seen before its latest sign-in (NULL until it signs in a
-- second time): a sign-in notes its devices with one upsert that returns it, instead of
-- reading each device before writing it. Kept in lockstep with migrations/sqlite.
ALTER TABLE known_devices ADD COLUMN previous_seen_at BIGINT;
