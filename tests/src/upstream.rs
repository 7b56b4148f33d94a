//! A real upstream MCP server and a real MCP client, both on the official TypeScript SDK
//! (`tests/node/mcp-upstream.mjs`, `tests/node/mcp-client.mjs`).
//!
//! The server speaks stateful Streamable HTTP over HTTPS with a [`TestCa`] leaf
//! certificate and records every HTTP request it receives, so a test can assert exactly
//! which headers (injected tokens above all) reached the upstream:
//!
//! ```text
//! let ca = TestCa::generate()?;
//! let upstream = McpUpstream::start(&ca).await?;
//! let outcome = run_mcp_client(proxy_url, "user-jwt", "whoami", &json!({})).await?;
//! let calls = upstream.requests_for("tools/call").await?;
//! assert_eq!(calls[0].header("authorization"), Some("Bearer upstream-token"));
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

use crate::oidc::node::{installed_node_dir, spawn_script};
use crate::tls::TestCa;

/// The SDK's own request timeout is 60 s; past this the client is hung, not slow.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// One HTTP request as the upstream saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The JSON-RPC `method` of each request and notification in a POST body (empty for
    /// GET, DELETE and JSON-RPC responses).
    pub rpc_methods: Vec<String>,
    /// The parsed JSON body, if any.
    pub body: Option<Value>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn is_rpc(&self, method: &str) -> bool {
        self.rpc_methods.iter().any(|m| m == method)
    }
}

/// See [`McpUpstream::sse_streams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SseStreams {
    pub open: usize,
    pub closed: usize,
}

/// The Node process; killed on drop (and it exits by itself when our end of its stdin
/// closes, so a killed test leaves nothing behind).
#[derive(Debug)]
pub struct McpUpstream {
    _child: Child,
    _stdin: ChildStdin,
    url: Url,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

impl McpUpstream {
    /// Installs the npm dependencies if needed and starts the server with `ca`'s leaf
    /// certificate on 127.0.0.1, port 0.
    pub async fn start(ca: &TestCa) -> anyhow::Result<McpUpstream> {
        let script = spawn_script(
            "mcp-upstream.mjs",
            &[
                "--cert".as_ref(),
                ca.cert_pem.as_os_str(),
                "--key".as_ref(),
                ca.key_pem.as_os_str(),
            ],
            "url",
        )
        .await?;
        let url = script.ready;
        let (child, stdin, log) = (script.child, script.stdin, script.log);
        Ok(McpUpstream {
            _child: child,
            _stdin: stdin,
            url: Url::parse(&url).with_context(|| format!("ready url {url}"))?,
            http: ca.reqwest_client()?,
            log,
        })
    }

    /// `https://127.0.0.1:PORT/mcp`, the MCP endpoint.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Every request since start or the last [`McpUpstream::reset`], oldest first (the
    /// `/__test/` calls themselves excluded).
    pub async fn requests(&self) -> anyhow::Result<Vec<RecordedRequest>> {
        let response = self
            .http
            .get(self.url.join("/__test/requests")?)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// The recorded requests whose body carried JSON-RPC `method`.
    pub async fn requests_for(&self, method: &str) -> anyhow::Result<Vec<RecordedRequest>> {
        let mut requests = self.requests().await?;
        requests.retain(|request| request.is_rpc(method));
        Ok(requests)
    }

    pub async fn reset(&self) -> anyhow::Result<()> {
        self.http
            .post(self.url.join("/__test/reset")?)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Legacy SSE event streams (`GET /sse`) open now, and closed so far by either side.
    pub async fn sse_streams(&self) -> anyhow::Result<SseStreams> {
        let response = self
            .http
            .get(self.url.join("/__test/sse-streams")?)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }

    /// How many `initialize` requests arrived, i.e. how many sessions were opened.
    pub async fn initialize_count(&self) -> anyhow::Result<usize> {
        Ok(self.requests_for("initialize").await?.len())
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Runs `mcp-client.mjs`: connects to `url` with `Authorization: Bearer <token>` (none
/// when `token` is empty), calls `tool` with `args` and returns the client's JSON report:
/// `{"ok":true,"result":<CallToolResult>,...}` or
/// `{"ok":false,"phase":"connect"|"call","errorClass","code","message","data",...}`
/// (field meanings in the script's header).
pub async fn run_mcp_client(
    url: &str,
    token: &str,
    tool: &str,
    args: &Value,
) -> anyhow::Result<Value> {
    client(None, url, token, tool, args).await
}

/// [`run_mcp_client`] for an https `url` served with a `ca` certificate.
pub async fn run_mcp_client_trusting(
    ca: &TestCa,
    url: &str,
    token: &str,
    tool: &str,
    args: &Value,
) -> anyhow::Result<Value> {
    client(Some(&ca.ca_pem), url, token, tool, args).await
}

async fn client(
    extra_ca: Option<&Path>,
    url: &str,
    token: &str,
    tool: &str,
    args: &Value,
) -> anyhow::Result<Value> {
    let dir = installed_node_dir().await?;
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("mcp-client.mjs")
        .args([url, token, tool, &args.to_string()])
        .env_remove("NODE_EXTRA_CA_CERTS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(ca) = extra_ca {
        command.env("NODE_EXTRA_CA_CERTS", ca);
    }
    let output = tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .context("mcp-client.mjs did not finish within 90 s")?
        .context("spawn node (is Node.js 20+ on PATH?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line).ok());
    match report {
        Some(report) if output.status.success() => Ok(report),
        _ => bail!(
            "mcp-client.mjs {}: stdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}
