//! Starts the real `adp-proxy` binary against a control plane, and speaks MCP's
//! Streamable HTTP to it the way a client would (initialize, initialized, calls),
//! reading JSON or SSE answers.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{ControlPlaneProcess, binary, read_ready};

/// A proxy process; killed on drop.
pub struct ProxyProcess {
    _child: Child,
    pub url: String,
    pub log: tokio::sync::mpsc::UnboundedReceiver<String>,
    _dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Subscribed to `cp`, verifying callers with `cp`'s JWT secret, trusting `ca_file`
    /// for upstreams.
    pub async fn start(cp: &ControlPlaneProcess, ca_file: Option<&Path>) -> ProxyProcess {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("proxy-token");
        std::fs::write(&token_file, cp.token("proxy-e2e", &["proxy"])).unwrap();
        let mut command = Command::new(binary("adp-proxy"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("ADP_LOG_FORMAT", "json")
            .env("ADP_PROXY_ADDR", "127.0.0.1:0")
            .env("ADP_CONTROL_PLANE_URL", &cp.grpc_url)
            .env("ADP_PROXY_TOKEN_FILE", &token_file)
            .env("ADP_JWT_HS256_SECRET_FILE", &cp.jwt_secret_file)
            .env("ADP_JWT_ISSUER", cp.jwt_issuer())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(ca) = ca_file {
            command.env("ADP_UPSTREAM_CA_FILE", ca);
        }
        // benchmarks try the proxy with fewer runtime threads than cores
        if let Ok(threads) = std::env::var("ADP_PROXY_WORKER_THREADS") {
            command.env("ADP_PROXY_WORKER_THREADS", threads);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (addr, _, log) = read_ready(stderr, "proxy serving", &["addr", "addr"])
            .await
            .expect("proxy did not start within 30 s");
        let proxy = ProxyProcess {
            _child: child,
            url: format!("http://{addr}"),
            log,
            _dir: dir,
        };
        proxy.wait_for(|h| h["status"] == "serving").await;
        proxy
    }

    pub fn mcp_url(&self, server: &str) -> String {
        format!("{}/mcp/{server}", self.url)
    }

    pub async fn health(&self) -> Value {
        reqwest::get(format!("{}/healthz", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls `/healthz` until `check` holds (at most 30 s) and returns that health.
    pub async fn wait_for(&self, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let health = self.health().await;
            if check(&health) {
                return health;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "proxy health never matched: {health}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn drain_log(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.log.try_recv() {
            lines.push(line);
        }
        lines
    }
}

/// An HTTP answer from the MCP endpoint: status, session id, and the JSON-RPC message
/// (from a JSON body or the last SSE `data:` event).
#[derive(Debug)]
pub struct McpReply {
    pub status: u16,
    pub session_id: Option<String>,
    pub body: Value,
}

/// A minimal Streamable HTTP client session, for asserting exact wire shapes.
pub struct McpSession {
    http: reqwest::Client,
    url: String,
    jwt: String,
    pub version: String,
    pub session_id: Option<String>,
    next_id: u64,
}

impl McpSession {
    pub fn new(url: &str, jwt: &str, version: &str) -> McpSession {
        McpSession {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            jwt: jwt.to_owned(),
            version: version.to_owned(),
            session_id: None,
            next_id: 1,
        }
    }

    pub async fn post(&mut self, message: Value) -> McpReply {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .json(&message);
        if !self.jwt.is_empty() {
            request = request.bearer_auth(&self.jwt);
        }
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        if message["method"] != "initialize" {
            request = request.header("mcp-protocol-version", &self.version);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let session_id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap();
        let body = parse_body(&text);
        McpReply {
            status,
            session_id,
            body,
        }
    }

    /// initialize (declaring URL elicitation when `url_elicitation`) and initialized.
    pub async fn initialize(&mut self, url_elicitation: bool) -> McpReply {
        let capabilities = if url_elicitation {
            json!({"elicitation": {"url": {}, "form": {}}})
        } else {
            json!({})
        };
        let reply = self
            .post(
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": self.version, "capabilities": capabilities,
                "clientInfo": {"name": "adp-e2e", "version": "1"}}}),
            )
            .await;
        if reply.status == 200 && reply.body.get("result").is_some() {
            self.session_id = reply.session_id.clone();
            self.post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
                .await;
        }
        reply
    }

    pub async fn call(&mut self, tool: &str, arguments: Value) -> McpReply {
        self.next_id += 1;
        let id = self.next_id;
        self.post(json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name": tool, "arguments": arguments}}))
            .await
    }
}

fn parse_body(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    text.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data:"))
        .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .unwrap_or(Value::Null)
}
