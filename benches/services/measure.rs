//! Timing: peers run interleaved, each call timed on its own, summarized as
//! nearest-rank p50 and p99.

use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

/// A small deterministic generator (SplitMix64) for picking inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the bias is negligible for small `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A random element of `items` (non-empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Latency summary of one peer, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub n: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
}

impl Stats {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e6
        };
        let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64;
        Self {
            n: samples.len(),
            p50_us: rank(0.50),
            p99_us: rank(0.99),
            mean_us: mean * 1e6,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n,
            "p50_us": round1(self.p50_us),
            "p99_us": round1(self.p99_us),
            "mean_us": round1(self.mean_us),
        })
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A bar for `total` steps of one workload.
pub fn bar(label: &str, total: usize) -> ProgressBar {
    ProgressBar::new(total as u64)
        .with_style(
            ProgressStyle::with_template("  {prefix:>22} [{bar:32}] {pos:>8}/{len:<8} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        )
        .with_prefix(label.to_owned())
}

/// Runs `op(peer)` for every peer `warmup + n` times, rotating the order
/// each round (ABC, BCA, CAB ...) so that drift and load hit every peer
/// alike, and times each call. Warm-up calls are not recorded.
pub async fn interleaved(
    label: &str,
    peers: usize,
    warmup: usize,
    n: usize,
    mut op: impl AsyncFnMut(usize) -> Result<()>,
) -> Result<Vec<Stats>> {
    let progress = bar(label, warmup + n);
    let mut samples = vec![Vec::with_capacity(n); peers];
    for round in 0..warmup + n {
        for k in 0..peers {
            let peer = (round + k) % peers;
            let started = Instant::now();
            op(peer).await?;
            let took = started.elapsed();
            if round >= warmup {
                samples[peer].push(took);
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(samples.into_iter().map(Stats::of).collect())
}
