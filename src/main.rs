//! The `tessera` binary: `serve` (the default) or `migrate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera::config::Config;
use tessera::startup::Application;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Self-hosted authentication server with two-factor authentication")]
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    tessera::telemetry::init(&config.log_format, &config.log_level);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            println!("Tessera listening on http://{}", app.local_addr());
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let db = tessera::db::Db::connect(&config.database_url(), 1, std::time::Duration::from_secs(30)).await?;
            db.migrate().await?;
            println!("Database is up to date.");
            Ok(())
        }
    }
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
