-- Which channels take which events is configuration: every instance holds it in memory,
-- built from its configuration at start-up, so an event no channel takes costs no
-- statement. The tables that copied it into the database go. Kept in lockstep with
-- migrations/postgres.
DROP TABLE notification_subscriptions;
DROP TABLE notification_channels;
