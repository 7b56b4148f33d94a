//! Users' connections to upstream providers: the cards they see, starting and
//! finishing consent, revocation, change notifications, and tokens that stay fresh.
//! Tokens are opened from the vault only inside this module and `credentials`.

pub mod background;
mod consent;
mod refresh;
mod watchers;

pub use refresh::Usable;
pub use watchers::WatchPermit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adp_core::connection::{ConnectionKey, StoredConnection};
use adp_core::identity::Identity;
use adp_core::provider::{GrantType, OAuthProvider, TokenAuthMethod};
use adp_core::server::Auth;
use adp_core::{ApiError, Code};
use adp_oauth::{AuthMethod, OAuthClient, ProviderEndpoints, TokenSet};
use adp_store::{Store, StoreError};
use adp_vault::{Binding, Vault};
use secrecy::SecretString;
use tokio::sync::broadcast;
use url::Url;

pub use consent::{CallbackOutcome, CallbackParams, ConsentPrompt, ConsentStart};
pub(crate) use consent::{cookie_binding, random_token};

use crate::errors::store_error;

/// Timing of consent and refresh.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSettings {
    /// How long a consent link works.
    pub consent_ttl: Duration,
    /// Refresh when the access token has less than this left…
    pub refresh_ahead: Duration,
    /// …plus up to this much random extra, so many users do not refresh at once.
    pub refresh_jitter: Duration,
    /// Consent links one person may hold open at once, over every provider.
    pub max_consent_attempts_per_user: u64,
    /// `WatchConnection` streams one person may hold open at once on one replica.
    pub max_watches_per_user: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            consent_ttl: Duration::from_secs(600),
            refresh_ahead: Duration::from_secs(60),
            refresh_jitter: Duration::from_secs(15),
            max_consent_attempts_per_user: 20,
            max_watches_per_user: 16,
        }
    }
}

/// What a refresh lease adds to the slowest refresh: sealing and storing the answer.
const REFRESH_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The state of one card, as `ConnectionService` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    pub provider: OAuthProvider,
    pub requested_scopes: Vec<String>,
    pub connection: Option<StoredConnection>,
}

/// Where a card stands, as both the API and the Connections page show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardStatus {
    NotConnected,
    Connected,
    /// The connection can no longer produce tokens; `detail` says why when known.
    Expired {
        reason: adp_core::connection::ExpiredReason,
        detail: String,
    },
    /// Servers now need scopes the user has not granted.
    ScopeUpgradeRequired {
        missing: Vec<String>,
    },
}

impl Card {
    pub fn status(&self) -> CardStatus {
        let Some(connection) = &self.connection else {
            return CardStatus::NotConnected;
        };
        if let Some(reason) = connection.expired {
            return CardStatus::Expired {
                reason,
                detail: connection.status_reason.clone(),
            };
        }
        let missing: Vec<String> = self
            .requested_scopes
            .iter()
            .filter(|s| !connection.granted_scopes.contains(s))
            .cloned()
            .collect();
        if missing.is_empty() {
            CardStatus::Connected
        } else {
            CardStatus::ScopeUpgradeRequired { missing }
        }
    }

    /// The provider's display name, or its name when it has none.
    pub fn display_name(&self) -> &str {
        display_name(&self.provider)
    }
}

pub(crate) fn display_name(provider: &OAuthProvider) -> &str {
    if provider.display_name.is_empty() {
        &provider.name
    } else {
        &provider.display_name
    }
}

#[derive(Debug)]
pub struct Connections {
    store: Store,
    vault: Arc<Vault>,
    oauth: OAuthClient,
    callback_url: Url,
    public_url: String,
    settings: ConnectionSettings,
    changes: broadcast::Sender<ConnectionKey>,
    /// Refreshes running on this replica, one per connection.
    refresh_flights: Mutex<refresh::Flights>,
    flight_ids: std::sync::atomic::AtomicU64,
    /// Refreshed tokens a refresh could not store before its lease ran out (the
    /// database was away): the provider already spent the old refresh token, so these
    /// are stored before this replica refreshes the connection again.
    unsaved: Mutex<HashMap<ConnectionKey, (i64, TokenSet)>>,
    /// How long a replica may hold the right to refresh one connection: longer than
    /// the slowest refresh the OAuth client can make, so no peer starts a second one.
    refresh_lease: Duration,
    /// Open `WatchConnection` streams by (issuer, subject).
    watchers: Mutex<HashMap<(String, String), usize>>,
    /// Device authorizations being polled, so repeated calls reuse one user code.
    pending_devices: Mutex<HashMap<ConnectionKey, adp_oauth::DeviceAuthorization>>,
}

impl Connections {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        oauth: OAuthClient,
        public_url: String,
        settings: ConnectionSettings,
    ) -> anyhow::Result<Self> {
        let callback_url = Url::parse(&format!("{public_url}/oauth/v1/callback"))?;
        let (changes, _) = broadcast::channel(1024);
        let refresh_lease = oauth.worst_case_call() + REFRESH_LEASE_MARGIN;
        Ok(Self {
            store,
            vault,
            oauth,
            callback_url,
            public_url,
            settings,
            changes,
            refresh_flights: Mutex::new(HashMap::new()),
            flight_ids: std::sync::atomic::AtomicU64::new(0),
            unsaved: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            refresh_lease,
            pending_devices: Mutex::new(HashMap::new()),
        })
    }

    pub fn key(identity: &Identity, provider_name: &str) -> ConnectionKey {
        ConnectionKey {
            issuer: identity.issuer.clone(),
            subject: identity.subject.clone(),
            provider_name: provider_name.to_owned(),
        }
    }

    /// How long one replica may hold the right to refresh a connection.
    pub fn refresh_lease(&self) -> Duration {
        self.refresh_lease
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Every change to any connection on this replica; watchers filter by key.
    pub fn subscribe(&self) -> broadcast::Receiver<ConnectionKey> {
        self.changes.subscribe()
    }

    fn notify(&self, key: &ConnectionKey) {
        let _ = self.changes.send(key.clone());
    }

    /// One card per enabled provider users can consent to, with this user's connection.
    pub async fn cards(&self, identity: &Identity) -> Result<Vec<Card>, ApiError> {
        let providers = self.all_providers().await?;
        let requested = self.requested_scopes_by_provider().await?;
        let connections = self
            .store
            .connections()
            .list_for_user(&identity.issuer, &identity.subject)
            .await
            .map_err(store_error)?;
        Ok(providers
            .into_iter()
            .filter(|p| p.enabled && consentable(p))
            .map(|provider| Card {
                requested_scopes: requested.get(&provider.name).cloned().unwrap_or_default(),
                connection: connections
                    .iter()
                    .find(|c| c.key.provider_name == provider.name)
                    .cloned(),
                provider,
            })
            .collect())
    }

    pub async fn card(&self, identity: &Identity, provider_name: &str) -> Result<Card, ApiError> {
        let provider = self.provider(provider_name).await?;
        let requested = self.requested_scopes_by_provider().await?;
        let connection = self
            .store
            .connections()
            .get(&Self::key(identity, provider_name))
            .await
            .map_err(store_error)?;
        Ok(Card {
            requested_scopes: requested.get(provider_name).cloned().unwrap_or_default(),
            connection,
            provider,
        })
    }

    /// The user's stored connection to `provider_name`, without the card around it
    /// (one query, for watchers re-reading on every change).
    pub async fn connection(
        &self,
        identity: &Identity,
        provider_name: &str,
    ) -> Result<Option<StoredConnection>, ApiError> {
        self.store
            .connections()
            .get(&Self::key(identity, provider_name))
            .await
            .map_err(store_error)
    }

    async fn all_providers(&self) -> Result<Vec<OAuthProvider>, ApiError> {
        self.store.providers().all().await.map_err(store_error)
    }

    /// The union of `required_scopes` of the user-delegated servers bound to each provider.
    async fn requested_scopes_by_provider(&self) -> Result<HashMap<String, Vec<String>>, ApiError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for server in self.store.servers().all().await.map_err(store_error)? {
            if let Auth::UserOAuth {
                provider_name,
                required_scopes,
                ..
            } = &server.auth
            {
                let entry = out.entry(provider_name.clone()).or_default();
                *entry = adp_oauth::scope::union(entry, required_scopes);
            }
        }
        Ok(out)
    }

    pub(crate) async fn provider(&self, name: &str) -> Result<OAuthProvider, ApiError> {
        match self.store.providers().get(name).await {
            Ok(stored) => Ok(stored.spec),
            Err(StoreError::NotFound { .. }) => Err(ApiError::not_found("oauth provider", name)),
            Err(other) => Err(store_error(other)),
        }
    }

    /// The provider's endpoints with its client secret opened from the secret store.
    pub(crate) async fn endpoints(
        &self,
        provider: &OAuthProvider,
    ) -> Result<ProviderEndpoints, ApiError> {
        let url = |field: &str, value: &str| -> Result<Option<Url>, ApiError> {
            if value.is_empty() {
                return Ok(None);
            }
            Url::parse(value).map(Some).map_err(|_| {
                ApiError::new(
                    Code::FailedPrecondition,
                    format!("oauth provider {:?} has an invalid {field}", provider.name),
                )
            })
        };
        let client_secret = if provider.client_secret_ref.is_empty() {
            None
        } else {
            Some(self.open_secret(&provider.client_secret_ref).await?)
        };
        Ok(ProviderEndpoints {
            authorize_url: url("authorize_url", &provider.authorize_url)?,
            token_url: url("token_url", &provider.token_url)?
                .ok_or_else(|| ApiError::internal("provider without token_url"))?,
            revocation_url: url("revocation_url", &provider.revocation_url)?,
            device_authorization_url: url(
                "device_authorization_url",
                &provider.device_authorization_url,
            )?,
            client_id: provider.client_id.clone(),
            client_secret,
            auth_method: match provider.token_auth_method {
                TokenAuthMethod::ClientSecretBasic => AuthMethod::ClientSecretBasic,
                TokenAuthMethod::ClientSecretPost => AuthMethod::ClientSecretPost,
                TokenAuthMethod::None => AuthMethod::None,
            },
        })
    }

    pub(crate) async fn open_secret(&self, name: &str) -> Result<SecretString, ApiError> {
        let sealed =
            self.store
                .secrets()
                .sealed_value(name)
                .await
                .map_err(|error| match error {
                    StoreError::NotFound { .. } => ApiError::new(
                        Code::FailedPrecondition,
                        format!("secret {name:?} not found"),
                    )
                    .with_reason(adp_core::Reason::SecretNotFound)
                    .with_metadata("secretName", name),
                    other => store_error(other),
                })?;
        self.vault
            .open_string(&Binding::secret(name), &sealed)
            .map_err(|error| {
                tracing::error!(secret = %name, %error, "cannot open a stored secret");
                ApiError::internal("cannot open a stored secret")
            })
    }

    pub(crate) fn seal_tokens(
        &self,
        key: &ConnectionKey,
        tokens: &TokenSet,
    ) -> Result<Vec<u8>, ApiError> {
        let binding = Binding::token_set(&key.issuer, &key.subject, &key.provider_name);
        self.vault
            .seal(&binding, &tokens.to_sealable_json())
            .map_err(|error| {
                tracing::error!(provider = %key.provider_name, %error, "cannot seal tokens");
                ApiError::internal("cannot seal tokens")
            })
    }

    pub(crate) fn open_tokens(&self, connection: &StoredConnection) -> Result<TokenSet, ApiError> {
        let key = &connection.key;
        let binding = Binding::token_set(&key.issuer, &key.subject, &key.provider_name);
        let plain = self
            .vault
            .open(&binding, &connection.sealed_tokens)
            .map_err(|error| {
                tracing::error!(provider = %key.provider_name, %error, "cannot open stored tokens");
                ApiError::internal("cannot open stored tokens")
            })?;
        TokenSet::from_sealable_json(&plain)
            .map_err(|_| ApiError::internal("stored tokens are unreadable"))
    }

    /// Deletes the user's connection and revokes its token at the provider when the
    /// provider has a revocation endpoint. Returns (revoked upstream, why not).
    pub async fn revoke(
        &self,
        identity: &Identity,
        provider_name: &str,
    ) -> Result<(bool, String), ApiError> {
        let provider = self.provider(provider_name).await?;
        let key = Self::key(identity, provider_name);
        let Some(deleted) = self
            .store
            .connections()
            .delete(&key)
            .await
            .map_err(store_error)?
        else {
            return Ok((false, "there was no connection to revoke".to_owned()));
        };
        self.notify(&key);
        tracing::info!(provider = %provider_name, subject = %identity.subject, "connection deleted");
        if provider.revocation_url.is_empty() {
            return Ok((
                false,
                "the provider has no revocation endpoint configured".to_owned(),
            ));
        }
        if deleted.sealed_tokens.is_empty() {
            return Ok((
                false,
                "its tokens were discarded when the provider's endpoints or client changed"
                    .to_owned(),
            ));
        }
        let tokens = self.open_tokens(&deleted)?;
        let endpoints = self.endpoints(&provider).await?;
        // revoking the refresh token ends the whole grant at providers that follow RFC 7009 §2.1
        let (token, hint) = match &tokens.refresh_token {
            Some(refresh) => (refresh, adp_oauth::TokenTypeHint::RefreshToken),
            None => (&tokens.access_token, adp_oauth::TokenTypeHint::AccessToken),
        };
        match self.oauth.revoke(&endpoints, token, hint).await {
            Ok(()) => Ok((true, String::new())),
            Err(error) => {
                tracing::warn!(provider = %provider_name, %error, "upstream revocation failed");
                Ok((false, error.to_string()))
            }
        }
    }

    /// Marks every working connection to the providers involved as needing consent
    /// again, when a server switches between user-delegated and service-account OAuth.
    pub async fn auth_mode_switched(
        &self,
        server_name: &str,
        before: &Auth,
        after: &Auth,
    ) -> Result<(), ApiError> {
        let switched = matches!(
            (before, after),
            (Auth::UserOAuth { .. }, Auth::ServiceAccountOAuth { .. })
                | (Auth::ServiceAccountOAuth { .. }, Auth::UserOAuth { .. })
        );
        if !switched {
            return Ok(());
        }
        let text = format!("server {server_name} changed its authentication mode; connect again");
        for provider in [before.provider_name(), after.provider_name()]
            .into_iter()
            .flatten()
        {
            let count = self
                .store
                .connections()
                .require_reconsent(provider, &text, false)
                .await
                .map_err(store_error)?;
            tracing::info!(server = %server_name, provider = %provider, count, "connections need consent again");
        }
        self.notify_everyone();
        Ok(())
    }
}

impl Connections {
    /// Ends every connection of `provider_name` and discards their tokens, when the
    /// provider's token endpoint, client or issuer changed: those tokens were issued
    /// to another client by (perhaps) another authorization server, and sending them
    /// to the new endpoints, even to revoke them, would hand them to whoever runs it.
    pub async fn provider_endpoints_changed(
        &self,
        provider_name: &str,
        fields: &[&str],
    ) -> Result<u64, ApiError> {
        let text = format!(
            "an administrator changed this provider's {}; connect again",
            fields.join(", ")
        );
        let count = self
            .store
            .connections()
            .require_reconsent(provider_name, &text, true)
            .await
            .map_err(store_error)?;
        tracing::info!(provider = %provider_name, count, fields = ?fields, "provider endpoints changed: connections need consent again");
        self.notify_everyone();
        Ok(count)
    }

    /// Wakes every watcher on this replica (a change that touches many users).
    /// Tells every watcher to read its whole card again (a provider or server changed).
    pub(crate) fn notify_everyone(&self) {
        let _ = self.changes.send(ConnectionKey {
            issuer: String::new(),
            subject: String::new(),
            provider_name: String::new(),
        });
    }
}

pub(crate) fn consentable(provider: &OAuthProvider) -> bool {
    let grants = provider.effective_grant_types();
    grants.contains(&GrantType::BrowserConsent) || grants.contains(&GrantType::DeviceCode)
}
