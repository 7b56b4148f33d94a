//! A trickling request body ends with a clear error once ADP_REQUEST_BODY_TIMEOUT_SECS
//! passes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use adp_e2e::ControlPlaneProcess;
use adp_e2e::consent::bounded;
use adp_e2e::proxy::ProxyProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TEST_LIMIT, addr_of};

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
