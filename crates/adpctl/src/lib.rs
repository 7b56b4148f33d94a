//! `adpctl`, the ADP command line. Today it mints development tokens; the admin
//! and user command groups build on the same parser.
//!
//! ```text
//! adpctl token mint --secret-file adp-data/dev-jwt-secret --subject alice --permissions '*'
//! ```
#![forbid(unsafe_code)]

pub mod token;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "adpctl",
    version,
    about = "Command line for ADP admins and users"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Development tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Token(command) => token::run(command),
    }
}
