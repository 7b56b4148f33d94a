//! The connection limit queues the excess: a connection past ADP_MAX_CONNECTIONS waits
//! in the listen backlog until a slot frees.

use std::net::SocketAddr;
use std::time::Duration;

use adp_e2e::ControlPlaneProcess;
use adp_e2e::consent::bounded;
use adp_e2e::proxy::ProxyProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TEST_LIMIT, addr_of};

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
