//! The same bounds for a tonic server: [`incoming`] is its connection stream (slots,
//! preamble deadline, TCP keepalive), [`RequestBodyTimeoutLayer`] bounds request
//! bodies, and [`configure`] sets the HTTP/2 limits on its builder.

use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::{
    GuardedIo, HTTP2_KEEPALIVE_INTERVAL, HTTP2_KEEPALIVE_TIMEOUT, HTTP2_MAX_HEADER_LIST_SIZE,
    Limits, Listener, TCP_KEEPALIVE, TimedBody,
};

/// Connections as `Server::serve_with_incoming_shutdown` takes them. Dropping the stream
/// (tonic does at shutdown) closes the listening socket.
pub fn incoming(
    listener: Listener,
) -> impl Stream<Item = std::io::Result<GuardedIo<TcpStream>>> + Send + 'static {
    futures::stream::unfold(listener, |mut listener| async move {
        let timeout = listener.limits().header_read_timeout;
        let io = listener.accept().await.guarded(timeout);
        Some((Ok(io), listener))
    })
}

/// `builder` with `limits`' HTTP/2 bounds and our keepalive. (Its `tcp_*` settings do
/// not apply to an incoming stream; [`incoming`] sets them on each socket.)
pub fn configure<L>(
    builder: tonic::transport::Server<L>,
    limits: &Limits,
) -> tonic::transport::Server<L> {
    builder
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .http2_max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE)
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(TCP_KEEPALIVE))
}

impl Connected for GuardedIo<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        let mut info = self.get_ref().connect_info();
        if info.remote_addr.is_none() {
            info.remote_addr = self.remote_addr();
        }
        info
    }
}

/// Wraps every request body in a [`TimedBody`]: an unfinished body fails the call
/// (tonic answers with the [`crate::BodyTimeout`] message).
#[derive(Clone, Copy, Debug)]
pub struct RequestBodyTimeoutLayer {
    timeout: Duration,
}

impl RequestBodyTimeoutLayer {
    pub fn new(timeout: Duration) -> Self {
        RequestBodyTimeoutLayer { timeout }
    }
}

impl<S> tower::Layer<S> for RequestBodyTimeoutLayer {
    type Service = RequestBodyTimeout<S>;

    fn layer(&self, inner: S) -> RequestBodyTimeout<S> {
        RequestBodyTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RequestBodyTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for RequestBodyTimeout<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> S::Future {
        let timeout = self.timeout;
        self.inner
            .call(request.map(|body| tonic::body::Body::new(TimedBody::new(body, timeout))))
    }
}
