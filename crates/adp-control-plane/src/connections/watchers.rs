//! How many `WatchConnection` streams each person holds on this replica: each one is a
//! task and a database read per change, so one caller cannot open them without end.

use std::sync::Arc;

use adp_core::identity::Identity;
use adp_core::{ApiError, Code};

use super::Connections;

/// One admitted watch; dropping it (the stream ended) frees its place.
#[derive(Debug)]
pub struct WatchPermit {
    connections: Arc<Connections>,
    owner: (String, String),
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        let mut watchers = self.connections.watchers();
        if let Some(count) = watchers.get_mut(&self.owner) {
            *count -= 1;
            if *count == 0 {
                watchers.remove(&self.owner);
            }
        }
    }
}

impl Connections {
    fn watchers(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), usize>> {
        self.watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for one more watch of `identity`, or RESOURCE_EXHAUSTED at the limit.
    pub fn admit_watch(self: &Arc<Self>, identity: &Identity) -> Result<WatchPermit, ApiError> {
        let owner = (identity.issuer.clone(), identity.subject.clone());
        let limit = self.settings.max_watches_per_user;
        let mut watchers = self.watchers();
        let count = watchers.entry(owner.clone()).or_default();
        if *count >= limit {
            return Err(ApiError::new(
                Code::ResourceExhausted,
                format!(
                    "{count} WatchConnection streams are open for this user on this replica (the limit is {limit}); close one first"
                ),
            )
            .with_reason(adp_core::Reason::TooManyWatches)
            .with_metadata("limit", limit.to_string()));
        }
        *count += 1;
        drop(watchers);
        Ok(WatchPermit {
            connections: self.clone(),
            owner,
        })
    }
}
