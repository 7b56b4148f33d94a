//! Boots a proxy from its settings: config feed, credential cache, upstream client,
//! and the listener. Tests start it on port 0 the same way the binary does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adp_core::identity::{Verifier, VerifierConfig};
use adp_listener::{ConnectionSlots, Listener};
use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};

use crate::callers::Callers;
use crate::consent::RequestStates;
use crate::control_plane_client::ControlPlaneClient;
use crate::credential_cache::{CredentialCache, Revocations};
use crate::feed;
use crate::forward::Upstream;
use crate::gateway::Gateway;
use crate::keys::StateKeys;
use crate::mcp_http::{AppState, Shared, dispatch, router};
use crate::session_ids::SessionIds;
use crate::settings::Settings;
use crate::upstream_sessions::UpstreamSessions;
use adp_api::v1::mcp_gateway_service_server::McpGatewayServiceServer;
use adp_settings::shared::LogFormat;

/// How long in-flight calls get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Spent request states remembered at most.
const SESSION_CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    workers: Vec<oneshot::Receiver<()>>,
}

impl Proxy {
    /// Starts the config feed on the calling runtime and one serving thread per
    /// worker, each with its own single-threaded runtime and its own `SO_REUSEPORT`
    /// listener on the same address, like nginx's workers: a request is read, forwarded
    /// and answered on one thread, with no cross-thread wake-ups on the hot path.
    pub async fn start(settings: Settings) -> anyhow::Result<Proxy> {
        if settings.proxy_token_file.is_none() {
            anyhow::bail!(
                "set ADP_PROXY_TOKEN_FILE to a file holding this proxy's JWT (permission `proxy`)"
            );
        }
        let verifier_config = verifier_config(&settings)?;
        let keys = StateKeys::load(
            settings.state_key_file.as_deref(),
            &verifier_config.key_source,
        )?;
        let verifier = Verifier::new(verifier_config)?;
        let control_plane = ControlPlaneClient::new(
            &settings.control_plane_url,
            settings.proxy_token_file.clone(),
        )
        .context("bad ADP_CONTROL_PLANE_URL")?;
        let tls = crate::tls::client_config(settings.upstream_ca_file.as_deref())?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let revocations = Arc::new(Revocations::default());
        let feed = feed::spawn(
            control_plane.clone(),
            settings.node_id(),
            revocations.clone(),
            shutdown_rx.clone(),
        );
        let shared = Arc::new(Shared {
            feed,
            control_plane: control_plane.clone(),
            callers: Callers::new(verifier, settings.credential_cache_size),
            credentials: CredentialCache::new(
                control_plane,
                settings.credential_cache_size,
                settings.upstream_timeout,
                revocations,
            ),
            session_ids: SessionIds::new(keys.session_id),
            request_states: RequestStates::new(keys.request_state, SESSION_CAPACITY),
            allowed_origins: settings.allowed_origins.clone(),
            max_request_bytes: settings.max_request_bytes,
        });
        let gateway = Gateway {
            shared: shared.clone(),
            sessions: UpstreamSessions::new(tls.clone(), settings.credential_cache_size)?,
            upstream_timeout: settings.upstream_timeout,
            max_consent_wait: settings.max_consent_wait,
        };
        let count = match settings.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        // one limit for all workers: whichever frees a slot serves the next connection
        let slots = ConnectionSlots::new(settings.limits.max_connections);
        let mut addr = settings.addr;
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            // the first worker binds the configured address (port 0 picks one); the rest
            // join it on the port it got
            let (bound_tx, bound_rx) = oneshot::channel();
            let (done_tx, done_rx) = oneshot::channel();
            let worker = Worker {
                index,
                addr,
                shared: shared.clone(),
                gateway: gateway.clone(),
                tls: tls.clone(),
                settings: settings.clone(),
                slots: slots.clone(),
                shutdown: shutdown_rx.clone(),
            };
            std::thread::Builder::new()
                .name(format!("adp-proxy-worker-{index}"))
                .spawn(move || {
                    worker.run(bound_tx);
                    let _ = done_tx.send(());
                })?;
            addr = bound_rx
                .await
                .context("proxy worker exited before listening")??;
            workers.push(done_rx);
        }
        tracing::info!(%addr, workers = count, control_plane = %settings.control_plane_url, "proxy serving");
        Ok(Proxy {
            addr,
            shutdown,
            workers,
        })
    }

    /// Stops accepting, lets in-flight calls finish within a bound, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let all = futures::future::join_all(self.workers);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("in-flight calls did not finish in time; closing anyway");
        }
    }

    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
        self.shutdown().await;
        Ok(())
    }
}

struct Worker {
    index: usize,
    addr: SocketAddr,
    shared: Arc<Shared>,
    gateway: Gateway,
    tls: rustls::ClientConfig,
    settings: Settings,
    slots: ConnectionSlots,
    shutdown: watch::Receiver<bool>,
}

impl Worker {
    fn run(self, bound: oneshot::Sender<anyhow::Result<SocketAddr>>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = bound.send(Err(error.into()));
                return;
            }
        };
        runtime.block_on(async move {
            let listening = listen(self.addr).and_then(|listener| {
                let upstream = Upstream::new(
                    self.tls.clone(),
                    self.settings.upstream_timeout,
                    self.settings.upstream_pool_max_idle,
                )?;
                Ok((listener, upstream))
            });
            let (listener, upstream) = match listening {
                Ok(ok) => ok,
                Err(error) => {
                    let _ = bound.send(Err(error));
                    return;
                }
            };
            let _ = bound.send(listener.local_addr().map_err(Into::into));
            // MCP over HTTP/1.1 and the gRPC gateway over HTTP/2 share the listener
            let grpc = tonic::service::Routes::new(McpGatewayServiceServer::new(self.gateway))
                .into_axum_router();
            let state = Arc::new(AppState {
                shared: self.shared,
                upstream,
            });
            let app = router(state.clone()).merge(grpc);
            let listener = Listener::new(listener, self.settings.limits, self.slots, "proxy");
            let service = hyper::service::service_fn(move |request| {
                dispatch(state.clone(), app.clone(), request)
            });
            let mut stop = self.shutdown;
            tracing::debug!(worker = self.index, "worker serving");
            // accepts until shutdown, then lets open connections finish their requests
            adp_listener::serve_http(listener, service, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        });
    }
}

fn listen(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(socket.listen(1024)?)
}

/// How callers' JWTs are verified, refused when it would be weak (see
/// `adp_core::identity::check_jwt_settings`).
fn verifier_config(settings: &Settings) -> anyhow::Result<VerifierConfig> {
    // with both set, the JWKS verifies (the secret file is then a development leftover)
    let Some(keys) = settings.jwt.preferring_jwks() else {
        anyhow::bail!(
            "set ADP_JWKS_URL (or ADP_JWT_HS256_SECRET_FILE for development) so the proxy can verify callers"
        );
    };
    let key_source = keys.key_source(settings.upstream_ca_file.clone())?;
    Ok(settings
        .jwt
        .verifier_config(key_source, settings.insecure_development)?)
}

pub fn init_logging(format: LogFormat) {
    adp_settings::shared::init_logging(format, "info");
}
