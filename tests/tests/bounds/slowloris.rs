//! Slow clients (slowloris) trickling a request head or the HTTP/2 preface are cut off
//! by the header-read timeout while a normal client keeps being served.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use adp_e2e::ControlPlaneProcess;
use adp_e2e::consent::bounded;
use adp_e2e::proxy::ProxyProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::{TEST_LIMIT, addr_of};

/// The header-read timeout the slowloris tests set (`ADP_HEADER_READ_TIMEOUT_SECS`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const SLOW_CLIENTS: usize = 200;
/// A normal call slower than this while the slow clients are connected is a failure.
const NORMAL_LATENCY: Duration = Duration::from_secs(1);

/// An HTTP/1.1 request head that never ends.
const SLOW_HTTP1: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
/// The HTTP/2 client preface, which gRPC clients open with.
const SLOW_HTTP2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Connects and sends `opening` (then `a`s) one byte a second. Returns how long the
/// connection lived until the server closed it, or `None` if it was still open after
/// `give_up`.
async fn slow_client(
    addr: SocketAddr,
    opening: &'static [u8],
    give_up: Duration,
) -> Option<Duration> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    for &byte in opening.iter().chain(std::iter::repeat(&b'a')) {
        if stream.write_all(&[byte]).await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // an answer (a 408, a GOAWAY): the close follows
            Ok(Ok(_)) => loop {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
                    Ok(Ok(_)) => continue,
                    Err(_) => return None,
                }
            },
            Err(_) => {}
        }
        if started.elapsed() > give_up {
            return None;
        }
    }
    unreachable!("the byte supply is endless")
}

/// `count` slow clients on each of `targets` at once; how long each lived.
async fn slowloris(
    targets: Vec<(SocketAddr, &'static [u8])>,
    count: usize,
) -> Vec<Option<Duration>> {
    let give_up = HEADER_TIMEOUT * 4;
    let mut clients = tokio::task::JoinSet::new();
    for (addr, opening) in targets {
        for _ in 0..count {
            clients.spawn(slow_client(addr, opening, give_up));
        }
    }
    clients.join_all().await
}

/// Calls `call` every 50 ms for `during`; every latency, each call having succeeded.
async fn keep_calling<F, Fut>(during: Duration, mut call: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < during {
        let before = Instant::now();
        if let Err(error) = call().await {
            panic!("a normal call failed while slow clients were connected: {error}");
        }
        latencies.push(before.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies
}

fn assert_cut_off_by_the_timeout(what: &str, lifetimes: &[Option<Duration>]) {
    let open = lifetimes.iter().filter(|l| l.is_none()).count();
    assert_eq!(open, 0, "{what}: {open} slow connections were never closed");
    let lifetimes: Vec<Duration> = lifetimes.iter().flatten().copied().collect();
    let shortest = lifetimes.iter().min().unwrap();
    let longest = lifetimes.iter().max().unwrap();
    println!(
        "{what}: {} slow connections lived {shortest:?} to {longest:?}",
        lifetimes.len()
    );
    // closed by the timeout: not at once (the server did not just refuse them), and
    // soon after it
    assert!(
        *shortest >= HEADER_TIMEOUT - Duration::from_millis(500),
        "{what}: {shortest:?}"
    );
    assert!(
        *longest <= HEADER_TIMEOUT + Duration::from_secs(3),
        "{what}: {longest:?}"
    );
}

fn assert_normal(what: &str, latencies: &[Duration]) {
    let slowest = latencies.iter().max().unwrap();
    println!(
        "{what}: {} normal calls during the slowloris, slowest {slowest:?}",
        latencies.len()
    );
    assert!(
        latencies.len() >= 10,
        "{what}: only {} calls",
        latencies.len()
    );
    assert!(
        *slowest < NORMAL_LATENCY,
        "{what}: slowest call took {slowest:?}"
    );
}

async fn get_ok(http: &reqwest::Client, url: &str) -> Result<(), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: {}", response.status()))
    }
}

/// 200 clients trickling an HTTP/1.1 request head and 200 trickling the HTTP/2 preface
/// hold nothing: each is closed by the proxy after ADP_HEADER_READ_TIMEOUT_SECS while a
/// normal client keeps getting its answers.
#[tokio::test]
async fn slowloris_cannot_hold_the_proxy() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start().await;
        let proxy =
            ProxyProcess::start_with(&cp, None, &[("ADP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
        let addr = addr_of(&proxy.url);
        let http = reqwest::Client::new();
        let health = format!("{}/healthz", proxy.url);
        let (lifetimes, latencies) = tokio::join!(
            slowloris(
                vec![(addr, SLOW_HTTP1), (addr, SLOW_HTTP2)],
                SLOW_CLIENTS / 2
            ),
            keep_calling(HEADER_TIMEOUT + Duration::from_secs(2), || get_ok(
                &http, &health
            )),
        );
        assert_cut_off_by_the_timeout("proxy", &lifetimes);
        assert_normal("proxy", &latencies);
    })
    .await;
}

/// The same against both control-plane listeners: HTTP/1.1 heads on the HTTP one, the
/// HTTP/2 preface on the gRPC one, while gRPC health checks and /healthz go on.
#[tokio::test]
async fn slowloris_cannot_hold_the_control_plane() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start_with(&[("ADP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
        let mut health = HealthClient::new(cp.channel().await);
        let http = reqwest::Client::new();
        let healthz = format!("{}/healthz", cp.http_url);
        let during = HEADER_TIMEOUT + Duration::from_secs(2);
        let (lifetimes, grpc_latencies, http_latencies) = tokio::join!(
            slowloris(
                vec![
                    (addr_of(&cp.http_url), SLOW_HTTP1),
                    (addr_of(&cp.grpc_url), SLOW_HTTP2)
                ],
                SLOW_CLIENTS,
            ),
            keep_calling(during, || {
                let mut health = health.clone();
                async move {
                    health
                        .check(HealthCheckRequest::default())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            }),
            keep_calling(during, || get_ok(&http, &healthz)),
        );
        assert_cut_off_by_the_timeout("control plane", &lifetimes);
        assert_normal("control plane gRPC", &grpc_latencies);
        assert_normal("control plane HTTP", &http_latencies);
        // the channel made before the slowloris still works
        health.check(HealthCheckRequest::default()).await.unwrap();
    })
    .await;
}
