//! Fixtures shared by the benchmarks: the `mcp-echo` upstream, and a control plane plus
//! proxy serving it as an MCP server whose credential is a static key.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy::ProxyProcess;
use crate::{ControlPlaneProcess, authed, binary};

pub struct Echo {
    _child: Child,
    pub addr: SocketAddr,
}

impl Echo {
    /// Starts mcp-echo with `--require-bearer`, so every leg must carry (or have injected)
    /// an `Authorization: Bearer …` header, on `ADP_BENCH_ECHO_ADDR` (default port 0).
    pub async fn start() -> Self {
        let addr = std::env::var("ADP_BENCH_ECHO_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
        let mut command = Command::new(binary("mcp-echo"));
        command
            .arg("--addr")
            .arg(&addr)
            .arg("--require-bearer")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Ok(threads) = std::env::var("ADP_BENCH_ECHO_THREADS") {
            command.arg("--threads").arg(threads);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("mcp-echo did not start within 10 s")
            .unwrap()
            .expect("mcp-echo exited before it was ready");
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ready["ready"], true, "mcp-echo: {line}");
        let addr = ready["addr"].as_str().unwrap().parse().unwrap();
        Echo {
            _child: child,
            addr,
        }
    }

    /// The upstream MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

/// A control plane with `server` registered at `upstream_url`, its credential the static
/// key `Bearer <token>`, and a proxy subscribed to it. Returns both and a user's JWT.
///
/// User OAuth would need an https upstream, and TLS would change what the direct legs
/// measure; the proxy's per-call work (verify the JWT, find the cached credential,
/// inject, forward) is the same for both.
pub async fn static_key_proxy(
    upstream_url: &str,
    server: &str,
    token: &str,
) -> (ControlPlaneProcess, ProxyProcess, String) {
    let cp = ControlPlaneProcess::start().await;
    let admin = cp.admin_token();
    let channel = cp.channel().await;
    let secret = CreateSecretRequest {
        secret: Some(Secret {
            name: "BENCH_KEY".into(),
            ..Default::default()
        }),
        value: format!("Bearer {token}"),
        validate_only: false,
    };
    secret_service_client::SecretServiceClient::new(channel.clone())
        .create_secret(authed(secret, &admin))
        .await
        .unwrap();
    let spec = McpServer {
        name: server.into(),
        enabled: true,
        source: Some(Source::Remote(RemoteMcp {
            url: upstream_url.into(),
            transport: 0,
        })),
        auth: Some(Auth::StaticKey(StaticKeyAuth {
            key_ref: "BENCH_KEY".into(),
            header_name: String::new(),
        })),
        ..Default::default()
    };
    let request = CreateMcpServerRequest {
        mcp_server: Some(spec),
        validate_only: false,
    };
    mcp_server_service_client::McpServerServiceClient::new(channel)
        .create_mcp_server(authed(request, &admin))
        .await
        .unwrap();
    let proxy = ProxyProcess::start(&cp, None).await;
    let jwt = cp.token("bench-user", &[]);
    (cp, proxy, jwt)
}
