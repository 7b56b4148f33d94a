//! The tokens a flow yields, and their JSON form for sealing in the vault.

use std::fmt;

use chrono::{DateTime, Utc};
use oauth2::TokenResponse as _;
use oauth2::basic::{BasicTokenResponse, BasicTokenType};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Tokens from one successful token-endpoint answer.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None` when the answer had no refresh token; after a refresh that means the
    /// caller keeps the refresh token it already has.
    pub refresh_token: Option<SecretString>,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// `None` when the provider did not say, which RFC 6749 §5.1 defines as "the
    /// scopes that were requested".
    pub scopes: Option<Vec<String>>,
}

impl TokenSet {
    pub(crate) fn from_response(response: &BasicTokenResponse, now: DateTime<Utc>) -> TokenSet {
        let expires_at = response
            .expires_in()
            .and_then(|lifetime| chrono::Duration::from_std(lifetime).ok())
            .and_then(|lifetime| now.checked_add_signed(lifetime));
        let token_type = match response.token_type() {
            BasicTokenType::Bearer => "Bearer".to_owned(),
            other => other.as_ref().to_owned(),
        };
        TokenSet {
            access_token: SecretString::from(response.access_token().secret().as_str()),
            refresh_token: response
                .refresh_token()
                .map(|token| SecretString::from(token.secret().as_str())),
            token_type,
            expires_at,
            scopes: response
                .scopes()
                .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect()),
        }
    }

    /// JSON with the tokens in clear, meant only as plaintext for the vault to seal.
    /// The buffer is wiped when dropped.
    pub fn to_sealable_json(&self) -> Zeroizing<Vec<u8>> {
        let wire = WireOut {
            access_token: self.access_token.expose_secret(),
            refresh_token: self.refresh_token.as_ref().map(|t| t.expose_secret()),
            token_type: &self.token_type,
            expires_at: self.expires_at,
            scopes: self.scopes.as_deref(),
        };
        // sized up front so no reallocation leaves a copy of the tokens behind
        let capacity = 256
            + wire.access_token.len() * 2
            + wire.refresh_token.map_or(0, |t| t.len() * 2)
            + wire
                .scopes
                .map_or(0, |s| s.iter().map(|s| s.len() * 2 + 3).sum());
        let mut out = Zeroizing::new(Vec::with_capacity(capacity));
        // serializing borrowed strings and a timestamp into a Vec cannot fail
        if serde_json::to_writer(&mut *out, &wire).is_err() {
            out.clear();
        }
        out
    }

    /// Reads what [`TokenSet::to_sealable_json`] wrote.
    pub fn from_sealable_json(json: &[u8]) -> Result<TokenSet, TokenSetDecodeError> {
        let wire: WireIn = serde_json::from_slice(json).map_err(|e| TokenSetDecodeError {
            line: e.line(),
            column: e.column(),
        })?;
        Ok(TokenSet {
            access_token: wire.access_token,
            refresh_token: wire.refresh_token,
            token_type: wire.token_type,
            expires_at: wire.expires_at,
            scopes: wire.scopes,
        })
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Sealed token JSON that does not parse. Carries only the position: serde's own
/// message can quote the offending value, which may be a token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("stored token set is not valid JSON (line {line}, column {column})")]
pub struct TokenSetDecodeError {
    pub line: usize,
    pub column: usize,
}

#[derive(Serialize)]
struct WireOut<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<&'a [String]>,
}

#[derive(Deserialize)]
struct WireIn {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    token_type: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TokenSet {
        TokenSet {
            access_token: "at-very-secret".into(),
            refresh_token: Some("rt-very-secret".into()),
            token_type: "Bearer".into(),
            expires_at: Some(Utc::now()),
            scopes: Some(vec!["repo".into(), "read:org".into()]),
        }
    }

    #[test]
    fn debug_redacts_both_tokens() {
        let debug = format!("{:?}", sample());
        assert!(!debug.contains("at-very-secret") && !debug.contains("rt-very-secret"));
        assert!(debug.contains("[redacted]") && debug.contains("read:org"));
    }

    #[test]
    fn sealable_json_round_trips() {
        let tokens = sample();
        let json = tokens.to_sealable_json();
        let back = TokenSet::from_sealable_json(&json).expect("decodes");
        assert_eq!(back.access_token.expose_secret(), "at-very-secret");
        assert_eq!(
            back.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("rt-very-secret")
        );
        assert_eq!(back.token_type, "Bearer");
        assert_eq!(back.expires_at, tokens.expires_at);
        assert_eq!(back.scopes, tokens.scopes);

        let minimal = TokenSet {
            refresh_token: None,
            expires_at: None,
            scopes: None,
            ..sample()
        };
        let back = TokenSet::from_sealable_json(&minimal.to_sealable_json()).expect("decodes");
        assert!(back.refresh_token.is_none() && back.expires_at.is_none() && back.scopes.is_none());
    }

    #[test]
    fn decode_errors_do_not_echo_content() {
        // serde's own message would read `invalid type: string "leak-me", expected a sequence`
        let json = br#"{"access_token": "a", "token_type": "Bearer", "scopes": "leak-me"}"#;
        let error = TokenSet::from_sealable_json(json).expect_err("rejects");
        assert!(!error.to_string().contains("leak-me"));
        assert_eq!(error.line, 1);
    }
}
