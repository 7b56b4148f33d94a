//! Sends one MCP HTTP request upstream and streams the answer back: JSON or SSE bodies
//! pass through chunk by chunk, never buffered whole. Hop-by-hop headers are dropped both
//! ways, and so is everything that authenticated the caller to the proxy.
//!
//! Each worker thread has its own [`Upstream`]: keep-alive HTTP/1.1 connections (TLS by
//! rustls for https) driven on that thread, handed out to one request at a time. A
//! request costs no task spawn and no cross-thread hand-off; a connection costs one task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

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

/// Connecting (TCP and TLS) may take at most this long in all...
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ...and one resolved address at most this long before the next is tried.
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the whole pool is swept of closed and long-idle connections.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// A connection unused this long is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Connections kept per upstream origin (busy and idle) at most; beyond it a finished
/// request's connection closes.
const MAX_KEPT_PER_ORIGIN: usize = 1024;

/// Where connections go: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

/// An upstream URL resolved once per route: what each call needs of it (where to
/// connect, the `Host` header, the origin-form request target), none of it recomputed
/// per call.
#[derive(Clone, Debug)]
pub struct Target {
    origin: Origin,
    host: HeaderValue,
    path_and_query: Uri,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ProxyError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ProxyError::Upstream(format!("upstream URL {url:?} is not a URL")))?;
        let origin = origin_of(&uri)?;
        let host = HeaderValue::from_str(&host_header(&uri, &origin))
            .map_err(|_| ProxyError::Upstream(format!("upstream URL {url:?} has a bad host")))?;
        // HTTP/1.1 to an origin server takes the origin form: path and query only
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
        Ok(Target {
            origin,
            host,
            path_and_query,
        })
    }
}

struct Kept {
    sender: SendRequest<Full<Bytes>>,
    last_used: Instant,
}

/// One worker's upstream connections. `Mutex` only to be `Sync`: a worker's requests
/// run on its own thread, so it is never contended.
pub struct Upstream {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    max_idle_per_origin: usize,
    pools: Mutex<Pools>,
}

struct Pools {
    /// Per origin, oldest first: busy connections (a response body still streaming)
    /// and idle ones, told apart by `is_ready`.
    by_origin: HashMap<Origin, Vec<Kept>>,
    last_sweep: Instant,
}

impl Pools {
    /// Drops closed and long-idle connections of every origin, idle ones beyond
    /// `max_idle` (the oldest first, left over from a burst), and origins left empty, so
    /// an upstream that stopped getting calls does not keep sockets open. Runs at most
    /// every [`SWEEP_INTERVAL`], not on every call.
    fn sweep_if_due(&mut self, now: Instant, max_idle: usize) {
        if now.duration_since(self.last_sweep) < SWEEP_INTERVAL {
            return;
        }
        self.last_sweep = now;
        self.by_origin.retain(|_, kept| {
            kept.retain(|k| k.is_live(now));
            let mut idle = kept.iter().filter(|k| k.sender.is_ready()).count();
            kept.retain(|k| {
                if idle > max_idle && k.sender.is_ready() {
                    idle -= 1;
                    return false;
                }
                true
            });
            !kept.is_empty()
        });
    }
}

impl Kept {
    fn is_live(&self, now: Instant) -> bool {
        !self.sender.is_closed() && now.duration_since(self.last_used) < IDLE_TIMEOUT
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout", &self.timeout)
            .field("max_idle_per_origin", &self.max_idle_per_origin)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// `tls` comes from [`crate::tls::client_config`], built once per process.
    pub fn new(
        tls: rustls::ClientConfig,
        timeout: Duration,
        max_idle_per_origin: usize,
    ) -> anyhow::Result<Upstream> {
        let mut tls = tls;
        // MCP's Streamable HTTP is plain request/response: HTTP/1.1 keep-alive suffices
        // (an upstream that speaks only HTTP/2 is not supported on this path)
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Upstream {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            timeout,
            max_idle_per_origin: max_idle_per_origin.max(1),
            pools: Mutex::new(Pools {
                by_origin: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        })
    }

    /// Forwards and returns the upstream's answer with its body still streaming. Redirects
    /// are passed back to the client, never followed: following one could carry the
    /// user's token to another host.
    pub async fn send(
        &self,
        method: Method,
        target: &Target,
        mut headers: HeaderMap,
        body: Bytes,
        credential: Option<(HeaderName, HeaderValue)>,
    ) -> Result<http::Response<Incoming>, ProxyError> {
        let origin = &target.origin;
        strip(&mut headers);
        // the caller's token authenticated them to the proxy and goes no further; under
        // token passthrough `credential` is that token, once checked as fit to forward
        headers.remove(http::header::AUTHORIZATION);
        if let Some((name, value)) = credential {
            headers.insert(name, value);
        }
        headers.insert(http::header::HOST, target.host.clone());
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = target.path_and_query.clone();
        *request.headers_mut() = headers;

        let exchange = async {
            let (mut sender, reused) = self.checkout(origin).await?;
            let sent = match sender.try_send_request(request).await {
                Ok(response) => Ok(response),
                // a kept connection the upstream closed meanwhile: the request never
                // left, so it goes once more on a fresh connection
                Err(mut error) if reused && error.message().is_some() => {
                    let request = error
                        .take_message()
                        .ok_or_else(|| ProxyError::Upstream("upstream connection closed".into()))?;
                    sender = self.connect(origin).await?;
                    sender.send_request(request).await
                }
                Err(error) => Err(error.into_error()),
            };
            self.keep(origin, sender);
            sent.map_err(|e| ProxyError::Upstream(adp_core::error::error_chain(&e)))
        };
        let response = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ProxyError::UpstreamTimeout(self.timeout.as_secs()))??;
        let (mut parts, body) = response.into_parts();
        strip(&mut parts.headers);
        Ok(http::Response::from_parts(parts, body))
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, Pools> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection ready for a request: the most recently used idle one (`true`: kept
    /// from an earlier request), else a new one.
    async fn checkout(
        &self,
        origin: &Origin,
    ) -> Result<(SendRequest<Full<Bytes>>, bool), ProxyError> {
        {
            let mut pools = self.pools();
            let now = Instant::now();
            pools.sweep_if_due(now, self.max_idle_per_origin);
            if let Some(kept) = pools.by_origin.get_mut(origin) {
                // the most recently kept usable one; closed and stale ones wait for the sweep
                if let Some(at) = kept
                    .iter()
                    .rposition(|k| k.sender.is_ready() && k.is_live(now))
                {
                    return Ok((kept.swap_remove(at).sender, true));
                }
            }
        }
        Ok((self.connect(origin).await?, false))
    }

    /// Puts a connection back once its request is sent: it serves the next request as
    /// soon as this response's body has been read.
    fn keep(&self, origin: &Origin, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut pools = self.pools();
        let kept = pools.by_origin.entry(origin.clone()).or_default();
        // most are still busy here; the idle limit applies when they are checked out
        if kept.len() < MAX_KEPT_PER_ORIGIN {
            kept.push(Kept {
                sender,
                last_used: Instant::now(),
            });
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, ProxyError> {
        let unreachable = |e: &dyn std::error::Error| {
            ProxyError::Upstream(format!(
                "cannot connect to {}:{}: {}",
                origin.host,
                origin.port,
                adp_core::error::error_chain(e)
            ))
        };
        let host = origin.host.trim_start_matches('[').trim_end_matches(']');
        let timed_out = || {
            ProxyError::Upstream(format!(
                "connecting to {}:{} timed out",
                origin.host, origin.port
            ))
        };
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let addresses: Vec<std::net::SocketAddr> =
            tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, origin.port)))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| unreachable(&e))?
                .collect();
        // each address in turn, none allowed the whole budget, so one unreachable
        // address family does not sink the call
        let mut last_error = None;
        let mut connected = None;
        for address in addresses {
            let attempt = (tokio::time::Instant::now() + CONNECT_ATTEMPT_TIMEOUT).min(deadline);
            match tokio::time::timeout_at(attempt, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => {
                    connected = Some(tcp);
                    break;
                }
                Ok(Err(error)) => last_error = Some(unreachable(&error)),
                Err(_) => last_error = Some(timed_out()),
            }
        }
        let tcp = connected.ok_or_else(|| {
            last_error.unwrap_or_else(|| {
                ProxyError::Upstream(format!("{} has no addresses", origin.host))
            })
        })?;
        let _ = tcp.set_nodelay(true);
        if !origin.https {
            return handshake(tcp).await;
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ProxyError::Upstream(format!("bad upstream host {host}: {e}")))?;
        let tls = tokio::time::timeout_at(deadline, self.tls.connect(name, tcp))
            .await
            .map_err(|_| ProxyError::Upstream(format!("TLS to {host} timed out")))?
            .map_err(|e| unreachable(&e))?;
        handshake(tls).await
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Full<Bytes>>, ProxyError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProxyError::Upstream(adp_core::error::error_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %adp_core::error::error_chain(&error), "upstream connection ended");
        }
    });
    Ok(sender)
}

/// `Host`: the host, and the port only when it is not the scheme's default. Never
/// the URL's user info.
fn host_header(url: &Uri, origin: &Origin) -> String {
    let default_port = if origin.https { 443 } else { 80 };
    match url.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", origin.host),
        _ => origin.host.clone(),
    }
}

fn origin_of(url: &Uri) -> Result<Origin, ProxyError> {
    let https = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(ProxyError::Upstream(format!(
                "upstream URL {url} is not http(s)"
            )));
        }
    };
    let host = url
        .host()
        .ok_or_else(|| ProxyError::Upstream(format!("upstream URL {url} has no host")))?;
    Ok(Origin {
        https,
        host: host.to_owned(),
        port: url.port_u16().unwrap_or(if https { 443 } else { 80 }),
    })
}

/// Removes, in place, what must not cross the proxy: hop-by-hop headers (and those the
/// `Connection` header names), cookies meant for the proxy's host, and the length the
/// HTTP stack recomputes.
fn strip(headers: &mut HeaderMap) {
    if headers.contains_key(http::header::CONNECTION) {
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
    }
    // one pass over the (few) names present instead of a hashed removal per candidate
    let present = headers.keys().any(|name| {
        HOP_BY_HOP.contains(name)
            || name == http::header::COOKIE
            || name == http::header::CONTENT_LENGTH
    });
    if !present {
        return;
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

    /// A tiny HTTP/1.1 upstream: answers every request on a connection with 200 and
    /// `connection N`, and closes each connection after `per_connection` answers.
    async fn upstream(per_connection: usize) -> (Target, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target =
            Target::parse(&format!("http://{}/mcp", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    for _ in 0..per_connection {
                        let mut seen = Vec::new();
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            let read = socket.read(&mut buffer).await.unwrap_or(0);
                            if read == 0 {
                                return;
                            }
                            seen.extend_from_slice(&buffer[..read]);
                        }
                        let body = format!("connection {n}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        socket.write_all(answer.as_bytes()).await.unwrap();
                    }
                    // no `Connection: close`: the client finds out when it reuses it
                });
            }
        });
        (target, accepted)
    }

    async fn get(upstream: &Upstream, target: &Target) -> String {
        let response = upstream
            .send(Method::GET, target, HeaderMap::new(), Bytes::new(), None)
            .await
            .unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    fn client() -> Upstream {
        let tls = crate::tls::client_config(None).unwrap();
        Upstream::new(tls, Duration::from_secs(5), 8).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn connections_are_kept_and_reused() {
        let (target, accepted) = upstream(100).await;
        let upstream = client();
        for _ in 0..5 {
            assert_eq!(get(&upstream, &target).await, "connection 1");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_the_upstream_closed_is_replaced() {
        let (target, accepted) = upstream(1).await;
        let upstream = client();
        assert_eq!(get(&upstream, &target).await, "connection 1");
        // the upstream hung up after answering; the next call still gets through
        assert_eq!(get(&upstream, &target).await, "connection 2");
        assert_eq!(get(&upstream, &target).await, "connection 3");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn origins_default_their_ports() {
        let https = origin_of(&"https://mcp.example.com/mcp".parse().unwrap()).unwrap();
        assert_eq!((https.https, https.port), (true, 443));
        let http = origin_of(&"http://127.0.0.1:9000/mcp?x=1".parse().unwrap()).unwrap();
        assert_eq!(
            (http.https, http.host.as_str(), http.port),
            (false, "127.0.0.1", 9000)
        );
        assert!(origin_of(&"ftp://x/".parse().unwrap()).is_err());
        let with_user: Uri = "https://user:pw@mcp.example.com:8443/mcp".parse().unwrap();
        let origin = origin_of(&with_user).unwrap();
        assert_eq!(host_header(&with_user, &origin), "mcp.example.com:8443");
        let default: Uri = "https://mcp.example.com:443/mcp".parse().unwrap();
        assert_eq!(
            host_header(&default, &origin_of(&default).unwrap()),
            "mcp.example.com"
        );
        let target = Target::parse("http://127.0.0.1:9000/mcp?x=1").unwrap();
        assert_eq!(target.path_and_query, "/mcp?x=1");
        assert_eq!(target.host, "127.0.0.1:9000");
        assert_eq!(Target::parse("https://h").unwrap().path_and_query, "/");
        assert!(Target::parse("not a url").is_err());
        assert!(Target::parse("").is_err());
    }
}
