-- Security notifications: the channels events are sent on, the transactional outbox, and
-- the devices each account has signed in from. Kept in lockstep with migrations/sqlite.

-- The notification channels in force (webhook endpoints, and `email` when SMTP is set up),
-- written from the configuration at start-up, and the event types each subscribes to
-- (`*` for all). An event's transaction reads them to know which messages to write.
CREATE TABLE notification_channels (
    name TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE notification_subscriptions (
    channel TEXT NOT NULL REFERENCES notification_channels(name) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    PRIMARY KEY (channel, event_type)
);

-- One message to deliver on one channel, written in the transaction of the event it
-- tells of. `status` is pending, delivered or dead; a pending row is claimed by setting
-- `lease_until` and `claim_id`, and only that claim may record the attempt's outcome.
CREATE TABLE outbox (
    id UUID PRIMARY KEY NOT NULL,
    channel TEXT NOT NULL,
    user_id UUID,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    claim_id UUID,
    last_error TEXT,
    finished_at BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_channel ON outbox(channel, created_at);

-- Devices an account has signed in from: a trusted device's id, or the user agent's
-- family and the client's network. A sign-in from one not seen recently is a
-- `new_device_sign_in` event.
CREATE TABLE known_devices (
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_key TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_key)
);
CREATE INDEX known_devices_seen ON known_devices(last_seen_at);
