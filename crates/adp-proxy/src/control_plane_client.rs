//! The proxy's gRPC client of the control plane: the config feed (`WatchConfig`) and
//! `GetUpstreamCredential`, both carrying the proxy's own JWT, re-read from its file on
//! every call so a rotated token is picked up without a restart; and, as the caller,
//! the gateway's `WatchConnection` and `Connect`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use adp_api::v1 as pb;
use adp_api::v1::config_discovery_service_client::ConfigDiscoveryServiceClient;
use adp_api::v1::connection_service_client::ConnectionServiceClient;
use adp_api::v1::token_service_client::TokenServiceClient;
use adp_core::Reason;
use adp_core::metadata::PROXY_AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use secrecy::SecretString;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

/// A credential without an expiry is reused this long.
const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct ControlPlaneClient {
    channel: Channel,
    token_file: Option<PathBuf>,
}

/// What to send upstream for one user and server.
#[derive(Clone)]
pub struct Credential {
    /// `None` when the server needs no credential.
    pub header: Option<(HeaderName, HeaderValue)>,
    pub expire_time: SystemTime,
}

/// The header's name, never its value (the upstream token).
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("header_name", &self.header.as_ref().map(|(name, _)| name))
            .field("expire_time", &self.expire_time)
            .finish()
    }
}

/// The user must (re)connect an upstream account; everything an MCP client needs to
/// send them there.
#[derive(Clone, Debug)]
pub struct ConsentRequired {
    /// `OAUTH_CONNECTION_REQUIRED`, `SCOPE_UPGRADE_REQUIRED` or `OAUTH_TOKEN_EXPIRED`.
    pub reason: String,
    pub provider_name: String,
    pub authorize_url: String,
    pub server_name: String,
    pub missing_scopes: Vec<String>,
    pub expired_reason: String,
    pub message: String,
    /// The control plane's own answer, passed on whole to gRPC callers.
    pub status: Option<tonic::Status>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{}", .0.message)]
    Consent(Box<ConsentRequired>),
    /// Any other answer, kept whole so its code and reason reach the caller.
    #[error("{}", .0.message())]
    Refused(tonic::Status),
    #[error("the proxy token file cannot be read: {0}")]
    ProxyToken(String),
    #[error("the control plane sent a credential that is not a valid header")]
    BadHeader,
}

impl ControlPlaneClient {
    pub fn new(url: &str, token_file: Option<PathBuf>) -> anyhow::Result<ControlPlaneClient> {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(ControlPlaneClient {
            channel,
            token_file,
        })
    }

    fn with_proxy_token<T>(&self, message: T) -> Result<tonic::Request<T>, CredentialError> {
        let path = self
            .token_file
            .as_ref()
            .ok_or_else(|| CredentialError::ProxyToken("ADP_PROXY_TOKEN_FILE is not set".into()))?;
        let token = std::fs::read_to_string(path)
            .map_err(|e| CredentialError::ProxyToken(format!("{}: {e}", path.display())))?;
        let value = MetadataValue::try_from(format!("Bearer {}", token.trim()))
            .map_err(|_| CredentialError::ProxyToken("not a valid header value".into()))?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(PROXY_AUTHORIZATION, value);
        Ok(request)
    }

    pub async fn watch_config(
        &self,
        node_id: &str,
        resume_revision: i64,
    ) -> Result<tonic::Streaming<pb::WatchConfigResponse>, CredentialError> {
        let request = self.with_proxy_token(pb::WatchConfigRequest {
            node_id: node_id.to_owned(),
            resume_revision,
        })?;
        ConfigDiscoveryServiceClient::new(self.channel.clone())
            .watch_config(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(CredentialError::Refused)
    }

    /// A request acting as the end-user, with their JWT.
    fn as_user<T>(user_jwt: &SecretString, message: T) -> Result<tonic::Request<T>, tonic::Status> {
        use secrecy::ExposeSecret;
        let value = MetadataValue::try_from(format!("Bearer {}", user_jwt.expose_secret()))
            .map_err(|_| tonic::Status::unauthenticated("caller token is not a valid header"))?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }

    /// The user's connection to `provider`, now and on every change.
    pub async fn watch_connection(
        &self,
        user_jwt: &SecretString,
        provider_name: &str,
    ) -> Result<tonic::Streaming<pb::WatchConnectionResponse>, tonic::Status> {
        let request = Self::as_user(
            user_jwt,
            pb::WatchConnectionRequest {
                provider_name: provider_name.to_owned(),
            },
        )?;
        Ok(ConnectionServiceClient::new(self.channel.clone())
            .watch_connection(request)
            .await?
            .into_inner())
    }

    /// Starts a consent for the user (for a device code the error did not carry).
    pub async fn connect(
        &self,
        user_jwt: &SecretString,
        provider_name: &str,
    ) -> Result<pb::ConnectResponse, tonic::Status> {
        let request = Self::as_user(
            user_jwt,
            pb::ConnectRequest {
                provider_name: provider_name.to_owned(),
                scopes: Vec::new(),
            },
        )?;
        Ok(ConnectionServiceClient::new(self.channel.clone())
            .connect(request)
            .await?
            .into_inner())
    }

    /// The credential for the user whose JWT this is; `deadline` bounds the call.
    pub async fn credential(
        &self,
        user_jwt: &SecretString,
        server_name: &str,
        deadline: Duration,
    ) -> Result<Credential, CredentialError> {
        use secrecy::ExposeSecret;
        let mut request = self.with_proxy_token(pb::GetUpstreamCredentialRequest {
            server_name: server_name.to_owned(),
        })?;
        let authorization = MetadataValue::try_from(format!("Bearer {}", user_jwt.expose_secret()))
            .map_err(|_| {
                CredentialError::ProxyToken("caller token is not a valid header".into())
            })?;
        request
            .metadata_mut()
            .insert("authorization", authorization);
        request.set_timeout(deadline);
        let response = TokenServiceClient::new(self.channel.clone())
            .get_upstream_credential(request)
            .await
            .map_err(classify)?
            .into_inner();
        let header = if response.header_name.is_empty() {
            None
        } else {
            let name = HeaderName::from_bytes(response.header_name.as_bytes())
                .map_err(|_| CredentialError::BadHeader)?;
            let mut value = HeaderValue::from_str(&response.header_value)
                .map_err(|_| CredentialError::BadHeader)?;
            value.set_sensitive(true);
            Some((name, value))
        };
        let expire_time = response
            .expire_time
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(|| SystemTime::now() + DEFAULT_CREDENTIAL_TTL);
        Ok(Credential {
            header,
            expire_time,
        })
    }
}

fn classify(status: tonic::Status) -> CredentialError {
    if status.code() == tonic::Code::FailedPrecondition
        && let Some(info) = status.get_details_error_info()
        && Reason::parse(&info.reason).is_some_and(Reason::is_consent)
    {
        let field = |key: &str| info.metadata.get(key).cloned().unwrap_or_default();
        return CredentialError::Consent(Box::new(ConsentRequired {
            provider_name: field("providerName"),
            authorize_url: field("authorizeUrl"),
            server_name: field("mcpServer"),
            missing_scopes: field("missingScopes")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            expired_reason: field("expiredReason"),
            message: status.message().to_owned(),
            reason: info.reason,
            status: Some(status),
        }));
    }
    CredentialError::Refused(status)
}
