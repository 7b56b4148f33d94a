use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

use super::{AuthError, IdentityError};

/// Asymmetric algorithms accepted from a JWKS. HS* is deliberately absent: a key set is
/// public, so accepting a symmetric algorithm would let anyone mint tokens.
pub(super) const JWKS_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Bounds a single fetch so a hung identity provider cannot stall every verification.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Real key sets are a few kilobytes; anything near this is not a key set.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The identity provider's key set, cached in memory.
///
/// Readers take a snapshot without waiting; fetches are serialised by `refresh` so that
/// concurrent verifications needing new keys share one request.
pub(super) struct JwksCache {
    url: Url,
    client: reqwest::Client,
    cache_ttl: Duration,
    min_refresh_interval: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Debug, Default)]
struct RefreshState {
    generation: u64,
    last_unknown_key_refresh: Option<Instant>,
    last_failure: Option<Instant>,
}

struct KeySet {
    generation: u64,
    fetched_at: Instant,
    keys: Vec<VerificationKey>,
}

/// A usable key from the set together with the algorithms it may verify, decided once
/// when the set is fetched.
struct VerificationKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

enum Lookup<'a> {
    Found(&'a DecodingKey),
    WrongAlgorithm,
    Ambiguous,
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// There is no set yet, or the one we have outlived its TTL.
    Expired,
    /// A token named a key the current set does not have.
    UnknownKey,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request failed")]
    Http(#[from] reqwest::Error),
    #[error("response exceeds {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("response is not a jwks document")]
    Json(#[from] serde_json::Error),
}

#[derive(serde::Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

impl JwksCache {
    pub(super) fn new(
        url: Url,
        ca_file: Option<&Path>,
        cache_ttl: Duration,
        min_refresh_interval: Duration,
    ) -> Result<Self, IdentityError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(IdentityError::UnsupportedJwksScheme {
                scheme: url.scheme().to_owned(),
            });
        }
        Ok(Self {
            url,
            client: http_client(ca_file)?,
            cache_ttl,
            min_refresh_interval,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        })
    }

    /// The key that may verify a token with this `kid` and `alg`, refetching the set once
    /// (rate-limited) when the `kid` is unknown, as happens right after a key rotation.
    pub(super) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let keys = self.usable_snapshot().await?;
        match keys.find(kid, alg) {
            Lookup::Found(key) => return Ok(key.clone()),
            Lookup::WrongAlgorithm => return Err(AuthError::DisallowedAlgorithm),
            Lookup::Ambiguous => return Err(AuthError::UnknownKey),
            Lookup::Missing => {}
        }
        let mut state = self.refresh.lock().await;
        let keys = self
            .refresh_locked(&mut state, Some(keys.generation), Trigger::UnknownKey)
            .await
            .unwrap_or(keys);
        match keys.find(kid, alg) {
            Lookup::Found(key) => Ok(key.clone()),
            Lookup::WrongAlgorithm => Err(AuthError::DisallowedAlgorithm),
            Lookup::Ambiguous | Lookup::Missing => Err(AuthError::UnknownKey),
        }
    }

    /// The cached set, fetched first if there is none and refreshed if it has expired.
    /// An expired set is still served when the endpoint is down or already being asked.
    async fn usable_snapshot(&self) -> Result<Arc<KeySet>, AuthError> {
        match self.snapshot() {
            Some(keys) if keys.fetched_at.elapsed() < self.cache_ttl => Ok(keys),
            Some(stale) => {
                // Whoever holds the lock is already refreshing; do not queue behind a slow
                // endpoint when the keys we have are very likely still right.
                let Ok(mut state) = self.refresh.try_lock() else {
                    return Ok(stale);
                };
                let generation = Some(stale.generation);
                Ok(self
                    .refresh_locked(&mut state, generation, Trigger::Expired)
                    .await
                    .unwrap_or(stale))
            }
            None => {
                let mut state = self.refresh.lock().await;
                self.refresh_locked(&mut state, None, Trigger::Expired)
                    .await
                    .ok_or(AuthError::KeysUnavailable)
            }
        }
    }

    /// Fetches a new set unless another caller did so while we waited for the lock, or the
    /// rate limits say not to; returns whatever set is current afterwards.
    async fn refresh_locked(
        &self,
        state: &mut RefreshState,
        seen_generation: Option<u64>,
        trigger: Trigger,
    ) -> Option<Arc<KeySet>> {
        let current = self.snapshot();
        if current.as_ref().map(|keys| keys.generation) != seen_generation {
            return current;
        }
        let recently =
            |at: Option<Instant>| at.is_some_and(|at| at.elapsed() < self.min_refresh_interval);
        if recently(state.last_failure) {
            return current;
        }
        if trigger == Trigger::UnknownKey {
            if recently(state.last_unknown_key_refresh) {
                tracing::debug!("unknown signing key; jwks refetched recently, not refetching");
                return current;
            }
            state.last_unknown_key_refresh = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(keys) => {
                state.generation += 1;
                state.last_failure = None;
                tracing::debug!(
                    keys = keys.len(),
                    generation = state.generation,
                    "jwks fetched"
                );
                let fresh = Arc::new(KeySet {
                    generation: state.generation,
                    fetched_at: Instant::now(),
                    keys,
                });
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
                Some(fresh)
            }
            Err(error) => {
                state.last_failure = Some(Instant::now());
                tracing::warn!(
                    url = %self.url,
                    error = %crate::error::error_chain(&error),
                    cached = current.is_some(),
                    "jwks fetch failed"
                );
                current
            }
        }
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn fetch(&self) -> Result<Vec<VerificationKey>, FetchError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?
            .error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let document: JwksDocument = serde_json::from_slice(&body)?;
        // Keys are parsed one by one so a single exotic entry does not hide the others.
        Ok(document
            .keys
            .into_iter()
            .filter_map(|raw| match serde_json::from_value::<Jwk>(raw) {
                Ok(jwk) => VerificationKey::from_jwk(&jwk),
                Err(error) => {
                    tracing::debug!(%error, "skipping unparsable jwks entry");
                    None
                }
            })
            .collect())
    }
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url.as_str())
            .field("cache_ttl", &self.cache_ttl)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Without a `kid`, the token is accepted only if exactly one key fits its algorithm;
    /// guessing among several would make the outcome depend on key order.
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let Some(kid) = kid else {
            let mut candidates = self.keys.iter().filter(|key| key.algorithms.contains(&alg));
            return match (candidates.next(), candidates.next()) {
                (Some(only), None) => Lookup::Found(&only.key),
                (Some(_), Some(_)) => Lookup::Ambiguous,
                (None, _) => Lookup::Missing,
            };
        };
        let mut same_kid = self
            .keys
            .iter()
            .filter(|key| key.kid.as_deref() == Some(kid))
            .peekable();
        if same_kid.peek().is_none() {
            return Lookup::Missing;
        }
        same_kid
            .find(|key| key.algorithms.contains(&alg))
            .map_or(Lookup::WrongAlgorithm, |key| Lookup::Found(&key.key))
    }
}

impl VerificationKey {
    /// `None` for keys we must not or cannot verify with: encryption keys, symmetric (`oct`)
    /// keys, unsupported curves, and keys whose declared `alg` does not fit their type.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if !matches!(
            jwk.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        ) {
            return None;
        }
        let by_type: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &RSA_ALGORITHMS,
            AlgorithmParameters::EllipticCurve(params) => match params.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
                &[Algorithm::EdDSA]
            }
            _ => return None,
        };
        let algorithms = match jwk.common.key_algorithm {
            None => by_type.to_vec(),
            Some(declared) => {
                let declared = Algorithm::try_from(declared).ok()?;
                if !by_type.contains(&declared) {
                    return None;
                }
                vec![declared]
            }
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id.clone(),
            algorithms,
            key,
        })
    }
}

fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, IdentityError> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("adp/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| IdentityError::ReadCaFile {
            path: path.to_owned(),
            source,
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
            IdentityError::InvalidCaFile {
                path: path.to_owned(),
                source,
            }
        })?;
        if certificates.is_empty() {
            return Err(IdentityError::EmptyCaFile {
                path: path.to_owned(),
            });
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(IdentityError::HttpClient)
}

#[cfg(test)]
mod tests;
