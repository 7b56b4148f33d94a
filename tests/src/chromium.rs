//! Browser tests: Debian's Chromium driven by a playwright-core script from
//! `tests/node`. The script prints JSON lines; at a checkpoint it waits for a line on
//! stdin so the test can look at the control plane in between.
//!
//! ```text
//! let mut run = PageScript::start("connections-page.mjs", &[("ADP_URL", url)]).await?;
//! while let Some(event) = run.next_event().await? { if event["checkpoint"].is_string() { run.resume().await?; } }
//! run.finish().await?;
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Debian's Chromium, installed with apt-get on first use when this process may (as
/// `.ci/run` does before the tests); otherwise an error that says how.
pub fn ensure_chromium() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        return Ok(path);
    }
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("adp-e2e-chromium.lock"))?;
    lock.lock()?;
    if path.exists() {
        return Ok(path);
    }
    eprintln!("adp-e2e: {CHROMIUM} is missing; installing Debian's chromium with apt-get");
    let apt_get = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    let install = ["install", "-y", "--no-install-recommends", "chromium"];
    // a fresh machine's package lists may be stale: refresh them once if needed
    let installed = apt_get(&install) || (apt_get(&["update"]) && apt_get(&install));
    if !installed || !path.exists() {
        bail!("browser tests need Debian's chromium at {CHROMIUM}: run `apt-get install chromium`");
    }
    Ok(path)
}

/// Where browser tests leave their screenshots: `target/<name>/`, kept as CI artifacts.
pub fn artifact_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// A running page script.
pub struct PageScript {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl PageScript {
    pub async fn start(script: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let chromium = ensure_chromium()?;
        let dir = crate::oidc::node::installed_node_dir().await?;
        let mut child = tokio::process::Command::new("node")
            .current_dir(&dir)
            .arg(script)
            .env("CHROMIUM", chromium)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn node (is Node.js 20+ on PATH?)")?;
        let stdin = child.stdin.take().context("node stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("node stdout")?).lines();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut errors = BufReader::new(child.stderr.take().context("node stderr")?).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                if let Ok(mut sink) = sink.lock() {
                    sink.push(line);
                }
            }
        });
        Ok(PageScript {
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    /// The next JSON line the script printed; `None` once it closed stdout.
    pub async fn next_event(&mut self) -> anyhow::Result<Option<serde_json::Value>> {
        loop {
            let Some(line) = self.stdout.next_line().await? else {
                return Ok(None);
            };
            match serde_json::from_str(&line) {
                Ok(value) => return Ok(Some(value)),
                // playwright may print warnings of its own
                Err(_) => eprintln!("page script: {line}"),
            }
        }
    }

    /// Lets the script go on past a checkpoint.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        self.stdin.write_all(b"continue\n").await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Waits for the script to exit; an error carries what it printed on stderr.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        let status = self.child.wait().await?;
        if !status.success() {
            bail!("page script failed ({status}):\n{}", self.stderr_text());
        }
        Ok(())
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|lines| lines.join("\n"))
            .unwrap_or_default()
    }
}
