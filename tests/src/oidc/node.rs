//! Runs the Node side: installs its npm dependencies once and reads its ready line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};

pub(crate) fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs `npm ci` unless the pinned dependencies are already installed. An exclusive lock
/// on a file in the temp dir serializes installs across test processes.
pub(crate) fn ensure_node_modules(dir: &Path) -> anyhow::Result<()> {
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
        "npm ci did not install the versions pinned in {}/package.json",
        dir.display()
    );
    Ok(())
}

/// True when every dependency in package.json is installed at exactly its pinned version
/// (all pins are exact), so adding a package or bumping one makes the next run reinstall.
fn installed(dir: &Path) -> bool {
    let read_json = |path: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let Some(manifest) = read_json(dir.join("package.json")) else {
        return false;
    };
    let Some(dependencies) = manifest["dependencies"].as_object() else {
        return false;
    };
    dependencies.iter().all(|(name, wanted)| {
        let found = read_json(dir.join("node_modules").join(name).join("package.json"));
        wanted.as_str().is_some() && found.is_some_and(|found| found["version"] == *wanted)
    })
}

pub(crate) fn collect_lines<R>(reader: R, log: Arc<Mutex<Vec<String>>>)
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

/// Waits for the `{"ready":true,...}` line on stdout and returns its string field `field`
/// (`issuer`, `url`); later lines go to the log.
pub(crate) async fn read_ready_line(
    stdout: tokio::process::ChildStdout,
    log: Arc<Mutex<Vec<String>>>,
    field: &str,
) -> anyhow::Result<String> {
    let mut lines = BufReader::new(stdout).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if let Ok(ready) = serde_json::from_str::<serde_json::Value>(&line)
                && ready["ready"] == true
                && let Some(value) = ready[field].as_str()
            {
                return Ok(value.to_owned());
            }
            log.lock().map(|mut l| l.push(line)).ok();
        }
        bail!("node exited before printing its ready line")
    };
    let value = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("node process not ready within 30 s")??;
    let rest = lines.into_inner();
    collect_lines(rest, log);
    Ok(value)
}

/// `node_dir()`, with the pinned npm packages installed.
pub(crate) async fn installed_node_dir() -> anyhow::Result<PathBuf> {
    let dir = node_dir();
    let install_dir = dir.clone();
    tokio::task::spawn_blocking(move || ensure_node_modules(&install_dir)).await??;
    Ok(dir)
}

/// A Node script from `node_dir()` (modules installed first), alive while its stdin is
/// held, and the value of `ready_field` from its ready line.
pub(crate) struct Script {
    pub child: tokio::process::Child,
    pub stdin: tokio::process::ChildStdin,
    pub log: Arc<Mutex<Vec<String>>>,
    pub ready: String,
}

pub(crate) async fn spawn_script(
    script: &str,
    args: &[&std::ffi::OsStr],
    ready_field: &str,
) -> anyhow::Result<Script> {
    let dir = installed_node_dir().await?;
    let mut child = tokio::process::Command::new("node")
        .current_dir(&dir)
        .arg(script)
        .args(args)
        .args(["--port", "0", "--exit-with-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawn node (is Node.js 20+ on PATH?)")?;
    let stdin = child.stdin.take().context("node stdin")?;
    let log = Arc::new(Mutex::new(Vec::new()));
    collect_lines(child.stderr.take().context("node stderr")?, log.clone());
    let stdout = child.stdout.take().context("node stdout")?;
    let ready = read_ready_line(stdout, log.clone(), ready_field)
        .await
        .with_context(|| {
            format!(
                "{script} log:\n{}",
                log.lock().map(|l| l.join("\n")).unwrap_or_default()
            )
        })?;
    Ok(Script {
        child,
        stdin,
        log,
        ready,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: PathBuf, json: serde_json::Value) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, json.to_string()).unwrap();
    }

    #[test]
    fn installed_needs_every_pinned_dependency_at_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root.join("package.json"),
            serde_json::json!({"dependencies": {"oidc-provider": "9.13.3", "@scope/sdk": "1.2.3"}}),
        );
        write(
            root.join("node_modules/oidc-provider/package.json"),
            serde_json::json!({"version": "9.13.3"}),
        );
        assert!(!installed(root), "scoped package missing");

        let sdk = root.join("node_modules/@scope/sdk/package.json");
        write(sdk.clone(), serde_json::json!({"version": "1.2.2"}));
        assert!(!installed(root), "scoped package at the wrong version");

        write(sdk, serde_json::json!({"version": "1.2.3"}));
        assert!(installed(root));
    }
}
