//! Bounds on what a caller can make either program hold (issue 13), against the real
//! processes: slow clients (slowloris) are cut off by the header-read timeout while a
//! normal client keeps being served, the connection limit queues the excess, a
//! trickling request body ends with a clear error, a reaped legacy SSE session hangs up
//! its upstream stream at once, and `CallToolStream`'s consent wait is clamped.
//!
//! Build the binaries first: `cargo build --workspace --bins`.
#![allow(clippy::unwrap_used)]

#[path = "bounds/connection_limit.rs"]
mod connection_limit;
#[path = "bounds/gateway.rs"]
mod gateway;
#[path = "bounds/request_body.rs"]
mod request_body;
#[path = "bounds/slowloris.rs"]
mod slowloris;

use std::net::SocketAddr;
use std::time::Duration;

const TEST_LIMIT: Duration = Duration::from_secs(120);

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}
