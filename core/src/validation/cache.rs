//! A small in-memory cache bounded by entry count and by a total weight,
//! least recently used out first. Used for what validation compiles
//! (regexes, JSON Schemas), which is costly to build and used again at
//! every validation of the same document.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Counters of a cache, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Values built (misses).
    pub builds: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    pub entries: usize,
    /// Sum of the entries' weights.
    pub weight: usize,
}

struct Entry<V> {
    value: V,
    weight: usize,
    last_used: u64,
}

struct Inner<V> {
    map: HashMap<String, Entry<V>>,
    clock: u64,
    stats: CacheStats,
}

pub struct BoundedCache<V> {
    inner: Mutex<Inner<V>>,
    budget: usize,
    max_entries: usize,
}

impl<V: Clone> BoundedCache<V> {
    pub fn new(budget: usize, max_entries: usize) -> Self {
        BoundedCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                clock: 0,
                stats: CacheStats::default(),
            }),
            budget,
            max_entries,
        }
    }

    /// The cached value for `key`, or `build()`'s, which returns the value
    /// and its weight. A value heavier than a quarter of the budget is
    /// returned but not kept.
    pub fn get_or_build(&self, key: &str, build: impl FnOnce() -> (V, usize)) -> V {
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(e) = inner.map.get_mut(key) {
                e.last_used = now;
                let value = e.value.clone();
                inner.stats.hits += 1;
                return value;
            }
        }
        // Built without the lock: a slow build must not hold up other
        // threads' lookups. Two threads missing the same key at once both
        // build it; the second insert replaces the first.
        let (value, weight) = build();
        let mut inner = self.lock();
        inner.stats.builds += 1;
        if weight <= self.budget / 4 {
            inner.clock += 1;
            let entry = Entry {
                value: value.clone(),
                weight,
                last_used: inner.clock,
            };
            if let Some(old) = inner.map.insert(key.to_owned(), entry) {
                inner.stats.weight -= old.weight;
            }
            inner.stats.weight += weight;
            while inner.stats.weight > self.budget || inner.map.len() > self.max_entries {
                let Some(oldest) = inner
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some(e) = inner.map.remove(&oldest) {
                    inner.stats.weight -= e.weight;
                }
            }
        }
        value
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            entries: inner.map.len(),
            ..inner.stats
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // The map stays consistent even if a thread panicked holding it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(cache: &BoundedCache<String>, key: &str, weight: usize) -> String {
        cache.get_or_build(key, || (key.to_uppercase(), weight))
    }

    #[test]
    fn a_key_is_built_once() {
        let cache = BoundedCache::new(100, 10);
        assert_eq!(get(&cache, "a", 1), "A");
        assert_eq!(get(&cache, "a", 1), "A");
        let s = cache.stats();
        assert_eq!((s.builds, s.hits, s.entries, s.weight), (1, 1, 1, 1));
    }

    #[test]
    fn bounded_by_count_least_recently_used_out() {
        let cache = BoundedCache::new(100, 3);
        for k in ["a", "b", "c"] {
            get(&cache, k, 1);
        }
        get(&cache, "a", 1); // "b" is now the least recently used
        get(&cache, "d", 1);
        assert_eq!(cache.stats().entries, 3);
        get(&cache, "a", 1);
        assert_eq!(cache.stats().builds, 4, "a was kept");
        get(&cache, "b", 1);
        assert_eq!(cache.stats().builds, 5, "b was evicted");
    }

    #[test]
    fn bounded_by_weight() {
        let cache = BoundedCache::new(100, 1000);
        for k in ["a", "b", "c", "d", "e"] {
            get(&cache, k, 25);
        }
        let s = cache.stats();
        assert_eq!((s.entries, s.weight), (4, 100));
        // Heavier than a quarter of the budget: returned, never kept.
        assert_eq!(get(&cache, "big", 26), "BIG");
        assert_eq!(get(&cache, "big", 26), "BIG");
        assert_eq!(cache.stats().hits, 0);
        assert_eq!(cache.stats().entries, 4);
    }
}
