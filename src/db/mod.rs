//! The database: SQLite (embedded, the default) or PostgreSQL (shared by many instances).
//!
//! Every query is written once. [`run!`] expands a query body for both backends, so the
//! compiler checks the SQL's Rust side against each driver. The SQL text itself is the
//! dialect both accept: `$N` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT unix seconds.
//!
//! Queries take a [`Conn`]: a pooled read connection ([`Db::read`]), or a write
//! transaction ([`Db::begin`]) in which a use case does all of its writes, and the reads
//! those writes depend on.
//!
//! On SQLite, writes queue in the process instead of sleeping in SQLite's busy handler:
//! write transactions run on a pool of exactly one connection, which hands itself to the
//! waiting writers in arrival order (the pool's semaphore is fair), so a writer starts the
//! moment the previous one commits. Reads run in parallel on their own pool of read-only
//! connections (WAL mode lets them read while the writer writes). `busy_timeout` stays only
//! as a guard against another process (the admin CLI) writing the same file.
//!
//! Two rules keep the pools from waiting on each other, and both backends follow them:
//! a write transaction never acquires a second connection (it reads through itself), and
//! no code holds a read connection while it waits for a write transaction. Otherwise a
//! writer could wait for a connection held by a task that waits for the writer.

pub mod admin_audit;
pub mod admin_keys;
pub mod backup_codes;
pub mod ceremonies;
pub mod challenges;
pub mod devices;
pub mod events;
pub mod files;
pub mod key_fingerprints;
pub mod known_devices;
pub mod outbox;
pub mod passkeys;
pub mod sessions;
pub mod signing_keys;
pub mod throttles;
pub mod totp;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::error::AppError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub enum Db {
    /// `read` holds read-only connections; `write` exactly one, the in-process writer queue.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// A connection a query runs on.
pub enum Conn {
    SqlitePooled(PoolConnection<Sqlite>),
    SqliteTx(Transaction<'static, Sqlite>),
    PostgresPooled(PoolConnection<Postgres>),
    PostgresTx(Transaction<'static, Postgres>),
}

/// The driver connection under a [`Conn`], which is what [`run!`] matches on.
pub enum Backend<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Conn {
    pub fn backend(&mut self) -> Backend<'_> {
        match self {
            Conn::SqlitePooled(c) => Backend::Sqlite(c),
            Conn::SqliteTx(t) => Backend::Sqlite(t),
            Conn::PostgresPooled(c) => Backend::Postgres(c),
            Conn::PostgresTx(t) => Backend::Postgres(t),
        }
    }

    /// Commits a write transaction; a pooled connection has nothing to commit.
    pub async fn commit(self) -> Result<(), AppError> {
        match self {
            Conn::SqliteTx(t) => t.commit().await?,
            Conn::PostgresTx(t) => t.commit().await?,
            Conn::SqlitePooled(_) | Conn::PostgresPooled(_) => {}
        }
        Ok(())
    }
}

/// Runs `$body` with `$e` bound to the backend's `&mut Connection`, once per backend.
/// Write `&mut *$e` as the executor so the body can run several statements.
#[macro_export]
macro_rules! run {
    ($conn:expr, $e:ident => $body:expr) => {
        match $conn.backend() {
            $crate::db::Backend::Sqlite($e) => $body,
            $crate::db::Backend::Postgres($e) => $body,
        }
    };
}
pub use run;

impl Db {
    /// Opens the pool for `url` (`sqlite://...` or `postgres://...`).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let file = options.get_filename();
            if !url.contains("mode=memory") && file != std::path::Path::new(":memory:") {
                files::create_owner_only(file)?;
            }
            // Writers wait in the queue for as long as a request may take, not for the
            // short acquire timeout meant for an unreachable server. Every write runs on this
            // one connection, so its page cache (32 MiB instead of SQLite's 2) decides how
            // often a write transaction on a large database waits for a page from the file:
            // with a million accounts it made the second factor half again as fast.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(acquire_timeout.max(Duration::from_secs(30)))
                .connect_with(options.clone().pragma("cache_size", "-32768"))
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(acquire_timeout.max(Duration::from_secs(10)))
                .connect_with(options.create_if_missing(false).read_only(true))
                .await?;
            Ok(Db::Sqlite { read, write })
        } else {
            anyhow::bail!("database_url must start with sqlite: or postgres://")
        }
    }

    /// Applies the embedded migrations that have not run yet. Safe to run from several
    /// instances at once (PostgreSQL takes an advisory lock).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A pooled connection for reads. On SQLite it is read-only: a write through it fails
    /// loudly instead of bypassing the writer queue.
    pub async fn read(&self) -> Result<Conn, AppError> {
        Ok(match self {
            Db::Sqlite { read, .. } => Conn::SqlitePooled(read.acquire().await?),
            Db::Postgres(pool) => Conn::PostgresPooled(pool.acquire().await?),
        })
    }

    /// A write transaction; commit it with [`Conn::commit`], or drop it to roll back. On
    /// SQLite this waits in the writer queue; `BEGIN IMMEDIATE` then takes the file's
    /// write lock at once, so the transaction never has to upgrade a read snapshot.
    pub async fn begin(&self) -> Result<Conn, AppError> {
        Ok(match self {
            Db::Sqlite { write, .. } => Conn::SqliteTx(write.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Conn::PostgresTx(pool.begin().await?),
        })
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        let result = match self {
            Db::Sqlite { read, .. } => sqlx::query("SELECT 1").execute(read).await.map(|_| ()),
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        };
        result.is_ok()
    }

    /// Reachable, and every embedded migration applied (an instance older than the
    /// schema, or a schema older than the instance, is not ready).
    pub async fn is_ready(&self) -> bool {
        let sql = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        let (applied, embedded) = match self {
            Db::Sqlite { read, .. } => (
                sqlx::query_scalar::<_, i64>(sql).fetch_one(read).await,
                &SQLITE_MIGRATIONS,
            ),
            Db::Postgres(pool) => (
                sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
                &POSTGRES_MIGRATIONS,
            ),
        };
        let embedded = embedded.iter().map(|m| m.version).max().unwrap_or(0);
        matches!(applied, Ok(v) if v == embedded)
    }

    /// Connections open and idle, for metrics (on SQLite, the writer included).
    pub fn pool_usage(&self) -> (u32, usize) {
        match self {
            Db::Sqlite { read, write } => (
                read.size() + write.size(),
                read.num_idle() + write.num_idle(),
            ),
            Db::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// Names of the migrations each backend embeds; a test checks they are in lockstep.
    pub fn migration_names() -> (Vec<String>, Vec<String>) {
        let names = |m: &sqlx::migrate::Migrator| {
            m.iter()
                .map(|m| format!("{}_{}", m.version, m.description))
                .collect::<Vec<_>>()
        };
        (names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS))
    }
}

/// Whether a database error is a unique-constraint violation, by error kind (sqlx fills
/// the constraint name on PostgreSQL only, so matching on it would miss SQLite).
/// `$from, $from+1, ...`: one numbered placeholder per value of a list bound one by one
/// (`IN (...)`, a multi-row `VALUES`); both backends read `$n`.
pub(crate) fn placeholders(from: usize, count: usize) -> Vec<String> {
    (from..from + count).map(|n| format!("${n}")).collect()
}

pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two backends' migrations must be the same list, or a deployment that moves
    /// from SQLite to PostgreSQL would silently lack a table.
    #[test]
    fn sqlite_and_postgres_migrations_are_in_lockstep() {
        let (sqlite, postgres) = Db::migration_names();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres);
    }

    /// Every table, index and column exists on both backends with the same name.
    #[test]
    fn both_schemas_name_the_same_tables_and_columns() {
        let shape = |sql: &str| -> Vec<String> {
            sql.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("--") && !l.starts_with(')'))
                .map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    let take = if words[0] == "CREATE" { 4 } else { 1 };
                    words
                        .iter()
                        .take(take)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        };
        for (a, b) in SQLITE_MIGRATIONS.iter().zip(POSTGRES_MIGRATIONS.iter()) {
            assert_eq!(
                shape(a.sql.as_str()),
                shape(b.sql.as_str()),
                "migration {} differs",
                a.version
            );
        }
    }
}
