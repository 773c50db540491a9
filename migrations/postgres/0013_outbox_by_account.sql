-- Deleting an account deletes the notifications about it (their payloads copy its
-- events): this index finds them without reading the whole outbox. Kept in lockstep with
-- migrations/sqlite.
CREATE INDEX outbox_user ON outbox(user_id);
