//! Timing helpers shared by the benchmarks: medians of batches, and units.

use std::time::{Duration, Instant};

/// The batch length from `MLPOW_BENCH_MS` (default 1500 ms).
pub fn min_batch() -> Duration {
	Duration::from_millis(std::env::var("MLPOW_BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500))
}

/// Median seconds per call over 5 batches, each at least `min` long.
pub fn time(min: Duration, mut f: impl FnMut()) -> f64 {
	let iters = calibrate(&mut f, min / 5);
	let mut samples: Vec<f64> = (0..5)
		.map(|_| {
			let s = Instant::now();
			for _ in 0..iters {
				f();
			}
			s.elapsed().as_secs_f64() / iters as f64
		})
		.collect();
	samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
	samples[2]
}

pub fn fmt_s(s: f64) -> String {
	if s < 1e-3 {
		format!("{:.1} us", s * 1e6)
	} else if s < 1.0 {
		format!("{:.2} ms", s * 1e3)
	} else {
		format!("{s:.2} s")
	}
}

pub fn gmacs(macs: u64, s: f64) -> f64 {
	macs as f64 / s / 1e9
}

/// Times several functions in interleaved rounds, so that a slow spell of a
/// shared machine falls on all of them alike: each round runs each function
/// for about `min / rounds`. Returns, per function, its seconds per call in
/// every round (compare them round by round with [`median_ratio`]).
#[allow(dead_code)]
pub fn interleaved(min: Duration, rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Vec<f64>> {
	let per_batch = min / rounds.max(1) as u32;
	let iters: Vec<u64> = fs.iter_mut().map(|f| calibrate(f, per_batch)).collect();
	let mut out = vec![Vec::with_capacity(rounds); fs.len()];
	for _ in 0..rounds {
		for ((f, &n), times) in fs.iter_mut().zip(&iters).zip(out.iter_mut()) {
			let s = Instant::now();
			for _ in 0..n {
				f();
			}
			times.push(s.elapsed().as_secs_f64() / n as f64);
		}
	}
	out
}

/// The median of `v`.
#[allow(dead_code)]
pub fn median(v: &[f64]) -> f64 {
	let mut s = v.to_vec();
	s.sort_by(|a, b| a.partial_cmp(b).unwrap());
	s[s.len() / 2]
}

/// The median over rounds of `num[i] / den[i]`.
#[allow(dead_code)]
pub fn median_ratio(num: &[f64], den: &[f64]) -> f64 {
	median(&num.iter().zip(den).map(|(a, b)| a / b).collect::<Vec<_>>())
}

/// Warms `f` up (caches, lazy CPU-feature detection), then doubles a batch
/// of calls until one batch takes at least `batch`; returns that count.
fn calibrate(f: &mut dyn FnMut(), batch: Duration) -> u64 {
	f();
	let mut iters = 1u64;
	loop {
		let s = Instant::now();
		for _ in 0..iters {
			f();
		}
		if s.elapsed() >= batch {
			return iters;
		}
		iters *= 2;
	}
}
