//! Seeding: users, sessions and second factors written straight into the database.

use super::*;

/// The password of every seeded account.
pub(crate) const SEEDED_PASSWORD: &str = "seeded-account-password";

/// The TOTP secret of seeded user `index`, derivable on both sides without storing it.
pub(crate) fn seeded_secret(index: usize) -> [u8; 20] {
    let digest = Sha256::digest(format!("tessera-bench-secret:{index}").as_bytes());
    let mut secret = [0u8; 20];
    secret.copy_from_slice(&digest[..20]);
    secret
}

pub(crate) fn seeded_email(index: usize) -> String {
    format!("user{index}@bench.example")
}

/// One Argon2id hash at deliberately low parameters (8 KiB, t=1) shared by every seeded
/// account, so seeding a million accounts takes seconds. The login scenario uses accounts
/// registered through the API at the default parameters instead.
pub(crate) fn low_cost_hash() -> anyhow::Result<String> {
    let params = Params::new(8, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let salt = SaltString::encode_b64(b"tessera-bench-salt").map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(SEEDED_PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(hash.to_string())
}

/// Seeds accounts straight into the database, in bulk: every account has TOTP two-factor
/// authentication on, its secret sealed under the server's master key exactly as enrolment
/// seals it.
pub(crate) struct Seeder {
    pub(crate) state: AppState,
    pub(crate) database_url: String,
    pub(crate) hash: String,
    /// Ids of the seeded users, by index.
    pub(crate) ids: Vec<Uuid>,
}

pub(crate) const BATCH: usize = 1_000;

impl Seeder {
    pub(crate) async fn new(config: Config) -> anyhow::Result<Self> {
        let database_url = config.database_url();
        let state =
            tessera::startup::build_state(config, Arc::new(tessera::clock::SystemClock)).await?;
        Ok(Self {
            state,
            database_url,
            hash: low_cost_hash()?,
            ids: Vec::new(),
        })
    }

    /// Adds users until there are `total`; returns the seconds it took.
    pub(crate) async fn grow_to(&mut self, total: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        let from = self.ids.len();
        if total <= from {
            return Ok(0.0);
        }
        let now = unix_now();
        let mut rows: Vec<(Uuid, String, Vec<u8>)> = Vec::with_capacity(BATCH);
        let mut chunk_start = from;
        // Commit every 100,000 users so no single transaction (or WAL) grows huge.
        while chunk_start < total {
            let chunk_end = (chunk_start + 100_000).min(total);
            let mut batches = Vec::new();
            for index in chunk_start..chunk_end {
                let id = Uuid::new_v4();
                self.ids.push(id);
                let sealed = tessera::crypto::seal(
                    &self.state.keys.master,
                    &totp_aad(id),
                    &seeded_secret(index),
                )?;
                rows.push((id, seeded_email(index), sealed));
                if rows.len() == BATCH {
                    batches.push(std::mem::take(&mut rows));
                }
            }
            if !rows.is_empty() {
                batches.push(std::mem::take(&mut rows));
            }
            self.insert_users(&batches, now).await?;
            chunk_start = chunk_end;
            eprint!(
                "\r  seeded {chunk_end} users ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        eprintln!();
        Ok(started.elapsed().as_secs_f64())
    }

    pub(crate) async fn insert_users(
        &self,
        batches: &[Vec<(Uuid, String, Vec<u8>)>],
        now: i64,
    ) -> anyhow::Result<()> {
        let users_sql = "INSERT INTO users (id, email, user_name, user_name_key, password_hash, created_at, \
                         two_factor_enabled, two_factor_enabled_at, backup_codes_generated_at) ";
        let totp_sql =
            "INSERT INTO totp_credentials (user_id, secret_enc, confirmed_at, last_step) ";
        match &self.state.db {
            Db::Sqlite { .. } => {
                // A connection of its own, with a big page cache, for the bulk load only.
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await?;
                sqlx::query("PRAGMA cache_size = -262144")
                    .execute(&mut conn)
                    .await?;
                sqlx::query("PRAGMA busy_timeout = 10000")
                    .execute(&mut conn)
                    .await?;
                let mut tx = conn.begin().await?;
                for batch in batches {
                    let mut users = QueryBuilder::<sqlx::Sqlite>::new(users_sql);
                    users.push_values(batch, |mut row, (id, email, _)| {
                        row.push_bind(*id)
                            .push_bind(email.clone())
                            .push_bind(email.clone())
                            .push_bind(email.clone())
                            .push_bind(self.hash.clone())
                            .push_bind(now)
                            .push_bind(true)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    users.build().execute(&mut *tx).await?;
                    let mut totp = QueryBuilder::<sqlx::Sqlite>::new(totp_sql);
                    totp.push_values(batch, |mut row, (id, _, sealed)| {
                        row.push_bind(*id)
                            .push_bind(sealed.clone())
                            .push_bind(now)
                            .push_bind(-1i64);
                    });
                    totp.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                conn.close().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for group in batches.chunks(10) {
                    let ids: Vec<Uuid> = group.iter().flatten().map(|(id, _, _)| *id).collect();
                    let emails: Vec<String> = group
                        .iter()
                        .flatten()
                        .map(|(_, email, _)| email.clone())
                        .collect();
                    let sealed: Vec<Vec<u8>> =
                        group.iter().flatten().map(|(_, _, s)| s.clone()).collect();
                    sqlx::query(
                        "INSERT INTO users (id, email, user_name, user_name_key, password_hash, created_at, \
                         two_factor_enabled, two_factor_enabled_at, backup_codes_generated_at) \
                         SELECT id, email, email, email, $3, $4, TRUE, $4, $4 FROM UNNEST($1::uuid[], $2::text[]) AS t(id, email)",
                    )
                    .bind(&ids)
                    .bind(&emails)
                    .bind(&self.hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO totp_credentials (user_id, secret_enc, confirmed_at, last_step) \
                         SELECT id, secret, $3, -1 FROM UNNEST($1::uuid[], $2::bytea[]) AS t(id, secret)",
                    )
                    .bind(&ids)
                    .bind(&sealed)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Updates the planner's statistics after a bulk load, as an operator would.
    pub(crate) async fn analyze(&self) -> anyhow::Result<()> {
        match &self.state.db {
            Db::Sqlite { write: pool, .. } => {
                sqlx::query("ANALYZE").execute(pool).await.map(|_| ())?
            }
            Db::Postgres(pool) => sqlx::query("ANALYZE").execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    /// Ten backup codes for each of `users`, as enrolment stores them.
    pub(crate) async fn backup_codes(&self, users: &[usize]) -> anyhow::Result<()> {
        let now = unix_now();
        let mut tx = self.state.db.begin().await?;
        for &index in users {
            let hashes: Vec<Vec<u8>> = (0..tessera::domain::backup_code::COUNT)
                .map(|_| {
                    let code = tessera::domain::backup_code::generate();
                    let normalized =
                        tessera::domain::backup_code::normalize(&code).expect("valid code");
                    tessera::crypto::keyed_hash(
                        &self.state.keys.pepper,
                        tessera::service::second_factor::BACKUP_CODE_PURPOSE,
                        normalized.as_bytes(),
                    )
                })
                .collect();
            tessera::db::backup_codes::replace_all(&mut tx, self.ids[index], &hashes, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A signed-in session (after password and second factor) for each of `users`, started
    /// by the server's own code: returns (access token, refresh token) pairs.
    pub(crate) async fn sessions(&self, users: &[usize]) -> anyhow::Result<Vec<(String, String)>> {
        let ctx = RequestContext {
            ip: "127.0.0.1".into(),
            user_agent: Some("tessera-bench".into()),
        };
        let amr = || vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()];
        let mut tx: Conn = self.state.db.begin().await?;
        let mut started = Vec::with_capacity(users.len());
        for &index in users {
            let session = tessera::service::sessions::start(
                &self.state,
                &mut tx,
                self.ids[index],
                amr(),
                &ctx,
            )
            .await?;
            started.push((index, session));
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(users.len());
        for (index, session) in started {
            let issued = session.issue(&self.state, self.ids[index])?;
            out.push((issued.access_token, issued.refresh_token));
        }
        Ok(out)
    }

    /// A pending second factor (what a right password answers for a 2FA account) for each
    /// of `users`, `offsets.len()` times each: returns them in the order to verify them.
    pub(crate) async fn pending(
        &self,
        users: &[usize],
        offsets: &[i64],
    ) -> anyhow::Result<Vec<Pending>> {
        let now = unix_now();
        let ttl = self.state.config.two_factor_token_ttl_secs;
        let mut tx = self.state.db.begin().await?;
        let mut out = Vec::with_capacity(users.len() * offsets.len());
        for &step_offset in offsets {
            for &index in users {
                let token = tessera::crypto::random_token();
                tessera::db::challenges::insert(
                    &mut tx,
                    &tessera::db::challenges::NewChallenge {
                        hash: &tessera::crypto::token_hash(&token),
                        user_id: self.ids[index],
                        now,
                        expires_at: now + ttl,
                        ip: "127.0.0.1",
                        user_agent: Some("tessera-bench"),
                    },
                )
                .await?;
                out.push(Pending {
                    secret: seeded_secret(index),
                    token,
                    step_offset,
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// `count` distinct user indexes below `below`, spread over the whole range.
pub(crate) fn sample_users(below: usize, count: usize) -> Vec<usize> {
    let count = count.min(below);
    rand::seq::index::sample(&mut rand::rng(), below, count).into_vec()
}
