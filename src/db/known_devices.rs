//! The `known_devices` table: the devices each account has signed in from, and when.

use uuid::Uuid;

use super::{Conn, run};

/// What the account knew of a sign-in's devices before [`seen`] noted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    /// When each of the keys was last seen (`None`: never), in no particular order.
    pub last_seen: Vec<Option<i64>>,
    /// Whether the account has signed in from a device other than these keys.
    pub other_devices: bool,
}

/// Notes that `user_id` signed in from each of `keys` (distinct) at `now`, and tells what
/// was known of them before, in one statement: the upsert keeps the last sighting it
/// replaces in `previous_seen_at` and returns it, and the check for other devices leaves
/// out the keys being written, so it reads the same whichever of this statement's rows
/// it sees.
pub async fn seen(
    conn: &mut Conn,
    user_id: Uuid,
    keys: &[String],
    now: i64,
) -> Result<Before, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Before {
            last_seen: Vec::new(),
            other_devices: false,
        });
    }
    let placeholders = super::placeholders(3, keys.len());
    let values: Vec<String> = placeholders
        .iter()
        .map(|key| format!("($1, {key}, $2, $2)"))
        .collect();
    let sql = format!(
        "INSERT INTO known_devices (user_id, device_key, first_seen_at, last_seen_at) VALUES {} \
         ON CONFLICT (user_id, device_key) DO UPDATE SET \
           previous_seen_at = known_devices.last_seen_at, last_seen_at = excluded.last_seen_at \
         RETURNING previous_seen_at, EXISTS (SELECT 1 FROM known_devices o \
           WHERE o.user_id = $1 AND o.device_key NOT IN ({})) AS other_devices",
        values.join(", "),
        placeholders.join(", ")
    );
    let rows: Vec<(Option<i64>, bool)> = run!(conn, e => {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(user_id).bind(now);
        for key in keys {
            query = query.bind(key);
        }
        query.fetch_all(&mut *e).await
    })?;
    Ok(Before {
        other_devices: rows.iter().any(|(_, others)| *others),
        last_seen: rows.into_iter().map(|(last, _)| last).collect(),
    })
}

/// Forgets devices not seen since `older_than`, a batch at a time.
pub async fn prune(conn: &mut Conn, older_than: i64, batch: i64) -> Result<u64, sqlx::Error> {
    // An account's most recent device stays, however old: without any, the account's next
    // sign-in would count as its first and report nothing, exactly when a long-unused
    // account is signed into from somewhere new.
    let sql = "DELETE FROM known_devices WHERE (user_id, device_key) IN \
               (SELECT k.user_id, k.device_key FROM known_devices k WHERE k.last_seen_at < $1 \
                  AND EXISTS (SELECT 1 FROM known_devices n WHERE n.user_id = k.user_id \
                              AND n.last_seen_at > k.last_seen_at) \
                LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(older_than).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
