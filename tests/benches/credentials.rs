//! `TokenService.GetUpstreamCredential` throughput for cached, valid user tokens,
//! against the real release `adp-control-plane` binary (SQLite) after real consents
//! through the oidc-provider authorization server, next to a gRPC health `Check`
//! (no database, no auth) at the same concurrency as the baseline.
//!
//! ```text
//! tools/bench-credentials
//! ```
//!
//! Target: 5,000 calls/s at the best concurrency on the 2-core machine. Client,
//! server and the authorization server share the cores. Knobs: `ADP_BENCH_SECS`
//! (default 3), `ADP_BENCH_CONCURRENCY` (default `1,8,32`), `ADP_BENCH_USERS` (default 20).
#![allow(clippy::unwrap_used, missing_debug_implementations)]

#[path = "../tests/consent/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use adp_api::v1::token_service_client::TokenServiceClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use support::{Options, SERVER, World, credential_request};

const TARGET: f64 = 5_000.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Health,
    Credential,
}

struct Row {
    op: Op,
    concurrency: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(
    op: Op,
    concurrency: usize,
    channels: &[Channel],
    users: &[String],
    proxy: &str,
    secs: u64,
) -> Row {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let channel = channels[task % channels.len()].clone();
        let user = users[task % users.len()].clone();
        let proxy = proxy.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut health = HealthClient::new(channel.clone());
            let mut tokens = TokenServiceClient::new(channel);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                match op {
                    Op::Health => {
                        health
                            .check(HealthCheckRequest {
                                service: String::new(),
                            })
                            .await
                            .unwrap();
                    }
                    Op::Credential => {
                        let request = credential_request(SERVER, Some(&user), Some(&proxy));
                        let answer = tokens
                            .get_upstream_credential(request)
                            .await
                            .unwrap()
                            .into_inner();
                        assert!(answer.header_value.starts_with("Bearer "));
                    }
                }
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64().max(secs as f64);
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Row {
        op,
        concurrency,
        per_sec: all.len() as f64 / elapsed,
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

#[tokio::main]
async fn main() {
    let secs = env_or("ADP_BENCH_SECS", 3u64);
    let user_count = env_or("ADP_BENCH_USERS", 20usize);
    let concurrency: Vec<usize> = std::env::var("ADP_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,8,32".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();

    // hour-long access tokens: every measured call is served from the vault, no refresh
    let world = World::start(
        Options::default()
            .ttl(3600)
            .env("RUST_LOG", "warn,adp_control_plane::app=info"),
    )
    .await;
    let browser = world.browser();
    let mut users = Vec::new();
    for n in 0..user_count {
        let subject = format!("user{n}");
        let fresh = world.browser();
        world.consent(&fresh, &subject).await;
        users.push(world.user(&subject));
    }
    drop(browser);
    let channels = vec![world.channel(0), world.channel(0)];
    let refreshes_before = world
        .stats()
        .await
        .count(adp_e2e::oidc::REFRESH_TOKEN_GRANT);

    // warm up
    run(Op::Credential, 8, &channels, &users, &world.proxy, 1).await;
    let mut rows = Vec::new();
    for &c in &concurrency {
        rows.push(run(Op::Health, c, &channels, &users, &world.proxy, secs).await);
        rows.push(run(Op::Credential, c, &channels, &users, &world.proxy, secs).await);
    }
    let refreshes = world
        .stats()
        .await
        .count(adp_e2e::oidc::REFRESH_TOKEN_GRANT)
        - refreshes_before;

    println!("GetUpstreamCredential, cached valid tokens, {user_count} users, {secs} s per row");
    println!(
        "{:<22} {:>5} {:>12} {:>10} {:>10} {:>14}",
        "op", "conc", "calls/s", "p50 µs", "p99 µs", "vs health"
    );
    for row in &rows {
        let health = rows
            .iter()
            .find(|r| r.op == Op::Health && r.concurrency == row.concurrency)
            .map(|r| r.per_sec)
            .unwrap_or(f64::NAN);
        let name = match row.op {
            Op::Health => "health Check",
            Op::Credential => "GetUpstreamCredential",
        };
        println!(
            "{:<22} {:>5} {:>12.0} {:>10} {:>10} {:>13.2}x",
            name,
            row.concurrency,
            row.per_sec,
            row.p50.as_micros(),
            row.p99.as_micros(),
            row.per_sec / health
        );
    }
    let best = rows
        .iter()
        .filter(|r| r.op == Op::Credential)
        .map(|r| r.per_sec)
        .fold(0.0, f64::max);
    println!("token-endpoint refreshes during the run: {refreshes} (expected 0)");
    println!(
        "{}: best {:.0} GetUpstreamCredential calls/s (target {:.0})",
        if best >= TARGET { "PASS" } else { "FAIL" },
        best,
        TARGET
    );
}
