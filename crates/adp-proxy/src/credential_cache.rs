//! Upstream credentials cached per (user, server) until shortly before they expire,
//! only for the server config they were issued under, and only until the control
//! plane says the connection behind them ended ([`Revocations`]).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use adp_core::identity::Identity;

use secrecy::SecretString;

use crate::control_plane_client::{ControlPlaneClient, Credential, CredentialError};
use crate::routes::Route;

/// Refetch this long before the upstream token expires, so a call never carries a token
/// that dies in flight — or a quarter of what the token has left when that is less,
/// so a short-lived token (30 s) is still cached for most of its life.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// Until when a credential that expires at `expire_time`, fetched at `now`, is used.
fn use_until(expire_time: SystemTime, now: SystemTime) -> SystemTime {
    let left = expire_time.duration_since(now).unwrap_or_default();
    expire_time
        .checked_sub(EXPIRY_MARGIN.min(left / 4))
        .unwrap_or(now)
}

/// (issuer, subject, server), held through the `Arc`s the call already has, so a
/// lookup allocates nothing.
#[derive(Clone, Debug)]
pub struct CacheKey {
    pub identity: Arc<Identity>,
    pub route: Arc<Route>,
}

impl CacheKey {
    fn parts(&self) -> (&str, &str, &str) {
        (
            &self.identity.issuer,
            &self.identity.subject,
            &self.route.server.name,
        )
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

/// Buckets of revocation epochs; a revocation invalidates about 1/BUCKETS of the
/// cache, which keeps the check one array read on the hot path and the memory fixed
/// however many users revoke.
const BUCKETS: usize = 4096;

/// Revocation epochs by bucket of (issuer, subject, provider). The config stream bumps
/// a bucket when a connection in it is revoked or expires, and every bucket when a
/// provider changes (disabled, deleted, endpoints moved) or the proxy resynchronises;
/// a cached credential is good only while its bucket is at the epoch it was fetched in.
#[derive(Debug)]
pub struct Revocations {
    epochs: Box<[AtomicU64]>,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations {
            epochs: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Revocations {
    fn bucket(issuer: &str, subject: &str, provider: &str) -> usize {
        // fixed keys: the bucket only spreads load, it is no defence on its own
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (issuer, subject, provider).hash(&mut hasher);
        (hasher.finish() % BUCKETS as u64) as usize
    }

    fn epoch(&self, bucket: usize) -> u64 {
        self.epochs[bucket].load(Ordering::Acquire)
    }

    /// The connection of `subject` at `issuer` to `provider` ended.
    pub fn revoke(&self, issuer: &str, subject: &str, provider: &str) {
        self.epochs[Self::bucket(issuer, subject, provider)].fetch_add(1, Ordering::AcqRel);
    }

    /// Every cached credential is suspect.
    pub fn revoke_all(&self) {
        for epoch in &*self.epochs {
            epoch.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    generation: u64,
    bucket: usize,
    epoch: u64,
    credential: Credential,
    use_until: SystemTime,
}

pub struct CredentialCache {
    control_plane: ControlPlaneClient,
    entries: quick_cache::sync::Cache<CacheKey, Entry>,
    revocations: Arc<Revocations>,
    deadline: Duration,
}

/// Never the cached credentials.
impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("control_plane", &self.control_plane)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub fn new(
        control_plane: ControlPlaneClient,
        capacity: usize,
        deadline: Duration,
        revocations: Arc<Revocations>,
    ) -> Self {
        CredentialCache {
            control_plane,
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            revocations,
            deadline,
        }
    }

    pub async fn credential(
        &self,
        key: CacheKey,
        route: &Route,
        user_jwt: &SecretString,
    ) -> Result<Credential, CredentialError> {
        let now = SystemTime::now();
        let (issuer, subject, _) = key.parts();
        let bucket = Revocations::bucket(
            issuer,
            subject,
            route.server.auth.provider_name().unwrap_or(""),
        );
        // read before asking: a revocation that lands while we wait makes this stale
        let epoch = self.revocations.epoch(bucket);
        if let Some(entry) = self.entries.get(&key)
            && entry.generation == route.generation
            && entry.bucket == bucket
            && entry.epoch == epoch
            && entry.use_until > now
        {
            return Ok(entry.credential);
        }
        let credential = self
            .control_plane
            .credential(user_jwt, &route.server.name, self.deadline)
            .await?;
        let use_until = use_until(credential.expire_time, now);
        if use_until > now {
            self.entries.insert(
                key,
                Entry {
                    generation: route.generation,
                    bucket,
                    epoch,
                    credential: credential.clone(),
                    use_until,
                },
            );
        }
        Ok(credential)
    }

    /// Caches `credential` as if it had just been fetched, for tests elsewhere in the crate.
    #[cfg(test)]
    pub fn remember_for_tests(&self, key: CacheKey, route: &Route, credential: Credential) {
        let (issuer, subject, _) = key.parts();
        let bucket = Revocations::bucket(
            issuer,
            subject,
            route.server.auth.provider_name().unwrap_or(""),
        );
        let entry = Entry {
            generation: route.generation,
            bucket,
            epoch: self.revocations.epoch(bucket),
            use_until: credential.expire_time,
            credential,
        };
        self.entries.insert(key, entry);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_are_dropped_30_s_early_and_short_ones_a_quarter_of_their_life_early() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |secs| now + Duration::from_secs(secs);
        assert_eq!(use_until(at(3600), now), at(3570));
        assert_eq!(use_until(at(120), now), at(90));
        assert_eq!(use_until(at(30), now), now + Duration::from_millis(22_500));
        assert_eq!(use_until(at(20), now), at(15));
        assert_eq!(use_until(now, now), now);
        // already expired: never used
        assert_eq!(
            use_until(now - Duration::from_secs(5), now),
            now - Duration::from_secs(5)
        );
    }

    #[test]
    fn a_revocation_moves_only_its_bucket_and_revoke_all_moves_every_one() {
        let revocations = Revocations::default();
        let alice = Revocations::bucket("iss", "alice", "github");
        let bob = (0..1000)
            .map(|n| Revocations::bucket("iss", &format!("bob{n}"), "github"))
            .find(|b| *b != alice)
            .unwrap();
        revocations.revoke("iss", "alice", "github");
        assert_eq!(revocations.epoch(alice), 1);
        assert_eq!(revocations.epoch(bob), 0);
        revocations.revoke_all();
        assert_eq!(revocations.epoch(alice), 2);
        assert_eq!(revocations.epoch(bob), 1);
    }
}
