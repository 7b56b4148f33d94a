//! Admin command groups: `oauth-provider`, `secret`, `mcp`.

use std::io::Read as _;
use std::path::PathBuf;

use adp_api::v1 as pb;
use adp_api::v1::managed_catalog_service_client::ManagedCatalogServiceClient;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient;
use adp_api::v1::secret_service_client::SecretServiceClient;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::output::{Column, print, to_json};
use crate::{Failure, Global};

const PROVIDER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("DISPLAY NAME", "displayName"),
    ("SCOPES", "scopes"),
    ("GRANTS", "grantTypes"),
    ("ENABLED", "enabled"),
];
const SECRET_COLUMNS: &[Column] = &[("NAME", "name"), ("UPDATED", "updateTime")];
const SERVER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ENABLED", "enabled"),
    ("URL", "remote.url"),
    ("MANAGED", "managed.type"),
    ("USER OAUTH PROVIDER", "userOauth.providerName"),
    ("REQUIRED SCOPES", "userOauth.requiredScopes"),
];
const CATALOG_COLUMNS: &[Column] = &[
    ("TYPE", "type"),
    ("DISPLAY NAME", "displayName"),
    ("USER OAUTH", "supportsUserOauth"),
    ("DEFAULT SCOPES", "defaultScopes"),
];

fn mask(paths: &[String]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.to_vec(),
    })
}

// ───────────────────────────── oauth-provider ─────────────────────────────

#[derive(Subcommand, Debug)]
pub enum ProviderCommand {
    /// Register an OAuth provider
    #[command(
        after_help = "Example:\n  adpctl oauth-provider create --name github --display-name GitHub \\\n    --auth-endpoint https://github.com/login/oauth/authorize \\\n    --token-endpoint https://github.com/login/oauth/access_token \\\n    --client-id Iv1.abc --client-secret-ref GITHUB_CLIENT_SECRET --scopes repo,read:org\n  adpctl oauth-provider create --name corp --from-discovery https://idp.example.com --client-id adp"
    )]
    Create(ProviderArgs),
    /// Show one provider
    #[command(after_help = "Example:\n  adpctl oauth-provider get github -o yaml")]
    Get { name: String },
    /// List providers
    #[command(after_help = "Example:\n  adpctl oauth-provider list --name-contains git")]
    List(ListArgs),
    /// Change the given fields of a provider
    #[command(
        after_help = "Example:\n  adpctl oauth-provider update --name github --scopes repo,read:org,workflow"
    )]
    Update(ProviderArgs),
    /// Delete a provider (refused while MCP servers use it)
    #[command(after_help = "Example:\n  adpctl oauth-provider delete github")]
    Delete { name: String },
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// Only names containing this (case-insensitive)
    #[arg(long)]
    pub name_contains: Option<String>,
    /// e.g. `name desc`, `update_time`
    #[arg(long)]
    pub order_by: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Grant {
    BrowserConsent,
    DeviceCode,
    ClientCredentials,
}

#[derive(Args, Debug, Default)]
pub struct ProviderArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub display_name: Option<String>,
    /// Fill endpoints (and the issuer) from the issuer's RFC 8414 / OpenID metadata
    #[arg(long, value_name = "ISSUER_URL")]
    pub from_discovery: Option<String>,
    #[arg(long)]
    pub auth_endpoint: Option<String>,
    #[arg(long)]
    pub token_endpoint: Option<String>,
    #[arg(long)]
    pub revocation_endpoint: Option<String>,
    #[arg(long)]
    pub device_endpoint: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Name of the secret holding the client secret (see `adpctl secret create`)
    #[arg(long)]
    pub client_secret_ref: Option<String>,
    /// Comma-separated
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// Comma-separated
    #[arg(long, value_delimiter = ',', value_enum)]
    pub grant_types: Option<Vec<Grant>>,
    #[arg(long, value_enum)]
    pub token_auth_method: Option<TokenAuthMethod>,
    #[arg(long)]
    pub pkce: Option<bool>,
    #[arg(long)]
    pub enabled: Option<bool>,
    /// Check everything, write nothing
    #[arg(long)]
    pub validate_only: bool,
}

/// The provider the flags describe, and the update-mask paths they set.
async fn provider_from(
    args: &ProviderArgs,
    creating: bool,
) -> anyhow::Result<(pb::OAuthProvider, Vec<String>)> {
    let mut p = pb::OAuthProvider {
        name: args.name.clone(),
        ..Default::default()
    };
    let mut paths = Vec::new();
    let mut set = |path: &str| paths.push(path.to_owned());
    if let Some(issuer) = &args.from_discovery {
        let metadata = discover(issuer).await?;
        let field = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        if let Some(v) = field("authorization_endpoint") {
            p.authorize_url = v;
            set("authorize_url");
        }
        if let Some(v) = field("token_endpoint") {
            p.token_url = v;
            set("token_url");
        }
        if let Some(v) = field("revocation_endpoint") {
            p.revocation_url = v;
            set("revocation_url");
        }
        if let Some(v) = field("device_authorization_endpoint") {
            p.device_authorization_url = v;
            set("device_authorization_url");
        }
        if let Some(v) = field("issuer") {
            p.issuer = v;
            set("issuer");
        }
    }
    if let Some(v) = &args.display_name {
        p.display_name = v.clone();
        set("display_name");
    }
    if let Some(v) = &args.auth_endpoint {
        p.authorize_url = v.clone();
        set("authorize_url");
    }
    if let Some(v) = &args.token_endpoint {
        p.token_url = v.clone();
        set("token_url");
    }
    if let Some(v) = &args.revocation_endpoint {
        p.revocation_url = v.clone();
        set("revocation_url");
    }
    if let Some(v) = &args.device_endpoint {
        p.device_authorization_url = v.clone();
        set("device_authorization_url");
    }
    if let Some(v) = &args.client_id {
        p.client_id = v.clone();
        set("client_id");
    }
    if let Some(v) = &args.client_secret_ref {
        p.client_secret_ref = v.clone();
        set("client_secret_ref");
    }
    if let Some(v) = &args.scopes {
        p.scopes = v.clone();
        set("scopes");
    }
    if let Some(grants) = &args.grant_types {
        p.grant_types = grants
            .iter()
            .map(|g| match g {
                Grant::BrowserConsent => pb::GrantType::BrowserConsent as i32,
                Grant::DeviceCode => pb::GrantType::DeviceCode as i32,
                Grant::ClientCredentials => pb::GrantType::ClientCredentials as i32,
            })
            .collect();
        set("grant_types");
    }
    if let Some(method) = args.token_auth_method {
        p.token_auth_method = match method {
            TokenAuthMethod::ClientSecretBasic => pb::TokenAuthMethod::ClientSecretBasic,
            TokenAuthMethod::ClientSecretPost => pb::TokenAuthMethod::ClientSecretPost,
            TokenAuthMethod::None => pb::TokenAuthMethod::None,
        } as i32;
        set("token_auth_method");
    }
    if let Some(v) = args.pkce {
        p.require_pkce = v;
        set("require_pkce");
    }
    match args.enabled {
        Some(v) => {
            p.enabled = v;
            set("enabled");
        }
        None if creating => p.enabled = true,
        None => {}
    }
    if creating && args.token_auth_method.is_none() {
        p.token_auth_method = pb::TokenAuthMethod::ClientSecretBasic as i32;
    }
    Ok((p, paths))
}

/// RFC 8414 metadata, falling back to OpenID Connect discovery.
async fn discover(issuer: &str) -> anyhow::Result<serde_json::Value> {
    let issuer = issuer.trim_end_matches('/');
    let client = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let url = format!("{issuer}{path}");
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            return response
                .json()
                .await
                .with_context(|| format!("{url} did not return JSON"));
        }
    }
    bail!("no RFC 8414 or OpenID Connect metadata found under {issuer}")
}

pub async fn providers(global: &Global, command: ProviderCommand) -> Result<(), Failure> {
    let target = global.target()?;
    let mut client = OAuthProviderServiceClient::new(target.control_plane().await?);
    let format = global.output;
    let show = |p: Option<pb::OAuthProvider>| -> Result<(), Failure> {
        let items: Vec<_> = p.iter().map(to_json).collect();
        Ok(print(format, &items, PROVIDER_COLUMNS, true)?)
    };
    match command {
        ProviderCommand::Create(args) => {
            let (provider, _) = provider_from(&args, true).await?;
            let request = pb::CreateOAuthProviderRequest {
                oauth_provider: Some(provider),
                validate_only: args.validate_only,
            };
            let response = client
                .create_o_auth_provider(target.request(request)?)
                .await?;
            show(response.into_inner().oauth_provider)
        }
        ProviderCommand::Get { name } => {
            let response = client
                .get_o_auth_provider(target.request(pb::GetOAuthProviderRequest { name })?)
                .await?;
            show(response.into_inner().oauth_provider)
        }
        ProviderCommand::List(args) => {
            let mut items = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = pb::ListOAuthProvidersRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    name_contains: args.name_contains.clone().unwrap_or_default(),
                    order_by: args.order_by.clone().unwrap_or_default(),
                };
                let page = client
                    .list_o_auth_providers(target.request(request)?)
                    .await?
                    .into_inner();
                items.extend(page.oauth_providers.iter().map(to_json));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Ok(print(format, &items, PROVIDER_COLUMNS, false)?)
        }
        ProviderCommand::Update(args) => {
            let (provider, paths) = provider_from(&args, false).await?;
            if paths.is_empty() {
                return Err(anyhow::anyhow!("nothing to change: pass the fields to update").into());
            }
            let request = pb::UpdateOAuthProviderRequest {
                oauth_provider: Some(provider),
                update_mask: mask(&paths),
                validate_only: args.validate_only,
            };
            let response = client
                .update_o_auth_provider(target.request(request)?)
                .await?;
            show(response.into_inner().oauth_provider)
        }
        ProviderCommand::Delete { name } => {
            let request = pb::DeleteOAuthProviderRequest {
                name: name.clone(),
                etag: String::new(),
            };
            client
                .delete_o_auth_provider(target.request(request)?)
                .await?;
            eprintln!("oauth provider {name:?} deleted");
            Ok(())
        }
    }
}

// ───────────────────────────── secret ─────────────────────────────

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store a secret; the value comes from stdin or --value-file, never a flag
    #[command(
        after_help = "Example:\n  printf %s \"$CLIENT_SECRET\" | adpctl secret create GITHUB_CLIENT_SECRET"
    )]
    Create(SecretArgs),
    /// Replace a secret's value
    #[command(
        after_help = "Example:\n  adpctl secret update GITHUB_CLIENT_SECRET --value-file ./new-secret"
    )]
    Update(SecretArgs),
    /// List secret names (values are never returned)
    #[command(after_help = "Example:\n  adpctl secret list")]
    List(ListArgs),
    /// Delete a secret (refused while providers or servers use it)
    #[command(after_help = "Example:\n  adpctl secret delete OLD_KEY")]
    Delete { name: String },
}

#[derive(Args, Debug)]
pub struct SecretArgs {
    pub name: String,
    /// Read the value from this file instead of stdin
    #[arg(long)]
    pub value_file: Option<PathBuf>,
    #[arg(long)]
    pub validate_only: bool,
}

fn secret_value(args: &SecretArgs) -> anyhow::Result<String> {
    let mut value = match &args.value_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the secret value from stdin")?;
            text
        }
    };
    // a trailing newline from `echo` or an editor is not part of the secret
    while value.ends_with('\n') || value.ends_with('\r') {
        value.pop();
    }
    anyhow::ensure!(!value.is_empty(), "the secret value is empty");
    Ok(value)
}

pub async fn secrets(global: &Global, command: SecretCommand) -> Result<(), Failure> {
    let target = global.target()?;
    let mut client = SecretServiceClient::new(target.control_plane().await?);
    let format = global.output;
    let show = |s: Option<pb::Secret>| -> Result<(), Failure> {
        let items: Vec<_> = s.iter().map(to_json).collect();
        Ok(print(format, &items, SECRET_COLUMNS, true)?)
    };
    match command {
        SecretCommand::Create(args) => {
            let request = pb::CreateSecretRequest {
                secret: Some(pb::Secret {
                    name: args.name.clone(),
                    ..Default::default()
                }),
                value: secret_value(&args)?,
                validate_only: args.validate_only,
            };
            let response = client.create_secret(target.request(request)?).await?;
            show(response.into_inner().secret)
        }
        SecretCommand::Update(args) => {
            let request = pb::UpdateSecretRequest {
                secret: Some(pb::Secret {
                    name: args.name.clone(),
                    ..Default::default()
                }),
                value: secret_value(&args)?,
                validate_only: args.validate_only,
            };
            let response = client.update_secret(target.request(request)?).await?;
            show(response.into_inner().secret)
        }
        SecretCommand::List(args) => {
            let mut items = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = pb::ListSecretsRequest {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    name_contains: args.name_contains.clone().unwrap_or_default(),
                    order_by: args.order_by.clone().unwrap_or_default(),
                };
                let page = client
                    .list_secrets(target.request(request)?)
                    .await?
                    .into_inner();
                items.extend(page.secrets.iter().map(to_json));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Ok(print(format, &items, SECRET_COLUMNS, false)?)
        }
        SecretCommand::Delete { name } => {
            let request = pb::DeleteSecretRequest {
                name: name.clone(),
                etag: String::new(),
            };
            client.delete_secret(target.request(request)?).await?;
            eprintln!("secret {name:?} deleted");
            Ok(())
        }
    }
}

// ───────────────────────────── mcp ─────────────────────────────

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
        McpCommand::Catalog => {
            let response = ManagedCatalogServiceClient::new(channel)
                .list_managed_types(target.request(pb::ListManagedTypesRequest::default())?)
                .await?
                .into_inner();
            let items: Vec<_> = response.managed_types.iter().map(to_json).collect();
            Ok(print(format, &items, CATALOG_COLUMNS, false)?)
        }
    }
}
