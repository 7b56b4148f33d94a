//! Bounds on what a caller can make either program hold (issue 13), against the real
//! processes: slow clients (slowloris) are cut off by the header-read timeout while a
//! normal client keeps being served, the connection limit queues the excess, a
//! trickling request body ends with a clear error, a reaped legacy SSE session hangs up
//! its upstream stream at once, and `CallToolStream`'s consent wait is clamped.
//!
//! Build the binaries first: `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use adp_api::v1::call_tool_stream_response::Event;
use adp_api::v1::mcp_gateway_service_client::McpGatewayServiceClient;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient;
use adp_api::v1::*;
use adp_e2e::consent::bounded;
use adp_e2e::proxy::ProxyProcess;
use adp_e2e::tls::TestCa;
use adp_e2e::upstream::McpUpstream;
use adp_e2e::{ControlPlaneProcess, authed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const TEST_LIMIT: Duration = Duration::from_secs(120);
/// The header-read timeout the slowloris tests set (`ADP_HEADER_READ_TIMEOUT_SECS`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const SLOW_CLIENTS: usize = 200;
/// A normal call slower than this while the slow clients are connected is a failure.
const NORMAL_LATENCY: Duration = Duration::from_secs(1);

/// An HTTP/1.1 request head that never ends.
const SLOW_HTTP1: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
/// The HTTP/2 client preface, which gRPC clients open with.
const SLOW_HTTP2: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

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

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// Reads one HTTP/1.1 response (with a Content-Length body); its status and text.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, String::from_utf8_lossy(&data).into_owned());
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed before answering: {data:?}");
        data.extend_from_slice(&buf[..n]);
    }
}

async fn healthz_on(stream: &mut TcpStream) -> u16 {
    stream.write_all(HEALTHZ).await.unwrap();
    read_response(stream).await.0
}

/// With ADP_MAX_CONNECTIONS=4, a fifth connection is accepted by the kernel but not
/// served (it waits in the listen backlog) while the four keep working; as soon as one
/// of them closes, the fifth gets its answer.
async fn excess_connections_wait_for_a_slot(addr: SocketAddr) {
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert_eq!(healthz_on(&mut stream).await, 200);
        held.push(stream);
    }
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    fifth.write_all(HEALTHZ).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(1500), read_response(&mut fifth)).await;
    assert!(
        early.is_err(),
        "a fifth connection was served past a limit of 4: {early:?}"
    );
    for stream in &mut held {
        assert_eq!(healthz_on(stream).await, 200);
    }
    drop(held.pop());
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut fifth))
        .await
        .expect("the waiting connection is served once a slot frees");
    assert_eq!(status, 200);
    for stream in &mut held {
        assert_eq!(healthz_on(stream).await, 200);
    }
}

#[tokio::test]
async fn the_proxy_queues_connections_past_its_limit() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start().await;
        let proxy = ProxyProcess::start_with(
            &cp,
            None,
            &[
                ("ADP_MAX_CONNECTIONS", "4"),
                ("ADP_HEADER_READ_TIMEOUT_SECS", "60"),
            ],
        )
        .await;
        excess_connections_wait_for_a_slot(addr_of(&proxy.url)).await;
    })
    .await;
}

#[tokio::test]
async fn the_control_plane_queues_connections_past_its_limit() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start_with(&[
            ("ADP_MAX_CONNECTIONS", "4"),
            ("ADP_HEADER_READ_TIMEOUT_SECS", "60"),
        ])
        .await;
        excess_connections_wait_for_a_slot(addr_of(&cp.http_url)).await;
    })
    .await;
}

/// Sends a request head announcing a 100-byte body, then trickles the body one byte
/// every 200 ms; returns the response, when it came, and whether the server then
/// closed the connection.
async fn trickle_body(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
) -> (u16, String, Duration, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let trickler = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let answered = loop {
        let n = read.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            panic!("closed without an answer after {:?}", started.elapsed());
        }
        data.extend_from_slice(&buf[..n]);
        if data.windows(4).any(|w| w == b"\r\n\r\n") {
            break started.elapsed();
        }
    };
    // the rest of the answer, then the close
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), read.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    trickler.abort();
    let text = String::from_utf8_lossy(&data).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text, answered, closed)
}

fn assert_answered_at_the_body_timeout(answered: Duration) {
    let timeout = Duration::from_secs(2);
    assert!(
        answered >= timeout - Duration::from_millis(300)
            && answered <= timeout + Duration::from_secs(3),
        "answered after {answered:?}"
    );
}

/// An MCP POST whose body trickles is answered 408 with a JSON-RPC error naming the
/// setting once ADP_REQUEST_BODY_TIMEOUT_SECS passes, and the connection is closed.
#[tokio::test]
async fn a_trickling_body_gets_408_from_the_proxy() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start().await;
        let proxy =
            ProxyProcess::start_with(&cp, None, &[("ADP_REQUEST_BODY_TIMEOUT_SECS", "2")]).await;
        let (status, text, answered, closed) =
            trickle_body(addr_of(&proxy.url), "/mcp/anything", "application/json").await;
        assert_eq!(status, 408, "{text}");
        assert!(text.contains("REQUEST_BODY_TIMEOUT"), "{text}");
        assert!(text.contains("ADP_REQUEST_BODY_TIMEOUT_SECS"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        assert!(closed, "the connection stayed open after the 408");
        assert_answered_at_the_body_timeout(answered);
        println!("proxy: trickling body answered {status} after {answered:?}");
    })
    .await;
}

/// The control plane's form posts fail the same way (axum's rejection of an unreadable
/// body, naming the timeout).
#[tokio::test]
async fn a_trickling_body_fails_on_the_control_plane() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start_with(&[("ADP_REQUEST_BODY_TIMEOUT_SECS", "2")]).await;
        let (status, text, answered, _) = trickle_body(
            addr_of(&cp.http_url),
            "/oauth/v1/connect/some-attempt",
            "application/x-www-form-urlencoded",
        )
        .await;
        assert!(status == 400 || status == 408, "{text}");
        assert!(text.contains("did not arrive within 2 s"), "{text}");
        assert_answered_at_the_body_timeout(answered);
        println!("control plane: trickling body answered {status} after {answered:?}");
    })
    .await;
}

async fn create_server(cp: &ControlPlaneProcess, server: McpServer) {
    let request = CreateMcpServerRequest {
        mcp_server: Some(server),
        validate_only: false,
    };
    McpServerServiceClient::new(cp.channel().await)
        .create_mcp_server(authed(request, &cp.admin_token()))
        .await
        .unwrap();
}

fn remote(url: &str, transport: Transport) -> Option<Source> {
    Some(Source::Remote(RemoteMcp {
        url: url.into(),
        transport: transport as i32,
    }))
}

async fn gateway(proxy: &ProxyProcess) -> McpGatewayServiceClient<Channel> {
    let channel = Channel::from_shared(proxy.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    McpGatewayServiceClient::new(channel)
}

/// ListTools as `subject`, retried while the proxy has not got the server yet.
async fn list_tools(gateway: &mut McpGatewayServiceClient<Channel>, jwt: &str, server: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = ListToolsRequest {
            server_name: server.into(),
        };
        match gateway.list_tools(authed(request, jwt)).await {
            Ok(reply) => {
                assert!(!reply.into_inner().tools.is_empty());
                return;
            }
            Err(status) if status.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("ListTools on {server}: {status:?}"),
        }
    }
}

/// With room for one upstream session, bob's call evicts alice's legacy SSE session,
/// and the proxy hangs up alice's event stream (its GET) at once, rather than when the
/// upstream next sends an event (which an idle one never does).
#[tokio::test]
async fn a_reaped_legacy_session_closes_its_upstream_stream_at_once() {
    bounded(TEST_LIMIT, async {
        let ca = TestCa::generate().unwrap();
        let upstream = McpUpstream::start(&ca).await.unwrap();
        let cp = ControlPlaneProcess::start().await;
        let proxy = ProxyProcess::start_with(
            &cp,
            Some(&ca.ca_pem),
            &[("ADP_PROXY_CREDENTIAL_CACHE_SIZE", "1")],
        )
        .await;
        create_server(
            &cp,
            McpServer {
                name: "legacy".into(),
                enabled: true,
                source: remote(&upstream.url().replace("/mcp", "/sse"), Transport::Sse),
                auth: Some(Auth::None(NoAuth {})),
                ..Default::default()
            },
        )
        .await;
        let mut gateway = gateway(&proxy).await;
        list_tools(&mut gateway, &cp.token("alice", &[]), "legacy").await;
        let streams = upstream.sse_streams().await.unwrap();
        assert_eq!((streams.open, streams.closed), (1, 0), "{streams:?}");

        let evicted_at = Instant::now();
        list_tools(&mut gateway, &cp.token("bob", &[]), "legacy").await;
        loop {
            let streams = upstream.sse_streams().await.unwrap();
            if streams.closed == 1 {
                assert_eq!(streams.open, 1, "bob's stream stays: {streams:?}");
                break;
            }
            assert!(
                evicted_at.elapsed() < Duration::from_secs(3),
                "alice's event stream is still open after her session was evicted: {streams:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "legacy SSE: the evicted session's GET closed {:?} after the evicting call began",
            evicted_at.elapsed()
        );
    })
    .await;
}

/// A caller who allows a `CallToolStream` a minute still gets CONSENT_TIMEOUT after
/// ADP_MAX_CONSENT_WAIT_SECS (2 s here): nobody parks a task for longer.
#[tokio::test]
async fn the_consent_wait_is_clamped_to_its_maximum() {
    bounded(TEST_LIMIT, async {
        let cp = ControlPlaneProcess::start_with(&[
            ("ADP_INSECURE_LOOPBACK_HTTP", "true"),
            ("ADP_INSECURE_DEVELOPMENT", "true"),
        ])
        .await;
        let proxy =
            ProxyProcess::start_with(&cp, None, &[("ADP_MAX_CONSENT_WAIT_SECS", "2")]).await;
        // nobody ever completes this provider's consent: its endpoints are never called
        let provider = OAuthProvider {
            name: "github".into(),
            display_name: "GitHub (never connected)".into(),
            authorize_url: "http://127.0.0.1:9/authorize".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            scopes: vec!["repo".into()],
            client_id: "client".into(),
            token_auth_method: TokenAuthMethod::None as i32,
            grant_types: vec![GrantType::BrowserConsent as i32],
            require_pkce: true,
            enabled: true,
            ..Default::default()
        };
        OAuthProviderServiceClient::new(cp.channel().await)
            .create_o_auth_provider(authed(
                CreateOAuthProviderRequest {
                    oauth_provider: Some(provider),
                    validate_only: false,
                },
                &cp.admin_token(),
            ))
            .await
            .unwrap();
        create_server(
            &cp,
            McpServer {
                name: "tools".into(),
                enabled: true,
                source: remote("https://127.0.0.1:9/mcp", Transport::StreamableHttp),
                auth: Some(Auth::UserOauth(UserOAuthAuth {
                    provider_name: "github".into(),
                    required_scopes: vec!["repo".into()],
                    token_injection: None,
                })),
                ..Default::default()
            },
        )
        .await;
        let mut gateway = gateway(&proxy).await;
        let jwt = cp.token("alice", &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut stream, started) = loop {
            let mut request = authed(
                CallToolStreamRequest {
                    server_name: "tools".into(),
                    tool_name: "echo".into(),
                    arguments: None,
                },
                &jwt,
            );
            request.set_timeout(Duration::from_secs(60));
            let started = Instant::now();
            match gateway.call_tool_stream(request).await {
                Ok(stream) => break (stream.into_inner(), started),
                Err(status)
                    if status.code() == tonic::Code::NotFound && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("CallToolStream: {status:?}"),
            }
        };
        let first = stream.message().await.unwrap().unwrap();
        assert!(
            matches!(first.event, Some(Event::ConsentRequired(_))),
            "{first:?}"
        );
        let status = stream.message().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("within 2 s"), "{status:?}");
        assert!(
            waited >= Duration::from_millis(1800) && waited < Duration::from_secs(10),
            "waited {waited:?}"
        );
        println!(
            "CallToolStream with a 60 s deadline ended after {waited:?}: {}",
            status.message()
        );
    })
    .await;
}
