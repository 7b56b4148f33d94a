//! `adpctl mcp`: register, show, list, change and delete MCP servers, and list the
//! managed catalog.

use adp_api::v1 as pb;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};

use super::{ListArgs, catalog, mask};
use crate::output::{Column, print, to_json};
use crate::{Failure, Global};

const SERVER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ENABLED", "enabled"),
    ("URL", "remote.url"),
    ("MANAGED", "managed.type"),
    ("USER OAUTH PROVIDER", "userOauth.providerName"),
    ("REQUIRED SCOPES", "userOauth.requiredScopes"),
];

#[derive(Subcommand, Debug)]
pub enum McpCommand {
    /// Register an MCP server
    #[command(
        after_help = "Example:\n  adpctl mcp create --name github-issues --url https://mcp.example.com/mcp \\\n    --user-oauth-provider github --user-oauth-scopes repo\n  adpctl mcp create --name tickets --url https://t.example.com/mcp --static-key-ref TICKETS_KEY --token-header X-Api-Key"
    )]
    Create(McpArgs),
    /// Show one server
    #[command(after_help = "Example:\n  adpctl mcp get github-issues -o json")]
    Get { name: String },
    /// List servers
    #[command(after_help = "Example:\n  adpctl mcp list")]
    List(ListArgs),
    /// Change the given fields of a server
    #[command(after_help = "Example:\n  adpctl mcp update --name github-issues --enabled false")]
    Update(McpArgs),
    /// Delete a server
    #[command(after_help = "Example:\n  adpctl mcp delete github-issues")]
    Delete { name: String },
    /// The managed server types this deployment offers
    #[command(after_help = "Example:\n  adpctl mcp catalog")]
    Catalog,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TransportArg {
    StreamableHttp,
    Sse,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ManagedArg {
    Slack,
    Jira,
    Google,
    Sql,
}

#[derive(Args, Debug, Default)]
pub struct McpArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub description: Option<String>,
    /// A self-managed server's URL
    #[arg(long, conflicts_with = "managed_type")]
    pub url: Option<String>,
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// A server from the managed catalog
    #[arg(long, value_enum)]
    pub managed_type: Option<ManagedArg>,
    /// Each user consents with this provider
    #[arg(long, group = "auth")]
    pub user_oauth_provider: Option<String>,
    /// Comma-separated scopes every user must grant
    #[arg(long, value_delimiter = ',')]
    pub user_oauth_scopes: Option<Vec<String>>,
    /// One shared client-credentials identity from this provider
    #[arg(long, group = "auth")]
    pub service_account_oauth_provider: Option<String>,
    /// Comma-separated scopes of the service account
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// A static API key from the secret store
    #[arg(long, group = "auth")]
    pub static_key_ref: Option<String>,
    /// Forward the caller's own credential unchanged
    #[arg(long, group = "auth")]
    pub token_passthrough: bool,
    /// No upstream authentication
    #[arg(long, group = "auth")]
    pub no_auth: bool,
    /// Header carrying the token (default Authorization)
    #[arg(long)]
    pub token_header: Option<String>,
    /// Prepended to the token (default "Bearer "); an explicit empty value sends the bare token
    #[arg(long)]
    pub token_prefix: Option<String>,
    #[arg(long)]
    pub enabled: Option<bool>,
    /// Check everything, write nothing
    #[arg(long)]
    pub validate_only: bool,
}

fn server_from(args: &McpArgs, creating: bool) -> anyhow::Result<(pb::McpServer, Vec<String>)> {
    let mut s = pb::McpServer {
        name: args.name.clone(),
        ..Default::default()
    };
    let mut paths: Vec<String> = Vec::new();
    if let Some(v) = &args.description {
        s.description = v.clone();
        paths.push("description".into());
    }
    match args.enabled {
        Some(v) => {
            s.enabled = v;
            paths.push("enabled".into());
        }
        None if creating => s.enabled = true,
        None => {}
    }
    if args.url.is_some() || args.transport.is_some() {
        s.source = Some(Source::Remote(pb::RemoteMcp {
            url: args.url.clone().unwrap_or_default(),
            transport: match args.transport {
                Some(TransportArg::Sse) => pb::Transport::Sse as i32,
                _ => pb::Transport::StreamableHttp as i32,
            },
        }));
        paths.push("remote".into());
    }
    if let Some(managed) = args.managed_type {
        s.source = Some(Source::Managed(pb::ManagedMcp {
            r#type: match managed {
                ManagedArg::Slack => pb::ManagedType::Slack,
                ManagedArg::Jira => pb::ManagedType::Jira,
                ManagedArg::Google => pb::ManagedType::Google,
                ManagedArg::Sql => pb::ManagedType::Sql,
            } as i32,
        }));
        paths.push("managed".into());
    }
    let injection =
        (args.token_header.is_some() || args.token_prefix.is_some()).then(|| pb::TokenInjection {
            header_name: args.token_header.clone().unwrap_or_default(),
            header_prefix: args.token_prefix.clone(),
        });
    let auth = if let Some(provider) = &args.user_oauth_provider {
        Some(Auth::UserOauth(pb::UserOAuthAuth {
            provider_name: provider.clone(),
            required_scopes: args.user_oauth_scopes.clone().unwrap_or_default(),
            token_injection: injection,
        }))
    } else if let Some(provider) = &args.service_account_oauth_provider {
        Some(Auth::ServiceAccountOauth(pb::ServiceAccountOAuthAuth {
            provider_name: provider.clone(),
            scopes: args.scopes.clone().unwrap_or_default(),
            token_injection: injection,
        }))
    } else if let Some(key_ref) = &args.static_key_ref {
        Some(Auth::StaticKey(pb::StaticKeyAuth {
            key_ref: key_ref.clone(),
            header_name: args.token_header.clone().unwrap_or_default(),
        }))
    } else if args.token_passthrough {
        Some(Auth::TokenPassthrough(pb::TokenPassthroughAuth {}))
    } else if args.no_auth {
        Some(Auth::None(pb::NoAuth {}))
    } else {
        if injection.is_some() {
            bail!("--token-header/--token-prefix need an auth mode (e.g. --user-oauth-provider)");
        }
        None
    };
    if let Some(auth) = auth {
        paths.push(
            match &auth {
                Auth::UserOauth(_) => "user_oauth",
                Auth::ServiceAccountOauth(_) => "service_account_oauth",
                Auth::StaticKey(_) => "static_key",
                Auth::TokenPassthrough(_) => "token_passthrough",
                Auth::None(_) => "none",
            }
            .into(),
        );
        s.auth = Some(auth);
    }
    Ok((s, paths))
}

pub async fn servers(global: &Global, command: McpCommand) -> Result<(), Failure> {
    let target = global.target()?;
    let channel = target.control_plane().await?;
    let mut client = McpServerServiceClient::new(channel.clone());
    let format = global.output;
    let show = |s: Option<pb::McpServer>| -> Result<(), Failure> {
        let items: Vec<_> = s.iter().map(to_json).collect();
        Ok(print(format, &items, SERVER_COLUMNS, true)?)
    };
    match command {
        McpCommand::Create(args) => {
            let (server, _) = server_from(&args, true)?;
            let request = pb::CreateMcpServerRequest {
                mcp_server: Some(server),
                validate_only: args.validate_only,
            };
            let response = client.create_mcp_server(target.request(request)?).await?;
            show(response.into_inner().mcp_server)
        }
        McpCommand::Get { name } => {
            let response = client
                .get_mcp_server(target.request(pb::GetMcpServerRequest { name })?)
                .await?;
            show(response.into_inner().mcp_server)
        }
        McpCommand::List(args) => {
            let mut items = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = pb::ListMcpServersRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    name_contains: args.name_contains.clone().unwrap_or_default(),
                    order_by: args.order_by.clone().unwrap_or_default(),
                };
                let page = client
                    .list_mcp_servers(target.request(request)?)
                    .await?
                    .into_inner();
                items.extend(page.mcp_servers.iter().map(to_json));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Ok(print(format, &items, SERVER_COLUMNS, false)?)
        }
        McpCommand::Update(args) => {
            let (server, paths) = server_from(&args, false)?;
            if paths.is_empty() {
                return Err(anyhow::anyhow!("nothing to change: pass the fields to update").into());
            }
            let request = pb::UpdateMcpServerRequest {
                mcp_server: Some(server),
                update_mask: mask(&paths),
                validate_only: args.validate_only,
            };
            let response = client.update_mcp_server(target.request(request)?).await?;
            show(response.into_inner().mcp_server)
        }
        McpCommand::Delete { name } => {
            let request = pb::DeleteMcpServerRequest {
                name: name.clone(),
                etag: String::new(),
            };
            client.delete_mcp_server(target.request(request)?).await?;
            eprintln!("mcp server {name:?} deleted");
            Ok(())
        }
        McpCommand::Catalog => catalog::list(&target, channel, format).await,
    }
}
