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

impl Route {
    fn from_config(config: &pb::ServerConfig) -> Option<Route> {
        let server = McpServer::try_from(config.server.clone()?).ok()?;
        Some(Route {
            server,
            upstream: crate::forward::Target::parse(&config.upstream_url).ok(),
            upstream_url: config.upstream_url.clone(),
            legacy_sse: config.transport == pb::Transport::Sse as i32,
            generation: fingerprint(&config.encode_to_vec()),
        })
    }

    /// Whether the proxy must ask the control plane for a credential to inject.
    pub fn needs_credential(&self) -> bool {
        !matches!(self.server.auth, Auth::None | Auth::TokenPassthrough)
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
                        Route::from_config(c).map(|r| (r.server.name.clone(), Arc::new(r)))
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
                    if let Some(route) = Route::from_config(config) {
                        next.servers
                            .insert(route.server.name.clone(), Arc::new(route));
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
