//! Credential issuance while every user's token expires (issue 13): 1,000 users whose
//! 20-second access tokens (rotating refresh tokens, oidc-provider) run out again and
//! again during the run, against the real release `adp-control-plane`, on SQLite and,
//! with `ADP_TEST_DATABASE_URL` set, on PostgreSQL. Printed side by side, from one run:
//! calls/s, `GetUpstreamCredential` p50/p99 over every call, p99 of the calls that
//! carried a refresh (the answer changed), refreshes/s at the provider, and any
//! `invalid_grant` (refresh-token reuse; must be 0).
//!
//! ```text
//! tools/bench-refresh-wave
//! ```
//!
//! Knobs: `ADP_BENCH_USERS` (default 1000), `ADP_BENCH_SECS` (default 30),
//! `ADP_BENCH_CONCURRENCY` (default 32), `ADP_BENCH_TTL_SECS` (default 20).
#![allow(clippy::unwrap_used, missing_debug_implementations)]

#[path = "../tests/consent/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adp_api::v1::token_service_client::TokenServiceClient;
use adp_e2e::oidc::REFRESH_TOKEN_GRANT;
use futures::StreamExt;

use support::{Options, SERVER, World, credential_request};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    backend: &'static str,
    /// gRPC health `Check`s per second at the same concurrency, same process, same run.
    health_per_sec: f64,
    calls_per_sec: f64,
    p50: Duration,
    p99: Duration,
    refreshing_calls: usize,
    refreshing_p99: Duration,
    refreshes_per_sec: f64,
    invalid_grant: u64,
    errors: usize,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

async fn measure(backend: &'static str, shared_env: &[(&str, &str)]) -> Figures {
    let users = env_or("ADP_BENCH_USERS", 1000usize);
    let secs = env_or("ADP_BENCH_SECS", 30u64);
    let concurrency = env_or("ADP_BENCH_CONCURRENCY", 32usize);
    let ttl = env_or("ADP_BENCH_TTL_SECS", 20u64);
    let options = Options::default()
        .ttl(ttl)
        .env("ADP_REFRESH_JITTER_SECS", 15)
        .env("RUST_LOG", "warn,adp_control_plane::app=info");
    let world = World::start_replicas(options, 1, shared_env).await;
    let consented = Instant::now();
    let subjects: Vec<String> = (0..users).map(|n| format!("user{n}")).collect();
    futures::stream::iter(subjects.iter())
        .for_each_concurrent(8, |subject| {
            let world = &world;
            async move { world.consent(&world.browser(), subject).await }
        })
        .await;
    eprintln!("{backend}: {users} consents in {:?}", consented.elapsed());
    let health_per_sec = health_baseline(&world, concurrency).await;
    let jwts: Arc<Vec<String>> = Arc::new(subjects.iter().map(|s| world.user(s)).collect());
    let before = world.stats().await;

    let deadline = Instant::now() + Duration::from_secs(secs);
    let last_seen: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (channel, proxy) = (world.channel(0), world.proxy.clone());
        let (jwts, last_seen) = (jwts.clone(), last_seen.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = TokenServiceClient::new(channel);
            let (mut all, mut refreshing, mut errors) = (Vec::new(), Vec::new(), 0usize);
            let mut user = worker;
            while Instant::now() < deadline {
                user = (user + concurrency) % jwts.len();
                let request = credential_request(SERVER, Some(&jwts[user]), Some(&proxy));
                let started = Instant::now();
                let answer = client.get_upstream_credential(request).await;
                let took = started.elapsed();
                all.push(took);
                match answer {
                    Ok(answer) => {
                        let value = answer.into_inner().header_value;
                        let previous = last_seen.lock().unwrap().insert(user, value.clone());
                        if previous.is_some_and(|p| p != value) {
                            refreshing.push(took);
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (all, refreshing, errors)
        }));
    }
    let started = Instant::now();
    let (mut all, mut refreshing, mut errors) = (Vec::new(), Vec::new(), 0);
    for task in tasks {
        let (a, r, e) = task.await.unwrap();
        all.extend(a);
        refreshing.extend(r);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = world.stats().await;
    all.sort();
    refreshing.sort();
    Figures {
        backend,
        health_per_sec,
        calls_per_sec: all.len() as f64 / elapsed,
        p50: quantile(&all, 0.50),
        p99: quantile(&all, 0.99),
        refreshing_calls: refreshing.len(),
        refreshing_p99: quantile(&refreshing, 0.99),
        refreshes_per_sec: (after.count(REFRESH_TOKEN_GRANT) - before.count(REFRESH_TOKEN_GRANT))
            as f64
            / elapsed,
        invalid_grant: after.invalid_grant - before.invalid_grant,
        errors,
    }
}

/// The baseline: a bare health `Check` (no database, no auth) for 5 s.
async fn health_baseline(world: &World, concurrency: usize) -> f64 {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut client = HealthClient::new(world.channel(0));
        tasks.push(tokio::spawn(async move {
            let mut calls = 0u64;
            while Instant::now() < deadline {
                client.check(HealthCheckRequest::default()).await.unwrap();
                calls += 1;
            }
            calls
        }));
    }
    let mut calls = 0;
    for task in tasks {
        calls += task.await.unwrap();
    }
    calls as f64 / 5.0
}

#[tokio::main]
async fn main() {
    let mut rows = vec![measure("sqlite", &[]).await];
    match std::env::var("ADP_TEST_DATABASE_URL") {
        Ok(_) => {
            let url = adp_e2e::pg::fresh_database().await;
            rows.push(measure("postgres", &[("ADP_DATABASE_URL", &url)]).await);
        }
        Err(_) => println!("(PostgreSQL skipped: set ADP_TEST_DATABASE_URL)"),
    }
    println!(
        "{:<9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>11} {:>13} {:>11} {:>13} {:>7}",
        "backend",
        "health/s",
        "calls/s",
        "vs health",
        "p50 µs",
        "p99 µs",
        "refreshing",
        "refr. p99 µs",
        "refreshes/s",
        "invalid_grant",
        "errors"
    );
    for f in &rows {
        println!(
            "{:<9} {:>9.0} {:>9.0} {:>8.2}x {:>8} {:>8} {:>11} {:>13} {:>11.1} {:>13} {:>7}",
            f.backend,
            f.health_per_sec,
            f.calls_per_sec,
            f.calls_per_sec / f.health_per_sec,
            f.p50.as_micros(),
            f.p99.as_micros(),
            f.refreshing_calls,
            f.refreshing_p99.as_micros(),
            f.refreshes_per_sec,
            f.invalid_grant,
            f.errors
        );
    }
    let clean = rows.iter().all(|f| f.invalid_grant == 0 && f.errors == 0);
    println!(
        "{}: no refresh-token reuse and no failed call",
        if clean { "PASS" } else { "FAIL" }
    );
}
