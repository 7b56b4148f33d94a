//! A person signed in to the control plane's pages through the organization's OpenID
//! Connect provider. The (issuer, subject) pair is the same identity a JWT caller has,
//! so what they connect in the browser is what the proxy uses for their calls.

use chrono::{DateTime, Utc};

use crate::identity::{Identity, Permissions};

#[derive(Clone, PartialEq, Eq)]
pub struct BrowserSession {
    /// SHA-256 (hex) of the session cookie: the cookie itself is never stored.
    pub id_hash: String,
    pub issuer: String,
    pub subject: String,
    /// What the page greets them with (`name`, else `email`, else
    /// `preferred_username`, else `sub`).
    pub display_name: String,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
}

impl BrowserSession {
    /// The identity connections are keyed by. Browser sessions carry no admin
    /// permissions: the pages only ever act on the person's own connections.
    pub fn identity(&self) -> Identity {
        Identity::new(
            self.issuer.clone(),
            self.subject.clone(),
            Permissions::default(),
        )
    }
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}
