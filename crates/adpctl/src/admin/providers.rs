//! `adpctl oauth-provider`: register, show, list, change and delete OAuth providers.

use adp_api::v1 as pb;
use adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};

use super::{ListArgs, mask};
use crate::output::{Column, print, to_json};
use crate::{Failure, Global};

const PROVIDER_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("DISPLAY NAME", "displayName"),
    ("SCOPES", "scopes"),
    ("GRANTS", "grantTypes"),
    ("ENABLED", "enabled"),
];

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
