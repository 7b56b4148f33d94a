//! A real OAuth 2.0 authorization server for tests: `oidc-provider` (npm) run by Node
//! from `tests/node/authorization-server.mjs` on 127.0.0.1 with port 0, plus a
//! [`Browser`] that clicks through its login and consent pages.
//!
//! ```text
//! let server = AuthorizationServer::start(ServerConfig::default().with_client(
//!     ClientConfig::confidential("adp", "secret", "http://127.0.0.1:1/oauth/v1/callback"))).await;
//! let callback = server.browser().consent(authorize_url.as_str(), "alice").await?;
//! ```
//!
//! `npm ci` runs on first use when `tests/node/node_modules` is missing or stale.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::ensure;
use serde::{Deserialize, Serialize, Serializer};
use tokio::process::{Child, ChildStdin};
use url::Url;

mod browser;
mod html;
pub(crate) mod node;

pub use browser::Browser;

pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
pub const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the authorization server is started with; serialized to the JSON file the
/// Node script reads (durations in whole seconds).
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    pub clients: Vec<ClientConfig>,
    /// Custom scopes of the single resource server (`repo`, `read:org`, ...). `openid`
    /// and `offline_access` are always known on top of these.
    pub scopes: Vec<String>,
    /// Resource indicator every token is issued for unless a request names another.
    pub resource: String,
    #[serde(serialize_with = "seconds")]
    pub access_token_ttl: Duration,
    pub access_token_format: AccessTokenFormat,
    #[serde(serialize_with = "seconds")]
    pub refresh_token_ttl: Duration,
    pub rotate_refresh_token: bool,
    /// When false (the default), every client allowed the `refresh_token` grant gets a
    /// refresh token, as most non-OIDC providers do.
    pub refresh_token_requires_offline_access: bool,
    #[serde(serialize_with = "seconds")]
    pub device_code_ttl: Duration,
    /// When set, device authorization responses carry `interval` and polling faster
    /// than it answers `slow_down` (oidc-provider itself never does either).
    #[serde(serialize_with = "optional_seconds")]
    pub device_poll_interval: Option<Duration>,
    /// Added to the polling interval after each `slow_down` (RFC 8628 says 5 s).
    #[serde(serialize_with = "seconds")]
    pub slow_down_increment: Duration,
    /// Listen here instead of on a port of the system's choosing, for a control
    /// plane that must know the issuer before the server starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            clients: Vec::new(),
            scopes: ["repo", "read:org", "read:user"].map(String::from).to_vec(),
            resource: "https://api.adp.test".to_owned(),
            access_token_ttl: Duration::from_secs(30),
            access_token_format: AccessTokenFormat::Opaque,
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            rotate_refresh_token: true,
            refresh_token_requires_offline_access: false,
            device_code_ttl: Duration::from_secs(600),
            device_poll_interval: None,
            slow_down_increment: Duration::from_secs(5),
            port: None,
        }
    }
}

impl ServerConfig {
    pub fn with_client(mut self, client: ClientConfig) -> Self {
        self.clients.push(client);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    Opaque,
    Jwt,
}

/// A registered client, in oidc-provider's (RFC 7591) metadata names.
#[derive(Debug, Clone, Serialize)]
pub struct ClientConfig {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
}

impl ClientConfig {
    /// `client_secret_basic`; authorization code, refresh, device code and client
    /// credentials grants.
    pub fn confidential(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        ClientConfig {
            client_id: client_id.to_owned(),
            client_secret: Some(client_secret.to_owned()),
            redirect_uris: vec![redirect_uri.to_owned()],
            grant_types: [
                AUTHORIZATION_CODE_GRANT,
                REFRESH_TOKEN_GRANT,
                DEVICE_CODE_GRANT,
                CLIENT_CREDENTIALS_GRANT,
            ]
            .map(String::from)
            .to_vec(),
            token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        }
    }

    /// No secret (`none`, PKCE required); authorization code, refresh and device code.
    pub fn public(client_id: &str, redirect_uri: &str) -> Self {
        ClientConfig {
            client_id: client_id.to_owned(),
            client_secret: None,
            redirect_uris: vec![redirect_uri.to_owned()],
            grant_types: [
                AUTHORIZATION_CODE_GRANT,
                REFRESH_TOKEN_GRANT,
                DEVICE_CODE_GRANT,
            ]
            .map(String::from)
            .to_vec(),
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        }
    }

    pub fn with_auth_method(mut self, method: TokenEndpointAuthMethod) -> Self {
        self.token_endpoint_auth_method = method;
        self
    }

    /// Clients without `authorization_code` get no redirect URIs or response types.
    pub fn with_grant_types(mut self, grant_types: &[&str]) -> Self {
        self.grant_types = grant_types.iter().map(|g| (*g).to_owned()).collect();
        if !self
            .grant_types
            .iter()
            .any(|g| g == AUTHORIZATION_CODE_GRANT)
        {
            self.redirect_uris.clear();
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

/// Endpoint URLs from the server's discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub device_authorization_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
}

/// Token-endpoint counters kept by the server since start or the last reset.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenStats {
    /// Every POST to the token endpoint, faulted ones included.
    pub total: u64,
    pub by_grant_type: BTreeMap<String, u64>,
    pub faults_injected: u64,
    pub slow_down: u64,
    /// Token requests answered `invalid_grant` (a refused or reused refresh token).
    pub invalid_grant: u64,
}

impl TokenStats {
    pub fn count(&self, grant_type: &str) -> u64 {
        self.by_grant_type.get(grant_type).copied().unwrap_or(0)
    }
}

/// A fault for the token endpoint: `hang` first (if set), then answer `status` with
/// `body` (default `{"error":"temporarily_unavailable"}`); with a hang and no status
/// the request is then served normally. `answer_after_ms` and `drop_answer` act after
/// the grant was served (tokens issued, refresh token rotated): the answer is late, or
/// the connection is cut instead. `times` limits it to the next N requests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenFault {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_after_ms: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop_answer: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl TokenFault {
    pub fn status(status: u16) -> Self {
        TokenFault {
            status: Some(status),
            ..TokenFault::default()
        }
    }

    pub fn hang(duration: Duration) -> Self {
        let hang_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        TokenFault {
            hang_ms: Some(hang_ms),
            ..TokenFault::default()
        }
    }

    /// Serves the grant, then holds the answer back for `duration`.
    pub fn late_answer(duration: Duration) -> Self {
        TokenFault {
            answer_after_ms: Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)),
            ..TokenFault::default()
        }
    }

    /// Serves the grant, then cuts the connection: the answer is lost after the
    /// provider acted on the request.
    pub fn lost_answer() -> Self {
        TokenFault {
            drop_answer: true,
            ..TokenFault::default()
        }
    }

    pub fn with_body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }
}

/// The Node process; killed on drop (and it exits by itself when our end of its stdin
/// closes, so a killed test leaves nothing behind).
pub struct AuthorizationServer {
    _child: Child,
    _stdin: ChildStdin,
    _config_dir: tempfile::TempDir,
    issuer: String,
    endpoints: Endpoints,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// Installs the npm dependencies if needed, starts the server and reads discovery.
    pub async fn start(config: ServerConfig) -> Self {
        Self::try_start(config)
            .await
            .expect("start the oidc-provider authorization server")
    }

    pub async fn try_start(config: ServerConfig) -> anyhow::Result<Self> {
        let config_dir = tempfile::tempdir()?;
        let config_path = config_dir.path().join("authorization-server.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let script = node::spawn_script(
            "authorization-server.mjs",
            &["--config".as_ref(), config_path.as_os_str()],
            "issuer",
        )
        .await?;
        let issuer = script.ready;
        let (child, stdin, log) = (script.child, script.stdin, script.log);

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let endpoints: Endpoints = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ensure!(
            endpoints.issuer == issuer,
            "discovery issuer {} != {issuer}",
            endpoints.issuer
        );
        Ok(AuthorizationServer {
            _child: child,
            _stdin: stdin,
            _config_dir: config_dir,
            issuer,
            endpoints,
            http,
            log,
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The authorization endpoint with `query` appended.
    pub fn authorization_url(&self, query: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(&self.endpoints.authorization_endpoint).expect("discovery url");
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    /// A fresh browser (no session) pointed at this server.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.issuer)
    }

    pub async fn stats(&self) -> TokenStats {
        #[derive(Deserialize)]
        struct Stats {
            token: TokenStats,
        }
        let stats: Stats = self.test_call(reqwest::Method::GET, "stats", None).await;
        stats.token
    }

    pub async fn reset_stats(&self) {
        let _: serde_json::Value = self.test_call(reqwest::Method::POST, "reset", None).await;
    }

    pub async fn set_token_fault(&self, fault: TokenFault) {
        let body = serde_json::json!({ "token": fault });
        let _: serde_json::Value = self
            .test_call(reqwest::Method::POST, "faults", Some(body))
            .await;
    }

    pub async fn clear_token_fault(&self) {
        let body = serde_json::json!({});
        let _: serde_json::Value = self
            .test_call(reqwest::Method::POST, "faults", Some(body))
            .await;
    }

    /// Destroys every grant of `account_id` and all tokens issued from them, so a later
    /// refresh gets `invalid_grant`. Returns how many grants went.
    pub async fn revoke_grants(&self, account_id: &str) -> u64 {
        let body = serde_json::json!({ "accountId": account_id });
        let answer: serde_json::Value = self
            .test_call(reqwest::Method::POST, "revoke-grants", Some(body))
            .await;
        answer["revoked"].as_u64().expect("revoked count")
    }

    /// Everything the server wrote to stderr so far (oidc-provider warnings, errors).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    async fn test_call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> T {
        let mut request = self
            .http
            .request(method, format!("{}/__test/{path}", self.issuer));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("test endpoint reachable");
        assert!(
            response.status().is_success(),
            "/__test/{path}: {}",
            response.status()
        );
        response.json().await.expect("test endpoint json")
    }
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_secs())
}

fn optional_seconds<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_some(&duration.as_secs()),
        None => serializer.serialize_none(),
    }
}
