//! Config propagation: how long from an admin write until 50 connected `WatchConfig`
//! subscribers (each on its own connection, as 50 proxies would be) hold the change, on
//! the embedded SQLite default. The baseline in the same run is the admin write's own
//! round trip: propagation time includes it, because the clock starts before the write.
//!
//! ```text
//! cargo build --release --workspace --bins && cargo bench -p adp-e2e --bench config_propagation
//! ```
//!
//! Target: p99 ≤ 100 ms. Knobs: `ADP_BENCH_SUBSCRIBERS` (50), `ADP_BENCH_WRITES` (200).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adp_api::v1::config_discovery_service_client::ConfigDiscoveryServiceClient;
use adp_api::v1::config_event::Kind;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::*;
use adp_e2e::{ControlPlaneProcess, authed};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let subscribers = knob("ADP_BENCH_SUBSCRIBERS", 50);
    let writes = knob("ADP_BENCH_WRITES", 200);
    let cp = ControlPlaneProcess::start().await;
    let admin = cp.admin_token();
    let proxy = cp.token("bench-proxy", &["proxy"]);

    // server name → when each subscriber saw it
    let seen: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
    for i in 0..subscribers {
        let channel = cp.channel().await;
        let mut request = tonic::Request::new(WatchConfigRequest {
            node_id: format!("bench-{i}"),
            resume_revision: 0,
        });
        request.metadata_mut().insert(
            adp_core::metadata::PROXY_AUTHORIZATION,
            format!("Bearer {proxy}").parse().unwrap(),
        );
        let mut stream = ConfigDiscoveryServiceClient::new(channel)
            .watch_config(request)
            .await
            .unwrap()
            .into_inner();
        let seen = seen.clone();
        let ready = ready_tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let now = Instant::now();
                match message.event.and_then(|e| e.kind) {
                    Some(Kind::Snapshot(_)) => {
                        let _ = ready.send(()).await;
                    }
                    Some(Kind::Delta(delta)) => {
                        let mut seen = seen.lock().unwrap();
                        for server in delta.upserted_servers {
                            let name = server.server.unwrap().name;
                            seen.entry(name).or_default().push(now);
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    for _ in 0..subscribers {
        ready_rx.recv().await.unwrap();
    }

    let mut servers = mcp_server_service_client::McpServerServiceClient::new(cp.channel().await);
    let mut write_times = Vec::with_capacity(writes);
    let mut started = HashMap::new();
    for i in 0..writes {
        let name = format!("s{i}");
        let server = McpServer {
            name: name.clone(),
            enabled: true,
            source: Some(Source::Remote(RemoteMcp {
                url: "https://mcp.example.test/mcp".into(),
                transport: 0,
            })),
            auth: Some(Auth::None(NoAuth {})),
            ..Default::default()
        };
        let request = authed(
            CreateMcpServerRequest {
                mcp_server: Some(server),
                validate_only: false,
            },
            &admin,
        );
        let t0 = Instant::now();
        servers.create_mcp_server(request).await.unwrap();
        write_times.push(t0.elapsed());
        started.insert(name, t0);
        // admins write at human pace; spacing the writes measures each one's propagation
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // let the last deltas land
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let complete = {
            let seen = seen.lock().unwrap();
            started
                .keys()
                .all(|name| seen.get(name).is_some_and(|v| v.len() == subscribers))
        };
        if complete || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let seen = seen.lock().unwrap();
    let mut delays = Vec::with_capacity(writes * subscribers);
    let mut missing = 0;
    for (name, t0) in &started {
        let times = seen.get(name).cloned().unwrap_or_default();
        missing += subscribers - times.len().min(subscribers);
        delays.extend(times.iter().map(|t| t.duration_since(*t0)));
    }
    delays.sort();
    write_times.sort();
    println!("config propagation on SQLite: {subscribers} subscribers, {writes} writes");
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8}",
        "", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (label, sample) in [
        ("admin write round trip (baseline)", &write_times),
        ("write → visible to a subscriber", &delays),
    ] {
        println!(
            "{label:<34} {:>8} {:>8} {:>8} {:>8}",
            ms(percentile(sample, 0.5)),
            ms(percentile(sample, 0.9)),
            ms(percentile(sample, 0.99)),
            ms(*sample.last().unwrap()),
        );
    }
    println!("deliveries missing: {missing}");
    let p99 = percentile(&delays, 0.99);
    println!(
        "target p99 ≤ 100 ms: {} ({} ms)",
        if p99 <= Duration::from_millis(100) && missing == 0 {
            "PASS"
        } else {
            "FAIL"
        },
        ms(p99)
    );
}
