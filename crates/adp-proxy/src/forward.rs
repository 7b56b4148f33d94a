//! Sends one MCP HTTP request upstream and streams the answer back: JSON or SSE bodies
//! pass through chunk by chunk, never buffered whole. Hop-by-hop headers are dropped both
//! ways, and so is everything that authenticated the caller to the proxy.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::errors::ProxyError;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the
/// ones the HTTP client sets itself.
const HOP_BY_HOP: [HeaderName; 10] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::HOST,
];

type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// hyper's pooled client over rustls: webpki roots plus `ADP_UPSTREAM_CA_FILE`.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: HttpClient,
    timeout: Duration,
}

impl Upstream {
    /// `tls` comes from [`crate::tls::client_config`], built once per process.
    pub fn new(
        tls: rustls::ClientConfig,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> anyhow::Result<Upstream> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Upstream { client, timeout })
    }

    /// Forwards and returns the upstream's answer with its body still streaming. Redirects
    /// are passed back to the client, never followed: following one could carry the
    /// user's token to another host.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        mut headers: HeaderMap,
        body: Bytes,
        credential: Option<(HeaderName, HeaderValue)>,
        keep_caller_authorization: bool,
    ) -> Result<Response, ProxyError> {
        strip(&mut headers);
        if !keep_caller_authorization {
            headers.remove(http::header::AUTHORIZATION);
        }
        if let Some((name, value)) = credential {
            headers.insert(name, value);
        }
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .body(Body::from(body))
            .map_err(|e| ProxyError::Upstream(format!("bad upstream URL: {e}")))?;
        *request.headers_mut() = headers;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| ProxyError::UpstreamTimeout(self.timeout.as_secs()))?
            .map_err(|e| ProxyError::Upstream(adp_core::error::error_chain(&e)))?;
        let (mut parts, body) = response.into_parts();
        strip(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// Removes, in place, what must not cross the proxy: hop-by-hop headers (and those the
/// `Connection` header names), cookies meant for the proxy's host, and the length the
/// HTTP stack recomputes.
fn strip(headers: &mut HeaderMap) {
    let named_by_connection: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| HeaderName::from_bytes(v.trim().as_bytes()).ok())
        .collect();
    for name in named_by_connection {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(http::header::COOKIE);
    headers.remove(http::header::CONTENT_LENGTH);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "keep-alive, x-trace".parse().unwrap());
        headers.insert("x-trace", "1".parse().unwrap());
        headers.insert("te", "trailers".parse().unwrap());
        headers.insert("cookie", "session=1".parse().unwrap());
        headers.insert("mcp-session-id", "abc".parse().unwrap());
        headers.insert("accept", "text/event-stream".parse().unwrap());
        let mut out = headers.clone();
        strip(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out["mcp-session-id"], "abc");
        assert_eq!(out["accept"], "text/event-stream");
    }
}
