//! Compiled `pattern` regexes: built with explicit size limits, and kept in a
//! bounded in-memory cache keyed by the pattern text.
//!
//! A Unicode pattern such as `\w{120}` compiles to ~6 MB of automaton and takes
//! tens of milliseconds to build. Validation runs on every command, on every
//! merge from another device and on every replayed event, so compiling each
//! time made one update of a config with 50 such fields take seconds. With
//! the cache a pattern is compiled once per process (until evicted), and the
//! size limit turns a pattern that would be larger than any sane one into a
//! validation error instead of a long compile.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use regex::{Regex, RegexBuilder};

/// The largest compiled program a `pattern` may have. `\w{120}` needs about
/// 6 MiB (Unicode `\w` is large); twice that is never a reasonable pattern.
pub const SIZE_LIMIT: usize = 8 << 20;
/// The lazy DFA's cache per regex; past it matching falls back to slower
/// engines instead of growing.
pub const DFA_SIZE_LIMIT: usize = 1 << 20;

/// Size limits tried in turn. A pattern that fits a small one is cheap to
/// hold; trying the small one first bounds what a cached entry weighs
/// without the regex crate reporting its memory use. A failed attempt stops
/// as soon as the limit is passed, so it costs at most what its limit allows.
const TIERS: [usize; 3] = [64 << 10, 1 << 20, SIZE_LIMIT];

/// The global cache: about 64 MiB of compiled programs (by tier), at most
/// 1,024 patterns.
const BUDGET: usize = 64 << 20;
const MAX_ENTRIES: usize = 1024;

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Not a regular expression; the message is the parser's, on one line.
    Syntax(String),
    /// Compiles to more than [`SIZE_LIMIT`] bytes.
    TooLarge,
}

pub type Compiled = Result<Arc<Regex>, PatternError>;

/// Counters of a cache, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Patterns compiled (a miss), including ones that failed.
    pub compiles: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    pub entries: usize,
    /// Sum of the entries' weights (tier size plus pattern length).
    pub weight: usize,
}

struct Entry {
    compiled: Compiled,
    weight: usize,
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    clock: u64,
    stats: CacheStats,
}

/// A bounded cache of compiled patterns, least recently used out first.
pub struct PatternCache {
    inner: Mutex<Inner>,
    budget: usize,
    max_entries: usize,
}

static GLOBAL: LazyLock<PatternCache> = LazyLock::new(|| PatternCache::new(BUDGET, MAX_ENTRIES));

/// The compiled pattern, from the process-wide cache.
pub fn compile(pattern: &str) -> Compiled {
    GLOBAL.get(pattern)
}

/// Counters of the process-wide cache.
pub fn cache_stats() -> CacheStats {
    GLOBAL.stats()
}

impl PatternCache {
    pub fn new(budget: usize, max_entries: usize) -> PatternCache {
        PatternCache {
            inner: Mutex::new(Inner::default()),
            budget,
            max_entries,
        }
    }

    pub fn get(&self, pattern: &str) -> Compiled {
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(e) = inner.map.get_mut(pattern) {
                e.last_used = now;
                let compiled = e.compiled.clone();
                inner.stats.hits += 1;
                return compiled;
            }
        }
        // Compiled without the lock: a slow pattern must not hold up other
        // threads' lookups. Two threads missing the same pattern at once both
        // compile it; the second insert replaces the first.
        let (compiled, weight) = build(pattern);
        let mut inner = self.lock();
        inner.stats.compiles += 1;
        if weight <= self.budget / 4 {
            inner.clock += 1;
            let last_used = inner.clock;
            let entry = Entry {
                compiled: compiled.clone(),
                weight,
                last_used,
            };
            if let Some(old) = inner.map.insert(pattern.to_owned(), entry) {
                inner.stats.weight -= old.weight;
            }
            inner.stats.weight += weight;
            self.evict(&mut inner);
        }
        compiled
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            entries: inner.map.len(),
            ..inner.stats
        }
    }

    fn evict(&self, inner: &mut Inner) {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent even if a thread panicked holding it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Compiles under each tier's limit in turn; the weight is the tier that
/// held it (or nothing for a failure) plus the pattern's own length.
fn build(pattern: &str) -> (Compiled, usize) {
    #[cfg(test)]
    COMPILES.with(|c| c.set(c.get() + 1));
    for limit in TIERS {
        match RegexBuilder::new(pattern)
            .size_limit(limit)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
        {
            Ok(re) => return (Ok(Arc::new(re)), limit + pattern.len()),
            Err(regex::Error::CompiledTooBig(_)) => continue,
            Err(e) => {
                return (
                    Err(PatternError::Syntax(one_line(&e.to_string()))),
                    pattern.len(),
                )
            }
        }
    }
    (Err(PatternError::TooLarge), pattern.len())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
thread_local! {
    /// Compilations started on this thread: tests count their own, whatever
    /// other tests compile on other threads at the same time.
    static COMPILES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
pub(crate) fn compiles_on_this_thread() -> u64 {
    COMPILES.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_compiled_once() {
        let cache = PatternCache::new(BUDGET, MAX_ENTRIES);
        let a = cache.get("^[a-z]+$").unwrap();
        let b = cache.get("^[a-z]+$").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second lookup is the same regex");
        let s = cache.stats();
        assert_eq!((s.compiles, s.hits, s.entries), (1, 1, 1));
        assert!(a.is_match("abc") && !a.is_match("ab1"));
    }

    #[test]
    fn unicode_word_repeated_120_times_is_accepted() {
        let cache = PatternCache::new(BUDGET, MAX_ENTRIES);
        let re = cache.get(r"\w{120}").unwrap();
        assert!(re.is_match(&"é".repeat(120)));
        assert!(!re.is_match(&"a".repeat(119)));
        // It needed the largest tier, and weighs that much.
        assert!(cache.stats().weight > TIERS[1]);
    }

    #[test]
    fn a_pathological_pattern_is_too_large_and_the_failure_is_cached() {
        let cache = PatternCache::new(BUDGET, MAX_ENTRIES);
        assert_eq!(cache.get(r"\w{1000}").unwrap_err(), PatternError::TooLarge);
        assert_eq!(
            cache.get(r"(\w{100}){100}").unwrap_err(),
            PatternError::TooLarge
        );
        assert_eq!(cache.get(r"\w{1000}").unwrap_err(), PatternError::TooLarge);
        assert_eq!(cache.stats().compiles, 2);
        assert_eq!(cache.stats().hits, 1);
    }

    #[test]
    fn a_syntax_error_keeps_the_parsers_message() {
        let cache = PatternCache::new(BUDGET, MAX_ENTRIES);
        match cache.get("(unclosed") {
            Err(PatternError::Syntax(m)) => assert!(m.contains("unclosed"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_cache_is_bounded_by_count_and_weight_least_recently_used_out() {
        let cache = PatternCache::new(BUDGET, 3);
        for p in ["a", "b", "c"] {
            cache.get(p).unwrap();
        }
        cache.get("a").unwrap(); // "b" is now the least recently used
        cache.get("d").unwrap();
        let s = cache.stats();
        assert_eq!(s.entries, 3);
        assert_eq!(s.compiles, 4);
        cache.get("a").unwrap();
        assert_eq!(cache.stats().compiles, 4, "a was kept");
        cache.get("b").unwrap();
        assert_eq!(cache.stats().compiles, 5, "b was evicted");

        // Weight: a budget that holds one small pattern keeps only the last.
        let small = PatternCache::new(TIERS[0] * 4 + 64, MAX_ENTRIES);
        for p in ["x", "y", "z", "w", "v"] {
            small.get(p).unwrap();
        }
        let s = small.stats();
        assert!(s.weight <= TIERS[0] * 4 + 64, "{s:?}");
        assert_eq!(s.entries, 4);
        // A pattern heavier than a quarter of the budget is not kept at all.
        small.get(r"\w{20}").unwrap();
        small.get(r"\w{20}").unwrap();
        assert_eq!(small.stats().hits, 0);
    }
}
