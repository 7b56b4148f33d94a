//! Boots a proxy from its settings: config subscriber, credential cache, upstream client,
//! and the listener. Tests start it on port 0 the same way the binary does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adp_core::identity::{KeySource, Verifier, VerifierConfig};
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bounded::BoundedMap;
use crate::consent::RequestStates;
use crate::control_plane::ControlPlane;
use crate::credentials::CredentialCache;
use crate::forward::Upstream;
use crate::http::{AppState, router};
use crate::settings::{LogFormat, Settings};
use crate::subscriber;

/// How long in-flight calls get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Sessions and sealed request states remembered at most.
const SESSION_CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Proxy {
    pub async fn start(settings: Settings) -> anyhow::Result<Proxy> {
        if settings.proxy_token_file.is_none() {
            anyhow::bail!(
                "set ADP_PROXY_TOKEN_FILE to a file holding this proxy's JWT (permission `proxy`)"
            );
        }
        let verifier = build_verifier(&settings)?;
        let control_plane = ControlPlane::new(
            &settings.control_plane_url,
            settings.proxy_token_file.clone(),
        )
        .context("bad ADP_CONTROL_PLANE_URL")?;
        let upstream = Upstream::new(
            settings.upstream_ca_file.as_deref(),
            settings.upstream_timeout(),
            settings.upstream_pool_max_idle,
        )?;
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let config = subscriber::spawn(
            control_plane.clone(),
            settings.node_id(),
            shutdown_rx.clone(),
        );
        let state = Arc::new(AppState {
            config,
            verifier,
            credentials: CredentialCache::new(
                control_plane,
                settings.credential_cache_size,
                settings.upstream_timeout(),
            ),
            upstream,
            sessions: BoundedMap::new(SESSION_CAPACITY),
            request_states: RequestStates::new(SESSION_CAPACITY),
            allowed_origins: settings.allowed_origins.clone(),
            max_request_bytes: settings.max_request_bytes,
        });
        let app = router(state);
        let mut stop = shutdown_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        tracing::info!(%addr, control_plane = %settings.control_plane_url, "proxy serving");
        Ok(Proxy {
            addr,
            shutdown,
            server,
        })
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut server = self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("in-flight calls did not finish in time; closing anyway");
            server.abort();
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

fn build_verifier(settings: &Settings) -> anyhow::Result<Verifier> {
    let key_source = match (&settings.jwks_url, &settings.jwt_hs256_secret_file) {
        (Some(url), _) => KeySource::jwks(url.clone(), settings.upstream_ca_file.clone()),
        (None, Some(path)) => KeySource::hs256_from_file(path)?,
        (None, None) => anyhow::bail!(
            "set ADP_JWKS_URL (or ADP_JWT_HS256_SECRET_FILE for development) so the proxy can verify callers"
        ),
    };
    let mut config = VerifierConfig::new(key_source);
    config.issuer = settings.jwt_issuer.clone();
    config.audience = settings.jwt_audience.clone();
    config.permissions_claim = settings.permissions_claim.clone();
    Ok(Verifier::new(config)?)
}

pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
