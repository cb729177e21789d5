//! `--benchmark`: mines a synthetic job without a node, then runs the plain
//! int8 GEMM of the same shape on the same lanes, and prints both side by
//! side. Mining costs exactly `m*n*k` MACs a nonce, so the ratio of the two
//! MAC rates is what generation, hashing and bookkeeping cost on top of the
//! GEMM. Every winner found is verified with `mlpow-primitives`.

use crate::backend::{Job, Lane};
use mlpow_primitives::{verify, ChallengeParams, U256};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BenchConfig {
	pub params: ChallengeParams,
	/// `None`: one winner every 64 nonces on average.
	pub difficulty: Option<U256>,
	pub seconds: f64,
}

#[derive(Clone, Debug, Default)]
pub struct BenchResult {
	pub lanes: Vec<String>,
	pub difficulty: U256,
	pub nonces: u64,
	pub seconds: f64,
	pub winners: u64,
	pub tickets_per_sec: f64,
	pub mining_macs_per_sec: f64,
	pub gemm_macs_per_sec: f64,
}

impl BenchResult {
	pub fn ratio(&self) -> f64 {
		self.mining_macs_per_sec / self.gemm_macs_per_sec.max(f64::MIN_POSITIVE)
	}
}

impl std::fmt::Display for BenchResult {
	fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
		writeln!(f, "lanes:      {}", self.lanes.join(", "))?;
		writeln!(
			f,
			"mining:     {} tickets/s, {} MAC/s ({} nonces in {:.1} s, {} winners at difficulty {}, all verified)",
			crate::si(self.tickets_per_sec),
			crate::si(self.mining_macs_per_sec),
			self.nonces,
			self.seconds,
			self.winners,
			self.difficulty
		)?;
		writeln!(f, "plain GEMM: {} MAC/s (same shape, same lanes, int8 -> i32)", crate::si(self.gemm_macs_per_sec))?;
		write!(f, "ratio:      mining / plain GEMM = {:.3}", self.ratio())
	}
}

/// Runs the benchmark on `lanes`: every lane mines for `seconds`, all at
/// once, then every lane runs its plain GEMM for `seconds`, all at once.
pub fn run(mut lanes: Vec<Box<dyn Lane>>, config: &BenchConfig) -> anyhow::Result<BenchResult> {
	let p = config.params;
	p.validate().map_err(|e| anyhow::anyhow!("benchmark parameters: {e}"))?;
	let difficulty = config.difficulty.unwrap_or_else(|| U256::from(p.tickets_per_nonce()) * 64);
	let job = Job {
		version: 1,
		pre_hash: *blake3::hash(b"mlpow benchmark pre-hash").as_bytes(),
		number: 1,
		difficulty,
		params: p,
		weights_seed: *blake3::hash(b"mlpow benchmark weights").as_bytes(),
	};
	let names = lanes.iter().map(|l| l.name()).collect();

	// Set-up outside the timed window: weights, buffers, kernel selection.
	for lane in lanes.iter_mut() {
		lane.search(&job, u64::MAX - 1..u64::MAX, &|| false)?;
	}

	let mining = Duration::from_secs_f64(config.seconds);
	let start = Instant::now();
	let per_lane: Vec<anyhow::Result<(u64, Vec<crate::backend::Winner>)>> = std::thread::scope(|scope| {
		let handles: Vec<_> = lanes
			.iter_mut()
			.enumerate()
			.map(|(index, lane)| {
				let job = &job;
				scope.spawn(move || {
					let batch = lane.batch_size(&job.params).max(1);
					// Disjoint nonce ranges per lane.
					let mut next = (index as u64) << 48;
					let (mut nonces, mut winners) = (0, Vec::new());
					while start.elapsed() < mining {
						let report = lane.search(job, next..next + batch, &|| start.elapsed() >= mining)?;
						next += batch;
						nonces += report.nonces_done;
						winners.extend(report.winners);
					}
					Ok((nonces, winners))
				})
			})
			.collect();
		handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a lane panicked")))).collect()
	});
	let seconds = start.elapsed().as_secs_f64();
	let (mut nonces, mut winners) = (0, 0);
	for r in per_lane {
		let (n, w) = r?;
		nonces += n;
		for winner in &w {
			verify::verify(&p, &job.weights_seed, &job.pre_hash, difficulty, &winner.seal)
				.map_err(|e| anyhow::anyhow!("benchmark winner {:?} does not verify: {e:?}", winner.id))?;
		}
		winners += w.len() as u64;
	}

	let gemm: Vec<anyhow::Result<f64>> = std::thread::scope(|scope| {
		let handles: Vec<_> = lanes
			.iter_mut()
			.map(|lane| scope.spawn(move || lane.plain_gemm_macs_per_sec(&p, config.seconds)))
			.collect();
		handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a lane panicked")))).collect()
	});
	let gemm_macs_per_sec = gemm.into_iter().sum::<anyhow::Result<f64>>()?;

	Ok(BenchResult {
		lanes: names,
		difficulty,
		nonces,
		seconds,
		winners,
		tickets_per_sec: (nonces * p.tickets_per_nonce()) as f64 / seconds,
		mining_macs_per_sec: (nonces * p.macs_per_nonce()) as f64 / seconds,
		gemm_macs_per_sec,
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_cpu_benchmark_mines_verifies_and_compares() {
		let config = BenchConfig {
			params: ChallengeParams { version: 1, m: 64, k: 256, n: 64, t: 16, r: 0, epoch_length: 1 },
			difficulty: Some(U256::from(8)),
			seconds: 0.3,
		};
		let r = run(crate::cpu::lanes(1), &config).unwrap();
		assert!(r.nonces > 0 && r.winners > 0, "{r:?}");
		assert!(r.gemm_macs_per_sec > 0.0 && r.mining_macs_per_sec > 0.0);
		let text = r.to_string();
		// And parameters too big for this machine are an error, not an abort.
		let huge = BenchConfig {
			params: ChallengeParams { version: 1, m: 65536, k: 65536, n: 65536, t: 16, r: 0, epoch_length: 1 },
			difficulty: None,
			seconds: 0.1,
		};
		let e = run(crate::cpu::lanes(1), &huge).unwrap_err();
		assert!(format!("{e:#}").contains("MiB are available"), "{e:#}");
		for needle in ["tickets/s", "MAC/s", "plain GEMM", "ratio"] {
			assert!(text.contains(needle), "{text}");
		}
	}
}
