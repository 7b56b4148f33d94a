//! The gRPC gateway against a direct MCP client: the same `echo` tool on the `mcp-echo`
//! upstream, called (a) directly over MCP Streamable HTTP by a client holding its own
//! session, and (b) through `adp.v1.MCPGatewayService.CallTool` on adp-proxy (user JWT in,
//! the proxy's rmcp session and cached credential out). Legs alternate over rounds; the
//! report gives medians.
//!
//! ```text
//! cargo build --release --workspace --bins && cargo bench -p adp-e2e --bench gateway
//! ```
//!
//! Knobs: `ADP_BENCH_SECS` (10), `ADP_BENCH_ROUNDS` (3), `ADP_BENCH_CONCURRENCY` (16).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use adp_api::v1::CallToolRequest;
use adp_api::v1::mcp_gateway_service_client::McpGatewayServiceClient;
use adp_e2e::bench::{Echo, static_key_proxy};
use adp_e2e::proxy::McpSession;
use serde_json::json;
use tonic::transport::Channel;

const TOKEN: &str = "static-benchmark-token";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `concurrency` workers for `secs`, each calling `call` in a loop.
async fn measure<F, Fut>(concurrency: u64, secs: u64, make: F) -> Figures
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn FnMut() -> CallFuture + Send>>,
{
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut call = make().await;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < stop {
                let started = Instant::now();
                call().await;
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    Figures {
        per_second: all.len() as f64 / secs as f64,
        p50: all[all.len() / 2],
        p99: all[(all.len() * 99 / 100).min(all.len() - 1)],
    }
}

type CallFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let secs = knob("ADP_BENCH_SECS", 10);
    let rounds = knob("ADP_BENCH_ROUNDS", 3);
    let concurrency = knob("ADP_BENCH_CONCURRENCY", 16);
    let echo = Echo::start().await;
    let (_cp, proxy, jwt) = static_key_proxy(&echo.url(), "echo", TOKEN).await;
    let channel = Channel::from_shared(proxy.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let echo_url = echo.url();
    println!(
        "CallTool through the gateway vs a direct MCP client: {concurrency} concurrent callers, {rounds} rounds × {secs} s"
    );

    let direct = || {
        let url = echo_url.clone();
        async move {
            let mut session = McpSession::new(&url, TOKEN, "2025-06-18");
            let init = session.initialize(false).await;
            assert_eq!(init.status, 200, "{init:?}");
            let session = Arc::new(tokio::sync::Mutex::new(session));
            Box::new(move || {
                let session = session.clone();
                Box::pin(async move {
                    let reply = session
                        .lock()
                        .await
                        .call("echo", json!({"text": "hello"}))
                        .await;
                    assert_eq!(reply.status, 200);
                }) as CallFuture
            }) as Box<dyn FnMut() -> CallFuture + Send>
        }
    };
    let gateway = || {
        let client = McpGatewayServiceClient::new(channel.clone());
        let jwt = jwt.clone();
        async move {
            Box::new(move || {
                let mut client = client.clone();
                let jwt = jwt.clone();
                Box::pin(async move {
                    let mut arguments = prost_types::Struct::default();
                    arguments.fields.insert(
                        "text".into(),
                        prost_types::Value {
                            kind: Some(prost_types::value::Kind::StringValue("hello".into())),
                        },
                    );
                    let request = CallToolRequest {
                        server_name: "echo".into(),
                        tool_name: "echo".into(),
                        arguments: Some(arguments),
                    };
                    let result = client.call_tool(adp_e2e::authed(request, &jwt)).await;
                    assert!(!result.unwrap().into_inner().is_error);
                }) as CallFuture
            }) as Box<dyn FnMut() -> CallFuture + Send>
        }
    };

    let mut direct_runs = Vec::new();
    let mut gateway_runs = Vec::new();
    for round in 0..rounds {
        // warm both, then alternate which goes first
        let order: [&str; 2] = if round % 2 == 0 {
            ["direct", "gateway"]
        } else {
            ["gateway", "direct"]
        };
        for leg in order {
            let figures = if leg == "direct" {
                measure(concurrency, secs, direct).await
            } else {
                measure(concurrency, secs, gateway).await
            };
            println!(
                "round {} {leg:<8} {:>9.0} calls/s  p50 {:.3} ms  p99 {:.3} ms",
                round + 1,
                figures.per_second,
                ms(figures.p50),
                ms(figures.p99)
            );
            if leg == "direct" {
                direct_runs.push(figures);
            } else {
                gateway_runs.push(figures);
            }
        }
    }
    let median = |runs: &mut Vec<Figures>| {
        runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        runs.remove(runs.len() / 2)
    };
    let direct = median(&mut direct_runs);
    let gateway = median(&mut gateway_runs);
    println!(
        "{:<10} {:>10} {:>8} {:>8}",
        "median", "calls/s", "p50 ms", "p99 ms"
    );
    for (label, f) in [("direct", &direct), ("gateway", &gateway)] {
        println!(
            "{label:<10} {:>10.0} {:>8.3} {:>8.3}",
            f.per_second,
            ms(f.p50),
            ms(f.p99)
        );
    }
    println!(
        "gateway/direct throughput {:.2}, p99 added {:+.3} ms",
        gateway.per_second / direct.per_second,
        ms(gateway.p99) - ms(direct.p99)
    );
}
