//! A user's connection to an upstream provider, as stored: whose it is, what was
//! granted, whether it still works. The tokens themselves stay sealed here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whose connection to which provider. The user is the (issuer, subject) pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionKey {
    pub issuer: String,
    pub subject: String,
    pub provider_name: String,
}

/// Why a connection can no longer produce tokens (mirrors `adp.v1.TokenExpiredReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiredReason {
    Revoked,
    RefreshRejected,
    NoRefreshToken,
    UpstreamUnavailable,
}

impl ExpiredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiredReason::Revoked => "revoked",
            ExpiredReason::RefreshRejected => "refresh_rejected",
            ExpiredReason::NoRefreshToken => "no_refresh_token",
            ExpiredReason::UpstreamUnavailable => "upstream_unavailable",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Revoked,
            Self::RefreshRejected,
            Self::NoRefreshToken,
            Self::UpstreamUnavailable,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// A stored connection. `sealed_tokens` opens only with the vault and this key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredConnection {
    pub key: ConnectionKey,
    pub sealed_tokens: Vec<u8>,
    pub granted_scopes: Vec<String>,
    /// `None` while the connection works.
    pub expired: Option<ExpiredReason>,
    pub status_reason: String,
    pub connect_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    /// When the current access token stops working, if the provider said.
    pub access_expire_time: Option<DateTime<Utc>>,
    /// Grows on every write; refreshes compare-and-swap on it.
    pub version: i64,
    /// A replica holding this lease is refreshing the token; others wait or reuse.
    pub refresh_lease_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConnection")
            .field("key", &self.key)
            .field(
                "sealed_tokens",
                &format_args!("<{} sealed bytes>", self.sealed_tokens.len()),
            )
            .field("granted_scopes", &self.granted_scopes)
            .field("expired", &self.expired)
            .field("access_expire_time", &self.access_expire_time)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A browser consent in flight, keyed by its one-time `state`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsentAttempt {
    pub state: String,
    pub key: ConnectionKey,
    /// The PKCE verifier, sealed.
    pub sealed_verifier: Vec<u8>,
    pub scopes: Vec<String>,
    /// The server whose call asked for consent, shown on the consent page.
    pub server_name: Option<String>,
    /// SHA-256 of the cookie given to the browser that opened the connect link.
    pub browser_binding: Option<String>,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
}

impl std::fmt::Debug for ConsentAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentAttempt")
            .field("key", &self.key)
            .field("scopes", &self.scopes)
            .field("server_name", &self.server_name)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}
