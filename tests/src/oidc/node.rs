//! Runs the Node side: installs its npm dependencies once and reads its ready line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};

pub(super) fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs `npm ci` unless the pinned oidc-provider is already installed. An exclusive
/// lock on a file in the temp dir serializes installs across test processes.
pub(super) fn ensure_node_modules(dir: &Path) -> anyhow::Result<()> {
    if installed(dir) {
        return Ok(());
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("adp-e2e-npm-ci.lock"))?;
    lock.lock()?;
    if installed(dir) {
        return Ok(());
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--silent", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .context("run npm ci (is npm on PATH?)")?;
    if !status.success() {
        bail!("npm ci in {} failed: {status}", dir.display());
    }
    ensure!(
        installed(dir),
        "npm ci did not install the pinned oidc-provider"
    );
    Ok(())
}

fn installed(dir: &Path) -> bool {
    let version = |path: PathBuf, pointer: &str| -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        json.pointer(pointer)?.as_str().map(str::to_owned)
    };
    let wanted = version(dir.join("package.json"), "/dependencies/oidc-provider");
    let found = version(
        dir.join("node_modules/oidc-provider/package.json"),
        "/version",
    );
    wanted.is_some() && wanted == found
}

pub(super) fn collect_lines<R>(reader: R, log: Arc<Mutex<Vec<String>>>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut log) = log.lock() {
                log.push(line);
            }
        }
    });
}

/// Waits for `{"ready":true,"issuer":...}` on stdout; later lines go to the log.
pub(super) async fn read_ready_line(
    stdout: tokio::process::ChildStdout,
    log: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<String> {
    let mut lines = BufReader::new(stdout).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if let Ok(ready) = serde_json::from_str::<serde_json::Value>(&line)
                && ready["ready"] == true
                && let Some(issuer) = ready["issuer"].as_str()
            {
                return Ok(issuer.to_owned());
            }
            log.lock().map(|mut l| l.push(line)).ok();
        }
        bail!("authorization server exited before it was ready")
    };
    let issuer = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("authorization server not ready within 30 s")??;
    let rest = lines.into_inner();
    collect_lines(rest, log);
    Ok(issuer)
}
