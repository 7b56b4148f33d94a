//! OpenID Connect sign-in (the relying-party side): discovery of the identity
//! provider's endpoints, the authorization request with a `nonce`, and the code
//! exchange that yields an ID token. Verifying the ID token (signature, `iss`, `aud`,
//! `exp`, `nonce`) is the caller's job, with the provider's published keys.

use oauth2::http::header::ACCEPT;
use oauth2::http::{HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::client::ObservedStatus;
use crate::error::{Failure, classify_error_body};
use crate::{EndpointPolicy, FlowError, OAuthClient, Pkce, ProviderEndpoints};

/// The parts of an identity provider's discovery document a sign-in needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    /// RP-initiated logout, when the provider offers it.
    pub end_session_endpoint: Option<Url>,
}

#[derive(serde::Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

impl OAuthClient {
    /// Reads `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
    /// The document must name exactly `issuer`, and every endpoint must pass `policy`.
    pub async fn discover_openid(
        &self,
        issuer: &str,
        policy: &EndpointPolicy,
    ) -> Result<OidcMetadata, FlowError> {
        let misconfigured = |what: String| FlowError::Misconfigured(what);
        let base = policy
            .check(issuer)
            .map_err(|e| misconfigured(format!("OpenID issuer {issuer}: {e}")))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        );
        let request = oauth2::http::Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(Vec::new())
            .map_err(|_| misconfigured(format!("cannot build a request to {url}")))?;
        let response = self
            .send(request, &ObservedStatus::default())
            .await
            .map_err(|e| Failure::from(e).error)?;
        if !response.status().is_success() {
            return Err(FlowError::unexpected_response(
                Some(response.status().as_u16()),
                "no OpenID discovery document",
            ));
        }
        let document: DiscoveryDocument =
            serde_json::from_slice(response.body()).map_err(|_| {
                FlowError::unexpected_response(
                    Some(response.status().as_u16()),
                    "not an OpenID discovery document",
                )
            })?;
        // OpenID Connect Discovery §4.3: the issuer in the document must be the one asked for
        if document.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(misconfigured(format!(
                "discovery document of {issuer} names another issuer ({})",
                document.issuer
            )));
        }
        let endpoint = |name: &str, value: &str| {
            policy
                .check(value)
                .map_err(|e| misconfigured(format!("{issuer} {name} {value}: {e}")))
        };
        Ok(OidcMetadata {
            authorization_endpoint: endpoint(
                "authorization_endpoint",
                &document.authorization_endpoint,
            )?,
            token_endpoint: endpoint("token_endpoint", &document.token_endpoint)?,
            jwks_uri: endpoint("jwks_uri", &document.jwks_uri)?,
            end_session_endpoint: document
                .end_session_endpoint
                .as_deref()
                .map(|value| endpoint("end_session_endpoint", value))
                .transpose()?,
            issuer: document.issuer,
        })
    }

    /// The authorization request of a sign-in: [`OAuthClient::authorization_url`] plus
    /// the `nonce` the ID token must echo (OpenID Connect Core §3.1.2.1).
    pub fn sign_in_url(
        &self,
        provider: &ProviderEndpoints,
        redirect_uri: &Url,
        scopes: &[String],
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Result<Url, FlowError> {
        if nonce.is_empty() {
            return Err(FlowError::Misconfigured("empty OpenID nonce".into()));
        }
        let mut url = self.authorization_url(provider, redirect_uri, scopes, state, pkce)?;
        url.query_pairs_mut().append_pair("nonce", nonce);
        Ok(url)
    }

    /// Exchanges a sign-in code for the ID token (still to be verified); the provider's
    /// access token is not kept. Not retried, as with every code exchange.
    pub async fn exchange_sign_in_code(
        &self,
        provider: &ProviderEndpoints,
        redirect_uri: &Url,
        code: &str,
        pkce_verifier: &SecretString,
    ) -> Result<SecretString, FlowError> {
        let request = provider.form_request(
            &provider.token_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri.as_str()),
                ("code_verifier", pkce_verifier.expose_secret()),
            ],
        )?;
        let response = self
            .send(request, &ObservedStatus::default())
            .await
            .map_err(|e| Failure::from(e).error)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(classify_error_body(status, response.body()));
        }
        #[derive(serde::Deserialize)]
        struct IdTokenField {
            id_token: Option<SecretString>,
        }
        serde_json::from_slice::<IdTokenField>(response.body())
            .map_err(|_| {
                FlowError::unexpected_response(Some(status), "not a valid OpenID token response")
            })?
            .id_token
            .ok_or_else(|| {
                FlowError::unexpected_response(Some(status), "the token response has no id_token")
            })
    }
}
