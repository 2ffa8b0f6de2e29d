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

/// Calls per second of each peer with `clients` calls in flight at once:
/// `op(peer, client, i)` runs in `clients` loops that share one task (so the
/// Rust side of every peer gets the same thread; the database gets the
/// rest), each peer for `run_for` in turn, in two rotations (AB, BA); the
/// better of each peer's two runs counts.
pub async fn throughput(
    label: &str,
    peers: usize,
    clients: usize,
    run_for: Duration,
    op: impl AsyncFn(usize, usize, u64) -> Result<()>,
) -> Result<Vec<f64>> {
    let progress = bar(label, 2 * peers);
    let mut best = vec![0.0_f64; peers];
    for rotation in 0..2 {
        for k in 0..peers {
            let peer = (rotation + k) % peers;
            let deadline = Instant::now() + run_for;
            let started = Instant::now();
            let loops = (0..clients).map(|client| {
                let op = &op;
                async move {
                    let mut calls = 0_u64;
                    while Instant::now() < deadline {
                        op(peer, client, calls).await?;
                        calls += 1;
                    }
                    Ok::<u64, anyhow::Error>(calls)
                }
            });
            let calls: u64 = join_all(loops.collect()).await?.into_iter().sum();
            let rate = calls as f64 / started.elapsed().as_secs_f64();
            best[peer] = best[peer].max(rate);
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    Ok(best)
}

/// Polls every future until all are done; the first error wins.
async fn join_all<T, F: std::future::Future<Output = Result<T>>>(
    futures: Vec<F>,
) -> Result<Vec<T>> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none()
                && let Poll::Ready(result) = future.as_mut().poll(cx)
            {
                match result {
                    Ok(value) => *slot = Some(value),
                    Err(err) => return Poll::Ready(Err(err)),
                }
            }
        }
        if done.iter().all(Option::is_some) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    Ok(done.into_iter().flatten().collect())
}
