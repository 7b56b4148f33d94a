//! Starts `adp-proxy` against a control plane, as the real binary or in the test
//! process from settings built from a map, and speaks MCP's Streamable HTTP to it the
//! way a client would (initialize, initialized, calls), reading JSON or SSE answers.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::{ControlPlaneProcess, binary, read_ready};

/// What runs a [`ProxyProcess`].
enum Running {
    Child(Child),
    /// Booted in the test process; dropping it stops its workers.
    InProcess(#[allow(dead_code)] adp_proxy::app::Proxy),
}

/// A proxy process (killed on drop), or one booted in-process.
pub struct ProxyProcess {
    running: Running,
    pub url: String,
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Its whole environment, so a restart runs with the same settings.
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Subscribed to `cp`, verifying callers with `cp`'s JWT secret, trusting `ca_file`
    /// for upstreams.
    pub async fn start(cp: &ControlPlaneProcess, ca_file: Option<&Path>) -> ProxyProcess {
        ProxyProcess::start_with(cp, ca_file, &[]).await
    }

    /// [`ProxyProcess::start`] with `extra` settings on top; an empty value removes the
    /// setting.
    pub async fn start_with(
        cp: &ControlPlaneProcess,
        ca_file: Option<&Path>,
        extra: &[(&str, &str)],
    ) -> ProxyProcess {
        let dir = tempfile::tempdir().unwrap();
        let env = proxy_env(cp, ca_file, dir.path(), extra);
        let (child, url, log) = spawn(&env).await;
        let proxy = ProxyProcess {
            running: Running::Child(child),
            url,
            log,
            env,
            _dir: dir,
        };
        proxy.wait_for(|h| h["status"] == "serving").await;
        proxy
    }

    /// [`ProxyProcess::start_with`], booted in the test process from the same settings
    /// (as a map: the process environment is not read); ready once its health says it
    /// has its config, not when a log line says so. It has no log to read and cannot be
    /// restarted: tests of those use the real process.
    pub async fn start_in_process(
        cp: &ControlPlaneProcess,
        ca_file: Option<&Path>,
        extra: &[(&str, &str)],
    ) -> ProxyProcess {
        let dir = tempfile::tempdir().unwrap();
        let env = proxy_env(cp, ca_file, dir.path(), extra);
        let flags = adp_proxy::settings::Flags::default();
        let settings =
            adp_proxy::settings::Settings::resolve(&flags, env.iter().cloned().collect()).unwrap();
        let proxy = adp_proxy::app::Proxy::start(settings).await.unwrap();
        let (_, log) = tokio::sync::mpsc::unbounded_channel();
        let proxy = ProxyProcess {
            url: format!("http://{}", proxy.addr),
            running: Running::InProcess(proxy),
            log,
            env,
            _dir: dir,
        };
        proxy.wait_for(|h| h["status"] == "serving").await;
        proxy
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.running {
            Running::Child(child) => child,
            Running::InProcess(_) => {
                panic!("an in-process proxy has no process: use ProxyProcess::start")
            }
        }
    }

    /// Kills the process (no graceful anything) and starts it again with the same
    /// settings, on a new port.
    pub async fn restart(&mut self) {
        let _ = self.child().kill().await;
        let (child, url, log) = spawn(&self.env).await;
        *self.child() = child;
        self.url = url;
        self.log = log;
        self.wait_for(|h| h["status"] == "serving").await;
    }

    /// Runs a proxy with `extra` settings that must refuse to start, and returns what
    /// it wrote to stderr.
    pub async fn refusal(cp: &ControlPlaneProcess, extra: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let env = proxy_env(cp, None, dir.path(), extra);
        let output = tokio::time::timeout(Duration::from_secs(30), command(&env).output())
            .await
            .expect("the proxy neither started nor exited within 30 s")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "the proxy was expected to refuse to start: {stderr}"
        );
        stderr
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
        crate::eventually::eventually("proxy health to match", Duration::from_secs(30), || async {
            let health = self.health().await;
            if check(&health) {
                Ok(health)
            } else {
                Err(health)
            }
        })
        .await
    }

    pub fn drain_log(&mut self) -> Vec<String> {
        // an in-process proxy logs nowhere a test can read: "no lines" would pass every
        // "no token in the log" check vacuously
        self.child();
        let mut lines = Vec::new();
        while let Ok(line) = self.log.try_recv() {
            lines.push(line);
        }
        lines
    }
}

fn proxy_env(
    cp: &ControlPlaneProcess,
    ca_file: Option<&Path>,
    dir: &Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let token_file = dir.join("proxy-token");
    std::fs::write(&token_file, cp.token("proxy-e2e", &["proxy"])).unwrap();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("RUST_LOG".into(), "info".into()),
        ("ADP_LOG_FORMAT".into(), "json".into()),
        ("ADP_PROXY_ADDR".into(), "127.0.0.1:0".into()),
        ("ADP_CONTROL_PLANE_URL".into(), cp.grpc_url.clone()),
        ("ADP_PROXY_TOKEN_FILE".into(), path(&token_file)),
        (
            "ADP_JWT_HS256_SECRET_FILE".into(),
            path(&cp.jwt_secret_file),
        ),
        ("ADP_JWT_ISSUER".into(), cp.jwt_issuer().to_owned()),
    ];
    if let Some(ca) = ca_file {
        env.push(("ADP_UPSTREAM_CA_FILE".into(), path(ca)));
    }
    // benchmarks try the proxy with fewer runtime threads than cores
    if let Ok(threads) = std::env::var("ADP_PROXY_WORKER_THREADS") {
        env.push(("ADP_PROXY_WORKER_THREADS".into(), threads));
    }
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
    }
    env
}

fn command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(binary("adp-proxy"));
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn spawn(
    env: &[(String, String)],
) -> (Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut child = command(env).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr, _, log) = read_ready(stderr, "proxy serving", &["addr", "addr"])
        .await
        .expect("proxy did not start within 30 s");
    (child, format!("http://{addr}"), log)
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
        reply(request.send().await.unwrap(), true).await
    }

    /// `GET` (the server-to-client event stream) with the session id: the status, and
    /// the body only when it is not a stream that stays open.
    pub async fn get(&self) -> McpReply {
        let request = self
            .bodiless(reqwest::Method::GET)
            .header("accept", "text/event-stream");
        let response = request.send().await.unwrap();
        let streaming = response.status().is_success();
        reply(response, !streaming).await
    }

    /// `DELETE`: ends the session.
    pub async fn delete(&self) -> McpReply {
        let response = self.bodiless(reqwest::Method::DELETE).send().await.unwrap();
        reply(response, true).await
    }

    fn bodiless(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, &self.url)
            .header("mcp-protocol-version", &self.version);
        if !self.jwt.is_empty() {
            request = request.bearer_auth(&self.jwt);
        }
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        request
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

async fn reply(response: reqwest::Response, read_body: bool) -> McpReply {
    let status = response.status().as_u16();
    let session_id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = if read_body {
        parse_body(&response.text().await.unwrap())
    } else {
        Value::Null
    };
    McpReply {
        status,
        session_id,
        body,
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
