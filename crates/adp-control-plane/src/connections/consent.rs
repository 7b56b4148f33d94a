//! Starting consent (browser or device) and finishing it at the callback.

use std::sync::Arc;

use adp_core::connection::{ConnectionKey, ConsentAttempt};
use adp_core::identity::Identity;
use adp_core::provider::{GrantType, OAuthProvider};
use adp_core::{ApiError, Code};
use adp_oauth::{DeviceAuthorization, FlowError, Pkce, TokenSet};
use adp_store::TokenWrite;
use adp_vault::Binding;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::{Connections, consentable, display_name};
use crate::errors::store_error;

/// What `Connect` hands back.
#[derive(Debug)]
pub struct ConsentStart {
    pub authorize_url: String,
    /// The one-time `state` of a browser consent (`None` for the device flow), so a
    /// page that already showed what is asked can send the browser on at once.
    pub browser_state: Option<String>,
    pub expire_time: DateTime<Utc>,
    pub device: Option<DeviceAuthorization>,
}

/// How a callback ended, for the page the browser sees.
#[derive(Debug)]
pub enum CallbackOutcome {
    Connected {
        provider_display_name: String,
        key: ConnectionKey,
    },
    Failed {
        status: u16,
        message: String,
    },
}

/// 256 random bits, URL-safe: consent `state` values and browser cookies.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What is stored for a browser cookie: never the cookie itself.
pub fn cookie_binding(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

impl Connections {
    /// Starts consent for the caller. Browser consent gets a one-time link on the
    /// control plane; device-code providers get a user code, and a background poll
    /// stores the tokens once the user approves.
    pub async fn start_consent(
        self: &Arc<Self>,
        identity: &Identity,
        provider_name: &str,
        extra_scopes: &[String],
        server_name: Option<&str>,
    ) -> Result<ConsentStart, ApiError> {
        let card = self.card(identity, provider_name).await?;
        let provider = card.provider;
        if !provider.enabled || !consentable(&provider) {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                format!(
                    "oauth provider {provider_name:?} is disabled or does not allow user consent"
                ),
            )
            .with_reason(adp_core::Reason::OauthProviderUnavailable)
            .with_metadata("providerName", provider_name));
        }
        // ask for what servers need, what the user already granted (an upgrade keeps
        // it) and whatever the caller added
        let granted = card
            .connection
            .filter(|c| c.expired.is_none())
            .map(|c| c.granted_scopes)
            .unwrap_or_default();
        let scopes = adp_oauth::scope::union(
            &adp_oauth::scope::union(&card.requested_scopes, &granted),
            extra_scopes,
        );
        let key = Self::key(identity, provider_name);
        if provider
            .effective_grant_types()
            .contains(&GrantType::BrowserConsent)
        {
            return self.start_browser_consent(key, scopes, server_name).await;
        }
        self.start_device_consent(key, &provider, scopes).await
    }

    async fn start_browser_consent(
        &self,
        key: ConnectionKey,
        scopes: Vec<String>,
        server_name: Option<&str>,
    ) -> Result<ConsentStart, ApiError> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.settings.consent_ttl).unwrap_or_default();
        let consents = self.store.consents();
        // every refused credential call (the one caller naming a server) carries a
        // link: the same one while it has at least half its life left, so a retrying
        // agent creates one row, not thousands. An explicit Connect gets its own.
        let reusable = match server_name {
            Some(_) => consents
                .reusable(&key, &scopes, server_name, now + ttl / 2)
                .await
                .map_err(store_error)?,
            None => None,
        };
        if let Some(live) = reusable {
            return Ok(ConsentStart {
                authorize_url: format!("{}/oauth/v1/connect/{}", self.public_url, live.state),
                browser_state: Some(live.state),
                expire_time: live.expire_time,
                device: None,
            });
        }
        let live = consents
            .live_count(&key.issuer, &key.subject)
            .await
            .map_err(store_error)?;
        let limit = self.settings.max_consent_attempts_per_user;
        if live >= limit {
            return Err(ApiError::new(
                Code::ResourceExhausted,
                format!(
                    "{live} consent links are open for this user (the limit is {limit}); finish or let one expire (they last {} s) and try again",
                    self.settings.consent_ttl.as_secs()
                ),
            )
            .with_reason(adp_core::Reason::ConsentAttemptsExhausted)
            .with_metadata("providerName", key.provider_name.clone())
            .with_metadata("limit", limit.to_string()));
        }
        let state = random_token();
        let pkce = Pkce::generate();
        let binding = Binding::request_state(&key.issuer, &key.subject, &key.provider_name);
        let sealed_verifier = self
            .vault
            .seal(&binding, pkce.verifier.expose_secret().as_bytes())
            .map_err(|_| ApiError::internal("cannot seal the consent attempt"))?;
        let expire_time = now + ttl;
        let attempt = ConsentAttempt {
            state: state.clone(),
            key,
            sealed_verifier,
            scopes,
            server_name: server_name.map(str::to_owned),
            browser_binding: None,
            create_time: now,
            expire_time,
        };
        consents.create(&attempt).await.map_err(store_error)?;
        Ok(ConsentStart {
            authorize_url: format!("{}/oauth/v1/connect/{state}", self.public_url),
            browser_state: Some(state),
            expire_time,
            device: None,
        })
    }

    async fn start_device_consent(
        self: &Arc<Self>,
        key: ConnectionKey,
        provider: &OAuthProvider,
        scopes: Vec<String>,
    ) -> Result<ConsentStart, ApiError> {
        // a user code still being polled is handed out again rather than starting
        // a second flow (and a second poller) for every call that needs consent
        if let Some(pending) = self.pending_device(&key) {
            return Ok(device_start(pending));
        }
        let endpoints = self.endpoints(provider).await?;
        let device = self
            .oauth
            .start_device_authorization(&endpoints, &scopes)
            .await
            .map_err(flow_error)?;
        self.pending_devices_map()
            .insert(key.clone(), device.clone());
        let this = Arc::clone(self);
        let polled = device.clone();
        let used = provider.clone();
        tokio::spawn(async move {
            let outcome = this.oauth.poll_device_token(&endpoints, &polled).await;
            match outcome {
                Ok(tokens) => {
                    if let Err(error) = this.store_consented(&key, &used, &scopes, &tokens).await {
                        tracing::error!(provider = %key.provider_name, error = %error, "storing device-flow tokens failed");
                    }
                }
                Err(error) => {
                    tracing::info!(provider = %key.provider_name, %error, "device authorization ended without tokens")
                }
            }
            this.pending_devices_map().remove(&key);
            // a page showing the user code learns that it is no longer pending
            this.notify(&key);
        });
        Ok(device_start(device))
    }

    fn pending_devices_map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<ConnectionKey, DeviceAuthorization>>
    {
        self.pending_devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The user code still being polled for this user and provider, if any.
    pub(crate) fn pending_device(&self, key: &ConnectionKey) -> Option<DeviceAuthorization> {
        let pending = self.pending_devices_map().get(key).cloned()?;
        (pending.expires_at - Utc::now() > chrono::Duration::seconds(30)).then_some(pending)
    }

    async fn live_attempt(&self, state: &str) -> Result<Option<ConsentAttempt>, ApiError> {
        self.store.consents().get(state).await.map_err(store_error)
    }

    /// What the consent page shows for `state`; `None` when the link is unknown or spent.
    pub async fn consent_prompt(&self, state: &str) -> Result<Option<ConsentPrompt>, ApiError> {
        let Some(attempt) = self.live_attempt(state).await? else {
            return Ok(None);
        };
        if attempt.browser_binding.is_some() {
            return Ok(None);
        }
        let provider = self.provider(&attempt.key.provider_name).await?;
        Ok(Some(ConsentPrompt {
            provider_display_name: display_name(&provider).to_owned(),
            scopes: attempt.scopes,
            server_name: attempt.server_name,
            key: attempt.key,
        }))
    }

    /// Where `/oauth/v1/connect/{state}` sends the browser, after binding the attempt
    /// to the browser's cookie. `None` when the link is unknown, used or expired.
    pub async fn provider_redirect(
        &self,
        state: &str,
        cookie: &str,
    ) -> Result<Option<String>, ApiError> {
        let Some(attempt) = self.live_attempt(state).await? else {
            return Ok(None);
        };
        if !self
            .store
            .consents()
            .bind_browser(state, &cookie_binding(cookie))
            .await
            .map_err(store_error)?
        {
            return Ok(None);
        }
        let provider = self.provider(&attempt.key.provider_name).await?;
        let endpoints = self.endpoints(&provider).await?;
        let pkce = Pkce::from_verifier(self.open_verifier(&attempt)?);
        let url = self
            .oauth
            .authorization_url(
                &endpoints,
                &self.callback_url,
                &attempt.scopes,
                state,
                &pkce,
            )
            .map_err(flow_error)?;
        Ok(Some(url.to_string()))
    }

    fn open_verifier(&self, attempt: &ConsentAttempt) -> Result<secrecy::SecretString, ApiError> {
        let key = &attempt.key;
        let binding = Binding::request_state(&key.issuer, &key.subject, &key.provider_name);
        let plain = self
            .vault
            .open(&binding, &attempt.sealed_verifier)
            .map_err(|_| ApiError::internal("cannot open the consent attempt"))?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| ApiError::internal("corrupt consent attempt"))?;
        Ok(secrecy::SecretString::from(text))
    }

    /// Finishes browser consent. Every rejection stores nothing: unknown, reused or
    /// expired state; a browser other than the one that opened the link; a wrong
    /// `iss`; a code the provider refuses (reused, or issued for another attempt's PKCE).
    pub async fn complete_callback(
        &self,
        params: &CallbackParams,
        cookie: Option<&str>,
        signed_in: Option<Option<&Identity>>,
    ) -> CallbackOutcome {
        let failed = |status: u16, message: &str| CallbackOutcome::Failed {
            status,
            message: message.to_owned(),
        };
        let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
            return failed(
                400,
                "This sign-in link is missing its state. Start again from your application.",
            );
        };
        // read first: a request without this browser's cookie must not be able to
        // burn the attempt of the browser that owns it
        let attempt = match self.store.consents().get(state).await {
            Ok(Some(attempt)) => attempt,
            Ok(None) => {
                return failed(
                    400,
                    "This sign-in link has expired or was already used. Start again from your application.",
                );
            }
            Err(error) => {
                tracing::error!(%error, "reading a consent attempt failed");
                return failed(503, "The service is unavailable; try again shortly.");
            }
        };
        let provider_name = attempt.key.provider_name.clone();
        let cookie_matches = match (cookie, &attempt.browser_binding) {
            (Some(cookie), Some(bound)) => &cookie_binding(cookie) == bound,
            _ => false,
        };
        if !cookie_matches {
            tracing::warn!(provider = %provider_name, "consent callback from a browser that did not start it");
            return failed(
                400,
                "This sign-in was started in another browser. Start again from your application.",
            );
        }
        // with browser sign-in, the person finishing must be the one it is for, even if
        // someone planted their own attempt's cookie on this browser
        if let Some(visitor) = signed_in {
            let same = visitor.is_some_and(|v| {
                v.issuer == attempt.key.issuer && v.subject == attempt.key.subject
            });
            if !same {
                tracing::warn!(provider = %provider_name, "consent callback in a browser not signed in as the user it is for");
                return failed(
                    403,
                    "This connection was started for another ADP account, or you are no longer signed in, so nothing was connected. Sign in and start again.",
                );
            }
        }
        // one-time from here on: a replay of this callback finds nothing
        match self.store.consents().take(state).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return failed(
                    400,
                    "This sign-in link was already used. Start again from your application.",
                );
            }
            Err(error) => {
                tracing::error!(%error, "taking a consent attempt failed");
                return failed(503, "The service is unavailable; try again shortly.");
            }
        }
        if let Some(error) = &params.error {
            tracing::info!(provider = %provider_name, error = %error, "consent declined or failed at the provider");
            return failed(
                400,
                "The provider did not grant access, so nothing was connected.",
            );
        }
        let provider = match self.provider(&provider_name).await {
            Ok(provider) => provider,
            Err(_) => return failed(400, "This provider is no longer configured."),
        };
        if !iss_acceptable(&provider, params.iss.as_deref()) {
            tracing::warn!(provider = %provider_name, "consent callback with a missing or wrong iss");
            return failed(
                400,
                "The response did not come from the expected provider, so nothing was connected.",
            );
        }
        let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
            return failed(400, "The provider sent no authorization code.");
        };
        let result = async {
            let endpoints = self.endpoints(&provider).await?;
            let verifier = self.open_verifier(&attempt)?;
            let tokens = self
                .oauth
                .exchange_code(&endpoints, &self.callback_url, code, &verifier)
                .await
                .map_err(flow_error)?;
            self.store_consented(&attempt.key, &provider, &attempt.scopes, &tokens)
                .await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(provider = %provider_name, subject = %attempt.key.subject, "connection established");
                CallbackOutcome::Connected {
                    provider_display_name: display_name(&provider).to_owned(),
                    key: attempt.key,
                }
            }
            Err(error) => {
                tracing::warn!(provider = %provider_name, error = %error, "code exchange failed");
                failed(
                    400,
                    "The provider refused to complete the sign-in, so nothing was connected. Start again.",
                )
            }
        }
    }

    /// Seals and stores tokens from a completed consent, in place of any earlier ones.
    /// Refuses tokens got from endpoints `used` when an admin has moved the provider's
    /// token destination since: they belong to the old client or authorization server.
    pub(crate) async fn store_consented(
        &self,
        key: &ConnectionKey,
        used: &OAuthProvider,
        requested: &[String],
        tokens: &TokenSet,
    ) -> Result<(), ApiError> {
        let now = self.provider(&key.provider_name).await?;
        let moved = used.token_destination_changes(&now);
        if !moved.is_empty() {
            tracing::warn!(provider = %key.provider_name, fields = ?moved, "consent finished against endpoints changed meanwhile; tokens discarded");
            return Err(ApiError::new(
                Code::FailedPrecondition,
                "the provider's endpoints changed while you were consenting; start again",
            )
            .with_reason(adp_core::Reason::OauthProviderChanged));
        }
        let granted = tokens.scopes.clone().unwrap_or_else(|| requested.to_vec());
        let write = TokenWrite {
            sealed_tokens: self.seal_tokens(key, tokens)?,
            granted_scopes: granted,
            access_expire_time: tokens.expires_at,
        };
        self.store
            .connections()
            .save_consent(key, write)
            .await
            .map_err(store_error)?;
        self.notify(key);
        Ok(())
    }
}

/// RFC 9207: with an `issuer` configured, the callback must carry exactly it. Without
/// one, a provider that sends `iss` anyway (it declares
/// `authorization_response_iss_parameter_supported`) must name an issuer on the host
/// the browser was sent to, so a mix-up attacker's authorization server cannot answer
/// for it.
fn iss_acceptable(provider: &OAuthProvider, iss: Option<&str>) -> bool {
    if !provider.issuer.is_empty() {
        return iss == Some(provider.issuer.as_str());
    }
    let Some(iss) = iss else {
        return true;
    };
    let host = |url: &str| {
        url::Url::parse(url).ok().and_then(|u| {
            u.host_str()
                .map(str::to_ascii_lowercase)
                .zip(u.port_or_known_default())
        })
    };
    host(iss).is_some_and(|issuer| Some(issuer) == host(&provider.authorize_url))
}

fn device_start(device: DeviceAuthorization) -> ConsentStart {
    ConsentStart {
        authorize_url: device
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| device.verification_uri.clone()),
        browser_state: None,
        expire_time: device.expires_at,
        device: Some(device),
    }
}

/// The query of `/oauth/v1/callback`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

pub(crate) fn flow_error(error: FlowError) -> ApiError {
    match error {
        FlowError::Transient { .. } => {
            ApiError::unavailable(format!("the OAuth provider is unavailable: {error}"))
        }
        FlowError::Misconfigured(_) => ApiError::new(Code::FailedPrecondition, error.to_string())
            .with_reason(adp_core::Reason::OauthProviderMisconfigured),
        other => ApiError::new(Code::FailedPrecondition, other.to_string())
            .with_reason(adp_core::Reason::OauthProviderRejected),
    }
}

/// What a user is shown before being sent to the provider.
#[derive(Debug)]
pub struct ConsentPrompt {
    pub provider_display_name: String,
    pub scopes: Vec<String>,
    pub server_name: Option<String>,
    /// Whose connection this will be: the caller who asked for the link.
    pub key: ConnectionKey,
}

impl ConsentPrompt {
    /// Whether `identity` is the person this link was made for.
    pub fn is_for(&self, identity: &Identity) -> bool {
        self.key.issuer == identity.issuer && self.key.subject == identity.subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(issuer: &str) -> OAuthProvider {
        OAuthProvider::from(adp_api::v1::OAuthProvider {
            authorize_url: "https://login.example.com/oauth/authorize".into(),
            issuer: issuer.into(),
            ..Default::default()
        })
    }

    #[test]
    fn iss_must_match_the_configured_issuer_or_the_authorize_host() {
        let configured = provider("https://login.example.com");
        assert!(iss_acceptable(
            &configured,
            Some("https://login.example.com")
        ));
        assert!(!iss_acceptable(&configured, None));
        assert!(!iss_acceptable(
            &configured,
            Some("https://evil.example.com")
        ));
        let unconfigured = provider("");
        assert!(iss_acceptable(&unconfigured, None));
        assert!(iss_acceptable(
            &unconfigured,
            Some("https://login.example.com/tenant/v2.0")
        ));
        assert!(!iss_acceptable(
            &unconfigured,
            Some("https://evil.example.com")
        ));
        assert!(!iss_acceptable(
            &unconfigured,
            Some("https://login.example.com:8443")
        ));
        assert!(!iss_acceptable(&unconfigured, Some("not a url")));
    }
}
