//! The control plane's settings, resolved from flags, then environment variables, then
//! an optional YAML file, then defaults. Each is declared once, in [`declarations`]; the
//! environment comes in as a map so tests build any configuration without touching the
//! process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use adp_settings::shared::{self, JwtKeys, JwtSettings, LogFormat};
use adp_settings::{Env, Layers, Redacted};
use url::Url;

use crate::connections::ConnectionSettings;

pub mod declarations;
#[cfg(test)]
mod tests;

use declarations::*;

/// Every setting as an optional flag, plus `--config FILE`.
pub type Flags = adp_settings::Flags<ControlPlaneSettings>;

/// How people sign in to the Connections page (OpenID Connect, authorization code + PKCE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInSettings {
    pub issuer: String,
    pub client_id: String,
    /// A SecretService name; `None` makes this a public client.
    pub client_secret_ref: Option<String>,
    pub scopes: Vec<String>,
    pub session_ttl: Duration,
}

/// The resolved configuration of a control plane.
#[derive(Clone, Debug)]
pub struct Settings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// `None`: derived from the HTTP listener's bound address (see [`Settings::public_url_for`]).
    pub public_url: Option<Url>,
    pub data_dir: PathBuf,
    /// Never printed: a `postgres://` URL may carry a password.
    pub database_url: Redacted<String>,
    pub vault_key_file: PathBuf,
    /// How callers' JWTs are verified.
    pub jwt: JwtSettings,
    /// The key source `jwt` names (only one may be); with none,
    /// [`Settings::dev_jwt_secret_file`].
    pub jwt_keys: Option<JwtKeys>,
    pub upstream_ca_file: Option<PathBuf>,
    pub insecure_loopback_http: bool,
    /// `ADP_INSECURE_DEVELOPMENT`: consent links without sign-in, loopback http JWKS.
    pub insecure_development: bool,
    pub log_format: LogFormat,
    pub connections: ConnectionSettings,
    pub oauth_timeout: Duration,
    /// `ADP_BACKGROUND_REFRESH`: refresh connections left idle this long; `None` when off.
    pub background_refresh_idle: Option<Duration>,
    /// Bounds of both listeners (`ADP_HEADER_READ_TIMEOUT_SECS`, `ADP_MAX_CONNECTIONS`, …).
    pub limits: adp_listener::Limits,
    /// `None` until both `ADP_OIDC_ISSUER` and `ADP_OIDC_CLIENT_ID` are set.
    pub sign_in: Option<SignInSettings>,
    /// `<data_dir>/dev-jwt-secret`, used only when no JWT keys are configured.
    dev_jwt_secret: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Setting(#[from] adp_settings::Error),
    #[error("sign-in needs both ADP_OIDC_ISSUER and ADP_OIDC_CLIENT_ID; only {set} is set")]
    IncompleteSignIn { set: &'static str },
    #[error("ADP_OIDC_SCOPES must include openid (got {got:?})")]
    SignInWithoutOpenid { got: String },
}

impl Settings {
    /// Resolves settings from `flags`, the environment `env` and the file they name.
    pub fn resolve(flags: &Flags, env: Env) -> Result<Settings, ConfigError> {
        let layers = flags.layers(env)?;
        let l = &layers;
        let data_dir = DATA_DIR.value(l)?;
        let jwt = JwtSettings::resolve(l)?;
        let secs = |setting: &adp_settings::Setting<u64>| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(setting.value(l)?))
        };
        Ok(Settings {
            sign_in: sign_in_settings(l)?,
            limits: shared::listener_limits(l)?,
            grpc_addr: GRPC_ADDR.value(l)?,
            http_addr: HTTP_ADDR.value(l)?,
            public_url: PUBLIC_URL.get(l)?,
            database_url: Redacted(
                DATABASE_URL
                    .get(l)?
                    .unwrap_or_else(|| sqlite_url(&data_dir.join("adp.db"))),
            ),
            vault_key_file: VAULT_KEY_FILE
                .get(l)?
                .unwrap_or_else(|| data_dir.join("vault-keys.json")),
            jwt_keys: jwt.keys()?,
            jwt,
            upstream_ca_file: shared::UPSTREAM_CA_FILE.get(l)?,
            background_refresh_idle: if BACKGROUND_REFRESH.value(l)? {
                Some(secs(&BACKGROUND_REFRESH_IDLE_SECS)?)
            } else {
                None
            },
            insecure_loopback_http: INSECURE_LOOPBACK_HTTP.value(l)?,
            insecure_development: INSECURE_DEVELOPMENT.value(l)?,
            log_format: shared::LOG_FORMAT.value(l)?,
            connections: ConnectionSettings {
                refresh_ahead: secs(&REFRESH_AHEAD_SECS)?,
                refresh_jitter: secs(&REFRESH_JITTER_SECS)?,
                consent_ttl: secs(&CONSENT_TTL_SECS)?,
                max_consent_attempts_per_user: MAX_CONSENT_ATTEMPTS_PER_USER.value(l)?,
                max_watches_per_user: MAX_WATCHES_PER_USER.value(l)?,
            },
            oauth_timeout: secs(&OAUTH_TIMEOUT_SECS)?,
            dev_jwt_secret: data_dir.join("dev-jwt-secret"),
            data_dir,
        })
    }

    /// The base URL browsers reach, given the address the HTTP listener bound (which
    /// differs from the configured one when that asks for port 0).
    pub fn public_url_for(&self, bound_http_addr: std::net::SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{bound_http_addr}"),
        }
    }

    /// The HS256 secret generated for development, used when no JWT keys are configured.
    pub fn dev_jwt_secret_file(&self) -> &Path {
        &self.dev_jwt_secret
    }

    /// The redirect URI admins register with every upstream provider.
    pub fn callback_url(&self, bound_http_addr: std::net::SocketAddr) -> String {
        format!("{}/oauth/v1/callback", self.public_url_for(bound_http_addr))
    }
}

fn sign_in_settings(l: &Layers) -> Result<Option<SignInSettings>, ConfigError> {
    let (issuer, client_id) = match (OIDC_ISSUER.get(l)?, OIDC_CLIENT_ID.get(l)?) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::IncompleteSignIn {
                set: "ADP_OIDC_ISSUER",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::IncompleteSignIn {
                set: "ADP_OIDC_CLIENT_ID",
            });
        }
        (Some(issuer), Some(client_id)) => (issuer, client_id),
    };
    let scopes_text = OIDC_SCOPES.value(l)?;
    let scopes: Vec<String> = scopes_text.split_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ConfigError::SignInWithoutOpenid { got: scopes_text });
    }
    Ok(Some(SignInSettings {
        issuer: issuer.trim_end_matches('/').to_owned(),
        client_id,
        client_secret_ref: OIDC_CLIENT_SECRET_REF.get(l)?,
        scopes,
        session_ttl: Duration::from_secs(SESSION_TTL_SECS.value(l)?),
    }))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
