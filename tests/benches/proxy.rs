//! MCP data-plane overhead: an MCP `tools/call` load, driven by `oha`, against
//!
//! - (a) `direct`: the `mcp-echo` upstream itself (the client sends the upstream token);
//! - (b) `adp-proxy`: `http://PROXY/mcp/{server}` with the caller's JWT, the user's upstream
//!   token cached in the proxy and injected upstream — see [`start_proxy_leg`];
//! - (c) `nginx`: the Debian nginx as a keep-alive reverse proxy that adds a static
//!   `Authorization` header (config in [`nginx_config`]).
//!
//! ```text
//! tools/bench-proxy
//! ```
//!
//! Each leg runs in two phases: `throughput` (closed loop, fixed concurrency, no rate
//! limit: requests/s) and `latency` (open loop at a fixed rate below saturation, with
//! oha's `--latency-correction`: what one hop adds when the cores are not saturated).
//! Legs are interleaved and their order rotated every round; the report shows the median
//! of the rounds. Each measured run follows a warm-up run with the same settings.
//!
//! Targets: b/a throughput ≥ 0.7, b throughput ≥ c, p99(b) − p99(a) ≤ 1 ms (latency phase).
//! oha, nginx, the proxy and the upstream all share the 2 cores; numbers are relative.
//!
//! Knobs (environment):
//! - `ADP_BENCH_OHA` — the oha binary (default: `target/bench-tools/bin/oha`, then `oha`);
//! - `ADP_BENCH_NGINX` — the nginx binary (default: `nginx` in PATH, then `/usr/sbin/nginx`);
//!   leg (c) is skipped when there is none;
//! - `ADP_BENCH_SECS` (10) measured seconds per run, `ADP_BENCH_WARMUP_SECS` (2);
//! - `ADP_BENCH_ROUNDS` (3); `ADP_BENCH_CONCURRENCY` (32) connections;
//! - `ADP_BENCH_RATE` (2000) requests/s for the latency phase, `0` skips the phase;
//! - `ADP_BENCH_PHASES` (`throughput,latency`);
//! - `ADP_BENCH_OHA_THREADS` oha's worker threads (oha's default: physical cores);
//! - `ADP_BENCH_ECHO_THREADS` mcp-echo's worker threads (default: one per core);
//! - `ADP_BENCH_NGINX_WORKERS` (`auto`);
//! - `ADP_BENCH_ECHO_ADDR` fixed upstream address (default `127.0.0.1:0`), and
//!   `ADP_BENCH_PROXY_URL` + `ADP_BENCH_PROXY_JWT`: measure an already running proxy
//!   (configured with that upstream) as leg (b) instead of [`start_proxy_leg`];
//! - `ADP_BENCH_STRICT=1` exits non-zero when a target is missed.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The token nginx injects, and the one the direct leg sends itself.
const UPSTREAM_TOKEN: &str = "static-benchmark-token";
const PROTOCOL_VERSION: &str = "2025-06-18";
const ECHO_TEXT: &str = "hello from the proxy benchmark";
/// The MCP server name in `/mcp/{server_name}` for the proxied legs.
const SERVER_NAME: &str = "echo";

fn tool_call_body() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{ECHO_TEXT}"}}}}}}"#
    )
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `name` as found in PATH, else the first existing fallback.
fn find_program(name: &str, fallbacks: &[PathBuf]) -> Option<PathBuf> {
    let in_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    in_path.or_else(|| fallbacks.iter().find(|p| p.is_file()).cloned())
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the effective user
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(addr: SocketAddr, child: &mut Child, what: &str, log: Option<&Path>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        let log = || {
            log.and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited with {status} before listening on {addr}\n{}",
                log()
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} is not listening on {addr} after 10 s\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ───────────────────────────── upstream: mcp-echo ─────────────────────────────

/// The `mcp-echo` upstream (target/<profile>/mcp-echo); killed on drop.
pub use adp_e2e::bench::Echo;

// ───────────────────────────── leg (c): nginx ─────────────────────────────

/// nginx.conf for a keep-alive reverse proxy on `127.0.0.1:listen` that maps
/// `/mcp/{server}` to the upstream's `/mcp` and sets a static `Authorization` header.
/// Every path nginx writes (pid, error log, temp dirs) is under `dir`.
pub fn nginx_config(dir: &Path, listen: u16, upstream: SocketAddr, workers: &str) -> String {
    let d = dir.display();
    let mut conf = String::new();
    if running_as_root() {
        // workers would otherwise drop to `nobody`, who cannot enter the 0700 temp dir
        conf.push_str("user root root;\n");
    }
    write!(
        conf,
        r#"daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # nginx closes a client connection after 1000 requests by default; the other legs never do
    keepalive_requests 1000000;
    keepalive_timeout 75s;

    upstream mcp_echo {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        listen 127.0.0.1:{listen};

        location /mcp/ {{
            # /mcp/{{server_name}} → upstream /mcp
            rewrite ^/mcp/[^/]+$ /mcp break;
            proxy_pass http://mcp_echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {UPSTREAM_TOKEN}";
            # as an MCP proxy must, for SSE responses
            proxy_buffering off;
        }}
    }}
}}
"#
    )
    .unwrap();
    conf
}

/// nginx in the foreground (`daemon off`) with a config in its own temp dir; killed on drop.
pub struct Nginx {
    child: Child,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub version: String,
}

impl Nginx {
    pub async fn start(nginx: &Path, upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let workers = std::env::var("ADP_BENCH_NGINX_WORKERS").unwrap_or_else(|_| "auto".into());
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir.path(), port, upstream, &workers)).unwrap();
        let error_log = dir.path().join("error.log");
        let version = std::process::Command::new(nginx)
            .arg("-v")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
            .unwrap_or_default();
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // a last resort: SIGKILL reaches only the master, Drop asks it to quit first
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", nginx.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, &mut child, "nginx", Some(&error_log)).await;
        Nginx {
            child,
            dir,
            addr,
            version,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp/{SERVER_NAME}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers and exits; kill_on_drop's SIGKILL would
        // leave the workers running
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ───────────────────────────── leg (b): adp-proxy ─────────────────────────────

/// One thing to load: a URL and the bearer token the client sends.
#[derive(Clone)]
pub struct Target {
    pub label: &'static str,
    pub url: String,
    pub bearer: Option<String>,
}

/// Leg (b) as a [`Target`]: the proxy's `/mcp/{server_name}` URL and the caller's JWT.
pub fn proxy_target(proxy_url: &str, jwt: &str) -> Target {
    Target {
        label: "adp-proxy",
        url: proxy_url.to_owned(),
        bearer: Some(jwt.to_owned()),
    }
}

/// Whatever must stay alive while leg (b) runs (processes killed on drop, temp dirs…).
pub type Guard = Box<dyn Any + Send>;

/// Leg (b): a control plane (SQLite) with the `echo` server registered with a static key,
/// and an adp-proxy subscribed to it. The credential path is the one user OAuth takes:
/// the proxy verifies the caller's JWT, finds the credential it cached from
/// `GetUpstreamCredential` for (user, server), injects it and forwards. (User OAuth needs an
/// https upstream, and TLS to the upstream would change what legs (a) and (c) measure.)
async fn start_proxy_leg(echo: &Echo) -> Option<(Target, Guard)> {
    if let (Ok(url), Ok(jwt)) = (
        std::env::var("ADP_BENCH_PROXY_URL"),
        std::env::var("ADP_BENCH_PROXY_JWT"),
    ) {
        // an externally started proxy, configured with ADP_BENCH_ECHO_ADDR as upstream
        return Some((proxy_target(&url, &jwt), Box::new(())));
    }
    let (cp, proxy, jwt) =
        adp_e2e::bench::static_key_proxy(&echo.url(), SERVER_NAME, UPSTREAM_TOKEN).await;
    let target = proxy_target(&proxy.mcp_url(SERVER_NAME), &jwt);
    Some((target, Box::new((cp, proxy))))
}

// ───────────────────────────── oha ─────────────────────────────

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

/// One request through `target`, checked end to end, before anything is measured.
async fn sanity_check(target: &Target) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(&target.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .body(tool_call_body());
    if let Some(token) = &target.bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {} failed: {e}", target.label, target.url));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(
        status.is_success() && body.contains(ECHO_TEXT) && body.contains(r#""isError":false"#),
        "{}: {} answered {status}: {body}",
        target.label,
        target.url
    );
}

// ───────────────────────────── report ─────────────────────────────

/// `arg` as a POSIX shell word, so the printed oha command can be pasted.
fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The medians over the rounds of one leg in one phase.
struct Summary {
    label: &'static str,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    failed: u64,
    rounds: Vec<f64>,
}

fn summarize(label: &'static str, runs: &[Measurement]) -> Summary {
    Summary {
        label,
        rps: median(runs.iter().map(|m| m.rps).collect()),
        p50_ms: median(runs.iter().map(|m| m.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|m| m.p99_ms).collect()),
        non_2xx: runs.iter().map(Measurement::non_2xx).sum(),
        failed: runs.iter().map(Measurement::failed).sum(),
        rounds: runs.iter().map(|m| m.rps).collect(),
    }
}

fn print_table(load: &Load, rows: &[Summary]) {
    let how = match load.rate {
        Some(rate) => format!("{rate} req/s offered, {} connections", load.concurrency),
        None => format!("{} connections, closed loop", load.concurrency),
    };
    println!("\n{} — {how} (medians of rounds)", load.phase);
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>8}  req/s per round",
        "target", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors"
    );
    for row in rows {
        let rounds: Vec<String> = row.rounds.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "{:<10} {:>10.0} {:>9.3} {:>9.3} {:>9} {:>8}  {}",
            row.label,
            row.rps,
            row.p50_ms,
            row.p99_ms,
            row.non_2xx,
            row.failed,
            rounds.join(" ")
        );
    }
}

/// Prints the ratios for one phase; returns the targets missed.
fn print_ratios(load: &Load, rows: &[Summary]) -> Vec<String> {
    let find = |label: &str| rows.iter().find(|r| r.label == label);
    let (direct, proxy, nginx) = (find("direct"), find("adp-proxy"), find("nginx"));
    let mut missed = Vec::new();
    let mut check = |ok: bool, text: String| {
        println!("  {} {text}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            missed.push(format!("{}: {text}", load.phase));
        }
    };
    if let (Some(a), Some(c)) = (direct, nginx) {
        println!(
            "  info nginx/direct throughput {:.2}, nginx p99 added {:+.3} ms",
            c.rps / a.rps,
            c.p99_ms - a.p99_ms
        );
    }
    let Some(b) = proxy else {
        println!("  (leg b, adp-proxy, not configured: see start_proxy_leg)");
        return missed;
    };
    if let Some(a) = direct {
        let added = b.p99_ms - a.p99_ms;
        if load.rate.is_none() {
            check(
                b.rps / a.rps >= 0.7,
                format!("adp-proxy/direct throughput {:.2} (≥ 0.70)", b.rps / a.rps),
            );
            println!("  info adp-proxy p99 added {added:+.3} ms (saturated: mostly queueing)");
        } else {
            check(
                added <= 1.0,
                format!("adp-proxy p99 added {added:+.3} ms (≤ 1 ms)"),
            );
        }
    }
    if let Some(c) = nginx
        && load.rate.is_none()
    {
        check(
            b.rps >= c.rps,
            format!("adp-proxy/nginx throughput {:.2} (≥ 1.00)", b.rps / c.rps),
        );
    }
    if b.non_2xx + b.failed > 0 {
        check(
            false,
            format!(
                "adp-proxy answered {} non-2xx, {} failed",
                b.non_2xx, b.failed
            ),
        );
    }
    missed
}

// ───────────────────────────── main ─────────────────────────────

#[tokio::main]
async fn main() {
    let secs = env_or("ADP_BENCH_SECS", 10u64);
    let warmup = env_or("ADP_BENCH_WARMUP_SECS", 2u64);
    let rounds = env_or("ADP_BENCH_ROUNDS", 3usize).max(1);
    let concurrency = env_or("ADP_BENCH_CONCURRENCY", 32usize).max(1);
    let rate = env_or("ADP_BENCH_RATE", 2000u64);
    let phases = std::env::var("ADP_BENCH_PHASES").unwrap_or_else(|_| "throughput,latency".into());
    let mut loads = Vec::new();
    if phases.contains("throughput") {
        loads.push(Load {
            phase: "throughput",
            concurrency,
            rate: None,
        });
    }
    if phases.contains("latency") && rate > 0 {
        loads.push(Load {
            phase: "latency",
            concurrency,
            rate: Some(rate),
        });
    }

    let oha = Oha::find();
    let echo = Echo::start().await;
    let mut targets = vec![Target {
        label: "direct",
        url: echo.url(),
        bearer: Some(UPSTREAM_TOKEN.into()),
    }];
    let mut guards: Vec<Guard> = Vec::new();
    if let Some((target, guard)) = start_proxy_leg(&echo).await {
        targets.push(target);
        guards.push(guard);
    }
    let nginx_bin = std::env::var_os("ADP_BENCH_NGINX")
        .map(PathBuf::from)
        .or_else(|| find_program("nginx", &[PathBuf::from("/usr/sbin/nginx")]));
    let nginx = match nginx_bin {
        Some(bin) => Some(Nginx::start(&bin, echo.addr).await),
        None => {
            println!(
                "nginx not found: leg (c) skipped (run tools/bench-proxy, or set ADP_BENCH_NGINX)"
            );
            None
        }
    };
    if let Some(nginx) = &nginx {
        targets.push(Target {
            label: "nginx",
            url: nginx.url(),
            bearer: None,
        });
    }
    for target in &targets {
        sanity_check(target).await;
    }

    println!(
        "MCP tools/call through a proxy: upstream mcp-echo at {}",
        echo.url()
    );
    println!("oha: {} ({})", oha.version, oha.path.display());
    println!("load average at start: {}", load_average());
    if let Some(nginx) = &nginx {
        println!("nginx: {}", nginx.version);
    }
    println!(
        "oha flags: {} <url>",
        oha.args(&targets[0], &loads[0], secs)
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{rounds} rounds × {} legs × {} phases, {warmup} s warm-up + {secs} s each",
        targets.len(),
        loads.len()
    );

    // results[load][target] = one measurement per round
    let mut results = vec![vec![Vec::new(); targets.len()]; loads.len()];
    for round in 0..rounds {
        for (l, load) in loads.iter().enumerate() {
            // rotate the order every round: a, b, c / b, c, a / c, a, b
            for k in 0..targets.len() {
                let t = (k + round) % targets.len();
                let target = &targets[t];
                if warmup > 0 {
                    oha.run(target, load, warmup).await;
                }
                let m = oha.run(target, load, secs).await;
                eprintln!(
                    "round {} {:<10} {:<10} {:>8.0} req/s p50 {:.3} ms p99 {:.3} ms statuses {:?} errors {:?}",
                    round + 1,
                    load.phase,
                    target.label,
                    m.rps,
                    m.p50_ms,
                    m.p99_ms,
                    m.statuses,
                    m.errors
                );
                results[l][t].push(m);
            }
        }
    }

    // other work on the machine skews the legs it overlaps; the rounds' spread shows it
    println!("load average at end: {}", load_average());
    let mut missed = Vec::new();
    for (l, load) in loads.iter().enumerate() {
        let rows: Vec<Summary> = targets
            .iter()
            .zip(&results[l])
            .map(|(target, runs)| summarize(target.label, runs))
            .collect();
        print_table(load, &rows);
        missed.extend(print_ratios(load, &rows));
    }
    drop(nginx);
    drop(guards);
    if !missed.is_empty() && std::env::var("ADP_BENCH_STRICT").is_ok_and(|v| v == "1") {
        eprintln!("targets missed: {}", missed.join("; "));
        std::process::exit(1);
    }
}
