//! `adp-control-plane [serve|migrate] [flags]`

use clap::{Parser, Subcommand};

use crate::ControlPlane;
use crate::config::{Flags, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "adp-control-plane",
    version,
    about = "ADP control plane: admin API, token vault, config stream"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: Flags,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the gRPC and HTTP listeners (the default)
    Serve(Flags),
    /// Apply database migrations and exit
    Migrate(Flags),
    /// Manage the vault key ring
    #[command(subcommand)]
    Vault(VaultCommand),
}

#[derive(Subcommand, Debug)]
enum VaultCommand {
    /// Add a new primary key to the key ring (old keys are kept)
    Rotate(Flags),
    /// Re-seal every stored secret and token under the primary key
    Rewrap(Flags),
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env = adp_settings::process_env;
    match cli.command {
        None => serve(Settings::resolve(&cli.flags, env()?)?).await,
        Some(Command::Serve(flags)) => serve(Settings::resolve(&flags, env()?)?).await,
        Some(Command::Vault(VaultCommand::Rotate(flags))) => {
            let settings = Settings::resolve(&flags, env()?)?;
            crate::telemetry::init(settings.log_format);
            crate::vault_cmd::rotate(&settings)
        }
        Some(Command::Vault(VaultCommand::Rewrap(flags))) => {
            let settings = Settings::resolve(&flags, env()?)?;
            crate::telemetry::init(settings.log_format);
            let report = crate::vault_cmd::rewrap(&settings).await?;
            println!(
                "re-sealed {} secrets and {} connections; {} already current, {} changed meanwhile (run again)",
                report.secrets, report.connections, report.already_current, report.skipped
            );
            Ok(())
        }
        Some(Command::Migrate(flags)) => {
            let settings = Settings::resolve(&flags, env()?)?;
            crate::telemetry::init(settings.log_format);
            if settings.database_url.starts_with("sqlite:") {
                std::fs::create_dir_all(&settings.data_dir)?;
            }
            let store = adp_store::Store::connect(&settings.database_url).await?;
            store.migrate().await?;
            tracing::info!(backend = ?store.backend(), "migrations applied");
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format);
    ControlPlane::start(settings)
        .await?
        .run_until_signal()
        .await
}
