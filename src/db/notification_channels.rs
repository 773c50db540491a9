//! The `notification_channels` and `notification_subscriptions` tables: which channels
//! (webhook endpoints, the email channel) exist and which event types each is sent.

use super::{Conn, run};

pub struct Channel<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: &'a str,
    pub event_types: Vec<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChannelRow {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub updated_at: i64,
}

/// Makes the tables say exactly `channels`: the others are removed with their
/// subscriptions. Idempotent, so instances starting together with the same configuration
/// agree whichever runs last.
pub async fn replace_all(
    conn: &mut Conn,
    channels: &[Channel<'_>],
    now: i64,
) -> Result<(), sqlx::Error> {
    let upsert = "INSERT INTO notification_channels (name, kind, url, updated_at) VALUES ($1, $2, $3, $4) \
                  ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, updated_at = excluded.updated_at";
    let clear = "DELETE FROM notification_subscriptions WHERE channel = $1";
    let subscribe = "INSERT INTO notification_subscriptions (channel, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    run!(conn, e => {
        for channel in channels {
            sqlx::query(upsert).bind(channel.name).bind(channel.kind).bind(channel.url).bind(now)
                .execute(&mut *e).await?;
            sqlx::query(clear).bind(channel.name).execute(&mut *e).await?;
            for event_type in &channel.event_types {
                sqlx::query(subscribe).bind(channel.name).bind(*event_type).execute(&mut *e).await?;
            }
        }
        // Channels the configuration no longer names go, with their subscriptions (their
        // messages stay in the outbox, for the record).
        let kept: Vec<&str> = channels.iter().map(|c| c.name).collect();
        let stale: Vec<String> = sqlx::query_scalar("SELECT name FROM notification_channels")
            .fetch_all(&mut *e).await?
            .into_iter()
            .filter(|name: &String| !kept.contains(&name.as_str()))
            .collect();
        for name in stale {
            sqlx::query(clear).bind(&name).execute(&mut *e).await?;
            sqlx::query("DELETE FROM notification_channels WHERE name = $1").bind(&name)
                .execute(&mut *e).await?;
        }
        Ok(())
    })
}

/// The channels subscribed to `event_type` (directly or with `*`).
pub async fn subscribed(conn: &mut Conn, event_type: &str) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT DISTINCT channel FROM notification_subscriptions WHERE event_type = $1 OR event_type = '*' ORDER BY channel";
    run!(conn, e => sqlx::query_scalar::<_, String>(sql).bind(event_type).fetch_all(&mut *e).await)
}

pub async fn all(conn: &mut Conn) -> Result<Vec<ChannelRow>, sqlx::Error> {
    let sql = "SELECT name, kind, url, updated_at FROM notification_channels ORDER BY name";
    run!(conn, e => sqlx::query_as::<_, ChannelRow>(sql).fetch_all(&mut *e).await)
}
