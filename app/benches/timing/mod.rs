//! Latency of a call, as the benches' tables print it: p50 and p99 over n
//! calls.
#![allow(dead_code)]

use std::time::{Duration, Instant};

pub struct Stats {
    pub name: String,
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
}

/// Calls `f(0..n)` and keeps the time of each call.
pub fn time<T>(name: &str, n: usize, mut f: impl FnMut(usize) -> T) -> Stats {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(f(i));
        samples.push(t.elapsed());
    }
    samples.sort();
    Stats {
        name: name.to_owned(),
        n,
        p50: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}
