//! A set with a hard size limit, oldest insertions evicted first: the spent
//! `requestState` nonces. Not a cache crate's frequency-aware eviction: a spent nonce is
//! never read again unless it is replayed, so such a cache would evict it among the
//! first (S3-FIFO's probation queue is a tenth of the capacity), and a replay must be
//! refused for as long as the capacity allows. The per-user caches (credentials,
//! verified callers) are `quick_cache`s. MCP sessions are not kept at all (see
//! `session_ids`), so eviction can never hand one to somebody else.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Debug)]
pub struct BoundedSet<K> {
    capacity: usize,
    inner: Mutex<Inner<K>>,
}

#[derive(Debug)]
struct Inner<K> {
    members: HashSet<K>,
    /// Insertion order, one entry per member.
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone> BoundedSet<K> {
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                members: HashSet::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        // a panic while holding the lock leaves a usable set: recover it
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `key` unless present, evicting the oldest beyond capacity; false when it
    /// was already there. One lock for the check and the insert: two requests replaying
    /// one nonce at once get one `true`.
    pub fn insert_new(&self, key: K) -> bool {
        let mut inner = self.lock();
        if !inner.members.insert(key.clone()) {
            return false;
        }
        inner.order.push_back(key);
        while inner.members.len() > self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.members.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_beyond_capacity() {
        let set = BoundedSet::new(2);
        assert!(set.insert_new("a"));
        assert!(set.insert_new("b"));
        assert!(!set.insert_new("a"));
        assert!(set.insert_new("c"));
        assert_eq!(set.lock().members.len(), 2);
        // "a" was the oldest: it went, "b" and "c" stay
        assert!(!set.insert_new("b"));
        assert!(!set.insert_new("c"));
        assert!(set.insert_new("a"));
    }

    #[test]
    fn churn_keeps_memory_bounded() {
        let set = BoundedSet::new(10);
        for i in 0..10_000 {
            set.insert_new(i);
            set.insert_new(i % 7);
        }
        assert!(set.lock().members.len() <= 10);
        assert!(set.lock().order.len() <= 10);
    }

    #[test]
    fn a_nonce_replayed_by_many_threads_at_once_is_accepted_once() {
        for round in 0..200 {
            let set = std::sync::Arc::new(BoundedSet::new(1024));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let accepted: usize = (0..8)
                .map(|_| {
                    let (set, barrier) = (set.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        usize::from(set.insert_new(round))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap_or(0))
                .sum();
            assert_eq!(accepted, 1, "round {round}");
        }
    }
}
