//! What ADP knows about one provider's OAuth endpoints and how the client authenticates
//! to them, and the translation of that into an `oauth2` client.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oauth2::basic::BasicClient;
use oauth2::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use oauth2::http::{HeaderValue, Method};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, HttpRequest, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::{Url, form_urlencoded};

use crate::FlowError;

/// How the client authenticates at the token, device and revocation endpoints
/// (RFC 8414 `token_endpoint_auth_method` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// Public client: `client_id` in the body, no secret ever sent.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = FlowError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "client_secret_basic" => Ok(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Ok(AuthMethod::ClientSecretPost),
            "none" => Ok(AuthMethod::None),
            other => Err(FlowError::Misconfigured(format!(
                "unsupported client authentication method {other:?}"
            ))),
        }
    }
}

/// One provider's endpoints and this client's registration there.
#[derive(Clone)]
pub struct ProviderEndpoints {
    pub authorize_url: Option<Url>,
    pub token_url: Url,
    pub revocation_url: Option<Url>,
    pub device_authorization_url: Option<Url>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub auth_method: AuthMethod,
}

impl fmt::Debug for ProviderEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderEndpoints")
            .field(
                "authorize_url",
                &self.authorize_url.as_ref().map(Url::as_str),
            )
            .field("token_url", &self.token_url.as_str())
            .field(
                "revocation_url",
                &self.revocation_url.as_ref().map(Url::as_str),
            )
            .field(
                "device_authorization_url",
                &self.device_authorization_url.as_ref().map(Url::as_str),
            )
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// The oauth2 client for a provider: token URL always set, the others maybe.
pub(crate) type ConfiguredClient = BasicClient<
    EndpointMaybeSet, // authorization
    EndpointMaybeSet, // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation: see OAuthClient::revoke
    EndpointSet,      // token
>;

impl ProviderEndpoints {
    /// The secret to send, or `None` for public clients. A confidential method without a
    /// secret is a configuration error rather than a silent downgrade to a public client.
    fn secret_to_send(&self) -> Result<Option<&SecretString>, FlowError> {
        match (self.auth_method, &self.client_secret) {
            (AuthMethod::None, _) => Ok(None),
            (_, Some(secret)) => Ok(Some(secret)),
            (method, None) => Err(FlowError::Misconfigured(format!(
                "{} needs a client secret but none is configured",
                method.as_str()
            ))),
        }
    }

    pub(crate) fn oauth2_client(&self) -> Result<ConfiguredClient, FlowError> {
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri_option(self.authorize_url.clone().map(AuthUrl::from_url))
            .set_device_authorization_url_option(
                self.device_authorization_url
                    .clone()
                    .map(DeviceAuthorizationUrl::from_url),
            )
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()));
        let client = match self.secret_to_send()? {
            Some(secret) => {
                client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
            }
            None => client,
        };
        Ok(match self.auth_method {
            AuthMethod::ClientSecretBasic => client.set_auth_type(AuthType::BasicAuth),
            AuthMethod::ClientSecretPost | AuthMethod::None => {
                client.set_auth_type(AuthType::RequestBody)
            }
        })
    }

    /// A form POST to `url` authenticated the same way oauth2 does it, for the requests
    /// oauth2 does not send the way we need (single device-token polls, revocation).
    pub(crate) fn form_request(
        &self,
        url: &Url,
        params: &[(&str, &str)],
    ) -> Result<HttpRequest, FlowError> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(params);
        let mut request = oauth2::http::Request::builder()
            .method(Method::POST)
            .uri(url.as_str())
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        match (self.auth_method, self.secret_to_send()?) {
            (AuthMethod::ClientSecretBasic, Some(secret)) => {
                let id: String =
                    form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
                let secret: String =
                    form_urlencoded::byte_serialize(secret.expose_secret().as_bytes()).collect();
                let mut value = HeaderValue::from_str(&format!(
                    "Basic {}",
                    STANDARD.encode(format!("{id}:{secret}"))
                ))
                .map_err(|_| {
                    FlowError::Misconfigured(
                        "client credentials are not valid in an HTTP header".into(),
                    )
                })?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            (_, secret) => {
                body.append_pair("client_id", &self.client_id);
                if let Some(secret) = secret {
                    body.append_pair("client_secret", secret.expose_secret());
                }
            }
        }
        request
            .body(body.finish().into_bytes())
            .map_err(|_| FlowError::Misconfigured(format!("cannot build a request to {url}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(auth_method: AuthMethod, secret: Option<&str>) -> ProviderEndpoints {
        ProviderEndpoints {
            authorize_url: None,
            token_url: Url::parse("https://idp.example.com/token").expect("url"),
            revocation_url: None,
            device_authorization_url: None,
            client_id: "client".into(),
            client_secret: secret.map(SecretString::from),
            auth_method,
        }
    }

    #[test]
    fn debug_redacts_the_client_secret() {
        let debug = format!(
            "{:?}",
            endpoints(AuthMethod::ClientSecretPost, Some("s3cr3t"))
        );
        assert!(!debug.contains("s3cr3t"));
        assert!(debug.contains("[redacted]") && debug.contains("client"));
    }

    #[test]
    fn confidential_methods_need_a_secret() {
        for method in [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost] {
            assert!(matches!(
                endpoints(method, None).oauth2_client(),
                Err(FlowError::Misconfigured(_))
            ));
        }
        assert!(endpoints(AuthMethod::None, None).oauth2_client().is_ok());
    }

    #[test]
    fn auth_method_names_round_trip() {
        for method in [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::None,
        ] {
            assert_eq!(method.as_str().parse::<AuthMethod>().ok(), Some(method));
        }
        assert!("private_key_jwt".parse::<AuthMethod>().is_err());
    }
}
