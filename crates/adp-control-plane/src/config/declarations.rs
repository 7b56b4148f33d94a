//! Every control-plane setting, declared once: file key, environment variable, flag,
//! default, help and rule. `--help`, the file's accepted keys and the errors come from
//! here; [`super::Settings::resolve`] reads them.

use std::net::SocketAddr;
use std::path::PathBuf;

use adp_settings::{Declared, Group, Registry, Setting, at_least_one, shared};
use url::Url;

pub const GRPC_ADDR: Setting<SocketAddr> =
    Setting::new("grpc_addr", "ADP_GRPC_ADDR", "ADDR", "gRPC listen address")
        .default("127.0.0.1:7400");
pub const HTTP_ADDR: Setting<SocketAddr> = Setting::new(
    "http_addr",
    "ADP_HTTP_ADDR",
    "ADDR",
    "HTTP listen address: /healthz, consent links, the OAuth callback, the Connections page",
)
.default("127.0.0.1:7401");
pub const PUBLIC_URL: Setting<Url> = Setting::new(
    "public_url",
    "ADP_PUBLIC_URL",
    "URL",
    "Base URL browsers use to reach the HTTP listener (authorize links, the OAuth callback)",
)
.derived("http://<http_addr>");
pub const DATA_DIR: Setting<PathBuf> = Setting::new(
    "data_dir",
    "ADP_DATA_DIR",
    "DIR",
    "Directory for the SQLite file and generated development keys",
)
.default("./adp-data");
pub const DATABASE_URL: Setting<String> = Setting::new(
    "database_url",
    "ADP_DATABASE_URL",
    "URL",
    "sqlite://… or postgres://… (postgres for several replicas)",
)
.derived("sqlite://<data_dir>/adp.db?mode=rwc")
// a postgres:// URL may carry a password
.secret()
.rule(|url| {
    if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        Ok(())
    } else {
        Err("use sqlite:… or postgres://…".into())
    }
});
pub const VAULT_KEY_FILE: Setting<PathBuf> = Setting::new(
    "vault_key_file",
    "ADP_VAULT_KEY_FILE",
    "FILE",
    "Vault key ring file (generated 0600 when absent)",
)
.derived("<data_dir>/vault-keys.json");
pub const INSECURE_LOOPBACK_HTTP: Setting<bool> = Setting::new(
    "insecure_loopback_http",
    "ADP_INSECURE_LOOPBACK_HTTP",
    "BOOL",
    "Accept http:// provider endpoints on loopback hosts; development only",
)
.default("false");
pub const INSECURE_DEVELOPMENT: Setting<bool> = Setting::new(
    "insecure_development",
    "ADP_INSECURE_DEVELOPMENT",
    "BOOL",
    "Development only: consent links work without browser sign-in (whoever opens one connects it), and http:// loopback JWKS URLs are accepted",
)
.default("false");
pub const BACKGROUND_REFRESH: Setting<bool> = Setting::new(
    "background_refresh",
    "ADP_BACKGROUND_REFRESH",
    "BOOL",
    "Refresh, in the background, connections nobody used for ADP_BACKGROUND_REFRESH_IDLE_SECS, so providers that end idle refresh tokens do not end them",
)
.default("false");
pub const BACKGROUND_REFRESH_IDLE_SECS: Setting<u64> = Setting::new(
    "background_refresh_idle_secs",
    "ADP_BACKGROUND_REFRESH_IDLE_SECS",
    "SECS",
    "With ADP_BACKGROUND_REFRESH: how long a connection may go unrefreshed; set it below the provider's refresh-token idle lifetime",
)
.default("86400")
.rule(at_least_one);
pub const REFRESH_AHEAD_SECS: Setting<u64> = Setting::new(
    "refresh_ahead_secs",
    "ADP_REFRESH_AHEAD_SECS",
    "SECS",
    "Refresh access tokens this many seconds before they expire (at most half their lifetime)",
)
.default("60");
pub const REFRESH_JITTER_SECS: Setting<u64> = Setting::new(
    "refresh_jitter_secs",
    "ADP_REFRESH_JITTER_SECS",
    "SECS",
    "Up to this many extra seconds (at most an eighth of the lifetime), to spread refreshes",
)
.default("15");
pub const CONSENT_TTL_SECS: Setting<u64> = Setting::new(
    "consent_ttl_secs",
    "ADP_CONSENT_TTL_SECS",
    "SECS",
    "How long a consent link stays valid",
)
.default("600");
pub const OAUTH_TIMEOUT_SECS: Setting<u64> = Setting::new(
    "oauth_timeout_secs",
    "ADP_OAUTH_TIMEOUT_SECS",
    "SECS",
    "Timeout of each call to a provider's endpoints",
)
.default("10");
pub const MAX_CONSENT_ATTEMPTS_PER_USER: Setting<u64> = Setting::new(
    "max_consent_attempts_per_user",
    "ADP_MAX_CONSENT_ATTEMPTS_PER_USER",
    "N",
    "Consent links one person may hold open at once; a refused call reuses its open link",
)
.default("20")
.rule(at_least_one);
pub const MAX_WATCHES_PER_USER: Setting<usize> = Setting::new(
    "max_watches_per_user",
    "ADP_MAX_WATCHES_PER_USER",
    "N",
    "WatchConnection streams one person may hold open at once on one replica",
)
.default("16")
.rule(at_least_one);

const SIGN_IN: &str = "Connections page sign-in";
pub const OIDC_ISSUER: Setting<String> = Setting::new(
    "oidc_issuer",
    "ADP_OIDC_ISSUER",
    "URL",
    "OpenID Connect issuer people sign in with on the Connections page; use the issuer of callers' JWTs, so both are one identity",
)
.heading(SIGN_IN);
pub const OIDC_CLIENT_ID: Setting<String> = Setting::new(
    "oidc_client_id",
    "ADP_OIDC_CLIENT_ID",
    "ID",
    "Client id registered at that issuer, with redirect URI <public_url>/connections/sign-in/callback",
)
.heading(SIGN_IN);
pub const OIDC_CLIENT_SECRET_REF: Setting<String> = Setting::new(
    "oidc_client_secret_ref",
    "ADP_OIDC_CLIENT_SECRET_REF",
    "NAME",
    "Name of the secret (SecretService) holding that client's secret; unset for a public client",
)
.heading(SIGN_IN);
pub const OIDC_SCOPES: Setting<String> = Setting::new(
    "oidc_scopes",
    "ADP_OIDC_SCOPES",
    "SCOPES",
    "Scopes asked for at sign-in, space-separated; must include openid",
)
.default("openid email profile")
.heading(SIGN_IN);
pub const SESSION_TTL_SECS: Setting<u64> = Setting::new(
    "session_ttl_secs",
    "ADP_SESSION_TTL_SECS",
    "SECS",
    "How long a browser stays signed in (60 seconds to 30 days)",
)
.default("28800")
.heading(SIGN_IN)
.rule(|secs| {
    if (60..=30 * 24 * 3600).contains(secs) {
        Ok(())
    } else {
        Err("use between 60 seconds and 30 days".into())
    }
});

const OWN: [&dyn Declared; 22] = [
    &GRPC_ADDR,
    &HTTP_ADDR,
    &PUBLIC_URL,
    &DATA_DIR,
    &DATABASE_URL,
    &VAULT_KEY_FILE,
    &INSECURE_LOOPBACK_HTTP,
    &INSECURE_DEVELOPMENT,
    &BACKGROUND_REFRESH,
    &BACKGROUND_REFRESH_IDLE_SECS,
    &REFRESH_AHEAD_SECS,
    &REFRESH_JITTER_SECS,
    &CONSENT_TTL_SECS,
    &OAUTH_TIMEOUT_SECS,
    &MAX_CONSENT_ATTEMPTS_PER_USER,
    &MAX_WATCHES_PER_USER,
    &OIDC_ISSUER,
    &OIDC_CLIENT_ID,
    &OIDC_CLIENT_SECRET_REF,
    &OIDC_SCOPES,
    &SESSION_TTL_SECS,
    &shared::LOG_FORMAT,
];

/// The control plane's settings, for [`adp_settings::Flags`].
#[derive(Debug)]
pub struct ControlPlaneSettings;

impl Registry for ControlPlaneSettings {
    const GROUPS: &'static [Group] =
        &[&OWN, &shared::JWT, &shared::OUTBOUND_TLS, &shared::LISTENER];
}
