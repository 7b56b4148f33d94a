//! Upstream credentials cached per (user, server) until shortly before they expire, and
//! only for the server config they were issued under.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use adp_core::identity::Identity;

use secrecy::SecretString;

use crate::bounded::BoundedMap;
use crate::control_plane::{ControlPlane, Credential, CredentialError};
use crate::routes::Route;

/// Refetch this long before the upstream token expires, so a call never carries a token
/// that dies in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

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

#[derive(Clone, Debug)]
struct Entry {
    generation: u64,
    credential: Credential,
    use_until: SystemTime,
}

#[derive(Debug)]
pub struct CredentialCache {
    control_plane: ControlPlane,
    entries: BoundedMap<CacheKey, Entry>,
    deadline: Duration,
}

impl CredentialCache {
    pub fn new(control_plane: ControlPlane, capacity: usize, deadline: Duration) -> Self {
        CredentialCache {
            control_plane,
            entries: BoundedMap::new(capacity),
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
        if let Some(entry) = self.entries.get(&key)
            && entry.generation == route.generation
            && entry.use_until > now
        {
            return Ok(entry.credential);
        }
        let credential = self
            .control_plane
            .credential(user_jwt, &route.server.name, self.deadline)
            .await?;
        let use_until = credential
            .expire_time
            .checked_sub(EXPIRY_MARGIN)
            .unwrap_or(now);
        if use_until > now {
            self.entries.insert(
                key,
                Entry {
                    generation: route.generation,
                    credential: credential.clone(),
                    use_until,
                },
            );
        }
        Ok(credential)
    }
}
