//! One control plane (or several sharing PostgreSQL) plus one real authorization server,
//! configured through the admin API the way an operator would: a secret, an OAuth
//! provider pointing at the server's endpoints, and a user-delegated MCP server.

use std::time::Duration;

use adp_api::v1::connection_service_client::ConnectionServiceClient;
use adp_api::v1::mcp_server::{Auth, Source};
use adp_api::v1::mcp_server_service_client::McpServerServiceClient;
use adp_api::v1::o_auth_provider_service_client::OAuthProviderServiceClient;
use adp_api::v1::secret_service_client::SecretServiceClient;
use adp_api::v1::token_service_client::TokenServiceClient;
use adp_api::v1::*;
use adp_e2e::consent::{ConsentBrowser, RichError};
use adp_e2e::oidc::{AuthorizationServer, ClientConfig, ServerConfig, TokenStats};
use adp_e2e::{ControlPlaneProcess, authed};
use tonic::Status;
use tonic::transport::Channel;

pub const PROVIDER: &str = "github";
pub const SERVER: &str = "github-mcp";
pub const SERVER_URL: &str = "https://mcp.example.test/mcp";
pub const CLIENT_ID: &str = "adp-e2e";
pub const SECRET_REF: &str = "GITHUB_CLIENT_SECRET";
pub const PROVIDER_SCOPES: [&str; 2] = ["repo", "read:org"];
/// The client the control plane signs people in with on its Connections page.
pub const SIGN_IN_CLIENT_ID: &str = "adp-connections-page";
pub const SIGN_IN_SECRET_REF: &str = "CONNECTIONS_PAGE_CLIENT_SECRET";

/// Every test body runs under this bound.
pub const TEST_LIMIT: Duration = Duration::from_secs(240);

/// How a world is set up; `Options::default()` is browser consent, a revocation
/// endpoint, `required_scopes = [repo]` and 300 s access tokens (outside the default
/// 60 s refresh window).
#[derive(Clone, Debug)]
pub struct Options {
    /// Extra control-plane environment, on top of the loopback and jitter settings.
    pub env: Vec<(String, String)>,
    pub access_token_ttl: Duration,
    pub device_poll_interval: Option<Duration>,
    pub grant_types: Vec<GrantType>,
    pub revocation: bool,
    pub required_scopes: Vec<String>,
    /// Where the MCP server points (a real upstream in the proxy tests).
    pub server_url: String,
    /// Sign people in to the Connections page with the same authorization server.
    pub sign_in: bool,
    /// `ADP_INSECURE_DEVELOPMENT=true`, so consent links work without sign-in (the
    /// worlds verify JWTs with an explicit HS256 secret and issuer, which is otherwise
    /// production).
    pub development: bool,
    /// The authorization server rotates refresh tokens (and treats a reused one as
    /// theft, revoking the grant), as oidc-provider does by default.
    pub rotate_refresh_tokens: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            env: Vec::new(),
            access_token_ttl: Duration::from_secs(300),
            device_poll_interval: None,
            grant_types: vec![GrantType::BrowserConsent],
            revocation: true,
            required_scopes: vec!["repo".to_owned()],
            server_url: SERVER_URL.to_owned(),
            sign_in: false,
            development: true,
            rotate_refresh_tokens: true,
        }
    }
}

impl Options {
    pub fn ttl(mut self, seconds: u64) -> Self {
        self.access_token_ttl = Duration::from_secs(seconds);
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn refresh_ahead(self, seconds: u64) -> Self {
        self.env("ADP_REFRESH_AHEAD_SECS", seconds)
    }

    pub fn grants(mut self, grants: &[GrantType]) -> Self {
        self.grant_types = grants.to_vec();
        self
    }

    /// Turns on the Connections page's sign-in, at this world's authorization server.
    pub fn with_sign_in(mut self) -> Self {
        self.sign_in = true;
        self
    }
}

pub struct World {
    pub cps: Vec<ControlPlaneProcess>,
    pub auth_server: AuthorizationServer,
    pub admin: String,
    pub proxy: String,
    pub client_secret: String,
    channels: Vec<Channel>,
    _shared: Option<tempfile::TempDir>,
}

impl World {
    /// One control plane on SQLite.
    pub async fn start(options: Options) -> World {
        World::start_replicas(options, 1, &[]).await
    }

    /// `replicas` control planes with `shared_env` (a shared `ADP_DATABASE_URL`); they
    /// also share one vault key file and one JWT secret.
    pub async fn start_replicas(
        options: Options,
        replicas: usize,
        shared_env: &[(&str, &str)],
    ) -> World {
        let mut env: Vec<(String, String)> = vec![
            ("ADP_INSECURE_LOOPBACK_HTTP".into(), "true".into()),
            ("ADP_REFRESH_JITTER_SECS".into(), "0".into()),
        ];
        if options.development {
            env.push(("ADP_INSECURE_DEVELOPMENT".into(), "true".into()));
        }
        env.extend(options.env.iter().cloned());
        env.extend(
            shared_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        // the control plane must know the sign-in issuer before the server starts
        let auth_server_port = options.sign_in.then(free_port);
        if let Some(port) = auth_server_port {
            // as in production: callers' JWTs come from the same issuer people sign in at
            let issuer = format!("http://127.0.0.1:{port}");
            env.push(("ADP_JWT_ISSUER".into(), issuer.clone()));
            env.push(("ADP_OIDC_ISSUER".into(), issuer));
            env.push(("ADP_OIDC_CLIENT_ID".into(), SIGN_IN_CLIENT_ID.into()));
            env.push((
                "ADP_OIDC_CLIENT_SECRET_REF".into(),
                SIGN_IN_SECRET_REF.into(),
            ));
        }
        let shared = (replicas > 1).then(|| tempfile::tempdir().unwrap());
        if let Some(dir) = &shared {
            let secret = dir.path().join("jwt-secret");
            adp_e2e::write_jwt_secret(&secret);
            let vault = dir.path().join("vault-keys.json");
            env.push(("ADP_JWT_HS256_SECRET_FILE".into(), path_string(&secret)));
            env.push(("ADP_VAULT_KEY_FILE".into(), path_string(&vault)));
        }
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut cps = Vec::new();
        // one after the other: the first generates the shared vault key ring
        for _ in 0..replicas {
            cps.push(ControlPlaneProcess::start_with(&env_refs).await);
        }

        let mut client = ClientConfig::confidential(
            CLIENT_ID,
            &client_secret(),
            &format!("{}/oauth/v1/callback", cps[0].http_url),
        );
        client.redirect_uris = cps
            .iter()
            .map(|cp| format!("{}/oauth/v1/callback", cp.http_url))
            .collect();
        let secret = client.client_secret.clone().unwrap();
        let mut config = ServerConfig {
            access_token_ttl: options.access_token_ttl,
            device_poll_interval: options.device_poll_interval,
            port: auth_server_port,
            rotate_refresh_token: options.rotate_refresh_tokens,
            ..ServerConfig::default()
        }
        .with_client(client);
        if options.sign_in {
            let mut sign_in = ClientConfig::confidential(
                SIGN_IN_CLIENT_ID,
                &sign_in_client_secret(),
                &format!("{}/connections/sign-in/callback", cps[0].http_url),
            )
            .with_grant_types(&["authorization_code"]);
            sign_in.redirect_uris = cps
                .iter()
                .map(|cp| format!("{}/connections/sign-in/callback", cp.http_url))
                .collect();
            config = config.with_client(sign_in);
        }
        let auth_server = AuthorizationServer::start(config).await;

        let mut channels = Vec::new();
        for cp in &cps {
            channels.push(cp.channel().await);
        }
        let world = World {
            admin: cps[0].admin_token(),
            proxy: cps[0].token("proxy-1", &["proxy"]),
            cps,
            auth_server,
            client_secret: secret,
            channels,
            _shared: shared,
        };
        world.configure(&options).await;
        world
    }

    async fn configure(&self, options: &Options) {
        let request = CreateSecretRequest {
            secret: Some(Secret {
                name: SECRET_REF.into(),
                ..Default::default()
            }),
            value: self.client_secret.clone(),
            validate_only: false,
        };
        SecretServiceClient::new(self.channel(0))
            .create_secret(authed(request, &self.admin))
            .await
            .expect("create the client secret");
        if options.sign_in {
            let request = CreateSecretRequest {
                secret: Some(Secret {
                    name: SIGN_IN_SECRET_REF.into(),
                    ..Default::default()
                }),
                value: sign_in_client_secret(),
                validate_only: false,
            };
            SecretServiceClient::new(self.channel(0))
                .create_secret(authed(request, &self.admin))
                .await
                .expect("create the sign-in client secret");
        }
        self.create_provider(self.provider_spec(PROVIDER, options))
            .await
            .expect("create the provider");
        let server = McpServer {
            name: SERVER.into(),
            description: "GitHub MCP through ADP".into(),
            enabled: true,
            source: Some(Source::Remote(RemoteMcp {
                url: options.server_url.clone(),
                transport: 0,
            })),
            auth: Some(Auth::UserOauth(UserOAuthAuth {
                provider_name: PROVIDER.into(),
                required_scopes: options.required_scopes.clone(),
                token_injection: None,
            })),
            ..Default::default()
        };
        let request = CreateMcpServerRequest {
            mcp_server: Some(server),
            validate_only: false,
        };
        McpServerServiceClient::new(self.channel(0))
            .create_mcp_server(authed(request, &self.admin))
            .await
            .expect("create the mcp server");
    }

    /// A provider named `name` at this world's authorization server.
    pub fn provider_spec(&self, name: &str, options: &Options) -> OAuthProvider {
        let endpoints = self.auth_server.endpoints();
        OAuthProvider {
            name: name.into(),
            display_name: "GitHub (test)".into(),
            authorize_url: endpoints.authorization_endpoint.clone(),
            token_url: endpoints.token_endpoint.clone(),
            revocation_url: if options.revocation {
                endpoints.revocation_endpoint.clone()
            } else {
                String::new()
            },
            device_authorization_url: endpoints.device_authorization_endpoint.clone(),
            scopes: PROVIDER_SCOPES.map(String::from).to_vec(),
            client_id: CLIENT_ID.into(),
            client_secret_ref: SECRET_REF.into(),
            token_auth_method: TokenAuthMethod::ClientSecretBasic as i32,
            grant_types: options.grant_types.iter().map(|g| *g as i32).collect(),
            require_pkce: true,
            enabled: true,
            issuer: self.auth_server.issuer().to_owned(),
            ..Default::default()
        }
    }

    pub async fn create_provider(&self, provider: OAuthProvider) -> Result<OAuthProvider, Status> {
        let request = CreateOAuthProviderRequest {
            oauth_provider: Some(provider),
            validate_only: false,
        };
        let response = OAuthProviderServiceClient::new(self.channel(0))
            .create_o_auth_provider(authed(request, &self.admin))
            .await?;
        Ok(response.into_inner().oauth_provider.unwrap())
    }

    pub async fn update_provider(
        &self,
        patch: OAuthProvider,
        paths: &[&str],
    ) -> Result<OAuthProvider, Status> {
        let request = UpdateOAuthProviderRequest {
            oauth_provider: Some(patch),
            update_mask: Some(mask(paths)),
            validate_only: false,
        };
        let response = OAuthProviderServiceClient::new(self.channel(0))
            .update_o_auth_provider(authed(request, &self.admin))
            .await?;
        Ok(response.into_inner().oauth_provider.unwrap())
    }

    pub async fn update_server(
        &self,
        patch: McpServer,
        paths: &[&str],
    ) -> Result<McpServer, Status> {
        let request = UpdateMcpServerRequest {
            mcp_server: Some(patch),
            update_mask: Some(mask(paths)),
            validate_only: false,
        };
        let response = McpServerServiceClient::new(self.channel(0))
            .update_mcp_server(authed(request, &self.admin))
            .await?;
        Ok(response.into_inner().mcp_server.unwrap())
    }

    pub fn channel(&self, replica: usize) -> Channel {
        self.channels[replica].clone()
    }

    /// A user's JWT (valid on every replica). With sign-in on, its issuer is the
    /// authorization server's, so `user("alice")` is the alice who signs in there.
    pub fn user(&self, subject: &str) -> String {
        self.cps[0].token(subject, &[])
    }

    pub fn browser(&self) -> ConsentBrowser {
        ConsentBrowser::new(&self.auth_server)
    }

    pub async fn stats(&self) -> TokenStats {
        self.auth_server.stats().await
    }

    /// Asserts that no control plane logged the client secret or any of `secrets`
    /// (access tokens it handed out, say).
    pub fn assert_log_free_of(&mut self, secrets: &[&str]) {
        let client_secret = self.client_secret.clone();
        for (replica, cp) in self.cps.iter_mut().enumerate() {
            let log = cp.drain_log();
            assert!(!log.is_empty(), "replica {replica} logged nothing");
            for secret in secrets.iter().copied().chain([client_secret.as_str()]) {
                let secret = secret.trim_start_matches("Bearer ");
                assert!(
                    !log.iter().any(|line| line.contains(secret)),
                    "replica {replica} logged a secret"
                );
            }
        }
    }

    /// Whether the authorization server still honours `token` (RFC 7662 introspection
    /// as the registered client).
    pub async fn introspect(&self, token: &str) -> bool {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(&self.auth_server.endpoints().introspection_endpoint)
            .basic_auth(CLIENT_ID, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection endpoint reachable")
            .error_for_status()
            .expect("introspection answers 200")
            .json()
            .await
            .expect("introspection json");
        answer["active"].as_bool().expect("active flag")
    }

    pub fn connections(&self, replica: usize) -> ConnectionServiceClient<Channel> {
        ConnectionServiceClient::new(self.channel(replica))
    }

    /// `GetUpstreamCredential` for `subject` on `SERVER`, as the proxy would call it.
    pub async fn credential(&self, subject: &str) -> Result<GetUpstreamCredentialResponse, Status> {
        self.credential_via(0, subject).await
    }

    pub async fn credential_via(
        &self,
        replica: usize,
        subject: &str,
    ) -> Result<GetUpstreamCredentialResponse, Status> {
        let request = credential_request(SERVER, Some(&self.user(subject)), Some(&self.proxy));
        TokenServiceClient::new(self.channel(replica))
            .get_upstream_credential(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// The bearer credential for `subject`, asserting its shape; returns the header value.
    pub async fn bearer(&self, subject: &str) -> String {
        let credential = self
            .credential(subject)
            .await
            .unwrap_or_else(|status| panic!("credential for {subject}: {status:?}"));
        assert_bearer(&credential)
    }

    /// The consent error `GetUpstreamCredential` answers for `subject`.
    pub async fn credential_error(&self, subject: &str) -> RichError {
        match self.credential(subject).await {
            Ok(_) => panic!("{subject} got a credential where a consent error was expected"),
            Err(status) => RichError::from_status(&status),
        }
    }

    pub async fn cards(&self, subject: &str) -> Vec<Connection> {
        self.connections(0)
            .list_connections(authed(ListConnectionsRequest {}, &self.user(subject)))
            .await
            .expect("ListConnections")
            .into_inner()
            .connections
    }

    /// The card of `PROVIDER`.
    pub async fn card(&self, subject: &str) -> Connection {
        self.card_of(subject, PROVIDER).await
    }

    pub async fn card_of(&self, subject: &str, provider: &str) -> Connection {
        let cards = self.cards(subject).await;
        cards
            .into_iter()
            .find(|c| c.provider_name == provider)
            .unwrap_or_else(|| panic!("no {provider} card for {subject}"))
    }

    pub async fn connect(&self, subject: &str) -> ConnectResponse {
        self.connect_to(subject, PROVIDER).await
    }

    pub async fn connect_to(&self, subject: &str, provider: &str) -> ConnectResponse {
        let request = ConnectRequest {
            provider_name: provider.into(),
            scopes: Vec::new(),
        };
        self.connections(0)
            .connect(authed(request, &self.user(subject)))
            .await
            .expect("Connect")
            .into_inner()
    }

    /// `Connect`, then the whole browser consent as `subject`.
    pub async fn consent(&self, browser: &ConsentBrowser, subject: &str) {
        let start = self.connect(subject).await;
        browser
            .connect(&start.authorize_url, subject)
            .await
            .unwrap_or_else(|error| panic!("consent as {subject}: {error:#}"));
    }

    /// Sleeps until `subject`'s access token has at most `left` before it expires.
    pub async fn sleep_until_expiry_within(&self, subject: &str, left: Duration) {
        let card = self.card(subject).await;
        let expire = card
            .expire_time
            .expect("the card shows when the token expires");
        let expire = std::time::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(expire.seconds).unwrap())
            + Duration::from_nanos(u64::try_from(expire.nanos).unwrap());
        let wake = expire
            .checked_sub(left)
            .expect("expiry is far from the epoch");
        if let Ok(wait) = wake.duration_since(std::time::SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// A `GetUpstreamCredentialRequest` with the given user and proxy JWTs.
pub fn credential_request(
    server: &str,
    user: Option<&str>,
    proxy: Option<&str>,
) -> tonic::Request<GetUpstreamCredentialRequest> {
    let message = GetUpstreamCredentialRequest {
        server_name: server.into(),
    };
    let mut request = match user {
        Some(user) => authed(message, user),
        None => tonic::Request::new(message),
    };
    if let Some(proxy) = proxy {
        request.metadata_mut().insert(
            adp_core::metadata::PROXY_AUTHORIZATION,
            format!("Bearer {proxy}").parse().unwrap(),
        );
    }
    request
}

pub fn assert_bearer(credential: &GetUpstreamCredentialResponse) -> String {
    assert_eq!(credential.header_name, "Authorization");
    assert!(
        credential.header_value.starts_with("Bearer ") && credential.header_value.len() > 20,
        "not a bearer credential"
    );
    credential.header_value.clone()
}

pub fn status(card: &Connection) -> ConnectionStatus {
    ConnectionStatus::try_from(card.status).unwrap_or(ConnectionStatus::Unspecified)
}

pub fn mask(paths: &[&str]) -> prost_types::FieldMask {
    prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn client_secret() -> String {
    format!("client-secret-{}", uuid::Uuid::new_v4().simple())
}

fn path_string(path: &std::path::Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_owned()
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn sign_in_client_secret() -> String {
    "connections-page-client-secret-for-tests".to_owned()
}
