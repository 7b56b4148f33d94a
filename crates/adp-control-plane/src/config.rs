//! Settings, resolved from flags, then environment variables, then an optional
//! YAML file, then defaults. The environment comes in as a lookup function so
//! tests can build any configuration without touching the process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use url::Url;

use crate::connections::ConnectionSettings;

#[cfg(test)]
mod tests;

/// Every setting as a command-line flag. All optional: unset flags fall through to
/// the environment, the file and the defaults.
#[derive(Args, Clone, Debug, Default)]
pub struct Flags {
    /// YAML file with any of the settings below (keys are the names without `ADP_`, lowercased)
    #[arg(long, value_name = "FILE", help_heading = "Configuration")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [env: ADP_GRPC_ADDR] [default: 127.0.0.1:7400]
    #[arg(long, value_name = "ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address for consent routes and /healthz [env: ADP_HTTP_ADDR] [default: 127.0.0.1:7401]
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Base URL browsers use to reach the HTTP listener [env: ADP_PUBLIC_URL] [default: http://<http_addr>]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<Url>,
    /// Directory for the SQLite file and generated development keys [env: ADP_DATA_DIR] [default: ./adp-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [env: ADP_DATABASE_URL] [default: SQLite in the data dir]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Vault key ring file [env: ADP_VAULT_KEY_FILE] [default: <data_dir>/vault-keys.json, generated]
    #[arg(long, value_name = "FILE")]
    pub vault_key_file: Option<PathBuf>,
    /// Expected `iss` of caller JWTs [env: ADP_JWT_ISSUER]
    #[arg(long, value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// Expected `aud` of caller JWTs [env: ADP_JWT_AUDIENCE]
    #[arg(long, value_name = "AUD")]
    pub jwt_audience: Option<String>,
    /// JWKS URL to verify caller JWTs [env: ADP_JWKS_URL]
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<Url>,
    /// HS256 secret file to verify caller JWTs, for development [env: ADP_JWT_HS256_SECRET_FILE]
    #[arg(long, value_name = "FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// JWT claim holding permission names; `*` grants all [env: ADP_PERMISSIONS_CLAIM] [default: permissions]
    #[arg(long, value_name = "CLAIM")]
    pub permissions_claim: Option<String>,
    /// Extra PEM CA roots trusted for providers and the JWKS [env: ADP_UPSTREAM_CA_FILE]
    #[arg(long, value_name = "FILE")]
    pub upstream_ca_file: Option<PathBuf>,
    /// Accept http:// provider endpoints on loopback hosts; development only [env: ADP_INSECURE_LOOPBACK_HTTP] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub insecure_loopback_http: Option<bool>,
    /// Development only: consent links work without browser sign-in (whoever opens one connects it), and http:// loopback JWKS URLs are accepted [env: ADP_INSECURE_DEVELOPMENT] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub insecure_development: Option<bool>,
    /// Refresh, in the background, connections nobody used for ADP_BACKGROUND_REFRESH_IDLE_SECS, so providers that end idle refresh tokens do not end them [env: ADP_BACKGROUND_REFRESH] [default: false]
    #[arg(long, value_name = "BOOL")]
    pub background_refresh: Option<bool>,
    /// With ADP_BACKGROUND_REFRESH: how long a connection may go unrefreshed; set it below the provider's refresh-token idle lifetime [env: ADP_BACKGROUND_REFRESH_IDLE_SECS] [default: 86400]
    #[arg(long, value_name = "SECS")]
    pub background_refresh_idle_secs: Option<u64>,
    /// Refresh access tokens this many seconds before they expire (at most half their lifetime) [env: ADP_REFRESH_AHEAD_SECS] [default: 60]
    #[arg(long, value_name = "SECS")]
    pub refresh_ahead_secs: Option<u64>,
    /// Up to this many extra random seconds, to spread refreshes [env: ADP_REFRESH_JITTER_SECS] [default: 15]
    #[arg(long, value_name = "SECS")]
    pub refresh_jitter_secs: Option<u64>,
    /// How long a consent link stays valid [env: ADP_CONSENT_TTL_SECS] [default: 600]
    #[arg(long, value_name = "SECS")]
    pub consent_ttl_secs: Option<u64>,
    /// Timeout of each call to a provider's endpoints [env: ADP_OAUTH_TIMEOUT_SECS] [default: 10]
    #[arg(long, value_name = "SECS")]
    pub oauth_timeout_secs: Option<u64>,
    /// Consent links one person may hold open at once; a refused call reuses its open link [env: ADP_MAX_CONSENT_ATTEMPTS_PER_USER] [default: 20]
    #[arg(long, value_name = "N")]
    pub max_consent_attempts_per_user: Option<u64>,
    /// WatchConnection streams one person may hold open at once on one replica [env: ADP_MAX_WATCHES_PER_USER] [default: 16]
    #[arg(long, value_name = "N")]
    pub max_watches_per_user: Option<usize>,
    /// Seconds a client gets to start a request once connected (the HTTP/2 preface, an HTTP/1 request's first byte) and to send each HTTP/1 request head; idle HTTP/1.1 keep-alive connections close after the same time [env: ADP_HEADER_READ_TIMEOUT_SECS] [default: 10]
    #[arg(long, value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a request body gets to arrive in full after its head [env: ADP_REQUEST_BODY_TIMEOUT_SECS] [default: 30]
    #[arg(long, value_name = "SECS")]
    pub request_body_timeout_secs: Option<u64>,
    /// Open connections per listener (gRPC and HTTP each); more wait in the listen backlog until one closes [env: ADP_MAX_CONNECTIONS] [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Concurrent streams per HTTP/2 connection [env: ADP_HTTP2_MAX_CONCURRENT_STREAMS] [default: 200]
    #[arg(long, value_name = "N")]
    pub http2_max_concurrent_streams: Option<u32>,
    /// `text` or `json` [env: ADP_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// OpenID Connect issuer people sign in with on the Connections page; use the issuer of callers' JWTs, so both are one identity [env: ADP_OIDC_ISSUER]
    #[arg(long, value_name = "URL", help_heading = "Connections page sign-in")]
    pub oidc_issuer: Option<String>,
    /// Client id registered at that issuer, with redirect URI <public_url>/connections/sign-in/callback [env: ADP_OIDC_CLIENT_ID]
    #[arg(long, value_name = "ID", help_heading = "Connections page sign-in")]
    pub oidc_client_id: Option<String>,
    /// Name of the secret (SecretService) holding that client's secret; unset for a public client [env: ADP_OIDC_CLIENT_SECRET_REF]
    #[arg(long, value_name = "NAME", help_heading = "Connections page sign-in")]
    pub oidc_client_secret_ref: Option<String>,
    /// Scopes asked for at sign-in, space-separated [env: ADP_OIDC_SCOPES] [default: openid email profile]
    #[arg(long, value_name = "SCOPES", help_heading = "Connections page sign-in")]
    pub oidc_scopes: Option<String>,
    /// How long a browser stays signed in [env: ADP_SESSION_TTL_SECS] [default: 28800]
    #[arg(long, value_name = "SECS", help_heading = "Connections page sign-in")]
    pub session_ttl_secs: Option<u64>,
}

/// The YAML file. Unknown keys are errors so a typo never silently does nothing.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    public_url: Option<Url>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    vault_key_file: Option<PathBuf>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwks_url: Option<Url>,
    jwt_hs256_secret_file: Option<PathBuf>,
    permissions_claim: Option<String>,
    upstream_ca_file: Option<PathBuf>,
    insecure_loopback_http: Option<bool>,
    insecure_development: Option<bool>,
    refresh_ahead_secs: Option<u64>,
    refresh_jitter_secs: Option<u64>,
    consent_ttl_secs: Option<u64>,
    oauth_timeout_secs: Option<u64>,
    max_consent_attempts_per_user: Option<u64>,
    max_watches_per_user: Option<usize>,
    background_refresh: Option<bool>,
    background_refresh_idle_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    request_body_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    http2_max_concurrent_streams: Option<u32>,
    log_format: Option<LogFormat>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret_ref: Option<String>,
    oidc_scopes: Option<String>,
    session_ttl_secs: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}; use text or json")),
        }
    }
}

/// How callers' JWTs are verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtKeys {
    Jwks(Url),
    Hs256SecretFile(PathBuf),
    /// Neither was configured: a development secret is generated in the data dir.
    GeneratedDevSecret(PathBuf),
}

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
    pub database_url: String,
    pub vault_key_file: PathBuf,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_keys: JwtKeys,
    pub permissions_claim: String,
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
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    #[error("set only one of ADP_JWKS_URL and ADP_JWT_HS256_SECRET_FILE")]
    TwoKeySources,
    #[error("sign-in needs both ADP_OIDC_ISSUER and ADP_OIDC_CLIENT_ID; only {set} is set")]
    IncompleteSignIn { set: &'static str },
    #[error("ADP_OIDC_SCOPES must include openid (got {got:?})")]
    SignInWithoutOpenid { got: String },
}

impl Settings {
    /// Resolves settings; `env` looks up an environment variable by name.
    pub fn resolve(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let r = Resolver { env };
        let sign_in = sign_in_settings(&r, flags, &file)?;
        let limits = listener_limits(&r, flags, &file)?;
        let grpc_addr = r
            .pick("ADP_GRPC_ADDR", flags.grpc_addr, file.grpc_addr)?
            .unwrap_or(([127, 0, 0, 1], 7400).into());
        let http_addr = r
            .pick("ADP_HTTP_ADDR", flags.http_addr, file.http_addr)?
            .unwrap_or(([127, 0, 0, 1], 7401).into());
        let public_url = r.pick("ADP_PUBLIC_URL", flags.public_url.clone(), file.public_url)?;
        let data_dir = r
            .pick("ADP_DATA_DIR", flags.data_dir.clone(), file.data_dir)?
            .unwrap_or_else(|| "./adp-data".into());
        let database_url = r
            .pick(
                "ADP_DATABASE_URL",
                flags.database_url.clone(),
                file.database_url,
            )?
            .unwrap_or_else(|| sqlite_url(&data_dir.join("adp.db")));
        let vault_key_file = r
            .pick(
                "ADP_VAULT_KEY_FILE",
                flags.vault_key_file.clone(),
                file.vault_key_file,
            )?
            .unwrap_or_else(|| data_dir.join("vault-keys.json"));
        let jwks_url = r.pick("ADP_JWKS_URL", flags.jwks_url.clone(), file.jwks_url)?;
        let hs256 = r.pick(
            "ADP_JWT_HS256_SECRET_FILE",
            flags.jwt_hs256_secret_file.clone(),
            file.jwt_hs256_secret_file,
        )?;
        let jwt_keys = match (jwks_url, hs256) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoKeySources),
            (Some(url), None) => JwtKeys::Jwks(url),
            (None, Some(path)) => JwtKeys::Hs256SecretFile(path),
            (None, None) => JwtKeys::GeneratedDevSecret(data_dir.join("dev-jwt-secret")),
        };
        let secs = |name: &'static str,
                    flag: Option<u64>,
                    file: Option<u64>,
                    default: u64|
         -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                r.pick(name, flag, file)?.unwrap_or(default),
            ))
        };
        let defaults = ConnectionSettings::default();
        let connections = ConnectionSettings {
            refresh_ahead: secs(
                "ADP_REFRESH_AHEAD_SECS",
                flags.refresh_ahead_secs,
                file.refresh_ahead_secs,
                60,
            )?,
            refresh_jitter: secs(
                "ADP_REFRESH_JITTER_SECS",
                flags.refresh_jitter_secs,
                file.refresh_jitter_secs,
                15,
            )?,
            consent_ttl: secs(
                "ADP_CONSENT_TTL_SECS",
                flags.consent_ttl_secs,
                file.consent_ttl_secs,
                600,
            )?,
            max_consent_attempts_per_user: r
                .pick_positive(
                    "ADP_MAX_CONSENT_ATTEMPTS_PER_USER",
                    flags.max_consent_attempts_per_user,
                    file.max_consent_attempts_per_user,
                )?
                .unwrap_or(defaults.max_consent_attempts_per_user),
            max_watches_per_user: r
                .pick_positive(
                    "ADP_MAX_WATCHES_PER_USER",
                    flags.max_watches_per_user,
                    file.max_watches_per_user,
                )?
                .unwrap_or(defaults.max_watches_per_user),
        };
        let oauth_timeout = secs(
            "ADP_OAUTH_TIMEOUT_SECS",
            flags.oauth_timeout_secs,
            file.oauth_timeout_secs,
            10,
        )?;
        Ok(Settings {
            sign_in,
            limits,
            grpc_addr,
            http_addr,
            public_url,
            database_url,
            vault_key_file,
            jwt_issuer: r.pick("ADP_JWT_ISSUER", flags.jwt_issuer.clone(), file.jwt_issuer)?,
            jwt_audience: r.pick(
                "ADP_JWT_AUDIENCE",
                flags.jwt_audience.clone(),
                file.jwt_audience,
            )?,
            jwt_keys,
            permissions_claim: r
                .pick(
                    "ADP_PERMISSIONS_CLAIM",
                    flags.permissions_claim.clone(),
                    file.permissions_claim,
                )?
                .unwrap_or_else(|| "permissions".to_owned()),
            upstream_ca_file: r.pick(
                "ADP_UPSTREAM_CA_FILE",
                flags.upstream_ca_file.clone(),
                file.upstream_ca_file,
            )?,
            background_refresh_idle: if r
                .pick(
                    "ADP_BACKGROUND_REFRESH",
                    flags.background_refresh,
                    file.background_refresh,
                )?
                .unwrap_or(false)
            {
                Some(Duration::from_secs(
                    r.pick_positive(
                        "ADP_BACKGROUND_REFRESH_IDLE_SECS",
                        flags.background_refresh_idle_secs,
                        file.background_refresh_idle_secs,
                    )?
                    .unwrap_or(86_400),
                ))
            } else {
                None
            },
            insecure_loopback_http: r
                .pick(
                    "ADP_INSECURE_LOOPBACK_HTTP",
                    flags.insecure_loopback_http,
                    file.insecure_loopback_http,
                )?
                .unwrap_or(false),
            insecure_development: r
                .pick(
                    "ADP_INSECURE_DEVELOPMENT",
                    flags.insecure_development,
                    file.insecure_development,
                )?
                .unwrap_or(false),
            log_format: r
                .pick("ADP_LOG_FORMAT", flags.log_format, file.log_format)?
                .unwrap_or_default(),
            data_dir,
            connections,
            oauth_timeout,
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

    /// The redirect URI admins register with every upstream provider.
    pub fn callback_url(&self, bound_http_addr: std::net::SocketAddr) -> String {
        format!("{}/oauth/v1/callback", self.public_url_for(bound_http_addr))
    }
}

fn sign_in_settings(
    r: &Resolver<'_>,
    flags: &Flags,
    file: &FileSettings,
) -> Result<Option<SignInSettings>, ConfigError> {
    let issuer = r.pick(
        "ADP_OIDC_ISSUER",
        flags.oidc_issuer.clone(),
        file.oidc_issuer.clone(),
    )?;
    let client_id = r.pick(
        "ADP_OIDC_CLIENT_ID",
        flags.oidc_client_id.clone(),
        file.oidc_client_id.clone(),
    )?;
    let (issuer, client_id) = match (issuer, client_id) {
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
    let scopes_text = r
        .pick(
            "ADP_OIDC_SCOPES",
            flags.oidc_scopes.clone(),
            file.oidc_scopes.clone(),
        )?
        .unwrap_or_else(|| "openid email profile".to_owned());
    let scopes: Vec<String> = scopes_text.split_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(ConfigError::SignInWithoutOpenid { got: scopes_text });
    }
    let session_ttl = r
        .pick(
            "ADP_SESSION_TTL_SECS",
            flags.session_ttl_secs,
            file.session_ttl_secs,
        )?
        .unwrap_or(8 * 3600);
    if !(60..=30 * 24 * 3600).contains(&session_ttl) {
        return Err(ConfigError::Env {
            name: "ADP_SESSION_TTL_SECS",
            value: session_ttl.to_string(),
            message: "use between 60 seconds and 30 days".into(),
        });
    }
    Ok(Some(SignInSettings {
        issuer: issuer.trim_end_matches('/').to_owned(),
        client_id,
        client_secret_ref: r.pick(
            "ADP_OIDC_CLIENT_SECRET_REF",
            flags.oidc_client_secret_ref.clone(),
            file.oidc_client_secret_ref.clone(),
        )?,
        scopes,
        session_ttl: Duration::from_secs(session_ttl),
    }))
}

fn listener_limits(
    r: &Resolver<'_>,
    flags: &Flags,
    file: &FileSettings,
) -> Result<adp_listener::Limits, ConfigError> {
    let defaults = adp_listener::Limits::default();
    let secs = |name, flag, file, default: Duration| -> Result<Duration, ConfigError> {
        Ok(r.pick_positive(name, flag, file)?
            .map_or(default, Duration::from_secs))
    };
    Ok(adp_listener::Limits {
        header_read_timeout: secs(
            "ADP_HEADER_READ_TIMEOUT_SECS",
            flags.header_read_timeout_secs,
            file.header_read_timeout_secs,
            defaults.header_read_timeout,
        )?,
        request_body_timeout: secs(
            "ADP_REQUEST_BODY_TIMEOUT_SECS",
            flags.request_body_timeout_secs,
            file.request_body_timeout_secs,
            defaults.request_body_timeout,
        )?,
        max_connections: r
            .pick_positive(
                "ADP_MAX_CONNECTIONS",
                flags.max_connections,
                file.max_connections,
            )?
            .unwrap_or(defaults.max_connections),
        http2_max_concurrent_streams: r
            .pick_positive(
                "ADP_HTTP2_MAX_CONCURRENT_STREAMS",
                flags.http2_max_concurrent_streams,
                file.http2_max_concurrent_streams,
            )?
            .unwrap_or(defaults.http2_max_concurrent_streams),
    })
}

struct Resolver<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver<'_> {
    /// Flag, then environment, then file.
    fn pick<T: FromStr>(
        &self,
        name: &'static str,
        flag: Option<T>,
        file: Option<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        if flag.is_some() {
            return Ok(flag);
        }
        if let Some(value) = (self.env)(name).filter(|v| !v.is_empty()) {
            return value
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ConfigError::Env {
                    name,
                    value,
                    message: e.to_string(),
                });
        }
        Ok(file)
    }
}

impl Resolver<'_> {
    /// [`Resolver::pick`] for a bound, where zero would mean nothing is ever served.
    fn pick_positive<T>(
        &self,
        name: &'static str,
        flag: Option<T>,
        file: Option<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + Default + PartialEq + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let value = self.pick(name, flag, file)?;
        if value.as_ref().is_some_and(|v| *v == T::default()) {
            return Err(ConfigError::Env {
                name,
                value: "0".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(value)
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.into(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(FileSettings::default());
    }
    serde_norway::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.into(),
        message: e.to_string(),
    })
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
