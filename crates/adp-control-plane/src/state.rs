//! What every service shares.

use std::sync::Arc;

use adp_core::validation::RequestValidator;
use adp_oauth::EndpointPolicy;
use adp_store::Store;
use adp_vault::Vault;

use crate::auth::Authenticator;
use crate::connections::Connections;
use crate::credentials::CredentialIssuer;
use crate::signin::SignIn;

#[derive(Debug)]
pub struct State {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub auth: Authenticator,
    pub validator: RequestValidator,
    pub endpoint_policy: EndpointPolicy,
    /// `{public_url}/oauth/v1/callback`
    pub callback_url: String,
    /// Base URL browsers reach, without a trailing slash.
    pub public_url: String,
    pub connections: Arc<Connections>,
    pub credentials: CredentialIssuer,
    /// How people sign in to the Connections page; `None` when not configured.
    pub sign_in: Option<Arc<SignIn>>,
    /// How a consent link's opener is checked against the user who asked for it.
    pub consent_binding: ConsentBinding,
}

/// Who may finish a browser consent: the person it was made for, proven by browser
/// sign-in; or, in development only, whoever opens the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentBinding {
    /// The browser must be signed in as the (issuer, subject) that asked.
    SignedIn,
    /// No sign-in, and a development verifier or `ADP_INSECURE_DEVELOPMENT`: the page
    /// warns that the link connects whoever opens it.
    Development,
    /// Production JWT verification without sign-in: links cannot be bound to a
    /// person, so they are refused.
    Unavailable,
}

impl ConsentBinding {
    /// `development` is true when callers' JWTs are verified with the generated
    /// development secret or `ADP_INSECURE_DEVELOPMENT` is set.
    pub fn choose(sign_in_configured: bool, development: bool) -> Self {
        match (sign_in_configured, development) {
            (true, _) => ConsentBinding::SignedIn,
            (false, true) => ConsentBinding::Development,
            (false, false) => ConsentBinding::Unavailable,
        }
    }
}

pub type SharedState = Arc<State>;

impl State {
    /// Whether a secret exists, without touching its value.
    pub async fn secrets_get(&self, name: &str) -> Result<(), adp_store::StoreError> {
        self.store.secrets().get(name).await.map(|_| ())
    }
}
