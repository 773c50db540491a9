//! The `webauthn_ceremonies` table: started passkey ceremonies, so that any instance can
//! finish one that another began, and each is finished at most once.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct CeremonyRow {
    pub user_id: Option<Uuid>,
    pub state: String,
}

pub struct NewCeremony<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub binding: &'a [u8],
    pub user_id: Option<Uuid>,
    pub state: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut Conn, c: &NewCeremony<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO webauthn_ceremonies (id, kind, binding, user_id, state, created_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    run!(conn, e => sqlx::query(sql).bind(c.id).bind(c.kind).bind(c.binding).bind(c.user_id).bind(c.state)
        .bind(c.now).bind(c.expires_at).execute(&mut *e).await.map(|_| ()))
}

/// Takes the ceremony out: its state, if it is of `kind`, bound to `binding` and unexpired.
/// One statement, so exactly one caller gets it, on any instance.
pub async fn consume(
    conn: &mut Conn,
    id: Uuid,
    kind: &str,
    binding: &[u8],
    now: i64,
) -> Result<Option<CeremonyRow>, sqlx::Error> {
    let sql = "DELETE FROM webauthn_ceremonies \
               WHERE id = $1 AND kind = $2 AND binding = $3 AND expires_at > $4 \
               RETURNING user_id, state";
    run!(conn, e => sqlx::query_as::<_, CeremonyRow>(sql).bind(id).bind(kind).bind(binding).bind(now)
        .fetch_optional(&mut *e).await)
}

pub async fn delete_for_user(conn: &mut Conn, user_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM webauthn_ceremonies WHERE user_id = $1";
    run!(conn, e => sqlx::query(sql).bind(user_id).execute(&mut *e).await.map(|_| ()))
}

/// Deletes expired ceremonies.
pub async fn prune(conn: &mut Conn, now: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM webauthn_ceremonies WHERE id IN (SELECT id FROM webauthn_ceremonies \
               WHERE expires_at <= $1 LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(now).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
