//! The routing table built from the config stream: servers by name, providers by
//! name, and the revision they reflect. Replaced whole on every event, so readers
//! always see one consistent revision.

use std::collections::HashMap;
use std::sync::Arc;

use adp_api::v1 as pb;
use adp_api::v1::config_event::Kind;
use adp_core::server::{Auth, McpServer};
use prost::Message;

/// One MCP server as the proxy routes to it.
#[derive(Clone, Debug)]
pub struct Route {
    pub server: McpServer,
    pub upstream_url: String,
    /// `upstream_url` resolved once; `None` when it is missing or not an http(s) URL.
    pub upstream: Option<crate::forward::Target>,
    /// The deprecated 2024-11-05 HTTP+SSE transport rather than Streamable HTTP.
    pub legacy_sse: bool,
    /// Changes whenever anything about the server changes, so credentials cached under
    /// an older config (say, fewer required scopes) are not reused.
    pub generation: u64,
}

/// Why a server from the feed cannot be routed to.
#[derive(Debug, thiserror::Error)]
enum RouteError {
    #[error("the server config carries no server")]
    MissingServer,
    #[error("invalid server: {0}")]
    InvalidServer(adp_core::ApiError),
}

impl Route {
    fn from_config(config: &pb::ServerConfig) -> Result<Route, RouteError> {
        let server = config.server.clone().ok_or(RouteError::MissingServer)?;
        let server = McpServer::try_from(server).map_err(RouteError::InvalidServer)?;
        let upstream = match crate::forward::Target::parse(&config.upstream_url) {
            Ok(target) => Some(target),
            // empty: the server's source has no endpoint in this deployment
            Err(_) if config.upstream_url.is_empty() => None,
            Err(_) => {
                // not the URL itself: it may carry a key in its query
                tracing::warn!(
                    server = %server.name,
                    upstream = %url_origin(&config.upstream_url),
                    "upstream URL from the config feed is unusable; calls to this server get 502"
                );
                None
            }
        };
        Ok(Route {
            server,
            upstream,
            upstream_url: config.upstream_url.clone(),
            legacy_sse: config.transport == pb::Transport::Sse as i32,
            generation: fingerprint(&config.encode_to_vec()),
        })
    }

    /// The route for `config`, or `None` with the reason logged: a server the feed
    /// names but the proxy cannot route to is never dropped silently.
    fn routable(config: &pb::ServerConfig) -> Option<Route> {
        match Route::from_config(config) {
            Ok(route) => Some(route),
            Err(error) => {
                let server = config.server.as_ref().map_or("", |s| s.name.as_str());
                tracing::warn!(
                    server,
                    %error,
                    "server from the config feed cannot be routed; not serving it"
                );
                None
            }
        }
    }

    /// Whether the proxy must ask the control plane for a credential to inject.
    pub fn needs_credential(&self) -> bool {
        !matches!(self.server.auth, Auth::None | Auth::TokenPassthrough)
    }
}

/// What a log may say of an upstream URL: its scheme and host, never its path, query
/// or credentials.
fn url_origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    pub revision: i64,
    pub servers: HashMap<String, Arc<Route>>,
    pub providers: HashMap<String, pb::ProviderConfig>,
}

impl RoutingTable {
    /// The table after `event`; heartbeats only move the revision.
    pub fn apply(&self, event: &pb::ConfigEvent) -> RoutingTable {
        let mut next = match &event.kind {
            Some(Kind::Snapshot(snapshot)) => RoutingTable {
                revision: event.revision,
                servers: snapshot
                    .servers
                    .iter()
                    .filter_map(|c| {
                        Route::routable(c).map(|r| (r.server.name.clone(), Arc::new(r)))
                    })
                    .collect(),
                providers: snapshot
                    .providers
                    .iter()
                    .map(|p| (p.name.clone(), p.clone()))
                    .collect(),
            },
            Some(Kind::Delta(delta)) => {
                let mut next = self.clone();
                for name in &delta.removed_servers {
                    next.servers.remove(name);
                }
                for config in &delta.upserted_servers {
                    match Route::routable(config) {
                        Some(route) => {
                            next.servers
                                .insert(route.server.name.clone(), Arc::new(route));
                        }
                        // fail closed: an update this proxy cannot read (it may disable
                        // the server) must not leave the old route serving
                        None => {
                            if let Some(server) = &config.server {
                                next.servers.remove(&server.name);
                            }
                        }
                    }
                }
                for name in &delta.removed_providers {
                    next.providers.remove(name);
                }
                for provider in &delta.upserted_providers {
                    next.providers
                        .insert(provider.name.clone(), provider.clone());
                }
                next
            }
            Some(Kind::Heartbeat(_)) | None => self.clone(),
        };
        next.revision = next.revision.max(event.revision);
        next
    }

    pub fn provider_display_name<'a>(&'a self, provider: &'a str) -> &'a str {
        self.providers
            .get(provider)
            .map(|p| p.display_name.as_str())
            .filter(|d| !d.is_empty())
            .unwrap_or(provider)
    }
}

fn fingerprint(bytes: &[u8]) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use adp_core::server::Source;

    use super::*;

    fn server_config(server: Option<pb::McpServer>) -> pb::ServerConfig {
        pb::ServerConfig {
            server,
            upstream_url: "http://127.0.0.1:9/mcp".into(),
            transport: pb::Transport::StreamableHttp as i32,
        }
    }

    fn good(name: &str) -> pb::McpServer {
        pb::McpServer::from(&McpServer {
            name: name.into(),
            description: String::new(),
            enabled: true,
            source: Source::Remote {
                url: "http://127.0.0.1:9/mcp".into(),
                transport: adp_core::server::Transport::StreamableHttp,
            },
            auth: Auth::None,
        })
    }

    #[test]
    fn a_server_that_cannot_be_converted_is_refused_with_its_reason() {
        let no_source = pb::McpServer {
            name: "broken".into(),
            source: None,
            ..good("broken")
        };
        assert!(matches!(
            Route::from_config(&server_config(None)),
            Err(RouteError::MissingServer)
        ));
        let error = Route::from_config(&server_config(Some(no_source.clone()))).unwrap_err();
        assert!(matches!(error, RouteError::InvalidServer(_)), "{error}");
        assert!(error.to_string().contains("remote or managed"), "{error}");

        let event = pb::ConfigEvent {
            revision: 3,
            kind: Some(Kind::Snapshot(pb::ConfigSnapshot {
                servers: vec![
                    server_config(Some(good("tools"))),
                    server_config(Some(no_source)),
                    server_config(None),
                ],
                providers: vec![],
            })),
        };
        let table = RoutingTable::default().apply(&event);
        assert_eq!(table.revision, 3);
        assert_eq!(table.servers.len(), 1);
        assert!(table.servers.contains_key("tools"));

        // an update of "tools" this proxy cannot read takes it out of service rather
        // than leaving the old route serving (the update may disable it)
        let unreadable = pb::McpServer {
            source: None,
            ..good("tools")
        };
        let delta = pb::ConfigEvent {
            revision: 4,
            kind: Some(Kind::Delta(pb::ConfigDelta {
                upserted_servers: vec![server_config(Some(unreadable))],
                ..Default::default()
            })),
        };
        let table = table.apply(&delta);
        assert_eq!(table.revision, 4);
        assert!(!table.servers.contains_key("tools"));
    }

    #[test]
    fn a_logged_upstream_url_shows_only_scheme_and_host() {
        assert_eq!(
            url_origin("https://user:pw@mcp.example.com:8443/mcp?api_key=s3cret"),
            "https://mcp.example.com"
        );
        assert_eq!(url_origin("not a url ?api_key=s3cret"), "(not a URL)");
    }
}
