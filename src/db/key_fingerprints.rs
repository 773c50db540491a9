//! The `key_fingerprints` table: which master key and pepper the data was written under.

use super::{Conn, run};

/// Every recorded fingerprint, as `(name, fingerprint)`.
pub async fn all(conn: &mut Conn) -> Result<Vec<(String, String)>, sqlx::Error> {
    let sql = "SELECT name, fingerprint FROM key_fingerprints ORDER BY name";
    run!(conn, e => sqlx::query_as::<_, (String, String)>(sql).fetch_all(&mut *e).await)
}

/// Records `fingerprint` for `name` unless one is recorded already, and returns the one
/// recorded: the first instance to start wins, and every later one is compared with it.
pub async fn record_first(
    conn: &mut Conn,
    name: &str,
    fingerprint: &str,
    now: i64,
) -> Result<String, sqlx::Error> {
    let insert = "INSERT INTO key_fingerprints (name, fingerprint, recorded_at) VALUES ($1, $2, $3) \
                  ON CONFLICT (name) DO NOTHING";
    let select = "SELECT fingerprint FROM key_fingerprints WHERE name = $1";
    run!(conn, e => {
        sqlx::query(insert)
            .bind(name)
            .bind(fingerprint)
            .bind(now)
            .execute(&mut *e)
            .await?;
        sqlx::query_scalar::<_, String>(select)
            .bind(name)
            .fetch_one(&mut *e)
            .await
    })
}
