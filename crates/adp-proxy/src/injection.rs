//! Turns a user's upstream token into the header the upstream expects, as the
//! server's `TokenInjection` says: `Authorization: Bearer <t>` by default, a custom
//! header name, and an explicitly empty prefix for a bare token.

use adp_core::server::TokenInjection;
use http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectionError {
    #[error("token injection header name {0:?} is not a valid HTTP header name")]
    BadHeaderName(String),
    /// Never names the token: it may be the secret itself.
    #[error("the upstream token contains characters not allowed in an HTTP header")]
    BadTokenCharacters,
}

/// The header to send upstream. The value is marked sensitive so HTTP stacks
/// that honour the flag (hyper's HPACK, our logging) never index or print it.
pub fn header_for(
    injection: &TokenInjection,
    token: &SecretString,
) -> Result<(HeaderName, HeaderValue), InjectionError> {
    let name_text = injection.effective_header_name();
    let name = HeaderName::from_bytes(name_text.as_bytes())
        .map_err(|_| InjectionError::BadHeaderName(name_text.to_owned()))?;
    let mut value = HeaderValue::from_str(&format!(
        "{}{}",
        injection.effective_prefix(),
        token.expose_secret()
    ))
    .map_err(|_| InjectionError::BadTokenCharacters)?;
    value.set_sensitive(true);
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn token(t: &str) -> SecretString {
        SecretString::from(t.to_owned())
    }

    #[test]
    fn default_is_authorization_bearer() {
        let (name, value) = header_for(&TokenInjection::default(), &token("abc")).unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value, "Bearer abc");
        assert!(value.is_sensitive());
    }

    #[test]
    fn custom_header_and_explicitly_empty_prefix_send_the_bare_token() {
        let injection = TokenInjection {
            header_name: "X-Api-Key".into(),
            header_prefix: Some(String::new()),
        };
        let (name, value) = header_for(&injection, &token("abc")).unwrap();
        assert_eq!(name, "x-api-key");
        assert_eq!(value, "abc");
    }

    #[test]
    fn header_injection_through_the_token_is_refused_without_echoing_it() {
        let error = header_for(&TokenInjection::default(), &token("abc\r\nX-Evil: 1")).unwrap_err();
        assert_eq!(error, InjectionError::BadTokenCharacters);
        assert!(!error.to_string().contains("Evil"));
    }
}
