//! Upstream MCP sessions for the gRPC gateway, one per (user, server): initialized once
//! and reused, rebuilt when the upstream drops it or the user's credential changes, and
//! closed when idle. Built on rmcp, the official Rust MCP SDK.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
};
use rmcp::service::{ClientCacheConfig, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::{Map, Value};

use crate::shared::Admitted;

type Client = RunningService<RoleClient, ClientConfig>;

/// Sessions unused this long are closed.
const IDLE_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub enum CallError {
    Timeout(Duration),
    Unavailable(String),
    /// The upstream answered with a JSON-RPC error.
    Mcp {
        code: i32,
        message: String,
    },
}

#[derive(Debug)]
pub struct ToolInfo {
    pub name: String,
    pub title: String,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
}

#[derive(Debug)]
pub struct ToolResult {
    pub content: Vec<Value>,
    pub structured_content: Option<Value>,
    pub is_error: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    issuer: String,
    subject: String,
    server: String,
}

/// One session and what it was built with; a different credential or server config
/// means a new session, since rmcp fixes headers per transport.
struct Slot {
    client: Arc<Client>,
    header: Option<(HeaderName, HeaderValue)>,
    generation: u64,
    last_used: Instant,
}

pub struct UpstreamSessions {
    http: reqwest013::Client,
    capacity: usize,
    slots: tokio::sync::Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Option<Slot>>>>>,
}

impl std::fmt::Debug for UpstreamSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSessions")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl UpstreamSessions {
    /// `tls` comes from [`crate::tls::client_config`], built once per process.
    pub fn new(
        mut tls: rustls::ClientConfig,
        capacity: usize,
    ) -> anyhow::Result<Arc<UpstreamSessions>> {
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest013::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(5))
            // never carry a user's credential to wherever an upstream redirects
            .redirect(reqwest013::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        let sessions = Arc::new(UpstreamSessions {
            http,
            capacity: capacity.max(1),
            slots: tokio::sync::Mutex::default(),
        });
        tokio::spawn(reap_idle(Arc::downgrade(&sessions)));
        Ok(sessions)
    }

    /// The session for this caller and server, initializing one if needed.
    async fn session(
        &self,
        admitted: &Admitted,
        header: Option<(HeaderName, HeaderValue)>,
        limit: Duration,
    ) -> Result<Arc<Client>, CallError> {
        let key = Key {
            issuer: admitted.identity.issuer.clone(),
            subject: admitted.identity.subject.clone(),
            server: admitted.route.server.name.clone(),
        };
        let slot = {
            let mut slots = self.slots.lock().await;
            if slots.len() >= self.capacity && !slots.contains_key(&key) {
                evict_oldest(&mut slots);
            }
            slots.entry(key).or_default().clone()
        };
        // one initialize per key at a time; other callers for the same key wait for it
        let mut slot = slot.lock().await;
        if let Some(current) = slot.as_mut()
            && current.header == header
            && current.generation == admitted.route.generation
            && !current.client.is_closed()
        {
            current.last_used = Instant::now();
            return Ok(current.client.clone());
        }
        if let Some(old) = slot.take() {
            close(old.client);
        }
        let client = tokio::time::timeout(
            limit,
            self.connect(
                &admitted.route.upstream_url,
                admitted.route.legacy_sse,
                header.clone(),
            ),
        )
        .await
        .map_err(|_| CallError::Timeout(limit))??;
        let client = Arc::new(client);
        *slot = Some(Slot {
            client: client.clone(),
            header,
            generation: admitted.route.generation,
            last_used: Instant::now(),
        });
        Ok(client)
    }

    async fn connect(
        &self,
        url: &str,
        legacy_sse: bool,
        header: Option<(HeaderName, HeaderValue)>,
    ) -> Result<Client, CallError> {
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("adp-proxy", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::V_2025_06_18);
        if legacy_sse {
            let transport = crate::legacy_sse::connect(&self.http, url, header).await?;
            let client = info
                .serve(transport)
                .await
                .map_err(|e| CallError::Unavailable(format!("MCP initialize failed: {e}")))?;
            client
                .set_response_cache_config(ClientCacheConfig::disabled())
                .await;
            return Ok(client);
        }
        let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
            .reinit_on_expired_session(true);
        if let Some((name, value)) = header {
            config = config.custom_headers(HashMap::from([(name, value)]));
        }
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let client = info
            .serve(transport)
            .await
            .map_err(|e| CallError::Unavailable(format!("MCP initialize failed: {e}")))?;
        // the gateway answers from the upstream, never from a stale list
        client
            .set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        Ok(client)
    }

    /// Drops the session so the next call builds a fresh one.
    async fn forget(&self, admitted: &Admitted) {
        let key = Key {
            issuer: admitted.identity.issuer.clone(),
            subject: admitted.identity.subject.clone(),
            server: admitted.route.server.name.clone(),
        };
        let slot = self.slots.lock().await.remove(&key);
        if let Some(slot) = slot
            && let Some(old) = slot.lock().await.take()
        {
            close(old.client);
        }
    }

    pub async fn call_tool(
        &self,
        admitted: &Admitted,
        header: Option<(HeaderName, HeaderValue)>,
        tool: &str,
        arguments: Map<String, Value>,
        limit: Duration,
    ) -> Result<ToolResult, CallError> {
        let client = self.session(admitted, header, limit).await?;
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = match tokio::time::timeout(limit, client.call_tool(params)).await {
            Err(_) => return Err(CallError::Timeout(limit)),
            Ok(Err(error)) => return Err(self.failed(admitted, error).await),
            Ok(Ok(result)) => result,
        };
        Ok(ToolResult {
            content: result
                .content
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect(),
            structured_content: result.structured_content.clone(),
            is_error: result.is_error.unwrap_or(false),
        })
    }

    pub async fn list_tools(
        &self,
        admitted: &Admitted,
        header: Option<(HeaderName, HeaderValue)>,
        limit: Duration,
    ) -> Result<Vec<ToolInfo>, CallError> {
        let client = self.session(admitted, header, limit).await?;
        let tools = match tokio::time::timeout(limit, client.list_all_tools()).await {
            Err(_) => return Err(CallError::Timeout(limit)),
            Ok(Err(error)) => return Err(self.failed(admitted, error).await),
            Ok(Ok(tools)) => tools,
        };
        Ok(tools
            .into_iter()
            .map(|tool| ToolInfo {
                name: tool.name.to_string(),
                title: tool.title.clone().unwrap_or_default(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                input_schema: Value::Object(tool.input_schema.as_ref().clone()),
                output_schema: tool
                    .output_schema
                    .as_ref()
                    .map(|s| Value::Object(s.as_ref().clone())),
            })
            .collect())
    }

    /// Classifies a failed request; anything but a JSON-RPC answer ends the session.
    async fn failed(&self, admitted: &Admitted, error: ServiceError) -> CallError {
        match error {
            ServiceError::McpError(data) => CallError::Mcp {
                code: data.code.0,
                message: data.message.to_string(),
            },
            ServiceError::Timeout { timeout } => CallError::Timeout(timeout),
            other => {
                self.forget(admitted).await;
                CallError::Unavailable(format!("upstream MCP session failed: {other}"))
            }
        }
    }
}

fn close(client: Arc<Client>) {
    // others may still hold it for an in-flight call; the last one to drop it cancels
    if let Ok(mut client) = Arc::try_unwrap(client) {
        tokio::spawn(async move {
            let _ = client.close_with_timeout(Duration::from_secs(5)).await;
        });
    }
}

fn evict_oldest(slots: &mut HashMap<Key, Arc<tokio::sync::Mutex<Option<Slot>>>>) {
    let oldest = slots
        .iter()
        .filter_map(|(key, slot)| {
            let slot = slot.try_lock().ok()?;
            Some((key.clone(), slot.as_ref().map(|s| s.last_used)))
        })
        .min_by_key(|(_, used)| *used)
        .map(|(key, _)| key);
    if let Some(key) = oldest
        && let Some(slot) = slots.remove(&key)
        && let Ok(mut slot) = slot.try_lock()
        && let Some(old) = slot.take()
    {
        close(old.client);
    }
}

async fn reap_idle(sessions: std::sync::Weak<UpstreamSessions>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let mut slots = sessions.slots.lock().await;
        slots.retain(|_, slot| {
            let Ok(mut slot) = slot.try_lock() else {
                return true;
            };
            match slot.as_ref() {
                Some(s) if s.last_used.elapsed() < IDLE_LIMIT => true,
                _ => {
                    if let Some(old) = slot.take() {
                        close(old.client);
                    }
                    false
                }
            }
        });
    }
}
