//! Admin API throughput: `CreateMCPServer` and `GetMCPServer` against the real
//! `adp-control-plane` binary on SQLite, next to a gRPC health `Check` baseline
//! (a round trip that touches no database and no auth) at the same concurrency.
//!
//! Run it with the wrapper, which builds the release binary first:
//!
//! ```text
//! tools/bench-admin-api
//! ```
//!
//! or by hand. The bench profile is `release`, and the harness looks for
//! `adp-control-plane` next to the bench executable (`target/release/`), so the
//! binary has to be built in release before the bench runs; a bench cannot make
//! cargo build another package:
//!
//! ```text
//! cargo build --release --bins -p adp-control-plane
//! cargo bench -p adp-e2e --bench admin_api
//! ```
//!
//! Every (operation, concurrency) pair runs closed-loop for a fixed time: N client
//! tasks each issue one call, wait for the answer, record its latency and go again.
//! Tasks share a few HTTP/2 connections (tonic `Channel`s) round-robin so a single
//! connection is not the bottleneck. The table gives throughput, p50/p99 latency,
//! throughput relative to health `Check`, and the CPU time the server and the bench
//! client each spent per call (from `/proc`, Linux only). Client and server share the
//! machine's cores, so on a small machine the client's own CPU use lowers the figures.
//!
//! The last line states PASS or FAIL against the targets (1,000 creates/s and
//! 10,000 gets/s at the best concurrency). A miss does not fail the process: this is
//! a report, not a test.
//!
//! Knobs (environment): `ADP_BENCH_SECS` (measured seconds per row, default 3),
//! `ADP_BENCH_WARMUP_SECS` (default 1), `ADP_BENCH_CONCURRENCY` (default `1,8,32`),
//! `ADP_BENCH_CHANNELS` (default 4), `ADP_BENCH_OPS` (default `health,create,get`;
//! a subset is handy under a profiler), `ADP_BENCH_RUST_LOG` (server log filter,
//! default `warn,adp_control_plane::app=info`: no per-call spans or logs, but the
//! harness still sees the `control plane serving` line it learns the addresses
//! from; any filter must keep that line). Set it to the harness default
//! `info,sqlx=warn` to see what per-call tracing costs.
#![allow(clippy::unwrap_used, missing_debug_implementations)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::{CreateMcpServerRequest, GetMcpServerRequest, McpServer, NoAuth, RemoteMcp};
use adp_e2e::{ControlPlaneProcess, authed};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const CREATE_TARGET: f64 = 1_000.0;
const GET_TARGET: f64 = 10_000.0;
/// Rows created before the get rows run; gets cycle through them.
const SEED_ROWS: u64 = 1_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Health,
    Create,
    Get,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Health => "Health.Check",
            Op::Create => "CreateMCPServer",
            Op::Get => "GetMCPServer",
        }
    }
}

/// What every client task shares.
struct Shared {
    token: String,
    channels: Vec<Channel>,
    /// Names handed out to creates; unique for the whole run.
    next_name: AtomicU64,
    /// How many seeded rows gets may read.
    seeded: u64,
}

impl Shared {
    fn new_name(&self) -> String {
        format!("bench-{}", self.next_name.fetch_add(1, Ordering::Relaxed))
    }
}

fn server(name: String) -> McpServer {
    McpServer {
        name,
        description: "admin API benchmark".into(),
        enabled: true,
        source: Some(Source::Remote(RemoteMcp {
            url: "https://mcp.example.com/mcp".into(),
            transport: 0,
        })),
        auth: Some(Auth::None(NoAuth {})),
        ..Default::default()
    }
}

/// The outcome of one client task.
#[derive(Default)]
struct TaskResult {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    finished: Option<Instant>,
}

async fn client_task(op: Op, task: usize, shared: Arc<Shared>, deadline: Instant) -> TaskResult {
    let channel = shared.channels[task % shared.channels.len()].clone();
    let mut health = HealthClient::new(channel.clone());
    let mut servers = McpServerServiceClient::new(channel);
    let mut result = TaskResult {
        latencies: Vec::with_capacity(16 * 1024),
        ..Default::default()
    };
    // spread tasks over the seeded rows
    let mut get_index = (task as u64).wrapping_mul(7_919);
    while Instant::now() < deadline {
        let started = Instant::now();
        let outcome = match op {
            Op::Health => health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(drop),
            Op::Create => {
                let request = CreateMcpServerRequest {
                    mcp_server: Some(server(shared.new_name())),
                    validate_only: false,
                };
                servers
                    .create_mcp_server(authed(request, &shared.token))
                    .await
                    .map(drop)
            }
            Op::Get => {
                get_index = get_index.wrapping_add(1);
                let request = GetMcpServerRequest {
                    name: format!("bench-{}", get_index % shared.seeded),
                };
                servers
                    .get_mcp_server(authed(request, &shared.token))
                    .await
                    .map(drop)
            }
        };
        result.latencies.push(started.elapsed());
        if let Err(status) = outcome {
            result.errors += 1;
            result.first_error.get_or_insert_with(|| status.to_string());
        }
    }
    result.finished = Some(Instant::now());
    result
}

/// One table row.
struct Row {
    op: Op,
    concurrency: usize,
    calls: usize,
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
    server_cpu_per_op: Option<Duration>,
    client_cpu_per_op: Option<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn run(
    op: Op,
    concurrency: usize,
    duration: Duration,
    shared: &Arc<Shared>,
    server_pid: Option<u32>,
) -> Row {
    let server_cpu_before = server_pid.and_then(process_cpu);
    let client_cpu_before = process_cpu(std::process::id());
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| tokio::spawn(client_task(op, task, shared.clone(), deadline)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut finished = started;
    for task in tasks {
        let result = task.await.unwrap();
        latencies.extend(result.latencies);
        errors += result.errors;
        first_error = first_error.or(result.first_error);
        finished = finished.max(result.finished.unwrap_or(started));
    }
    let elapsed = finished - started;
    let server_cpu = server_cpu_before
        .zip(server_pid.and_then(process_cpu))
        .map(|(before, after)| after.saturating_sub(before));
    let client_cpu = client_cpu_before
        .zip(process_cpu(std::process::id()))
        .map(|(before, after)| after.saturating_sub(before));
    latencies.sort_unstable();
    let calls = latencies.len();
    let per_op = |cpu: Duration| cpu / u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    Row {
        op,
        concurrency,
        calls,
        ops_per_sec: calls as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        server_cpu_per_op: server_cpu.map(per_op),
        client_cpu_per_op: client_cpu.map(per_op),
        errors,
        first_error,
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// User + system CPU time of a process so far, from `/proc/<pid>/stat`.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = clock_ticks_per_sec();
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

fn clock_ticks_per_sec() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The harness does not expose the child's pid: find our child process running
/// `adp-control-plane` (the kernel truncates `comm` to 15 bytes).
fn server_pid() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, tail) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1;
        let ppid: u32 = tail.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == me && "adp-control-plane".starts_with(comm) && !comm.is_empty()).then_some(pid)
    })
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<16} {:>5} {:>9} {:>9} {:>9} {:>9} {:>10} {:>14} {:>14} {:>7}",
        "op",
        "conc",
        "calls",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "vs health",
        "srv CPU µs/op",
        "cli CPU µs/op",
        "errors"
    );
    println!("{}", "-".repeat(110));
    for row in rows {
        let health = rows
            .iter()
            .find(|r| r.op == Op::Health && r.concurrency == row.concurrency)
            .map(|r| r.ops_per_sec);
        let ratio = match (row.op, health) {
            (Op::Health, _) => "1.00x".to_owned(),
            (_, Some(h)) if h > 0.0 => format!("{:.2}x", row.ops_per_sec / h),
            _ => "-".to_owned(),
        };
        let cpu = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), micros);
        println!(
            "{:<16} {:>5} {:>9} {:>9.0} {:>9} {:>9} {:>10} {:>14} {:>14} {:>7}",
            row.op.label(),
            row.concurrency,
            row.calls,
            row.ops_per_sec,
            micros(row.p50),
            micros(row.p99),
            ratio,
            cpu(row.server_cpu_per_op),
            cpu(row.client_cpu_per_op),
            row.errors
        );
    }
    for row in rows {
        if let Some(error) = &row.first_error {
            println!(
                "first error in {} at concurrency {}: {error}",
                row.op.label(),
                row.concurrency
            );
        }
    }
}

fn best(rows: &[Row], op: Op) -> Option<&Row> {
    rows.iter()
        .filter(|r| r.op == op)
        .max_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec))
}

fn verdict(rows: &[Row]) -> String {
    let mut parts = Vec::new();
    let mut pass = true;
    for (op, target) in [(Op::Create, CREATE_TARGET), (Op::Get, GET_TARGET)] {
        let Some(row) = best(rows, op) else {
            pass = false;
            parts.push(format!("{} not measured", op.label()));
            continue;
        };
        // a row with failed calls does not count towards a target
        let met = row.ops_per_sec >= target && row.errors == 0;
        pass &= met;
        parts.push(format!(
            "{} best {:.0}/s at concurrency {} {} the {:.0}/s target",
            op.label(),
            row.ops_per_sec,
            row.concurrency,
            if met { "meets" } else { "MISSES" },
            target
        ));
    }
    format!(
        "RESULT: {} — {}",
        if pass { "PASS" } else { "FAIL" },
        parts.join("; ")
    )
}

#[tokio::main]
async fn main() {
    let duration = Duration::from_secs_f64(env_or("ADP_BENCH_SECS", 3.0));
    let warmup = Duration::from_secs_f64(env_or("ADP_BENCH_WARMUP_SECS", 1.0));
    let channel_count: usize = env_or("ADP_BENCH_CHANNELS", 4).max(1);
    let ops: Vec<Op> = std::env::var("ADP_BENCH_OPS")
        .unwrap_or_else(|_| "health,create,get".into())
        .split(',')
        .filter_map(|name| match name.trim() {
            "health" => Some(Op::Health),
            "create" => Some(Op::Create),
            "get" => Some(Op::Get),
            _ => None,
        })
        .collect();
    let levels: Vec<usize> = std::env::var("ADP_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,8,32".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|&v| v > 0)
        .collect();
    let log_filter = std::env::var("ADP_BENCH_RUST_LOG")
        .unwrap_or_else(|_| "warn,adp_control_plane::app=info".into());

    let process = ControlPlaneProcess::start_with(&[("RUST_LOG", &log_filter)]).await;
    let pid = server_pid();
    let mut channels = Vec::with_capacity(channel_count);
    for _ in 0..channel_count {
        channels.push(process.channel().await);
    }
    let shared = Arc::new(Shared {
        token: process.admin_token(),
        channels,
        next_name: AtomicU64::new(0),
        seeded: SEED_ROWS,
    });

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "adp-control-plane admin API benchmark: SQLite, {cores} CPU cores shared by server and client, \
         {channel_count} HTTP/2 connections, {:.1}s per row after {:.1}s warm-up per op, server RUST_LOG={log_filter}",
        duration.as_secs_f64(),
        warmup.as_secs_f64()
    );
    if pid.is_none() {
        println!("(server process not found in /proc: CPU columns unavailable)");
    }

    // seed the rows gets read: names bench-0 .. bench-(SEED_ROWS-1)
    let mut seeded = 0;
    while seeded < SEED_ROWS {
        let batch = (SEED_ROWS - seeded).min(8);
        let mut set = tokio::task::JoinSet::new();
        for task in 0..batch {
            let shared = shared.clone();
            set.spawn(async move {
                let mut client = McpServerServiceClient::new(
                    shared.channels[task as usize % shared.channels.len()].clone(),
                );
                let request = CreateMcpServerRequest {
                    mcp_server: Some(server(shared.new_name())),
                    validate_only: false,
                };
                client
                    .create_mcp_server(authed(request, &shared.token))
                    .await
                    .expect("seeding CreateMCPServer");
            });
        }
        set.join_all().await;
        seeded += batch;
    }

    // warm-up at the highest concurrency opens every connection in the server's pools
    let warm_concurrency = levels.iter().copied().max().unwrap_or(1);
    for &op in &ops {
        run(op, warm_concurrency, warmup, &shared, pid).await;
    }

    let mut rows = Vec::new();
    for &concurrency in &levels {
        for &op in &ops {
            rows.push(run(op, concurrency, duration, &shared, pid).await);
        }
    }

    println!();
    print_table(&rows);
    println!();
    println!("{}", verdict(&rows));
    let _ = process.stop().await;
}
