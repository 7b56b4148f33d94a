//! The HTTP/1.1 + HTTP/2 serving loop, with every bound of [`Limits`] set.

use std::future::Future;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

use crate::{
    BoxError, HTTP2_KEEPALIVE_INTERVAL, HTTP2_KEEPALIVE_TIMEOUT, HTTP2_MAX_HEADER_LIST_SIZE,
    Limits, Listener, TimedBody,
};

/// A hyper-util connection builder with `limits` and hyper's timers set.
fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_SIZE)
        .keep_alive_interval(HTTP2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT);
    builder
}

/// Serves `service` on every connection `listener` admits until `shutdown` completes,
/// then stops accepting and lets open connections finish their requests (the caller
/// bounds how long it waits). Request bodies come as [`TimedBody`].
pub async fn serve_http<S, B>(
    mut listener: Listener,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<TimedBody<Incoming>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let limits = *listener.limits();
    let builder = http_builder(&limits);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let io = accepted.guarded(limits.header_read_timeout);
        let service = WithBodyTimeout {
            inner: service.clone(),
            timeout: limits.request_body_timeout,
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "client connection ended");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

#[derive(Clone, Debug)]
struct WithBodyTimeout<S> {
    inner: S,
    timeout: std::time::Duration,
}

impl<S> Service<Request<Incoming>> for WithBodyTimeout<S>
where
    S: Service<Request<TimedBody<Incoming>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let timeout = self.timeout;
        self.inner
            .call(request.map(|body| TimedBody::new(body, timeout)))
    }
}
