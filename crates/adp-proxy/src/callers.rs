//! Verified caller JWTs, remembered until they expire (and at most a few minutes), so a
//! busy caller's token is checked once rather than on every MCP message.
//!
//! A token is remembered together with the audience it was checked for: one verified
//! as ADP's own is not thereby good for token passthrough to an upstream, nor one
//! verified for one upstream good for another (or for ADP).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adp_core::identity::{AuthError, Identity, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A verified token is trusted again for at most this long, so a key removed from the
/// JWKS stops working within it.
const MAX_REUSE: Duration = Duration::from_secs(300);

/// What a token was verified for.
#[derive(Clone, Copy, Debug)]
pub enum Audience<'a> {
    /// ADP itself (`ADP_JWT_AUDIENCE`).
    Adp,
    /// Token passthrough to the upstream at this URL (RFC 8707 resource).
    Resource(&'a str),
}

pub struct Callers {
    verifier: Verifier,
    /// Keyed by a digest of (audience, token): never the raw token.
    verified: quick_cache::sync::Cache<[u8; 32], (Arc<Identity>, SystemTime)>,
}

/// The verifier (its keys redacted), not who was verified.
impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Callers {
    pub fn new(verifier: Verifier, capacity: usize) -> Self {
        Callers {
            verifier,
            verified: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    pub async fn verify(
        &self,
        token: &str,
        audience: Audience<'_>,
    ) -> Result<Arc<Identity>, AuthError> {
        let now = SystemTime::now();
        let key = cache_key(token, audience);
        if let Some((identity, until)) = self.verified.get(&key)
            && until > now
        {
            return Ok(identity);
        }
        let identity = Arc::new(match audience {
            Audience::Adp => self.verifier.verify(token).await?,
            Audience::Resource(url) => self.verifier.verify_for_resource(token, url).await?,
        });
        // verify() checked exp; read it back to know how long the answer stays true
        if let Some(exp) = expiry(token) {
            let until = exp.min(now + MAX_REUSE);
            if until > now {
                self.verified.insert(key, (identity.clone(), until));
            }
        }
        Ok(identity)
    }
}

fn cache_key(token: &str, audience: Audience<'_>) -> [u8; 32] {
    let mut digest = Sha256::new();
    match audience {
        Audience::Adp => digest.update([0u8]),
        Audience::Resource(url) => {
            digest.update([1u8]);
            digest.update((url.len() as u64).to_be_bytes());
            digest.update(url.as_bytes());
        }
    }
    digest.update(token.as_bytes());
    digest.finalize().into()
}

fn expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(UNIX_EPOCH + Duration::from_secs(exp))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use adp_core::identity::{KeySource, VerifierConfig, mint_hs256};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"callers-test-secret";
    const UPSTREAM: &str = "https://mcp.example.com/mcp";

    fn callers() -> Callers {
        let mut config = VerifierConfig::new(KeySource::hs256(SECRET.to_vec()));
        config.audience = Some("adp".into());
        Callers::new(Verifier::new(config).unwrap(), 16)
    }

    fn token(aud: serde_json::Value) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        let claims = json!({"iss": "https://issuer.test", "sub": "alice", "exp": exp, "aud": aud});
        mint_hs256(SECRET, &claims).unwrap()
    }

    #[tokio::test]
    async fn a_cached_answer_holds_only_for_the_audience_it_was_checked_for() {
        let callers = callers();
        let ours = token(json!("adp"));
        callers.verify(&ours, Audience::Adp).await.unwrap();
        // cached now as ADP's; still not a passthrough token
        assert_eq!(
            callers.verify(&ours, Audience::Resource(UPSTREAM)).await,
            Err(AuthError::WrongAudience)
        );
        let upstreams = token(json!(UPSTREAM));
        callers
            .verify(&upstreams, Audience::Resource(UPSTREAM))
            .await
            .unwrap();
        assert_eq!(
            callers.verify(&upstreams, Audience::Adp).await,
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            callers
                .verify(
                    &upstreams,
                    Audience::Resource("https://other.example.com/mcp")
                )
                .await,
            Err(AuthError::WrongAudience)
        );
        assert_ne!(
            cache_key(&ours, Audience::Adp),
            cache_key(&ours, Audience::Resource(""))
        );
    }
}
