//! What `TokenService.GetUpstreamCredential` answers: the header a proxy injects for
//! one user and one server, or the consent error that tells the user what to do.

use std::collections::HashMap;
use std::sync::Arc;

use adp_core::identity::Identity;
use adp_core::provider::OAuthProvider;
use adp_core::server::{Auth, DEFAULT_TOKEN_HEADER, McpServer};
use adp_core::{ApiError, Code};
use adp_oauth::TokenSet;
use adp_store::StoreError;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::connections::{Connections, Usable};
use crate::consent_errors::{self, ConsentContext};
use crate::errors::store_error;

/// The header to inject. `value` is secret.
pub struct Credential {
    pub header_name: String,
    pub value: SecretString,
    pub expire_time: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("header_name", &self.header_name)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

/// One server's shared token with when it was fetched. Its lock is held across the
/// fetch, so concurrent callers of one server wait for one client-credentials grant,
/// and callers of other servers do not wait at all.
type ServiceAccountSlot = Arc<tokio::sync::Mutex<Option<ServiceAccountToken>>>;

/// A shared token with what it was fetched for: a hit must match the server's current
/// provider and scopes, whatever a cache invalidation missed.
#[derive(Debug)]
struct ServiceAccountToken {
    tokens: TokenSet,
    fetched_at: DateTime<Utc>,
    provider_name: String,
    scopes: Vec<String>,
}

/// One client-credentials token per server, shared by every caller.
#[derive(Debug, Default)]
pub struct ServiceAccountCache {
    slots: Arc<std::sync::Mutex<HashMap<String, ServiceAccountSlot>>>,
}

impl ServiceAccountCache {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, ServiceAccountSlot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, server_name: &str) -> ServiceAccountSlot {
        self.slots()
            .entry(server_name.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets every server's token (a provider changed: its old client's tokens are
    /// not the new one's to use). A fetch in flight keeps its slot but lands in none.
    fn clear(&self) {
        self.slots().clear();
    }

    fn forget(&self, server_name: &str) {
        self.slots().remove(server_name);
    }
}

pub struct CredentialIssuer {
    pub connections: Arc<Connections>,
    pub service_accounts: ServiceAccountCache,
    pub oauth: adp_oauth::OAuthClient,
    pub servers: SpecCache<McpServer>,
    pub providers: SpecCache<OAuthProvider>,
}

/// Server and provider specs for at most [`SPEC_CACHE_TTL`]: every proxy call needs
/// them and they change rarely. Writes through this replica drop the entry at once;
/// writes through another replica are seen within the TTL. Connections are never
/// cached, so a revocation or expiry takes effect on the next call.
/// Bounded by [`SPEC_CACHE_MAX`] with quick_cache's eviction (it used to clear every
/// entry when full, so one burst of names emptied it for everyone).
pub struct SpecCache<V> {
    entries: quick_cache::sync::Cache<String, (V, std::time::Instant)>,
}

impl<V> std::fmt::Debug for SpecCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecCache").finish_non_exhaustive()
    }
}

impl<V: Clone> Default for SpecCache<V> {
    fn default() -> Self {
        SpecCache {
            entries: quick_cache::sync::Cache::new(SPEC_CACHE_MAX),
        }
    }
}

pub const SPEC_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
const SPEC_CACHE_MAX: usize = 10_000;

impl<V: Clone> SpecCache<V> {
    fn get(&self, name: &str) -> Option<V> {
        let (spec, at) = self.entries.get(name)?;
        (at.elapsed() < SPEC_CACHE_TTL).then_some(spec)
    }

    fn put(&self, name: &str, spec: V) {
        self.entries
            .insert(name.to_owned(), (spec, std::time::Instant::now()));
    }

    fn forget(&self, name: &str) {
        self.entries.remove(name);
    }
}

impl std::fmt::Debug for CredentialIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialIssuer").finish_non_exhaustive()
    }
}

impl CredentialIssuer {
    pub async fn credential(
        &self,
        identity: &Identity,
        server_name: &str,
    ) -> Result<Credential, ApiError> {
        let server = self.server(server_name).await?;
        if !server.enabled {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                format!("mcp server {server_name:?} is disabled"),
            )
            .with_reason(adp_core::Reason::McpServerDisabled)
            .with_metadata("mcpServer", server_name));
        }
        match &server.auth {
            Auth::None | Auth::TokenPassthrough => Ok(Credential {
                header_name: String::new(),
                value: SecretString::from(String::new()),
                expire_time: None,
            }),
            Auth::StaticKey {
                key_ref,
                header_name,
            } => Ok(Credential {
                header_name: if header_name.is_empty() {
                    DEFAULT_TOKEN_HEADER.to_owned()
                } else {
                    header_name.clone()
                },
                value: self.connections.open_secret(key_ref).await?,
                expire_time: None,
            }),
            Auth::ServiceAccountOAuth {
                provider_name,
                scopes,
                token_injection,
            } => {
                self.enabled_provider(&server, provider_name).await?;
                let tokens = self
                    .service_account_token(&server, provider_name, scopes)
                    .await?;
                Ok(inject(
                    token_injection.effective_header_name(),
                    token_injection.effective_prefix(),
                    &tokens,
                ))
            }
            Auth::UserOAuth {
                provider_name,
                required_scopes,
                token_injection,
            } => {
                self.enabled_provider(&server, provider_name).await?;
                let tokens = self
                    .user_token(identity, &server, provider_name, required_scopes)
                    .await?;
                Ok(inject(
                    token_injection.effective_header_name(),
                    token_injection.effective_prefix(),
                    &tokens,
                ))
            }
        }
    }

    async fn user_token(
        &self,
        identity: &Identity,
        server: &McpServer,
        provider_name: &str,
        required: &[String],
    ) -> Result<TokenSet, ApiError> {
        let key = Connections::key(identity, provider_name);
        let stored = self
            .connections
            .store()
            .connections()
            .get(&key)
            .await
            .map_err(store_error)?;
        let Some(connection) = stored else {
            let url = self
                .authorize_url(identity, provider_name, &server.name)
                .await?;
            let context = ConsentContext {
                provider_name,
                server_name: &server.name,
                authorize_url: &url,
            };
            return Err(consent_errors::connection_required(&context, required));
        };
        if connection.expired.is_none() {
            let missing: Vec<String> = required
                .iter()
                .filter(|s| !connection.granted_scopes.contains(s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                let url = self
                    .authorize_url(identity, provider_name, &server.name)
                    .await?;
                let context = ConsentContext {
                    provider_name,
                    server_name: &server.name,
                    authorize_url: &url,
                };
                return Err(consent_errors::scope_upgrade_required(
                    &context,
                    &connection.granted_scopes,
                    required,
                    &missing,
                ));
            }
        }
        match self.connections.usable_tokens(connection).await? {
            Usable::Tokens(tokens) => Ok(tokens),
            Usable::Expired(reason) => {
                let url = self
                    .authorize_url(identity, provider_name, &server.name)
                    .await?;
                let context = ConsentContext {
                    provider_name,
                    server_name: &server.name,
                    authorize_url: &url,
                };
                Err(consent_errors::token_expired(&context, reason))
            }
        }
    }

    /// A fresh consent link for the error, so the user can act on it directly.
    async fn authorize_url(
        &self,
        identity: &Identity,
        provider_name: &str,
        server_name: &str,
    ) -> Result<String, ApiError> {
        Ok(self
            .connections
            .start_consent(identity, provider_name, &[], Some(server_name))
            .await?
            .authorize_url)
    }

    async fn service_account_token(
        &self,
        server: &McpServer,
        provider_name: &str,
        scopes: &[String],
    ) -> Result<TokenSet, ApiError> {
        let slot = self.service_accounts.slot(&server.name);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && token.provider_name == provider_name
            && token.scopes == scopes
            && still_fresh(&token.tokens, token.fetched_at, Utc::now())
        {
            return Ok(token.tokens.clone());
        }
        let provider = self.connections.provider(provider_name).await?;
        let endpoints = self.connections.endpoints(&provider).await?;
        let tokens = self.oauth.client_credentials(&endpoints, scopes).await.map_err(|error| {
            tracing::warn!(server = %server.name, provider = %provider_name, %error, "client credentials grant failed");
            ApiError::new(Code::Unavailable, format!("the service account token for {} is unavailable: {error}", server.name))
                .with_reason(adp_core::Reason::ServiceAccountTokenUnavailable)
                .with_metadata("mcpServer", server.name.clone())
                .with_metadata("providerName", provider_name)
        })?;
        *cached = Some(ServiceAccountToken {
            tokens: tokens.clone(),
            fetched_at: Utc::now(),
            provider_name: provider_name.to_owned(),
            scopes: scopes.to_vec(),
        });
        Ok(tokens)
    }

    async fn server(&self, server_name: &str) -> Result<McpServer, ApiError> {
        if let Some(server) = self.servers.get(server_name) {
            return Ok(server);
        }
        match self.connections.store().servers().get(server_name).await {
            Ok(stored) => {
                self.servers.put(server_name, stored.spec.clone());
                Ok(stored.spec)
            }
            Err(StoreError::NotFound { .. }) => Err(ApiError::not_found("mcp server", server_name)),
            Err(other) => Err(store_error(other)),
        }
    }

    /// The provider a server is bound to, refusing one that is disabled or gone: an
    /// admin disabling a provider stops every credential for it at once.
    async fn enabled_provider(
        &self,
        server: &McpServer,
        provider_name: &str,
    ) -> Result<OAuthProvider, ApiError> {
        let provider = match self.providers.get(provider_name) {
            Some(provider) => provider,
            None => {
                let provider = self.connections.provider(provider_name).await?;
                self.providers.put(provider_name, provider.clone());
                provider
            }
        };
        if !provider.enabled {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                format!(
                    "oauth provider {provider_name:?} is disabled, so mcp server {:?} cannot be reached with it",
                    server.name
                ),
            )
            .with_reason(adp_core::Reason::OauthProviderDisabled)
            .with_metadata("providerName", provider_name)
            .with_metadata("mcpServer", server.name.clone()));
        }
        Ok(provider)
    }

    /// Forgets a server or provider another replica (or this one) changed, as the
    /// config feed learns of it: a proxy told of the change must not be answered
    /// from before it.
    pub fn forget(&self, change: &adp_store::ConfigChange) {
        if change.kind != adp_store::ConfigKind::Connection {
            // what cards show (scopes asked for, the provider) may have changed
            self.connections.notify_everyone();
        }
        match change.kind {
            adp_store::ConfigKind::Server => {
                self.servers.forget(&change.name);
                self.service_accounts.forget(&change.name);
            }
            adp_store::ConfigKind::Provider => {
                self.providers.forget(&change.name);
                // shared tokens the old client got are not the new one's to use
                self.service_accounts.clear();
            }
            adp_store::ConfigKind::Connection => {}
        }
    }

    /// Forgets what is cached about a provider (it was changed or deleted here),
    /// including the service-account tokens it issued.
    pub async fn provider_changed(&self, provider_name: &str) {
        self.providers.forget(provider_name);
        self.service_accounts.clear();
    }

    /// Forgets what is cached about a server (it was changed or deleted here).
    pub async fn server_changed(&self, server_name: &str) {
        self.servers.forget(server_name);
        self.service_accounts.forget(server_name);
    }
}

/// Reuse a shared token for the first 80% of its life (at most until a minute before
/// it expires), so short-lived tokens are still cached and long ones renewed early.
fn still_fresh(tokens: &TokenSet, fetched_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let Some(expires_at) = tokens.expires_at else {
        return true;
    };
    let lifetime = expires_at - fetched_at;
    let renew_at = std::cmp::max(
        fetched_at + lifetime * 4 / 5,
        expires_at - chrono::Duration::seconds(60),
    );
    let renew_at = std::cmp::min(renew_at, expires_at - chrono::Duration::seconds(1));
    now < renew_at
}

fn inject(header_name: &str, prefix: &str, tokens: &TokenSet) -> Credential {
    Credential {
        header_name: header_name.to_owned(),
        value: SecretString::from(format!("{prefix}{}", tokens.access_token.expose_secret())),
        expire_time: tokens.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(expires_in: i64, fetched_at: DateTime<Utc>) -> TokenSet {
        TokenSet {
            access_token: SecretString::from("t".to_owned()),
            refresh_token: None,
            token_type: "Bearer".into(),
            expires_at: Some(fetched_at + chrono::Duration::seconds(expires_in)),
            scopes: None,
        }
    }

    #[test]
    fn short_and_long_service_account_tokens_are_reused_then_renewed() {
        let t0 = Utc::now();
        let short = tokens(30, t0);
        assert!(still_fresh(&short, t0, t0 + chrono::Duration::seconds(20)));
        assert!(!still_fresh(&short, t0, t0 + chrono::Duration::seconds(25)));
        let long = tokens(3600, t0);
        assert!(still_fresh(&long, t0, t0 + chrono::Duration::seconds(3000)));
        assert!(!still_fresh(
            &long,
            t0,
            t0 + chrono::Duration::seconds(3541)
        ));
    }
}
