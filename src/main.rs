//! The `tessera` binary: `serve` (the default) or `migrate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera::config::Config;
use tessera::startup::Application;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Self-hosted authentication server with two-factor authentication"
)]
struct Cli {
    /// A TOML configuration file; `TESSERA_*` environment variables override it.
    #[arg(long, env = "TESSERA_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Operator commands on the configured database.
    Admin {
        /// Who runs the command, recorded in the security events it writes; defaults to
        /// the OS user ($USER, else $LOGNAME).
        #[arg(long, global = true)]
        operator: Option<String>,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// List users, optionally only those whose email or user name contains TEXT.
    ListUsers {
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one user with their 2FA and lock status.
    ShowUser(UserArgs),
    /// Turn 2FA off for a user: delete secret, backup codes and devices; revoke sessions.
    #[command(name = "reset-2fa")]
    Reset2fa(UserArgs),
    /// Clear a user's password throttle, second-factor lock and TOTP suspension.
    Unlock(UserArgs),
    /// Revoke every session of a user.
    RevokeSessions(UserArgs),
    /// Import TOTP authenticators from another system: a file of JSON lines or CSV, one
    /// account per line with an otpauth:// URI or a base32 secret (see the README). Each
    /// line is imported whole or refused; the report names every line. Exits 2 when any
    /// line was refused.
    ImportTotp {
        /// The file to read.
        file: PathBuf,
        /// The file's format; by default `.csv` files are CSV and others JSON lines.
        #[arg(long, value_enum)]
        format: Option<tessera::admin::ImportFormat>,
        /// Check every line as for real, store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-learn the clock drift of a user's authenticator from two consecutive codes.
    ResyncTotp {
        /// An id, email or user name.
        user: String,
        /// A code from the authenticator.
        code1: String,
        /// The code that follows it.
        code2: String,
    },
    /// Access-token signing keys: rotate them without signing anyone out, or list them.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Webhook endpoints and the notification outbox.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Create a user (works with registration closed). The password is asked for without
    /// echo on a terminal, else read as one line from stdin.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        user_name: Option<String>,
        #[arg(long)]
        phone_number: Option<String>,
    },
    /// Keys for the admin HTTP API (`/admin/v1`).
    #[command(name = "api-keys", subcommand)]
    ApiKeys(ApiKeyCommand),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Make a key and print it, once (only its hash is stored).
    Create {
        /// A name to recognise the key by (the security events of its calls name it).
        #[arg(long)]
        name: String,
        /// What the key may do: `users:read`, `users:write` or `admin` (both); repeat the
        /// flag or separate with commas. Default: `admin`.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List every key, live or revoked (never the keys themselves).
    List,
    /// Revoke a key by its id, or every live key with that name.
    Revoke {
        /// The key's id or name.
        key: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new current signing key for every instance sharing the database (the
    /// prepared key, if there is one). Tokens signed before stay valid until they expire.
    Rotate {
        /// Only prepare the next key: published in the JWKS now, signing from the next
        /// rotation (so verifiers that cache the JWKS know it before it is used).
        #[arg(long)]
        prepare: bool,
    },
    /// List the signing keys and their state.
    List,
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// The notification channels in force, with their messages counted by status.
    List,
    /// The newest messages (webhook deliveries and emails), of one channel or all.
    Deliveries {
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Make a message (delivered, dead or waiting) due now, with its attempts counted afresh.
    Replay { id: uuid::Uuid },
    /// Send a signed `test` message to an endpoint now and show the answer.
    Test { endpoint: String },
}

/// Which user a command acts on: exactly one of a bare argument, `--id`, `--email` or
/// `--user-name`.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct UserArgs {
    /// An id, email or user name; refused if it names more than one account.
    user: Option<String>,
    /// The user's id.
    #[arg(long)]
    id: Option<uuid::Uuid>,
    /// The user's email.
    #[arg(long)]
    email: Option<String>,
    /// The user's user name (any case).
    #[arg(long)]
    user_name: Option<String>,
}

impl UserArgs {
    fn into_ref(self) -> tessera::admin::UserRef {
        use tessera::admin::UserRef;
        match (self.id, self.email, self.user_name, self.user) {
            (Some(id), ..) => UserRef::Id(id),
            (_, Some(email), ..) => UserRef::Email(email),
            (_, _, Some(name), _) => UserRef::UserName(name),
            (_, _, _, user) => UserRef::Any(user.unwrap_or_default()),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    tessera::telemetry::init(&config.log_format, &config.log_level);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            let scheme = if let Some(tls) = app.tls() {
                tokio::spawn(tessera::http::tls::reload_on_sighup(tls));
                "https"
            } else {
                "http"
            };
            println!("Tessera listening on {scheme}://{}", app.local_addr());
            if let Some(metrics) = app.metrics_addr() {
                println!("Metrics on http://{metrics}/metrics");
            }
            if let Some(admin) = app.admin_addr() {
                println!("Admin API on http://{admin}/admin/v1");
            }
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Admin { operator, command } => {
            std::process::exit(run_admin(config, operator, command).await)
        }
        Command::Migrate => {
            let db = tessera::db::Db::connect(
                &config.database_url(),
                1,
                std::time::Duration::from_secs(30),
            )
            .await?;
            db.migrate().await?;
            println!("Database is up to date.");
            Ok(())
        }
    }
}

/// Runs one admin command; returns the process exit code (0 ok, 1 failed, 2 done in part).
async fn run_admin(config: Config, operator: Option<String>, command: AdminCommand) -> i32 {
    use tessera::admin;
    let operator = match admin::Operator::from_flag_or_env(operator) {
        Ok(operator) => operator,
        Err(err) => {
            eprintln!("error: {err}");
            return 1;
        }
    };
    let state = match tessera::startup::build_state(
        config,
        std::sync::Arc::new(tessera::clock::SystemClock),
    )
    .await
    {
        Ok(state) => state,
        Err(err) => {
            eprintln!("error: {err:#}");
            return 1;
        }
    };
    let result = match command {
        AdminCommand::ListUsers { search, limit } => {
            admin::list_users(&state, search.as_deref(), limit).await
        }
        AdminCommand::ShowUser(user) => admin::show_user(&state, &user.into_ref()).await,
        AdminCommand::Reset2fa(user) => {
            admin::reset_two_factor(&state, &user.into_ref(), &operator).await
        }
        AdminCommand::Unlock(user) => admin::unlock(&state, &user.into_ref(), &operator).await,
        AdminCommand::RevokeSessions(user) => {
            admin::revoke_sessions(&state, &user.into_ref(), &operator).await
        }
        AdminCommand::ApiKeys(ApiKeyCommand::Create { name, scopes }) => {
            admin::create_api_key(&state, &name, &scopes).await
        }
        AdminCommand::ApiKeys(ApiKeyCommand::List) => admin::list_api_keys(&state).await,
        AdminCommand::ApiKeys(ApiKeyCommand::Revoke { key }) => {
            admin::revoke_api_key(&state, &key).await
        }
        AdminCommand::Keys {
            command: KeysCommand::Rotate { prepare },
        } => admin::rotate_keys(&state, prepare).await,
        AdminCommand::Keys {
            command: KeysCommand::List,
        } => admin::list_keys(&state).await,
        AdminCommand::ImportTotp {
            file,
            format,
            dry_run,
        } => admin::import_totp(&state, &file, format, dry_run, &operator).await,
        AdminCommand::ResyncTotp { user, code1, code2 } => {
            admin::resync_totp(
                &state,
                &admin::UserRef::Any(user),
                &code1,
                &code2,
                &operator,
            )
            .await
        }
        AdminCommand::Webhooks(command) => match command {
            WebhooksCommand::List => admin::webhooks_list(&state).await,
            WebhooksCommand::Deliveries { endpoint, limit } => {
                admin::webhooks_deliveries(&state, endpoint.as_deref(), limit).await
            }
            WebhooksCommand::Replay { id } => admin::webhooks_replay(&state, id).await,
            WebhooksCommand::Test { endpoint } => admin::webhooks_test(&state, &endpoint).await,
        },
        AdminCommand::CreateUser {
            email,
            user_name,
            phone_number,
        } => {
            let password = match read_new_password(&email) {
                Ok(password) => password,
                Err(err) => {
                    eprintln!("error: {err}");
                    return 1;
                }
            };
            admin::create_user(
                &state,
                &email,
                user_name.as_deref(),
                phone_number.as_deref(),
                password,
                &operator,
            )
            .await
        }
    };
    state.db.close().await;
    match result {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(admin::AdminError::Partial(text)) => {
            print!("{text}");
            2
        }
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    }
}

/// The new user's password: on a terminal, asked for twice with echo off (so it is not
/// shown on screen or kept in the scrollback); otherwise one line from stdin, for scripts.
fn read_new_password(email: &str) -> Result<secrecy::SecretString, String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = zeroize::Zeroizing::new(
            rpassword::prompt_password(format!("Password for {email}: "))
                .map_err(|e| format!("could not read the password: {e}"))?,
        );
        let again = zeroize::Zeroizing::new(
            rpassword::prompt_password("Again: ")
                .map_err(|e| format!("could not read the password: {e}"))?,
        );
        if *first != *again {
            return Err("the passwords do not match".into());
        }
        return Ok(secrecy::SecretString::from(first.to_string()));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|_| "could not read the password from stdin".to_owned())?;
    Ok(secrecy::SecretString::from(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
