//! The `admin_audit` table: admin API calls that belong to no single account's event log.

use sqlx::FromRow;
use uuid::Uuid;

use super::{Conn, run};

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub occurred_at: i64,
    pub api_key_id: Uuid,
    pub api_key_name: String,
    pub action: String,
    pub target_user_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// JSON.
    pub details: String,
}

pub async fn insert(conn: &mut Conn, row: &AuditRow) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO admin_audit (id, occurred_at, api_key_id, api_key_name, action, target_user_id, ip_address, user_agent, details) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    run!(conn, e => sqlx::query(sql).bind(row.id).bind(row.occurred_at).bind(row.api_key_id)
        .bind(&row.api_key_name).bind(&row.action).bind(row.target_user_id).bind(&row.ip_address)
        .bind(&row.user_agent).bind(&row.details)
        .execute(&mut *e).await.map(|_| ()))
}

/// Newest first (in the order they were written).
pub async fn page(conn: &mut Conn, limit: i64, offset: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let sql = "SELECT id, occurred_at, api_key_id, api_key_name, action, target_user_id, ip_address, user_agent, details \
               FROM admin_audit ORDER BY seq DESC LIMIT $1 OFFSET $2";
    run!(conn, e => sqlx::query_as::<_, AuditRow>(sql).bind(limit).bind(offset).fetch_all(&mut *e).await)
}

pub async fn prune(conn: &mut Conn, older_than: i64, batch: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM admin_audit WHERE seq IN (SELECT seq FROM admin_audit WHERE occurred_at < $1 LIMIT $2)";
    run!(conn, e => sqlx::query(sql).bind(older_than).bind(batch).execute(&mut *e).await.map(|r| r.rows_affected()))
}
