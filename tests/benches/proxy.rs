//! MCP data-plane overhead: an MCP `tools/call` load, driven by `oha`, against
//!
//! - (a) `direct`: the `mcp-echo` upstream itself (the client sends the upstream token);
//! - (b) `adp-proxy`: `http://PROXY/mcp/{server}` with the caller's JWT, the user's upstream
//!   token cached in the proxy and injected upstream — see [`start_proxy_leg`];
//! - (c) `nginx`: the Debian nginx as a keep-alive reverse proxy that adds a static
//!   `Authorization` header (config in [`nginx::nginx_config`]).
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

#[path = "proxy/nginx.rs"]
pub mod nginx;
#[path = "proxy/oha.rs"]
pub mod oha;
#[path = "proxy/report.rs"]
pub mod report;

use std::any::Any;
use std::path::{Path, PathBuf};

use nginx::Nginx;
use oha::{Load, Oha};
use report::{Summary, print_ratios, print_table, shell_quote, summarize};

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

// ───────────────────────────── upstream: mcp-echo ─────────────────────────────

/// The `mcp-echo` upstream (target/<profile>/mcp-echo); killed on drop.
pub use adp_e2e::bench::Echo;

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
