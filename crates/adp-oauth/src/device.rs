//! The device authorization grant (RFC 8628). Starting it goes through `oauth2`; the
//! polling loop is ours, because oauth2's loop fixes `slow_down` at +5 s and ends on
//! the first 5xx, where RFC 8628 §3.5 asks clients to back off and keep polling.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::BasicTokenResponse;
use oauth2::{Scope, StandardDeviceAuthorizationResponse};
use secrecy::{ExposeSecret, SecretString};

use crate::client::{ObservedStatus, Transport};
use crate::error::{Failure, classify, classify_error_body};
use crate::provider::ConfiguredClient;
use crate::retry::Attempts;
use crate::{FlowError, OAuthClient, ProviderEndpoints, TokenSet};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Polls are at least this far apart, whatever `interval` the provider sends: a zero
/// (or buggy) one must not make us poll in a tight loop.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A device code is given up on after this long at most, whatever `expires_in` the
/// provider sends: nobody holds a pending device flow (and its polling task) for days.
pub const MAX_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A pending device authorization: show `user_code` and `verification_uri` to the
/// user, then poll with [`OAuthClient::poll_device_token`].
#[derive(Clone)]
pub struct DeviceAuthorization {
    pub device_code: SecretString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// When the provider said the code expires, at most [`MAX_DEVICE_CODE_LIFETIME`]
    /// from the start.
    pub expires_at: DateTime<Utc>,
    /// Minimum wait between polls as the provider asked (5 s if it did not say), at
    /// least [`MIN_POLL_INTERVAL`].
    pub interval: Duration,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[redacted]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish()
    }
}

/// The answer to one poll that is not a terminal error.
enum Poll {
    Done(TokenSet),
    Pending,
    SlowDown,
}

impl OAuthClient {
    /// Asks the provider for a device code and user code (RFC 8628 §3.1–3.2).
    /// Transient failures are retried.
    pub async fn start_device_authorization(
        &self,
        provider: &ProviderEndpoints,
        scopes: &[String],
    ) -> Result<DeviceAuthorization, FlowError> {
        if provider.device_authorization_url.is_none() {
            return Err(FlowError::Misconfigured(
                "no device authorization endpoint configured".into(),
            ));
        }
        let client = provider.oauth2_client()?;
        let mut attempts = Attempts::new(self.retry_policy(), "device_authorization");
        loop {
            match self.start_device_once(&client, scopes).await {
                Ok(device) => return Ok(device),
                Err(failure) => attempts.failed(failure).await?,
            }
        }
    }

    async fn start_device_once(
        &self,
        client: &ConfiguredClient,
        scopes: &[String],
    ) -> Result<DeviceAuthorization, Failure> {
        let request = client
            .exchange_device_code()
            .map_err(|_| {
                FlowError::Misconfigured("no device authorization endpoint configured".into())
            })?
            .add_scopes(scopes.iter().cloned().map(Scope::new));
        let http = Transport::new(self);
        let response: StandardDeviceAuthorizationResponse = request
            .request_async(&http)
            .await
            .map_err(|e| classify(e, http.status()))?;
        let now = Utc::now();
        let lifetime = response.expires_in().min(MAX_DEVICE_CODE_LIFETIME);
        let expires_at = chrono::Duration::from_std(lifetime)
            .ok()
            .and_then(|lifetime| now.checked_add_signed(lifetime))
            .unwrap_or(now);
        Ok(DeviceAuthorization {
            device_code: SecretString::from(response.device_code().secret().as_str()),
            user_code: response.user_code().secret().clone(),
            verification_uri: response.verification_uri().to_string(),
            verification_uri_complete: response
                .verification_uri_complete()
                .map(|uri| uri.secret().clone()),
            expires_at,
            interval: response.interval().max(MIN_POLL_INTERVAL),
        })
    }

    /// Polls the token endpoint until the user approves (tokens), denies
    /// (`AccessDenied`), or the code expires (`ExpiredToken`, returned by the provider or
    /// as soon as the next poll would fall after `device.expires_at`). Waits `interval`
    /// before every poll, adds the slow-down increment (5 s) on each `slow_down` for good,
    /// and backs off on transient failures without giving up before the code expires.
    pub async fn poll_device_token(
        &self,
        provider: &ProviderEndpoints,
        device: &DeviceAuthorization,
    ) -> Result<TokenSet, FlowError> {
        let mut interval = device.interval;
        let mut wait = interval;
        let mut transient_failures = 0;
        loop {
            let wake_at = chrono::Duration::from_std(wait)
                .ok()
                .and_then(|wait| Utc::now().checked_add_signed(wait));
            if wake_at.is_none_or(|wake_at| wake_at >= device.expires_at) {
                return Err(FlowError::ExpiredToken);
            }
            tokio::time::sleep(wait).await;
            match self.poll_once(provider, device).await {
                Ok(Poll::Done(tokens)) => return Ok(tokens),
                Ok(Poll::Pending) => {
                    transient_failures = 0;
                    wait = interval;
                }
                Ok(Poll::SlowDown) => {
                    transient_failures = 0;
                    interval += self.slow_down_increment();
                    tracing::debug!(
                        interval_ms = interval.as_millis() as u64,
                        "device flow asked to slow down"
                    );
                    wait = interval;
                }
                Err(Failure { error, retry_after }) if error.is_transient() => {
                    transient_failures += 1;
                    wait = interval + self.retry_policy().backoff(transient_failures);
                    if let Some(retry_after) = retry_after {
                        wait = wait.max(retry_after);
                    }
                    tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "device token poll failed, backing off");
                }
                Err(Failure { error, .. }) => return Err(error),
            }
        }
    }

    /// One device access token request (RFC 8628 §3.4) and its answer (§3.5).
    async fn poll_once(
        &self,
        provider: &ProviderEndpoints,
        device: &DeviceAuthorization,
    ) -> Result<Poll, Failure> {
        let request = provider.form_request(
            &provider.token_url,
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", device.device_code.expose_secret()),
            ],
        )?;
        let observed = ObservedStatus::default();
        let response = self.send(request, &observed).await?;
        let status = Some(response.status().as_u16());
        if response.status().is_success() {
            let tokens: BasicTokenResponse =
                serde_json::from_slice(response.body()).map_err(|_| {
                    FlowError::unexpected_response(status, "not a valid OAuth token response")
                })?;
            return Ok(Poll::Done(TokenSet::from_response(&tokens, Utc::now())));
        }
        match classify_error_body(response.status().as_u16(), response.body()) {
            FlowError::Rejected { error, .. } if error == "authorization_pending" => {
                Ok(Poll::Pending)
            }
            FlowError::Rejected { error, .. } if error == "slow_down" => Ok(Poll::SlowDown),
            other => Err(other.into()),
        }
    }
}

#[cfg(test)]
mod tests;
