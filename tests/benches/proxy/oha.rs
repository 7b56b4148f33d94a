//! The load generator: finding `oha`, the arguments of one run, and what it measured.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

use super::{PROTOCOL_VERSION, Target, find_program, tool_call_body, workspace_root};

pub struct Oha {
    pub path: PathBuf,
    pub version: String,
    pub threads: Option<String>,
}

impl Oha {
    pub fn find() -> Self {
        let path = std::env::var_os("ADP_BENCH_OHA")
            .map(PathBuf::from)
            // cargo runs benches in the package directory: a relative path is the workspace's
            .map(|p| {
                if p.is_relative() {
                    workspace_root().join(p)
                } else {
                    p
                }
            })
            .or_else(|| {
                find_program(
                    "oha",
                    &[workspace_root().join("target/bench-tools/bin/oha")],
                )
            })
            .filter(|p| p.is_file())
            .expect("oha not found: run tools/bench-proxy, or set ADP_BENCH_OHA");
        let version = std::process::Command::new(&path)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Oha {
            path,
            version,
            threads: std::env::var("ADP_BENCH_OHA_THREADS").ok(),
        }
    }

    /// The oha arguments for one run (without the URL).
    pub fn args(&self, target: &Target, load: &Load, secs: u64) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--no-tui".into(),
            "--output-format".into(),
            "json".into(),
            "-z".into(),
            format!("{secs}s"),
            // let in-flight requests finish instead of counting them as aborted
            "-w".into(),
            "-c".into(),
            load.concurrency.to_string(),
            "-m".into(),
            "POST".into(),
            "-H".into(),
            "Content-Type: application/json".into(),
            "-H".into(),
            "Accept: application/json, text/event-stream".into(),
            "-H".into(),
            format!("MCP-Protocol-Version: {PROTOCOL_VERSION}"),
            "-d".into(),
            tool_call_body(),
        ];
        if let Some(token) = &target.bearer {
            args.extend(["-H".into(), format!("Authorization: Bearer {token}")]);
        }
        if let Some(rate) = load.rate {
            args.extend(["-q".into(), rate.to_string(), "--latency-correction".into()]);
        }
        if let Some(threads) = &self.threads {
            args.extend(["--worker-threads".into(), threads.clone()]);
        }
        args
    }

    pub async fn run(&self, target: &Target, load: &Load, secs: u64) -> Measurement {
        let output = Command::new(&self.path)
            .args(self.args(target, load, secs))
            .arg(&target.url)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "oha against {} failed ({}): {}",
            target.url,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Measurement::parse(&output.stdout)
    }
}

/// How one run loads the target.
#[derive(Clone)]
pub struct Load {
    pub phase: &'static str,
    pub concurrency: usize,
    /// requests/s for an open-loop run; `None`: as fast as the connections go
    pub rate: Option<u64>,
}

/// What one oha run measured (latencies in milliseconds).
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub success_rate: f64,
    pub total: u64,
    pub statuses: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Measurement {
    /// oha 1.x `--output-format json`.
    pub fn parse(json: &[u8]) -> Self {
        let v: serde_json::Value = serde_json::from_slice(json).unwrap_or_else(|e| {
            panic!(
                "oha output is not JSON ({e}): {}",
                String::from_utf8_lossy(json)
            )
        });
        let f = |pointer: &str| {
            v.pointer(pointer)
                .and_then(|x| x.as_f64())
                .unwrap_or(f64::NAN)
        };
        let counts = |key: &str| -> BTreeMap<String, u64> {
            v[key]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let statuses = counts("statusCodeDistribution");
        Measurement {
            rps: f("/summary/requestsPerSec"),
            p50_ms: f("/latencyPercentiles/p50") * 1e3,
            p99_ms: f("/latencyPercentiles/p99") * 1e3,
            success_rate: f("/summary/successRate"),
            total: statuses.values().sum(),
            statuses,
            errors: counts("errorDistribution"),
        }
    }

    /// Responses whose status is not 2xx.
    pub fn non_2xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(code, _)| !code.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}
