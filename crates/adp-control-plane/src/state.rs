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
}

pub type SharedState = Arc<State>;

impl State {
    /// Whether a secret exists, without touching its value.
    pub async fn secrets_get(&self, name: &str) -> Result<(), adp_store::StoreError> {
        self.store.secrets().get(name).await.map(|_| ())
    }
}
