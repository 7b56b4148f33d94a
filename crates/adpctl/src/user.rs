//! User command groups: `connections` (your own upstream accounts) and `tool` (MCP tools
//! through the proxy's gRPC gateway, waiting for consent and retrying by itself).

use std::time::Duration;

use adp_api::v1 as pb;
use adp_api::v1::call_tool_stream_response::Event;
use adp_api::v1::connection_service_client::ConnectionServiceClient;
use adp_api::v1::mcp_gateway_service_client::McpGatewayServiceClient;
use adp_core::json_struct::{struct_from_json, struct_to_json};
use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::output::{Column, Format, print, to_json};
use crate::{Failure, Global, Target, connect};

const CONNECTION_COLUMNS: &[Column] = &[
    ("PROVIDER", "providerName"),
    ("STATUS", "status"),
    ("GRANTED", "grantedScopes"),
    ("REQUESTED", "requestedScopes"),
    ("REASON", "statusReason"),
];
const TOOL_COLUMNS: &[Column] = &[("NAME", "name"), ("DESCRIPTION", "description")];

#[derive(Subcommand, Debug)]
pub enum ConnectionsCommand {
    /// Your connection to each provider
    #[command(after_help = "Example:\n  adpctl connections list")]
    List,
    /// Connect (or re-connect) a provider: prints the URL to open, then waits until done
    #[command(after_help = "Example:\n  adpctl connections connect github --open")]
    Connect(ConnectArgs),
    /// Remove a connection (and revoke it at the provider when it supports that)
    #[command(after_help = "Example:\n  adpctl connections revoke github")]
    Revoke { provider: String },
    /// Print your connection to a provider now and on every change
    #[command(after_help = "Example:\n  adpctl connections watch github -o json")]
    Watch { provider: String },
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    pub provider: String,
    /// Extra scopes to ask for (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Open the URL in a browser (xdg-open / open)
    #[arg(long)]
    pub open: bool,
    /// Print the URL and return without waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this many seconds
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum ToolCommand {
    /// The tools an MCP server offers (through the proxy, as you)
    #[command(after_help = "Example:\n  adpctl tool list github-issues")]
    List { server: String },
    /// Call a tool; on a consent error print the URL, wait, and retry by itself
    #[command(
        after_help = "Example:\n  adpctl tool call github-issues search --args '{\"q\":\"is:open\"}'"
    )]
    Call(CallArgs),
}

#[derive(Args, Debug)]
pub struct CallArgs {
    pub server: String,
    pub tool: String,
    /// Arguments as a JSON object
    #[arg(long, default_value = "{}")]
    pub args: String,
    /// On a consent error, print the URL and exit 5 instead of waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Give up (consent included) after this many seconds
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

fn open_in_browser(url: &str) {
    for opener in ["xdg-open", "open"] {
        if std::process::Command::new(opener)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
    eprintln!("(could not open a browser; open the URL yourself)");
}

fn connected(card: &pb::Connection) -> bool {
    card.status == pb::ConnectionStatus::Connected as i32
}

pub async fn connections(global: &Global, command: ConnectionsCommand) -> Result<(), Failure> {
    let target = global.target()?;
    let mut client = ConnectionServiceClient::new(target.control_plane().await?);
    let format = global.output;
    match command {
        ConnectionsCommand::List => {
            let response = client
                .list_connections(target.request(pb::ListConnectionsRequest::default())?)
                .await?
                .into_inner();
            let items: Vec<_> = response.connections.iter().map(to_json).collect();
            Ok(print(format, &items, CONNECTION_COLUMNS, false)?)
        }
        ConnectionsCommand::Connect(args) => {
            let request = pb::ConnectRequest {
                provider_name: args.provider.clone(),
                scopes: args.scopes.clone(),
            };
            // watch first, so a consent finished quickly is not missed
            let watch = if args.no_wait {
                None
            } else {
                let request = pb::WatchConnectionRequest {
                    provider_name: args.provider.clone(),
                };
                Some(
                    client
                        .clone()
                        .watch_connection(target.request(request)?)
                        .await?
                        .into_inner(),
                )
            };
            let started = client.connect(target.request(request)?).await?.into_inner();
            println!(
                "Open this URL to connect {}:\n  {}",
                args.provider, started.authorize_url
            );
            if let Some(device) = &started.device_code {
                println!(
                    "Or enter code {} at {}",
                    device.user_code, device.verification_uri
                );
                // RFC 8628 §5.4: whoever enters the code connects their account to
                // the one that asked, so say which account that is
                if let Some(account) = target.token.as_deref().and_then(token_account) {
                    println!(
                        "The {} account you approve will be used for ADP account {account}. \
                         Enter the code only if you started this yourself.",
                        args.provider
                    );
                }
            }
            if args.open {
                open_in_browser(&started.authorize_url);
            }
            let Some(mut watch) = watch else {
                return Ok(());
            };
            eprintln!("waiting for you to finish in the browser…");
            let wait = async {
                while let Some(update) = watch.message().await? {
                    if let Some(card) = update.connection
                        && connected(&card)
                        && card.connect_time.is_some()
                    {
                        return Ok::<_, tonic::Status>(Some(card));
                    }
                }
                Ok(None)
            };
            match tokio::time::timeout(Duration::from_secs(args.timeout), wait).await {
                Ok(Ok(Some(card))) => {
                    let items = [to_json(&card)];
                    eprintln!("connected");
                    Ok(print(format, &items, CONNECTION_COLUMNS, true)?)
                }
                Ok(Ok(None)) => Err(anyhow::anyhow!("the control plane ended the watch").into()),
                Ok(Err(status)) => Err(status.into()),
                Err(_) => Err(anyhow::anyhow!("not connected within {} s", args.timeout).into()),
            }
        }
        ConnectionsCommand::Revoke { provider } => {
            let request = pb::RevokeConnectionRequest {
                provider_name: provider.clone(),
            };
            let response = client
                .revoke_connection(target.request(request)?)
                .await?
                .into_inner();
            if response.upstream_revoked {
                eprintln!("{provider}: removed, and revoked at the provider");
            } else {
                eprintln!(
                    "{provider}: removed; the provider did not revoke it ({})",
                    response.upstream_revocation_error
                );
            }
            let items: Vec<_> = response.connection.iter().map(to_json).collect();
            Ok(print(format, &items, CONNECTION_COLUMNS, true)?)
        }
        ConnectionsCommand::Watch { provider } => {
            let request = pb::WatchConnectionRequest {
                provider_name: provider,
            };
            let mut stream = client
                .watch_connection(target.request(request)?)
                .await?
                .into_inner();
            while let Some(update) = stream.message().await? {
                if let Some(card) = update.connection {
                    let item = to_json(&card);
                    match format {
                        Format::Table => println!(
                            "{}\t{}\t{}",
                            item["providerName"].as_str().unwrap_or("-"),
                            item["status"].as_str().unwrap_or("-"),
                            item["statusReason"].as_str().unwrap_or("")
                        ),
                        _ => println!(
                            "{}",
                            serde_json::to_string(&item).map_err(anyhow::Error::from)?
                        ),
                    }
                }
            }
            Ok(())
        }
    }
}

async fn gateway(
    target: &Target,
) -> anyhow::Result<McpGatewayServiceClient<tonic::transport::Channel>> {
    Ok(McpGatewayServiceClient::new(connect(&target.proxy).await?))
}

fn print_result(format: Format, result: &pb::CallToolResponse) -> Result<(), Failure> {
    match format {
        Format::Table => {
            for block in &result.content {
                let json = serde_json::Value::Object(struct_to_json(block.clone()));
                match json.get("text").and_then(|t| t.as_str()) {
                    Some(text) => println!("{text}"),
                    None => println!("{json}"),
                }
            }
        }
        _ => print(format, &[to_json(result)], &[], true)?,
    }
    if result.is_error {
        return Err(anyhow::anyhow!("the tool reported an error").into());
    }
    Ok(())
}

pub async fn tools(global: &Global, command: ToolCommand) -> Result<(), Failure> {
    let target = global.target()?;
    let mut client = gateway(&target).await?;
    let format = global.output;
    match command {
        ToolCommand::List { server } => {
            let request = pb::ListToolsRequest {
                server_name: server,
            };
            let response = client
                .list_tools(target.request(request)?)
                .await?
                .into_inner();
            let items: Vec<_> = response.tools.iter().map(to_json).collect();
            Ok(print(format, &items, TOOL_COLUMNS, false)?)
        }
        ToolCommand::Call(args) => {
            let json: serde_json::Value =
                serde_json::from_str(&args.args).context("--args must be a JSON object")?;
            let arguments = struct_from_json(&json).context("--args must be a JSON object")?;
            let limit = Duration::from_secs(args.timeout);
            if args.no_wait {
                let request = pb::CallToolRequest {
                    server_name: args.server,
                    tool_name: args.tool,
                    arguments: Some(arguments),
                };
                let mut request = target.request(request)?;
                request.set_timeout(limit);
                let result = client.call_tool(request).await;
                // a consent error exits 5 and prints the authorize URL (see `status`)
                return match result {
                    Ok(result) => print_result(format, &result.into_inner()),
                    Err(status) => Err(status.into()),
                };
            }
            let request = pb::CallToolStreamRequest {
                server_name: args.server,
                tool_name: args.tool,
                arguments: Some(arguments),
            };
            let mut request = target.request(request)?;
            request.set_timeout(limit);
            let mut stream = client.call_tool_stream(request).await?.into_inner();
            while let Some(message) = stream.message().await? {
                match message.event {
                    Some(Event::ConsentRequired(consent)) => {
                        eprintln!(
                            "{}\nOpen this URL to connect {}:\n  {}",
                            consent.message, consent.provider_name, consent.authorize_url
                        );
                        if let Some(device) = consent.device_code {
                            eprintln!(
                                "Or enter code {} at {}",
                                device.user_code, device.verification_uri
                            );
                        }
                        eprintln!("waiting; the call will be retried when you are done…");
                    }
                    Some(Event::Connected(_)) => eprintln!("connected; retrying the call"),
                    Some(Event::Result(result)) => return print_result(format, &result),
                    None => {}
                }
            }
            Err(anyhow::anyhow!("the proxy ended the call without a result").into())
        }
    }
}

/// "subject (issuer)" from a JWT's payload, unverified: only to tell the person which
/// account they are acting for.
fn token_account(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let subject = claims.get("sub")?.as_str()?;
    Some(
        match claims.get("iss").and_then(serde_json::Value::as_str) {
            Some(issuer) => format!("{subject} ({issuer})"),
            None => subject.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_account_comes_from_the_tokens_claims() {
        let claims = serde_json::json!({"sub": "alice", "iss": "https://login.example.com"});
        let token = adp_core::identity::mint_hs256(b"secret", &claims).unwrap_or_default();
        assert_eq!(
            super::token_account(&token).as_deref(),
            Some("alice (https://login.example.com)")
        );
        assert_eq!(super::token_account("not-a-jwt"), None);
    }
}
