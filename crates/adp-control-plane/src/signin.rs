//! Signing people in to the control plane's pages with the organization's OpenID
//! Connect provider (authorization code + PKCE + nonce), and the browser sessions
//! that follow. A session's identity is the ID token's (`iss`, `sub`): the same pair a
//! JWT caller with that issuer has, so a connection made in the browser is the one the
//! proxy uses for that person's calls.
//!
//! Nothing about a sign-in in flight is stored: its nonce, PKCE verifier and where to
//! return travel in a cookie sealed by the vault and bound to the `state`, so a
//! callback whose `state` is not the one this browser started opens nothing.

use std::sync::Arc;
use std::time::Duration;

use adp_core::identity::{AuthError, KeySource, Verifier, VerifierConfig};
use adp_core::session::BrowserSession;
use adp_oauth::{
    AuthMethod, EndpointPolicy, FlowError, OAuthClient, OidcMetadata, Pkce, ProviderEndpoints,
};
use adp_store::{Store, StoreError};
use adp_vault::{Binding, Vault};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::config::SignInSettings;
use crate::connections::{Connections, cookie_binding, random_token};

/// Where the identity provider sends browsers back.
pub const CALLBACK_PATH: &str = "/connections/sign-in/callback";
/// How long a sign-in may take between leaving for the provider and coming back.
pub const SIGN_IN_TTL: Duration = Duration::from_secs(600);
/// The vault binding's provider field for sealed sign-in cookies.
const SEALED_SIGN_IN: &str = "adp-sign-in";

/// Why a sign-in did not complete, in words for the person at the browser.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("this sign-in link has expired or was started in another browser; sign in again")]
    NotStartedHere,
    #[error("the identity provider did not sign you in ({0})")]
    Refused(String),
    #[error("the identity provider's answer could not be verified, so you are not signed in")]
    Unverified(#[source] AuthError),
    #[error("the identity provider is not reachable right now; try again shortly")]
    Unavailable(#[source] FlowError),
    #[error("sign-in is misconfigured on this control plane; tell your administrator")]
    Misconfigured(String),
    #[error("the service is unavailable; try again shortly")]
    Store(#[from] StoreError),
}

/// A browser that came back signed in.
#[derive(Debug)]
pub struct SignedIn {
    /// The new session cookie's value (256 random bits; only its hash is stored).
    pub cookie: SecretString,
    pub session: BrowserSession,
    /// A local path to go on to.
    pub return_to: String,
}

/// The first leg: where to send the browser and the sealed cookie to set.
#[derive(Debug)]
pub struct SignInStart {
    pub redirect: Url,
    pub cookie: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PendingSignIn {
    nonce: String,
    verifier: String,
    return_to: String,
    expire_time: DateTime<Utc>,
}

#[derive(Debug)]
struct Discovered {
    metadata: OidcMetadata,
    id_tokens: Verifier,
}

#[derive(Debug)]
pub struct SignIn {
    settings: SignInSettings,
    oauth: OAuthClient,
    policy: EndpointPolicy,
    ca_file: Option<std::path::PathBuf>,
    redirect_uri: Url,
    store: Store,
    vault: Arc<Vault>,
    connections: Arc<Connections>,
    /// Filled at the first sign-in, so the control plane starts while the identity
    /// provider is down; a failed discovery is tried again next time.
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

/// Everything [`SignIn::new`] needs beyond its settings.
#[derive(Debug)]
pub struct SignInParts {
    pub oauth: OAuthClient,
    pub policy: EndpointPolicy,
    pub ca_file: Option<std::path::PathBuf>,
    pub public_url: String,
    pub store: Store,
    pub vault: Arc<Vault>,
    pub connections: Arc<Connections>,
}

impl SignIn {
    pub fn new(settings: SignInSettings, parts: SignInParts) -> anyhow::Result<Self> {
        Ok(SignIn {
            redirect_uri: Url::parse(&format!("{}{CALLBACK_PATH}", parts.public_url))?,
            settings,
            oauth: parts.oauth,
            policy: parts.policy,
            ca_file: parts.ca_file,
            store: parts.store,
            vault: parts.vault,
            connections: parts.connections,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Starts a sign-in that returns to `return_to` (a local path) afterwards.
    pub async fn start(&self, return_to: &str) -> Result<SignInStart, SignInError> {
        let discovered = self.discovered().await?;
        let endpoints = self.endpoints(&discovered.metadata).await?;
        let state = random_token();
        let nonce = random_token();
        let pkce = Pkce::generate();
        let redirect = self
            .oauth
            .sign_in_url(
                &endpoints,
                &self.redirect_uri,
                &self.settings.scopes,
                &state,
                &nonce,
                &pkce,
            )
            .map_err(|e| SignInError::Misconfigured(e.to_string()))?;
        let pending = PendingSignIn {
            nonce,
            verifier: pkce.verifier.expose_secret().to_owned(),
            return_to: local_path(return_to),
            expire_time: Utc::now() + chrono::Duration::from_std(SIGN_IN_TTL).unwrap_or_default(),
        };
        let plain = secrecy::zeroize::Zeroizing::new(
            serde_json::to_vec(&pending).map_err(|e| SignInError::Misconfigured(e.to_string()))?,
        );
        let sealed = self
            .vault
            .seal(&self.pending_binding(&state), &plain)
            .map_err(|e| SignInError::Misconfigured(e.to_string()))?;
        Ok(SignInStart {
            redirect,
            cookie: URL_SAFE_NO_PAD.encode(sealed),
        })
    }

    /// Finishes a sign-in at the callback: the sealed cookie must open under the
    /// returned `state`, the code must exchange, and the ID token must verify against
    /// the provider's keys with our client id as audience and our nonce.
    pub async fn finish(
        &self,
        state: Option<&str>,
        code: Option<&str>,
        error: Option<&str>,
        cookie: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        let (Some(state), Some(cookie)) = (state, cookie) else {
            return Err(SignInError::NotStartedHere);
        };
        let sealed = URL_SAFE_NO_PAD
            .decode(cookie)
            .map_err(|_| SignInError::NotStartedHere)?;
        let plain = self
            .vault
            .open(&self.pending_binding(state), &sealed)
            .map_err(|_| SignInError::NotStartedHere)?;
        let pending: PendingSignIn =
            serde_json::from_slice(&plain).map_err(|_| SignInError::NotStartedHere)?;
        if pending.expire_time <= Utc::now() {
            return Err(SignInError::NotStartedHere);
        }
        if let Some(error) = error {
            return Err(SignInError::Refused(error.chars().take(64).collect()));
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SignInError::Refused("no authorization code".into()))?;
        let discovered = self.discovered().await?;
        let endpoints = self.endpoints(&discovered.metadata).await?;
        let id_token = self
            .oauth
            .exchange_sign_in_code(
                &endpoints,
                &self.redirect_uri,
                code,
                &SecretString::from(pending.verifier),
            )
            .await
            .map_err(|error| match error {
                FlowError::Transient { .. } => SignInError::Unavailable(error),
                other => SignInError::Refused(other.to_string()),
            })?;
        let (identity, claims) = discovered
            .id_tokens
            .verify_with_claims(id_token.expose_secret())
            .await
            .map_err(SignInError::Unverified)?;
        let nonce = claims.get("nonce").and_then(|v| v.as_str());
        if nonce != Some(pending.nonce.as_str()) {
            tracing::warn!("sign-in id token with a missing or wrong nonce");
            return Err(SignInError::Unverified(AuthError::Malformed));
        }
        // OpenID Connect Core 3.1.3.7: with several audiences (or an azp at all), the
        // authorized party must be us
        let several_audiences = claims
            .get("aud")
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.len() > 1);
        let azp = claims.get("azp").and_then(|v| v.as_str());
        if (several_audiences || azp.is_some()) && azp != Some(self.settings.client_id.as_str()) {
            tracing::warn!("sign-in id token issued to another party (azp)");
            return Err(SignInError::Unverified(AuthError::WrongAudience));
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let display_name = text("name")
            .or_else(|| text("email"))
            .or_else(|| text("preferred_username"))
            .unwrap_or(&identity.subject)
            .chars()
            .take(200)
            .collect();
        let cookie = random_token();
        let now = Utc::now();
        let session = BrowserSession {
            id_hash: cookie_binding(&cookie),
            issuer: identity.issuer,
            subject: identity.subject,
            display_name,
            create_time: now,
            expire_time: now
                + chrono::Duration::from_std(self.settings.session_ttl).unwrap_or_default(),
        };
        self.store.sessions().create(&session).await?;
        tracing::info!(subject = %session.subject, "signed in to the connections page");
        Ok(SignedIn {
            cookie: SecretString::from(cookie),
            session,
            return_to: pending.return_to,
        })
    }

    /// The live session a session cookie stands for.
    pub async fn session(&self, cookie: &str) -> Result<Option<BrowserSession>, StoreError> {
        self.store.sessions().get(&cookie_binding(cookie)).await
    }

    /// Ends the session on every replica.
    pub async fn sign_out(&self, cookie: &str) -> Result<(), StoreError> {
        self.store
            .sessions()
            .delete(&cookie_binding(cookie))
            .await
            .map(|_| ())
    }

    fn pending_binding<'a>(&'a self, state: &'a str) -> Binding<'a> {
        Binding::request_state(&self.settings.issuer, state, SEALED_SIGN_IN)
    }

    async fn discovered(&self) -> Result<Arc<Discovered>, SignInError> {
        let mut slot = self.discovered.lock().await;
        if let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let metadata = self
            .oauth
            .discover_openid(&self.settings.issuer, &self.policy)
            .await
            .map_err(|error| {
                tracing::warn!(issuer = %self.settings.issuer, %error, "openid discovery failed");
                match error {
                    FlowError::Misconfigured(text) => SignInError::Misconfigured(text),
                    other => SignInError::Unavailable(other),
                }
            })?;
        let mut config = VerifierConfig::new(KeySource::jwks(
            metadata.jwks_uri.clone(),
            self.ca_file.clone(),
        ));
        config.issuer = Some(metadata.issuer.clone());
        config.audience = Some(self.settings.client_id.clone());
        let id_tokens =
            Verifier::new(config).map_err(|e| SignInError::Misconfigured(e.to_string()))?;
        let found = Arc::new(Discovered {
            metadata,
            id_tokens,
        });
        *slot = Some(found.clone());
        Ok(found)
    }

    async fn endpoints(&self, metadata: &OidcMetadata) -> Result<ProviderEndpoints, SignInError> {
        let client_secret = match &self.settings.client_secret_ref {
            Some(name) => Some(self.connections.open_secret(name).await.map_err(|error| {
                SignInError::Misconfigured(format!("client secret {name}: {}", error.message))
            })?),
            None => None,
        };
        Ok(ProviderEndpoints {
            authorize_url: Some(metadata.authorization_endpoint.clone()),
            token_url: metadata.token_endpoint.clone(),
            revocation_url: None,
            device_authorization_url: None,
            client_id: self.settings.client_id.clone(),
            auth_method: if client_secret.is_some() {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            },
            client_secret,
        })
    }
}

/// Only local paths of our pages, so a crafted sign-in link cannot bounce the browser
/// to another site once signed in.
fn local_path(return_to: &str) -> String {
    let allowed = return_to.starts_with("/connections") || return_to.starts_with("/oauth/v1/");
    let clean = !return_to.starts_with("//")
        && !return_to.contains('\\')
        && !return_to.chars().any(char::is_control);
    if allowed && clean {
        return_to.to_owned()
    } else {
        "/connections".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_our_own_pages_are_returned_to() {
        assert_eq!(local_path("/connections"), "/connections");
        assert_eq!(local_path("/oauth/v1/connect/abc"), "/oauth/v1/connect/abc");
        for hostile in [
            "https://evil.example",
            "//evil.example/connections",
            "/\\evil.example",
            "/connections\n",
            "/healthz",
            "",
        ] {
            assert_eq!(local_path(hostile), "/connections", "{hostile}");
        }
    }
}
