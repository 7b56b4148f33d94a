//! Verified caller JWTs, remembered until they expire (and at most a few minutes), so a
//! busy caller's token is checked once rather than on every MCP message.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adp_core::identity::{Identity, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::bounded::BoundedMap;

/// A verified token is trusted again for at most this long, so a key removed from the
/// JWKS stops working within it.
const MAX_REUSE: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Callers {
    verifier: Verifier,
    verified: BoundedMap<String, (Arc<Identity>, SystemTime)>,
}

impl Callers {
    pub fn new(verifier: Verifier, capacity: usize) -> Self {
        Callers {
            verifier,
            verified: BoundedMap::new(capacity),
        }
    }

    pub async fn verify(
        &self,
        token: &str,
    ) -> Result<Arc<Identity>, adp_core::identity::AuthError> {
        let now = SystemTime::now();
        if let Some((identity, until)) = self.verified.get(token)
            && until > now
        {
            return Ok(identity);
        }
        let identity = Arc::new(self.verifier.verify(token).await?);
        // verify() checked exp; read it back to know how long the answer stays true
        if let Some(exp) = expiry(token) {
            let until = exp.min(now + MAX_REUSE);
            if until > now {
                self.verified
                    .insert(token.to_owned(), (identity.clone(), until));
            }
        }
        Ok(identity)
    }
}

fn expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(UNIX_EPOCH + Duration::from_secs(exp))
}
