//! The `signing_keys` table: the access-token signing keys every instance sharing the
//! database uses, the private halves sealed under the master key.

use sqlx::FromRow;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_x: String,
    pub private_key_enc: Vec<u8>,
    pub created_at: i64,
    /// When it started signing; `None` while it is prepared ahead of use.
    pub activated_at: Option<i64>,
    /// When a newer key took over.
    pub retired_at: Option<i64>,
}

const COLUMNS: &str = "kid, public_x, private_key_enc, created_at, activated_at, retired_at";

/// Every key not retired before `retired_after`, newest first.
pub async fn live(conn: &mut Conn, retired_after: i64) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
         ORDER BY created_at DESC, kid"
    );
    run!(conn, e => sqlx::query_as::<_, SigningKeyRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(retired_after).fetch_all(&mut *e).await)
}

/// Every key, newest first.
pub async fn all(conn: &mut Conn) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid");
    run!(conn, e => sqlx::query_as::<_, SigningKeyRow>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(&mut *e).await)
}

pub async fn find(conn: &mut Conn, kid: &str) -> Result<Option<SigningKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM signing_keys WHERE kid = $1");
    run!(conn, e => sqlx::query_as::<_, SigningKeyRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(kid).fetch_optional(&mut *e).await)
}

/// The key prepared ahead of use, if any.
pub async fn prepared(conn: &mut Conn) -> Result<Option<SigningKeyRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE activated_at IS NULL ORDER BY created_at, kid LIMIT 1"
    );
    run!(conn, e => sqlx::query_as::<_, SigningKeyRow>(sqlx::AssertSqlSafe(sql.as_str())).fetch_optional(&mut *e).await)
}

/// Adds a key (prepared: not yet signing). False when its id is known already.
pub async fn insert(
    conn: &mut Conn,
    kid: &str,
    public_x: &str,
    private_key_enc: &[u8],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO signing_keys (kid, public_x, private_key_enc, created_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (kid) DO NOTHING";
    run!(conn, e => sqlx::query(sql).bind(kid).bind(public_x).bind(private_key_enc).bind(now)
        .execute(&mut *e).await.map(|r| r.rows_affected() == 1))
}

/// Makes `kid` the current key: every other active key is retired at `now`, and `kid`
/// activated (if it was prepared). Returns the ids retired.
pub async fn activate(conn: &mut Conn, kid: &str, now: i64) -> Result<Vec<String>, sqlx::Error> {
    let retire = "UPDATE signing_keys SET retired_at = $2 \
                  WHERE activated_at IS NOT NULL AND retired_at IS NULL AND kid <> $1 RETURNING kid";
    let activate =
        "UPDATE signing_keys SET activated_at = $2 WHERE kid = $1 AND activated_at IS NULL";
    run!(conn, e => {
        let retired = sqlx::query_scalar::<_, String>(retire).bind(kid).bind(now).fetch_all(&mut *e).await?;
        sqlx::query(activate).bind(kid).bind(now).execute(&mut *e).await?;
        Ok(retired)
    })
}
