//! Boots a control plane from resolved settings: database, vault, verifier, both
//! listeners. Tests start it on port 0 the same way the binary does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adp_api::v1::config_discovery_service_server::ConfigDiscoveryServiceServer;
use adp_api::v1::connection_service_server::ConnectionServiceServer;
use adp_api::v1::managed_catalog_service_server::ManagedCatalogServiceServer;
use adp_api::v1::mcp_server_service_server::McpServerServiceServer;
use adp_api::v1::o_auth_provider_service_server::OAuthProviderServiceServer;
use adp_api::v1::secret_service_server::SecretServiceServer;
use adp_api::v1::token_service_server::TokenServiceServer;
use adp_core::identity::{KeySource, Verifier};
use adp_core::validation::RequestValidator;
use adp_listener::{ConnectionSlots, Listener};
use adp_oauth::{EndpointPolicy, OAuthClient, RetryPolicy};
use adp_store::Store;
use adp_vault::{KeyRing, Vault};
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::config_feed::ConfigFeed;
use crate::connections::Connections;
use crate::credentials::CredentialIssuer;
use crate::service::catalog::CatalogService;
use crate::service::config::ConfigApi;
use crate::service::connections::ConnectionApi;
use crate::service::providers::ProviderService;
use crate::service::secrets::SecretStoreService;
use crate::service::servers::ServerService;
use crate::service::tokens::TokenApi;
use crate::signin::{SignIn, SignInParts};
use crate::state::{ConsentBinding, SharedState, State};
use crate::telemetry;

/// How long in-flight calls get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    connections: Arc<Connections>,
}

impl ControlPlane {
    /// Opens the database (migrating it), the vault and the listeners, and starts serving.
    pub async fn start(settings: Settings) -> anyhow::Result<ControlPlane> {
        let store = open_store(&settings).await?;
        let vault = open_vault(&settings.vault_key_file)?;
        let verifier = build_verifier(&settings)?;
        if settings.insecure_loopback_http {
            tracing::warn!(
                "insecure development mode: http:// provider endpoints on loopback hosts are accepted"
            );
        }

        let grpc_listener = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("cannot listen for gRPC on {}", settings.grpc_addr))?;
        let http_listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", settings.http_addr))?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        let vault = Arc::new(vault);
        let public_url = settings.public_url_for(http_addr);
        let oauth = OAuthClient::new(
            settings.upstream_ca_file.as_deref(),
            settings.oauth_timeout,
            RetryPolicy::default(),
        )?;
        let connections = Arc::new(Connections::new(
            store.clone(),
            vault.clone(),
            oauth.clone(),
            public_url.clone(),
            settings.connections,
        )?);
        let sign_in = match settings.sign_in.clone() {
            Some(sign_in) => {
                if let Some(jwt_issuer) = &settings.jwt.issuer
                    && jwt_issuer.trim_end_matches('/') != sign_in.issuer
                {
                    tracing::warn!(%jwt_issuer, oidc_issuer = %sign_in.issuer, "ADP_OIDC_ISSUER differs from ADP_JWT_ISSUER: connections made on the Connections page will not be the ones JWT callers use");
                }
                tracing::info!(issuer = %sign_in.issuer, "connections page sign-in enabled");
                Some(Arc::new(SignIn::new(
                    sign_in,
                    SignInParts {
                        oauth: oauth.clone(),
                        policy: EndpointPolicy {
                            allow_insecure_loopback: settings.insecure_loopback_http,
                        },
                        ca_file: settings.upstream_ca_file.clone(),
                        public_url: public_url.clone(),
                        store: store.clone(),
                        vault: vault.clone(),
                        connections: connections.clone(),
                    },
                )?))
            }
            None => None,
        };
        let development = settings.insecure_development || settings.jwt_keys.is_none();
        let consent_binding = ConsentBinding::choose(sign_in.is_some(), development);
        match consent_binding {
            ConsentBinding::SignedIn => {}
            ConsentBinding::Development => tracing::warn!(
                "no browser sign-in (ADP_OIDC_ISSUER, ADP_OIDC_CLIENT_ID): development mode, a consent link connects whoever opens it; never expose this control plane to other people"
            ),
            ConsentBinding::Unavailable => tracing::error!(
                "browser consent is off: JWTs are verified for production but no browser sign-in is configured, so a consent link cannot be bound to its user; set ADP_OIDC_ISSUER and ADP_OIDC_CLIENT_ID (device-flow providers still work)"
            ),
        }
        let state: SharedState = Arc::new(State {
            consent_binding,
            sign_in,
            store,
            vault,
            auth: Authenticator::new(verifier),
            validator: RequestValidator::new(),
            endpoint_policy: EndpointPolicy {
                allow_insecure_loopback: settings.insecure_loopback_http,
            },
            callback_url: settings.callback_url(http_addr),
            public_url,
            credentials: CredentialIssuer {
                connections: connections.clone(),
                service_accounts: Default::default(),
                oauth,
                servers: Default::default(),
                providers: Default::default(),
            },
            connections,
        });
        tokio::spawn(purge_consent_attempts(state.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let forgetting = state.clone();
        let feed = ConfigFeed::start(
            state.store.clone(),
            Box::new(move |change| forgetting.credentials.forget(change)),
            shutdown_rx.clone(),
        );
        if let Some(idle) = settings.background_refresh_idle {
            tokio::spawn(crate::connections::background::run(
                state.connections.clone(),
                idle,
                shutdown_rx.clone(),
            ));
        }
        let mut tasks = JoinSet::new();
        // each listener has its own connection limit
        let limits = settings.limits;
        let grpc_listener = Listener::new(
            grpc_listener,
            limits,
            ConnectionSlots::new(limits.max_connections),
            "grpc",
        );
        let http_listener = Listener::new(
            http_listener,
            limits,
            ConnectionSlots::new(limits.max_connections),
            "http",
        );
        tasks.spawn(serve_grpc(
            state.clone(),
            feed,
            grpc_listener,
            shutdown_rx.clone(),
        ));
        let connections = state.connections.clone();
        tasks.spawn(serve_http(state, http_listener, shutdown_rx));
        tracing::info!(%grpc_addr, %http_addr, public_url = %settings.public_url_for(http_addr), "control plane serving");
        Ok(ControlPlane {
            grpc_addr,
            http_addr,
            shutdown,
            tasks,
            connections,
        })
    }

    /// Stops accepting, lets in-flight calls finish within a bound, then returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!("in-flight calls did not finish in time; closing anyway");
            self.tasks.abort_all();
        }
        // refreshes run detached from their callers; one cut short after the provider
        // rotated the refresh token would end that user's connection
        let running = self
            .connections
            .drain_refreshes(self.connections.refresh_lease())
            .await;
        if running > 0 {
            tracing::warn!(running, "refreshes still running at exit");
        }
    }

    /// Serves until a listener fails or the process gets SIGTERM / Ctrl-C.
    pub async fn run_until_signal(mut self) -> anyhow::Result<()> {
        tokio::select! {
            () = shutdown_signal() => {
                tracing::info!("shutting down");
                self.shutdown().await;
                Ok(())
            }
            Some(result) = self.tasks.join_next() => {
                result.context("server task panicked")?.context("server stopped")?;
                Ok(())
            }
        }
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let store = Store::connect(&settings.database_url)
        .await
        .context("cannot open the database")?;
    store.migrate().await.context("database migration failed")?;
    tracing::info!(backend = ?store.backend(), "database ready");
    Ok(store)
}

fn open_vault(path: &Path) -> anyhow::Result<Vault> {
    // load_or_generate warns when it creates a key ring
    let (keys, _generated) = KeyRing::load_or_generate(path)?;
    Ok(Vault::new(keys))
}

fn build_verifier(settings: &Settings) -> anyhow::Result<Verifier> {
    let key_source = match &settings.jwt_keys {
        Some(keys) => keys.key_source(settings.upstream_ca_file.clone())?,
        None => {
            let path = settings.dev_jwt_secret_file();
            if !path.exists() {
                write_dev_secret(path)?;
                tracing::warn!(path = %path.display(), "no JWT verification configured: generated a development HS256 secret; set ADP_JWKS_URL in production");
            } else {
                tracing::warn!(path = %path.display(), "verifying JWTs with the development HS256 secret; set ADP_JWKS_URL in production");
            }
            KeySource::hs256_from_file(path)?
        }
    };
    // with a JWKS: issuer and audience required, https unless insecure development
    let config = settings
        .jwt
        .verifier_config(key_source, settings.insecure_development)?;
    Ok(Verifier::new(config)?)
}

fn write_dev_secret(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let secret: [u8; 32] = rand::random();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(hex::encode(secret).as_bytes())?;
    Ok(())
}

async fn serve_grpc(
    state: SharedState,
    feed: Arc<ConfigFeed>,
    listener: Listener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(watch_database_health(
        state.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    health
        .set_serving::<OAuthProviderServiceServer<ProviderService>>()
        .await;
    health
        .set_serving::<McpServerServiceServer<ServerService>>()
        .await;
    health
        .set_serving::<SecretServiceServer<SecretStoreService>>()
        .await;
    health
        .set_serving::<ManagedCatalogServiceServer<CatalogService>>()
        .await;
    health
        .set_serving::<ConnectionServiceServer<ConnectionApi>>()
        .await;
    health.set_serving::<TokenServiceServer<TokenApi>>().await;
    health
        .set_serving::<ConfigDiscoveryServiceServer<ConfigApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(adp_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // lets grpcurl and buf curl decode ErrorInfo, BadRequest and Help details
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(adp_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // lets grpcurl and buf curl decode ErrorInfo, BadRequest and Help details
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let layers = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_grpc()
                .make_span_with(telemetry::grpc_span)
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .into_inner();

    let limits = *listener.limits();
    // our own incoming stream, not tonic's: it holds the connection limit and closes
    // connections whose HTTP/2 preface does not arrive in time (tonic's handshake waits
    // for ever); each socket gets TCP_NODELAY and keepalive there
    let incoming = adp_listener::grpc::incoming(listener);
    adp_listener::grpc::configure(tonic::transport::Server::builder(), &limits)
        .layer(adp_listener::grpc::RequestBodyTimeoutLayer::new(
            limits.request_body_timeout,
        ))
        .layer(layers)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(OAuthProviderServiceServer::new(ProviderService {
            state: state.clone(),
        }))
        .add_service(McpServerServiceServer::new(ServerService {
            state: state.clone(),
        }))
        .add_service(SecretServiceServer::new(SecretStoreService {
            state: state.clone(),
        }))
        .add_service(ManagedCatalogServiceServer::new(CatalogService {
            state: state.clone(),
        }))
        .add_service(ConnectionServiceServer::new(ConnectionApi {
            state: state.clone(),
        }))
        .add_service(ConfigDiscoveryServiceServer::new(ConfigApi {
            state: state.clone(),
            feed,
            shutdown: shutdown.clone(),
        }))
        .add_service(TokenServiceServer::new(TokenApi { state }))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await?;
    Ok(())
}

/// Keeps the overall gRPC health status ("") in step with the database, so load
/// balancers stop sending traffic to a replica that cannot reach it.
async fn watch_database_health(
    state: SharedState,
    health: tonic_health::server::HealthReporter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut serving = true;
    loop {
        let healthy = state.store.ping().await.is_ok();
        if healthy != serving {
            serving = healthy;
            let status = if healthy {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            tracing::warn!(healthy, "database health changed");
            health.set_service_status("", status).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Consent links live minutes and sessions hours; sweep the dead ones so the tables
/// stay small.
async fn purge_consent_attempts(state: SharedState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match state.store.consents().purge_expired().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired consent attempts removed"),
            Err(error) => tracing::warn!(%error, "purging consent attempts failed"),
        }
        match state.store.sessions().purge_expired().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired browser sessions removed"),
            Err(error) => tracing::warn!(%error, "purging browser sessions failed"),
        }
    }
}

/// The HTTP listener, on hyper-util rather than `axum::serve`, which has no header-read
/// timeout, connection limit or body deadline.
async fn serve_http(
    state: SharedState,
    listener: Listener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use tower::ServiceExt;
    let router = crate::http::router(state);
    let service = hyper::service::service_fn(
        move |request: http::Request<adp_listener::TimedBody<hyper::body::Incoming>>| {
            router.clone().oneshot(request.map(axum::body::Body::new))
        },
    );
    adp_listener::serve_http(listener, service, async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    })
    .await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
