//! The OAuth client: authorization URLs, code exchange, refresh and client credentials
//! on the `oauth2` crate, plus revocation, over one locked-down reqwest client.

mod transport;

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    Scope,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub(crate) use self::transport::{ObservedStatus, Transport};
use crate::error::{Failure, classify, classify_error_body};
use crate::provider::ConfiguredClient;
use crate::retry::Attempts;
use crate::{FlowError, Pkce, ProviderEndpoints, RetryPolicy, TokenSet};

const USER_AGENT: &str = concat!("adp-oauth/", env!("CARGO_PKG_VERSION"));

/// Which kind of token a revocation request carries (RFC 7009 `token_type_hint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

/// Runs OAuth flows against providers. Cheap to clone: the HTTP client is shared.
///
/// Redirects are never followed (a token endpoint that redirects could otherwise
/// bounce requests, and credentials, to an internal address).
#[derive(Clone, Debug)]
pub struct OAuthClient {
    http: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
    slow_down_increment: Duration,
}

impl OAuthClient {
    /// `ca_file` adds PEM roots to the built-in ones; `timeout` bounds connecting and
    /// each whole request; `retry` applies to refresh, client credentials, device
    /// authorization and revocation (never to the one-time code exchange).
    pub fn new(
        ca_file: Option<&Path>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, FlowError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(USER_AGENT);
        if let Some(path) = ca_file {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| {
                FlowError::Misconfigured(format!("cannot read CA file {shown}: {e}"))
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                FlowError::Misconfigured(format!("CA file {shown} is not a PEM bundle: {e}"))
            })?;
            if roots.is_empty() {
                return Err(FlowError::Misconfigured(format!(
                    "CA file {shown} holds no PEM certificates"
                )));
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let http = builder
            .build()
            .map_err(|e| FlowError::Misconfigured(format!("cannot build the HTTP client: {e}")))?;
        Ok(OAuthClient {
            http,
            timeout,
            retry,
            slow_down_increment: Duration::from_secs(5),
        })
    }

    /// Changes how much a device-flow `slow_down` adds to the polling interval
    /// (RFC 8628 §3.5 says 5 seconds; tests use less).
    pub fn with_slow_down_increment(mut self, increment: Duration) -> Self {
        self.slow_down_increment = increment;
        self
    }

    pub(crate) fn slow_down_increment(&self) -> Duration {
        self.slow_down_increment
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The longest one retried call (a refresh, a client-credentials grant) can take:
    /// every attempt timing out, with the longest back-off between them. A lease that
    /// guards such a call must outlive this.
    pub fn worst_case_call(&self) -> Duration {
        self.retry.worst_case(self.timeout)
    }

    /// The URL to send the user to: `response_type=code`, S256 PKCE, `state`, scopes and
    /// the exact redirect URI.
    pub fn authorization_url(
        &self,
        provider: &ProviderEndpoints,
        redirect_uri: &Url,
        scopes: &[String],
        state: &str,
        pkce: &Pkce,
    ) -> Result<Url, FlowError> {
        if state.is_empty() {
            return Err(FlowError::Misconfigured("empty OAuth state".into()));
        }
        if !pkce.is_valid() {
            return Err(FlowError::Misconfigured(
                "PKCE verifier is malformed or does not match its challenge".into(),
            ));
        }
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce.verifier.expose_secret().to_owned(),
        ));
        let state = state.to_owned();
        let client = provider.oauth2_client()?;
        let (url, _state) = client
            .authorize_url(move || CsrfToken::new(state))
            .map_err(|_| FlowError::Misconfigured("no authorization endpoint configured".into()))?
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
            .url();
        Ok(url)
    }

    /// Exchanges an authorization code. Not retried: a code works once, and a retry after
    /// a lost answer could only fail with `invalid_grant`.
    pub async fn exchange_code(
        &self,
        provider: &ProviderEndpoints,
        redirect_uri: &Url,
        code: &str,
        pkce_verifier: &SecretString,
    ) -> Result<TokenSet, FlowError> {
        let client = provider.oauth2_client()?;
        let http = Transport::new(self);
        tracing::debug!(token_url = %provider.token_url, "exchanging authorization code");
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                pkce_verifier.expose_secret().to_owned(),
            ))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
            .request_async(&http)
            .await
            .map_err(|e| classify(e, http.status()).error)?;
        Ok(TokenSet::from_response(&response, Utc::now()))
    }

    /// Uses a refresh token. A response without `refresh_token` yields `None` there:
    /// the caller keeps the refresh token it has. Transient failures are retried.
    pub async fn refresh(
        &self,
        provider: &ProviderEndpoints,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, FlowError> {
        let client = provider.oauth2_client()?;
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        tracing::debug!(token_url = %provider.token_url, "refreshing access token");
        let mut attempts = Attempts::new(&self.retry, "refresh");
        loop {
            match self.refresh_once(&client, &token).await {
                Ok(tokens) => return Ok(tokens),
                Err(failure) => attempts.failed(failure).await?,
            }
        }
    }

    async fn refresh_once(
        &self,
        client: &ConfiguredClient,
        token: &RefreshToken,
    ) -> Result<TokenSet, Failure> {
        let http = Transport::new(self);
        match client
            .exchange_refresh_token(token)
            .request_async(&http)
            .await
        {
            Ok(response) => Ok(TokenSet::from_response(&response, Utc::now())),
            Err(error) => Err(classify(error, http.status())),
        }
    }

    /// The client credentials grant (RFC 6749 §4.4). Transient failures are retried.
    pub async fn client_credentials(
        &self,
        provider: &ProviderEndpoints,
        scopes: &[String],
    ) -> Result<TokenSet, FlowError> {
        let client = provider.oauth2_client()?;
        tracing::debug!(token_url = %provider.token_url, "requesting client credentials token");
        let mut attempts = Attempts::new(&self.retry, "client_credentials");
        loop {
            match self.client_credentials_once(&client, scopes).await {
                Ok(tokens) => return Ok(tokens),
                Err(failure) => attempts.failed(failure).await?,
            }
        }
    }

    async fn client_credentials_once(
        &self,
        client: &ConfiguredClient,
        scopes: &[String],
    ) -> Result<TokenSet, Failure> {
        let http = Transport::new(self);
        let request = client
            .exchange_client_credentials()
            .add_scopes(scopes.iter().cloned().map(Scope::new));
        match request.request_async(&http).await {
            Ok(response) => Ok(TokenSet::from_response(&response, Utc::now())),
            Err(error) => Err(classify(error, http.status())),
        }
    }

    /// Revokes a token (RFC 7009). Transient failures are retried.
    pub async fn revoke(
        &self,
        provider: &ProviderEndpoints,
        token: &SecretString,
        hint: TokenTypeHint,
    ) -> Result<(), FlowError> {
        let Some(revocation_url) = &provider.revocation_url else {
            return Err(FlowError::Misconfigured(
                "no revocation endpoint configured".into(),
            ));
        };
        let mut attempts = Attempts::new(&self.retry, "revoke");
        loop {
            match self
                .revoke_once(provider, revocation_url, token, hint)
                .await
            {
                Ok(()) => return Ok(()),
                Err(failure) => attempts.failed(failure).await?,
            }
        }
    }

    /// Our own form POST rather than oauth2's `revoke_token`: oauth2 refuses any
    /// non-https revocation URL, which rules out the loopback development endpoints
    /// [`crate::EndpointPolicy`] allows, and it accepts only 200 where some providers
    /// answer 204.
    async fn revoke_once(
        &self,
        provider: &ProviderEndpoints,
        revocation_url: &Url,
        token: &SecretString,
        hint: TokenTypeHint,
    ) -> Result<(), Failure> {
        let hint = match hint {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        };
        let request = provider.form_request(
            revocation_url,
            &[("token", token.expose_secret()), ("token_type_hint", hint)],
        )?;
        let response = self.send(request, &ObservedStatus::default()).await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(classify_error_body(response.status().as_u16(), response.body()).into())
    }
}

#[cfg(test)]
mod tests;
