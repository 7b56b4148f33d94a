//! Bounded listeners for both ADP programs, so no client, slow or many, can make a
//! server hold connections, tasks or memory without limit (issue 13):
//!
//! - at most [`Limits::max_connections`] open connections per [`ConnectionSlots`]; at
//!   the limit new connections wait in the kernel's listen backlog (bounded by its
//!   size) until one closes, and a warning is logged at most every 10 s;
//! - a connection must finish its protocol preamble within
//!   [`Limits::header_read_timeout`]: the HTTP/2 preface, or for HTTP/1 its first byte,
//!   after which hyper's own header-read timeout bounds every request head (so an idle
//!   HTTP/1.1 keep-alive connection is closed after the same time);
//! - a request's body must arrive in full within [`Limits::request_body_timeout`] of
//!   its head ([`TimedBody`], failing with [`BodyTimeout`]);
//! - HTTP/2: at most [`Limits::http2_max_concurrent_streams`] streams per connection,
//!   [`HTTP2_MAX_HEADER_LIST_SIZE`] of headers, and a keep-alive PING every
//!   [`HTTP2_KEEPALIVE_INTERVAL`] that must be answered within
//!   [`HTTP2_KEEPALIVE_TIMEOUT`] (a peer trickling a frame cannot answer);
//! - TCP keepalive on every accepted socket ([`TCP_KEEPALIVE`]).
//!
//! ```text
//! let slots = ConnectionSlots::new(limits.max_connections);
//! let listener = Listener::new(tcp_listener, limits, slots, "http");
//! adp_listener::serve_http(listener, service_fn(handle), shutdown).await;
//! ```
//!
//! A tonic server takes [`grpc::incoming`] as its incoming stream and
//! [`grpc::RequestBodyTimeoutLayer`] as a layer.
#![forbid(unsafe_code)]

use std::time::Duration;

mod accept;
mod body;
pub mod grpc;
mod preamble;
mod serve;

pub use accept::{Accepted, ConnectionSlots, Listener};
pub use body::{BodyTimeout, TimedBody};
pub use preamble::{GuardedIo, PreambleTimeout};
pub use serve::serve_http;

/// Boxed error, as hyper and tonic take them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Idle HTTP/2 connections are pinged this often…
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// …and closed when the PING is not answered in this time.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest HTTP/2 header block accepted (hyper's default, stated here).
pub const HTTP2_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// TCP keepalive probes start after this much silence, so dead peers are noticed.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The bounds of one listener; each is a setting of the program that serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `ADP_HEADER_READ_TIMEOUT_SECS`: the preamble, and each HTTP/1 request head.
    pub header_read_timeout: Duration,
    /// `ADP_REQUEST_BODY_TIMEOUT_SECS`: a request body, in full, after its head.
    pub request_body_timeout: Duration,
    /// `ADP_MAX_CONNECTIONS`: open connections.
    pub max_connections: usize,
    /// `ADP_HTTP2_MAX_CONCURRENT_STREAMS`: streams per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            http2_max_concurrent_streams: 200,
        }
    }
}
