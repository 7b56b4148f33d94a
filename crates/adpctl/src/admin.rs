//! Admin command groups: `oauth-provider`, `secret`, `mcp`.

mod catalog;
mod providers;
mod secrets;
mod servers;

use clap::Args;

pub use providers::{Grant, ProviderArgs, ProviderCommand, TokenAuthMethod, providers};
pub use secrets::{SecretArgs, SecretCommand, secrets};
pub use servers::{ManagedArg, McpArgs, McpCommand, TransportArg, servers};

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// Only names containing this (case-insensitive)
    #[arg(long)]
    pub name_contains: Option<String>,
    /// e.g. `name desc`, `update_time`
    #[arg(long)]
    pub order_by: Option<String>,
}

fn mask(paths: &[String]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.to_vec(),
    })
}
