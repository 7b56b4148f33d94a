//! A map with a hard size limit, oldest insertions evicted first. Every cache the proxy
//! keeps per user (credentials, verified callers, used request states) is one of these,
//! so a flood of users costs bounded memory. MCP sessions are not kept at all (see
//! `session_ids`), so eviction can never hand one to somebody else.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Debug)]
pub struct BoundedMap<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    values: HashMap<K, V>,
    /// Insertion order, one entry per key held.
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                values: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // a panic while holding the lock leaves a usable map: recover it
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().values.get(key).cloned()
    }

    pub fn insert(&self, key: K, value: V) {
        let mut inner = self.lock();
        if inner.values.insert(key.clone(), value).is_none() {
            inner.order.push_back(key);
        }
        while inner.values.len() > self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.values.remove(&oldest);
        }
    }

    /// Inserts only if absent; false when the key was already there.
    pub fn insert_new(&self, key: K, value: V) -> bool {
        if self.lock().values.contains_key(&key) {
            return false;
        }
        self.insert(key, value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_beyond_capacity() {
        let map = BoundedMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 10);
        map.insert("c", 3);
        assert_eq!(map.lock().values.len(), 2);
        assert_eq!(map.get(&"a"), None);
        assert_eq!(map.get(&"b"), Some(2));
        assert_eq!(map.get(&"c"), Some(3));
    }

    #[test]
    fn churn_keeps_memory_bounded() {
        let map = BoundedMap::new(10);
        for i in 0..10_000 {
            map.insert(i, i);
            map.insert(i % 7, i);
        }
        assert!(map.lock().values.len() <= 10);
        assert!(map.lock().order.len() <= 10);
    }

    #[test]
    fn insert_new_refuses_a_second_use() {
        let map = BoundedMap::new(4);
        assert!(map.insert_new("nonce", ()));
        assert!(!map.insert_new("nonce", ()));
    }
}
