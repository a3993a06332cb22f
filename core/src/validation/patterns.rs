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
use std::sync::{Arc, LazyLock};

use regex::{Regex, RegexBuilder};

use super::cache::{BoundedCache, CacheStats};

/// The largest compiled program a `pattern` may have. `\w{120}` needs about
/// 6 MiB (Unicode `\w` is large); much more is never a reasonable pattern.
pub const SIZE_LIMIT: usize = 8 << 20;
/// The lazy DFA's cache per regex. It needs room in proportion to the
/// program, else it is not used at all and `\w{120}` matches ~400 times
/// slower; it grows only as far as the text matched needs.
pub const DFA_SIZE_LIMIT: usize = SIZE_LIMIT;
/// What the distinct patterns of one document may cost together (see
/// [`Lookup::cost`]): four patterns the size of `\w{120}`, sixteen like
/// `^[\w.-]{3,30}$`, or 500 small ones.
/// This bounds the compile work and memory of one validation, which a remote
/// merge does inside its write transaction.
pub const DOCUMENT_LIMIT: usize = 32 << 20;

/// Size limits tried in turn, doubling up to [`SIZE_LIMIT`]. The first that
/// holds a pattern is its cost: known within a factor of two without the
/// regex crate reporting its memory use. A failed attempt stops as soon as
/// its limit is passed, so all of them together cost about one more compile.
const TIERS: [usize; 8] = [
    64 << 10,
    128 << 10,
    256 << 10,
    512 << 10,
    1 << 20,
    2 << 20,
    4 << 20,
    SIZE_LIMIT,
];

/// The process-wide cache: twice [`DOCUMENT_LIMIT`], so the patterns of a
/// valid document all stay in it between the validation done before a
/// write and the one the projection does inside it.
const BUDGET: usize = 2 * DOCUMENT_LIMIT;
const MAX_ENTRIES: usize = 1024;

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Not a regular expression; the message is the parser's, on one line.
    Syntax(String),
    /// Compiles to more than [`SIZE_LIMIT`] bytes.
    TooLarge,
    /// Fine alone, but the document's earlier patterns used up
    /// [`DOCUMENT_LIMIT`].
    OverDocumentLimit,
}

pub type Compiled = Result<Arc<Regex>, PatternError>;

/// A compiled pattern and what compiling it cost.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub compiled: Compiled,
    /// The size limit it compiled under ([`SIZE_LIMIT`] for one too large,
    /// 0 for a syntax error). The same for a pattern whether it was cached or
    /// not, so that what a document is allowed never depends on the cache.
    pub cost: usize,
}

static GLOBAL: LazyLock<BoundedCache<Lookup>> =
    LazyLock::new(|| BoundedCache::new(BUDGET, MAX_ENTRIES));

/// The compiled pattern, from the process-wide cache.
pub fn compile(pattern: &str) -> Lookup {
    lookup_in(&GLOBAL, pattern)
}

/// Counters of the process-wide cache (`builds` counts compilations).
pub fn cache_stats() -> CacheStats {
    GLOBAL.stats()
}

fn lookup_in(cache: &BoundedCache<Lookup>, pattern: &str) -> Lookup {
    cache.get_or_build(pattern, || {
        let lookup = build(pattern);
        // A failure is kept too (it is as slow to find again), weighing
        // only its text.
        let program = if lookup.compiled.is_ok() {
            lookup.cost
        } else {
            0
        };
        let weight = program + pattern.len();
        (lookup, weight)
    })
}

/// Each distinct pattern of a document, in order, compiled within
/// [`DOCUMENT_LIMIT`]: once the earlier ones used it up, the rest are not
/// compiled at all.
pub(crate) fn compile_all<'d>(
    patterns: impl Iterator<Item = &'d str>,
) -> HashMap<String, Compiled> {
    let mut used = 0;
    let mut out = HashMap::new();
    for p in patterns {
        if out.contains_key(p) {
            continue;
        }
        let compiled = if used >= DOCUMENT_LIMIT {
            Err(PatternError::OverDocumentLimit)
        } else {
            let lookup = compile(p);
            used += lookup.cost;
            match lookup.compiled {
                Ok(_) if used > DOCUMENT_LIMIT => Err(PatternError::OverDocumentLimit),
                other => other,
            }
        };
        out.insert(p.to_owned(), compiled);
    }
    out
}

/// Compiles under each tier's limit in turn.
fn build(pattern: &str) -> Lookup {
    #[cfg(test)]
    COMPILES.with(|c| c.set(c.get() + 1));
    for limit in TIERS {
        match RegexBuilder::new(pattern)
            .size_limit(limit)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
        {
            Ok(re) => {
                return Lookup {
                    compiled: Ok(Arc::new(re)),
                    cost: limit,
                }
            }
            Err(regex::Error::CompiledTooBig(_)) => continue,
            Err(e) => {
                return Lookup {
                    compiled: Err(PatternError::Syntax(one_line(&e.to_string()))),
                    cost: 0,
                }
            }
        }
    }
    Lookup {
        compiled: Err(PatternError::TooLarge),
        cost: SIZE_LIMIT,
    }
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

    fn cache() -> BoundedCache<Lookup> {
        BoundedCache::new(BUDGET, MAX_ENTRIES)
    }

    #[test]
    fn a_pattern_is_compiled_once() {
        let cache = cache();
        let a = lookup_in(&cache, "^[a-z]+$").compiled.unwrap();
        let b = lookup_in(&cache, "^[a-z]+$").compiled.unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second lookup is the same regex");
        let s = cache.stats();
        assert_eq!((s.builds, s.hits, s.entries), (1, 1, 1));
        assert!(a.is_match("abc") && !a.is_match("ab1"));
    }

    #[test]
    fn unicode_word_repeated_120_times_is_accepted() {
        let cache = cache();
        let lookup = lookup_in(&cache, r"\w{120}");
        let re = lookup.compiled.unwrap();
        assert!(re.is_match(&"é".repeat(120)));
        assert!(!re.is_match(&"a".repeat(119)));
        // It needed the largest tier, and weighs that much.
        assert_eq!(lookup.cost, SIZE_LIMIT);
        assert!(cache.stats().weight > SIZE_LIMIT);
    }

    #[test]
    fn a_pathological_pattern_is_too_large_and_the_failure_is_cached() {
        let cache = cache();
        for p in [r"\w{1000}", r"(\w{100}){100}", r"\w{1000}"] {
            let lookup = lookup_in(&cache, p);
            assert_eq!(lookup.compiled.unwrap_err(), PatternError::TooLarge);
            assert_eq!(lookup.cost, SIZE_LIMIT);
        }
        let s = cache.stats();
        assert_eq!((s.builds, s.hits), (2, 1));
        assert!(s.weight < 100, "a failure weighs only its text: {s:?}");
    }

    #[test]
    fn a_syntax_error_keeps_the_parsers_message() {
        match lookup_in(&cache(), "(unclosed").compiled {
            Err(PatternError::Syntax(m)) => assert!(m.contains("unclosed"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn small_patterns_cost_the_smallest_tier() {
        let cache = cache();
        assert_eq!(lookup_in(&cache, "^[a-z]+-\\d+$").cost, TIERS[0]);
        assert_eq!(lookup_in(&cache, r"^[\w.-]{3,30}$").cost, 2 << 20);
    }

    #[test]
    fn a_document_s_patterns_share_one_limit() {
        // Distinct patterns the size of \w{120} (compiled through the shared
        // cache: unique to this test).
        let heavy: Vec<String> = (0..6)
            .map(|i| format!(r"\w{{120}}(?:doc-limit-{i})?"))
            .collect();
        let fits = DOCUMENT_LIMIT / SIZE_LIMIT;
        let mut order: Vec<&str> = heavy.iter().map(String::as_str).collect();
        order.insert(1, heavy[0].as_str()); // a repeat costs nothing
        order.push("^small$");
        let got = compile_all(order.into_iter());
        for (i, p) in heavy.iter().enumerate() {
            let want_ok = i < fits;
            assert_eq!(
                got[p].is_ok(),
                want_ok,
                "pattern {i}: {:?}",
                got[p].as_ref().err()
            );
            if !want_ok {
                assert_eq!(
                    got[p].as_ref().unwrap_err(),
                    &PatternError::OverDocumentLimit
                );
            }
        }
        // Once the limit is used up, nothing more is compiled, small or not.
        assert_eq!(
            got["^small$"].as_ref().unwrap_err(),
            &PatternError::OverDocumentLimit
        );
    }
}
