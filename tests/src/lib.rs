//! Test harness: starts the real `adp-control-plane` binary on loopback with port 0,
//! learns its addresses from its JSON log, and hands out gRPC clients and tokens.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, part of the
//! README's test command); a test binary cannot make cargo build another package.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

pub mod consent;
pub mod oidc;
pub mod pg;

/// Where cargo put the workspace binaries for this profile.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// A control plane process; killed on drop.
pub struct ControlPlaneProcess {
    child: Child,
    pub grpc_url: String,
    pub http_url: String,
    pub data_dir: tempfile::TempDir,
    jwt_secret: Vec<u8>,
    pub log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ControlPlaneProcess {
    /// SQLite in a fresh data directory.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Extra environment, e.g. `ADP_DATABASE_URL`. An explicit `ADP_JWT_HS256_SECRET_FILE`
    /// replaces the generated per-process secret, so replicas started with the same file
    /// accept each other's tokens ([`ControlPlaneProcess::token`] signs with that file's
    /// contents); see [`write_jwt_secret`].
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let explicit_secret = env
            .iter()
            .find(|(key, _)| *key == "ADP_JWT_HS256_SECRET_FILE")
            .map(|(_, path)| PathBuf::from(path));
        let (secret_file, jwt_secret) = match explicit_secret {
            Some(path) => {
                let secret = std::fs::read(&path).unwrap();
                (path, secret)
            }
            None => {
                let path = data_dir.path().join("jwt-secret");
                (path.clone(), write_jwt_secret(&path))
            }
        };
        let mut command = Command::new(binary("adp-control-plane"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,sqlx=warn")
            .env("ADP_LOG_FORMAT", "json")
            .env("ADP_DATA_DIR", data_dir.path())
            .env("ADP_GRPC_ADDR", "127.0.0.1:0")
            .env("ADP_HTTP_ADDR", "127.0.0.1:0")
            .env("ADP_JWT_HS256_SECRET_FILE", &secret_file)
            .env("ADP_JWT_ISSUER", ISSUER)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (log_tx, log) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut ready = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                    && event["message"] == "control plane serving"
                    && let Some(tx) = ready.take()
                {
                    let grpc = event["grpc_addr"].as_str().unwrap_or_default().to_owned();
                    let http = event["http_addr"].as_str().unwrap_or_default().to_owned();
                    let _ = tx.send((grpc, http));
                }
                let _ = log_tx.send(line);
            }
        });
        let (grpc_addr, http_addr) = tokio::time::timeout(Duration::from_secs(30), ready_rx)
            .await
            .expect("control plane did not start within 30 s")
            .expect("control plane exited before serving");
        ControlPlaneProcess {
            child,
            grpc_url: format!("http://{grpc_addr}"),
            http_url: format!("http://{http_addr}"),
            data_dir,
            jwt_secret,
            log,
        }
    }

    /// A JWT for `subject` with the given permissions, signed with this process's secret.
    pub fn token(&self, subject: &str, permissions: &[&str]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": subject, "iat": now, "exp": now + 3600, "permissions": permissions,
        });
        adp_core::identity::mint_hs256(&self.jwt_secret, &claims).unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.token("admin", &["*"])
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.grpc_url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Everything the process has logged so far.
    pub fn drain_log(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.log.try_recv() {
            lines.push(line);
        }
        lines
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exit within 15 s")
            .unwrap()
    }
}

pub const ISSUER: &str = "https://issuer.adp.test";

/// Writes a fresh random HS256 secret to `path` and returns it. Pass the path as
/// `ADP_JWT_HS256_SECRET_FILE` to every [`ControlPlaneProcess::start_with`] that should
/// share it.
pub fn write_jwt_secret(path: &std::path::Path) -> Vec<u8> {
    let secret = format!("test-secret-{}", uuid::Uuid::new_v4()).into_bytes();
    std::fs::write(path, &secret).unwrap();
    secret
}

/// Wraps a message with `authorization: Bearer <token>`.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
