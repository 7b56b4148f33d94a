//! Test harness: starts the control plane on loopback with port 0, either as the real
//! `adp-control-plane` binary (addresses learnt from its JSON log; its log, SIGTERM and
//! SIGKILL are there for the tests that need them) or in the test process from settings
//! built from a map (addresses from the bound listeners), and hands out gRPC clients and
//! tokens.
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

pub mod bench;
pub mod chromium;
pub mod consent;
pub mod eventually;
pub mod oidc;
pub mod pg;
pub mod proxy;
pub mod relay;
pub mod tls;
pub mod upstream;

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

/// What runs a [`ControlPlaneProcess`].
enum Running {
    Child(Child),
    /// Booted in the test's runtime; stops with it.
    InProcess(Option<adp_control_plane::ControlPlane>),
}

/// A control plane process (killed on drop), or one booted in-process.
pub struct ControlPlaneProcess {
    running: Running,
    pub grpc_url: String,
    pub http_url: String,
    pub data_dir: tempfile::TempDir,
    /// The HS256 secret file callers' JWTs are signed with (a proxy verifies with it too).
    pub jwt_secret_file: PathBuf,
    jwt_secret: Vec<u8>,
    env: Vec<(String, String)>,
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
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
        let (data_dir, jwt_secret_file, jwt_secret, env) = prepare(env);
        let (child, grpc_addr, http_addr, log) =
            spawn_control_plane(data_dir.path(), &env, "127.0.0.1:0", "127.0.0.1:0").await;
        ControlPlaneProcess {
            running: Running::Child(child),
            grpc_url: format!("http://{grpc_addr}"),
            http_url: format!("http://{http_addr}"),
            data_dir,
            jwt_secret_file,
            jwt_secret,
            env,
            log,
        }
    }

    /// [`ControlPlaneProcess::start_with`], booted in the test's own runtime from the
    /// same settings (as a map: the process environment is not read), so its readiness
    /// is its bound listeners, not a log line. It has no log to read and cannot be
    /// killed or restarted: tests of those use the real process.
    pub async fn start_in_process(env: &[(&str, &str)]) -> Self {
        let (data_dir, jwt_secret_file, jwt_secret, env) = prepare(env);
        let mut settings: std::collections::BTreeMap<String, String> = base_env(data_dir.path())
            .into_iter()
            .chain(env.iter().cloned())
            .collect();
        settings.insert("ADP_GRPC_ADDR".into(), "127.0.0.1:0".into());
        settings.insert("ADP_HTTP_ADDR".into(), "127.0.0.1:0".into());
        let flags = adp_control_plane::config::Flags::default();
        let settings = adp_control_plane::config::Settings::resolve(&flags, settings).unwrap();
        let cp = adp_control_plane::ControlPlane::start(settings)
            .await
            .unwrap();
        let (_, log) = tokio::sync::mpsc::unbounded_channel();
        ControlPlaneProcess {
            grpc_url: format!("http://{}", cp.grpc_addr),
            http_url: format!("http://{}", cp.http_addr),
            running: Running::InProcess(Some(cp)),
            data_dir,
            jwt_secret_file,
            jwt_secret,
            env,
            log,
        }
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.running {
            Running::Child(child) => child,
            Running::InProcess(_) => {
                panic!("an in-process control plane has no process: use ControlPlaneProcess::start")
            }
        }
    }
}

/// A fresh data directory, the JWT secret (the caller's or a generated one) and the
/// environment a control plane gets on top of [`base_env`].
fn prepare(env: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, Vec<u8>, Vec<(String, String)>) {
    let data_dir = tempfile::tempdir().unwrap();
    let explicit_secret = env
        .iter()
        .find(|(key, _)| *key == "ADP_JWT_HS256_SECRET_FILE")
        .map(|(_, path)| PathBuf::from(path));
    let (jwt_secret_file, jwt_secret) = match explicit_secret {
        Some(path) => {
            let secret = std::fs::read(&path).unwrap();
            (path, secret)
        }
        None => {
            let path = data_dir.path().join("jwt-secret");
            (path.clone(), write_jwt_secret(&path))
        }
    };
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.push((
        "ADP_JWT_HS256_SECRET_FILE".into(),
        jwt_secret_file.to_string_lossy().into_owned(),
    ));
    (data_dir, jwt_secret_file, jwt_secret, env)
}

impl ControlPlaneProcess {
    /// Kills the process (SIGKILL: no graceful anything) and keeps its data directory.
    pub async fn kill(&mut self) {
        let _ = self.child().kill().await;
    }

    /// Starts the process again on the same addresses and data directory.
    pub async fn restart(&mut self) {
        let grpc = self.grpc_url.trim_start_matches("http://").to_owned();
        let http = self.http_url.trim_start_matches("http://").to_owned();
        let (child, _, _, log) =
            spawn_control_plane(self.data_dir.path(), &self.env, &grpc, &http).await;
        *self.child() = child;
        self.log = log;
    }

    /// Runs the binary's command line (`vault rewrap` and the like) against this
    /// process's data directory and settings, as an operator on the same host would.
    pub async fn run_cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(binary("adp-control-plane"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,sqlx=warn")
            .env("ADP_DATA_DIR", self.data_dir.path())
            .args(args)
            .kill_on_drop(true);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
            .await
            .expect("the command finished within 120 s")
            .expect("the command ran")
    }

    /// A JWT for `subject` with the given permissions, signed with this process's secret
    /// and issued by its `ADP_JWT_ISSUER`.
    pub fn token(&self, subject: &str, permissions: &[&str]) -> String {
        let issuer = self.jwt_issuer();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": issuer, "sub": subject, "iat": now, "exp": now + 3600, "permissions": permissions,
        });
        adp_core::identity::mint_hs256(&self.jwt_secret, &claims).unwrap()
    }

    /// The `iss` this process expects: [`ISSUER`] unless its environment says otherwise.
    pub fn jwt_issuer(&self) -> &str {
        self.env
            .iter()
            .find(|(key, _)| key == "ADP_JWT_ISSUER")
            .map_or(ISSUER, |(_, value)| value.as_str())
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
        // an in-process control plane logs nowhere a test can read: saying "no lines"
        // would make every "nothing secret in the log" check pass vacuously
        self.child();
        let mut lines = Vec::new();
        while let Ok(line) = self.log.try_recv() {
            lines.push(line);
        }
        lines
    }

    /// SIGTERM and wait for the exit, keeping the data directory for a
    /// [`ControlPlaneProcess::restart`].
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child().id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(60), self.child().wait())
            .await
            .expect("exit within 60 s")
            .unwrap()
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        if let Running::InProcess(cp) = &mut self.running {
            if let Some(cp) = cp.take() {
                cp.shutdown().await;
            }
            return std::os::unix::process::ExitStatusExt::from_raw(0);
        }
        if let Some(pid) = self.child().id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(15), self.child().wait())
            .await
            .expect("exit within 15 s")
            .unwrap()
    }
}

pub const ISSUER: &str = "https://issuer.adp.test";

type Spawned = (
    Child,
    String,
    String,
    tokio::sync::mpsc::UnboundedReceiver<String>,
);

/// The settings every test control plane starts with, whichever way it runs.
fn base_env(data_dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("ADP_LOG_FORMAT".into(), "json".into()),
        (
            "ADP_DATA_DIR".into(),
            data_dir.to_string_lossy().into_owned(),
        ),
        ("ADP_JWT_ISSUER".into(), ISSUER.into()),
    ]
}

/// Starts the binary and waits for its "control plane serving" log line.
async fn spawn_control_plane(
    data_dir: &std::path::Path,
    env: &[(String, String)],
    grpc_addr: &str,
    http_addr: &str,
) -> Spawned {
    let mut command = Command::new(binary("adp-control-plane"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info,sqlx=warn")
        .envs(base_env(data_dir))
        .env("ADP_GRPC_ADDR", grpc_addr)
        .env("ADP_HTTP_ADDR", http_addr)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (grpc, http, log) =
        read_ready(stderr, "control plane serving", &["grpc_addr", "http_addr"])
            .await
            .expect("control plane did not start within 30 s");
    (child, grpc, http, log)
}

/// Forwards `stderr` lines to a channel and returns, with it, two fields of the first
/// JSON log line whose message is `ready`.
pub async fn read_ready(
    stderr: tokio::process::ChildStderr,
    ready: &'static str,
    fields: &'static [&'static str; 2],
) -> Option<(String, String, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let (log_tx, log) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut ready_tx = Some(ready_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == ready
                && let Some(tx) = ready_tx.take()
            {
                let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
                let _ = tx.send((field(fields[0]), field(fields[1])));
            }
            let _ = log_tx.send(line);
        }
    });
    let (a, b) = tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .ok()?
        .ok()?;
    Some((a, b, log))
}

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
