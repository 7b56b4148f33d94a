//! `adpctl`, the ADP command line, modelled on `rpk ai`: admin command groups for OAuth
//! providers, secrets and MCP servers, contexts, and development tokens.
//!
//! ```text
//! adpctl context set dev --control-plane http://127.0.0.1:7400 --token-file token
//! adpctl oauth-provider list -o json
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod context;
pub mod output;
pub mod status;
pub mod token;
pub mod user;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "adpctl",
    version,
    about = "Command line for ADP admins and users",
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 authentication/permission, 4 validation, 5 consent required, 6 unavailable, 7 not found, 8 conflict."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Context from the config file (default: the current one)
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Control-plane gRPC URL (overrides the context)
    #[arg(long, global = true, env = "ADP_CONTROL_PLANE_URL")]
    pub control_plane: Option<String>,
    /// Proxy URL (overrides the context)
    #[arg(long, global = true, env = "ADP_PROXY_URL")]
    pub proxy: Option<String>,
    /// File holding your JWT (overrides the context; ADP_TOKEN overrides both)
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Output format
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    pub output: Format,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Named connection settings
    #[command(subcommand)]
    Context(context::ContextCommand),
    /// OAuth providers (admin)
    #[command(subcommand, name = "oauth-provider")]
    OauthProvider(admin::ProviderCommand),
    /// Secrets: client secrets and static keys (admin)
    #[command(subcommand)]
    Secret(admin::SecretCommand),
    /// MCP servers (admin)
    #[command(subcommand)]
    Mcp(admin::McpCommand),
    /// Your own upstream accounts
    #[command(subcommand)]
    Connections(user::ConnectionsCommand),
    /// MCP tools through the proxy's gRPC gateway
    #[command(subcommand)]
    Tool(user::ToolCommand),
    /// Development tokens
    #[command(subcommand)]
    Token(token::TokenCommand),
}

/// Where to connect and with which token, after flags, environment and context.
#[derive(Debug)]
pub struct Target {
    pub control_plane: String,
    pub proxy: String,
    pub token: Option<String>,
}

impl Global {
    pub fn target(&self) -> anyhow::Result<Target> {
        let file = context::ConfigFile::load()?;
        let name = self.context.clone().or(file.current.clone());
        let entry = match &name {
            Some(name) => file.contexts.get(name).cloned().with_context(|| {
                format!("no context named {name:?} (see `adpctl context list`)")
            })?,
            None => context::ContextEntry::default(),
        };
        let token = match std::env::var("ADP_TOKEN") {
            Ok(token) if !token.is_empty() => Some(token),
            _ => match self.token_file.clone().or(entry.token_file) {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read token file {}", path.display()))?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            },
        };
        Ok(Target {
            control_plane: self
                .control_plane
                .clone()
                .or(entry.control_plane)
                .unwrap_or_else(|| "http://127.0.0.1:7400".into()),
            proxy: self
                .proxy
                .clone()
                .or(entry.proxy)
                .unwrap_or_else(|| "http://127.0.0.1:7480".into()),
            token,
        })
    }
}

impl Target {
    pub async fn control_plane(&self) -> anyhow::Result<Channel> {
        connect(&self.control_plane).await
    }

    /// `message` with `authorization: Bearer <token>` when there is a token.
    pub fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .context("the token is not a valid header value")?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

pub(crate) async fn connect(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("bad URL {url:?}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy())
}

/// Runs a command; the error is a gRPC status (printed with its details) or anything else.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Context(command) => context::run(command).map_err(Failure::Other),
        Command::Token(command) => token::run(command).map_err(Failure::Other),
        Command::OauthProvider(command) => admin::providers(&cli.global, command).await,
        Command::Secret(command) => admin::secrets(&cli.global, command).await,
        Command::Mcp(command) => admin::servers(&cli.global, command).await,
        Command::Connections(command) => user::connections(&cli.global, command).await,
        Command::Tool(command) => user::tools(&cli.global, command).await,
    }
}

#[derive(Debug)]
pub enum Failure {
    Status(tonic::Status),
    Other(anyhow::Error),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Failure::Status(status)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Other(error)
    }
}

impl Failure {
    pub fn report(&self) -> u8 {
        match self {
            Failure::Status(status) => {
                eprintln!("{}", status::describe(status));
                status::exit_code(status)
            }
            Failure::Other(error) => {
                eprintln!("error: {error:#}");
                status::exit::FAILURE
            }
        }
    }
}
