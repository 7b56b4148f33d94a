//! Sends one MCP HTTP request upstream and streams the answer back: JSON or SSE bodies
//! pass through chunk by chunk, never buffered whole. Hop-by-hop headers are dropped both
//! ways, and so is everything that authenticated the caller to the proxy.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::errors::ProxyError;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the
/// ones the HTTP client sets itself.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

#[derive(Clone, Debug)]
pub struct Upstream {
    client: reqwest::Client,
    timeout: Duration,
}

impl Upstream {
    pub fn new(
        ca_file: Option<&Path>,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> anyhow::Result<Upstream> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // an upstream redirect must not carry the user's token to another host
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read ADP_UPSTREAM_CA_FILE {}", path.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificates", path.display()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Upstream {
            client: builder.build()?,
            timeout,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        incoming: &HeaderMap,
        body: Bytes,
        credential: Option<(HeaderName, HeaderValue)>,
        keep_caller_authorization: bool,
    ) -> Result<Response, ProxyError> {
        let mut headers = forwardable(incoming);
        if !keep_caller_authorization {
            headers.remove(http::header::AUTHORIZATION);
        }
        if let Some((name, value)) = credential {
            headers.insert(name, value);
        }
        let request = self.client.request(method, url).headers(headers).body(body);
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| ProxyError::UpstreamTimeout(self.timeout.as_secs()))?
            .map_err(|e| ProxyError::Upstream(describe(&e)))?;
        let mut builder = Response::builder().status(response.status());
        if let Some(out) = builder.headers_mut() {
            *out = forwardable(response.headers());
            out.remove(http::header::CONTENT_LENGTH);
        }
        builder
            .body(Body::from_stream(response.bytes_stream()))
            .map_err(|e| ProxyError::Upstream(e.to_string()))
    }
}

/// A reqwest error without its URL (which could carry a query the admin considers
/// private) but with its cause chain, which is where TLS and DNS failures explain themselves.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let named_by_connection: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower)
            || named_by_connection.iter().any(|n| n == lower)
            || lower == "cookie"
            || lower == "content-length"
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
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
        let out = forwardable(&headers);
        assert_eq!(out.len(), 2);
        assert_eq!(out["mcp-session-id"], "abc");
        assert_eq!(out["accept"], "text/event-stream");
    }
}
