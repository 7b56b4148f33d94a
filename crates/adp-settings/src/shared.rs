//! The setting groups both programs take, declared once: how callers' JWTs are
//! verified, logging, and the listener bounds.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use adp_core::identity::{KeySource, VerifierConfig, WeakJwtSettings, check_jwt_settings};
use url::Url;

use crate::{Declared, Error, Layers, Setting, Value, at_least_one};

pub const JWT_ISSUER: Setting<String> = Setting::new(
    "jwt_issuer",
    "ADP_JWT_ISSUER",
    "ISS",
    "Expected `iss` of callers' JWTs",
);
pub const JWT_AUDIENCE: Setting<String> = Setting::new(
    "jwt_audience",
    "ADP_JWT_AUDIENCE",
    "AUD",
    "Expected `aud` of callers' JWTs",
);
pub const JWKS_URL: Setting<Url> = Setting::new(
    "jwks_url",
    "ADP_JWKS_URL",
    "URL",
    "JWKS URL to verify callers' JWTs (cached, fetched again on an unknown `kid`)",
);
pub const JWT_HS256_SECRET_FILE: Setting<PathBuf> = Setting::new(
    "jwt_hs256_secret_file",
    "ADP_JWT_HS256_SECRET_FILE",
    "FILE",
    "HS256 secret file to verify callers' JWTs, for development and tests",
);
pub const PERMISSIONS_CLAIM: Setting<String> = Setting::new(
    "permissions_claim",
    "ADP_PERMISSIONS_CLAIM",
    "CLAIM",
    "JWT claim holding permission names (a dotted path such as realm_access.roles works); `*` grants all",
)
.default("permissions");
pub const UPSTREAM_CA_FILE: Setting<PathBuf> = Setting::new(
    "upstream_ca_file",
    "ADP_UPSTREAM_CA_FILE",
    "FILE",
    "Extra PEM CA roots trusted for outbound TLS: the JWKS, and providers (control plane) or upstream MCP servers (proxy)",
);

/// The JWT group, for a program's list of settings.
pub const JWT: [&dyn Declared; 5] = [
    &JWT_ISSUER,
    &JWT_AUDIENCE,
    &JWKS_URL,
    &JWT_HS256_SECRET_FILE,
    &PERMISSIONS_CLAIM,
];

/// Outbound TLS, for a program's list of settings.
pub const OUTBOUND_TLS: [&dyn Declared; 1] = [&UPSTREAM_CA_FILE];

/// Where callers' JWT keys come from, when a setting names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtKeys {
    Jwks(Url),
    Hs256SecretFile(PathBuf),
}

impl JwtKeys {
    /// The key source; a JWKS is fetched trusting `ca_file` (`ADP_UPSTREAM_CA_FILE`) too.
    pub fn key_source(
        &self,
        ca_file: Option<PathBuf>,
    ) -> Result<KeySource, adp_core::identity::IdentityError> {
        match self {
            JwtKeys::Jwks(url) => Ok(KeySource::jwks(url.clone(), ca_file)),
            JwtKeys::Hs256SecretFile(path) => KeySource::hs256_from_file(path),
        }
    }
}

/// How callers' JWTs are verified, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub jwks_url: Option<Url>,
    pub hs256_secret_file: Option<PathBuf>,
    pub permissions_claim: String,
}

impl JwtSettings {
    pub fn resolve(layers: &Layers) -> Result<JwtSettings, Error> {
        Ok(JwtSettings {
            issuer: JWT_ISSUER.get(layers)?,
            audience: JWT_AUDIENCE.get(layers)?,
            jwks_url: JWKS_URL.get(layers)?,
            hs256_secret_file: JWT_HS256_SECRET_FILE.get(layers)?,
            permissions_claim: PERMISSIONS_CLAIM.value(layers)?,
        })
    }

    /// The one key source named, refusing both; `None` when neither is set (each
    /// program decides what that means).
    pub fn keys(&self) -> Result<Option<JwtKeys>, Error> {
        match (&self.jwks_url, &self.hs256_secret_file) {
            (Some(_), Some(_)) => Err(Error::Conflict {
                one: JWKS_URL.info().env,
                other: JWT_HS256_SECRET_FILE.info().env,
            }),
            _ => Ok(self.preferring_jwks()),
        }
    }

    /// The JWKS when it is set, else the HS256 secret file.
    pub fn preferring_jwks(&self) -> Option<JwtKeys> {
        match (&self.jwks_url, &self.hs256_secret_file) {
            (Some(url), _) => Some(JwtKeys::Jwks(url.clone())),
            (None, Some(path)) => Some(JwtKeys::Hs256SecretFile(path.clone())),
            (None, None) => None,
        }
    }

    /// The verifier's configuration, refused when it would be weak (see
    /// [`check_jwt_settings`]); `insecure_development` is `ADP_INSECURE_DEVELOPMENT`.
    pub fn verifier_config(
        &self,
        key_source: KeySource,
        insecure_development: bool,
    ) -> Result<VerifierConfig, WeakJwtSettings> {
        let mut config = VerifierConfig::new(key_source);
        config.issuer = self.issuer.clone();
        config.audience = self.audience.clone();
        config.permissions_claim = self.permissions_claim.clone();
        check_jwt_settings(&config, insecure_development)?;
        Ok(config)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}; use text or json")),
        }
    }
}

impl Value for LogFormat {}

pub const LOG_FORMAT: Setting<LogFormat> = Setting::new(
    "log_format",
    "ADP_LOG_FORMAT",
    "FORMAT",
    "`text` or `json` logs on stderr; filter with RUST_LOG",
)
.default("text");

/// Logs to stderr; `RUST_LOG` overrides `default_filter`.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub const HEADER_READ_TIMEOUT_SECS: Setting<u64> = Setting::new(
    "header_read_timeout_secs",
    "ADP_HEADER_READ_TIMEOUT_SECS",
    "SECS",
    "Seconds a client gets to start a request once connected (the HTTP/2 preface, an HTTP/1 request's first byte) and to send each HTTP/1 request head; idle HTTP/1.1 keep-alive connections close after the same time",
)
.default("10")
.rule(at_least_one);
pub const REQUEST_BODY_TIMEOUT_SECS: Setting<u64> = Setting::new(
    "request_body_timeout_secs",
    "ADP_REQUEST_BODY_TIMEOUT_SECS",
    "SECS",
    "Seconds a request body gets to arrive in full after its head",
)
.default("30")
.rule(at_least_one);
pub const MAX_CONNECTIONS: Setting<usize> = Setting::new(
    "max_connections",
    "ADP_MAX_CONNECTIONS",
    "N",
    "Open connections per listener, all its worker threads together; more wait in the listen backlog until one closes",
)
.default("10000")
.rule(at_least_one);
pub const HTTP2_MAX_CONCURRENT_STREAMS: Setting<u32> = Setting::new(
    "http2_max_concurrent_streams",
    "ADP_HTTP2_MAX_CONCURRENT_STREAMS",
    "N",
    "Concurrent streams (calls) per HTTP/2 connection",
)
.default("200")
.rule(at_least_one);

/// The listener group, for a program's list of settings.
pub const LISTENER: [&dyn Declared; 4] = [
    &HEADER_READ_TIMEOUT_SECS,
    &REQUEST_BODY_TIMEOUT_SECS,
    &MAX_CONNECTIONS,
    &HTTP2_MAX_CONCURRENT_STREAMS,
];

pub fn listener_limits(layers: &Layers) -> Result<adp_listener::Limits, Error> {
    Ok(adp_listener::Limits {
        header_read_timeout: Duration::from_secs(HEADER_READ_TIMEOUT_SECS.value(layers)?),
        request_body_timeout: Duration::from_secs(REQUEST_BODY_TIMEOUT_SECS.value(layers)?),
        max_connections: MAX_CONNECTIONS.value(layers)?,
        http2_max_concurrent_streams: HTTP2_MAX_CONCURRENT_STREAMS.value(layers)?,
    })
}
