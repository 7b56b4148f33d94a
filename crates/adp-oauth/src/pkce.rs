//! PKCE (RFC 7636) with the S256 method only: `plain` gives no protection against an
//! attacker who can read the authorization request.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A code verifier and its S256 challenge. The verifier stays secret until the code
/// exchange; the challenge goes into the authorization URL.
#[derive(Clone)]
pub struct Pkce {
    pub verifier: SecretString,
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier from 32 random bytes (43 base64url characters).
    pub fn generate() -> Pkce {
        let bytes: [u8; 32] = rand::random();
        Pkce::from_verifier(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The pair for an existing verifier: `challenge = BASE64URL(SHA256(verifier))`.
    pub fn from_verifier(verifier: SecretString) -> Pkce {
        let challenge = s256_challenge(verifier.expose_secret());
        Pkce {
            verifier,
            challenge,
        }
    }

    /// Whether the verifier has the length and alphabet RFC 7636 §4.1 requires and the
    /// challenge belongs to it.
    pub fn is_valid(&self) -> bool {
        let verifier = self.verifier.expose_secret();
        (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            && s256_challenge(verifier) == self.challenge
    }
}

fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc_7636_appendix_b() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(pkce.is_valid());
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert!(a.is_valid() && b.is_valid());
        assert_eq!(a.verifier.expose_secret().len(), 43);
        assert_ne!(a.verifier.expose_secret(), b.verifier.expose_secret());
        assert!(!Pkce::from_verifier("too-short".into()).is_valid());
        let mismatched = Pkce {
            verifier: a.verifier.clone(),
            challenge: b.challenge.clone(),
        };
        assert!(!mismatched.is_valid());
    }

    #[test]
    fn debug_hides_the_verifier() {
        let pkce = Pkce::generate();
        let debug = format!("{pkce:?}");
        assert!(!debug.contains(pkce.verifier.expose_secret()));
        assert!(debug.contains(&pkce.challenge));
    }
}
