//! The CPU backend: one lane per thread, each running the reference miner of
//! `mlpow-primitives` (the best exact int8 kernel this CPU has: AVX-512
//! VNNI, AVX2, or portable). All lanes share one copy of the epoch weights.

use crate::backend::{Job, Lane, SearchReport};
use mlpow_primitives::{
	kernel::Kernel,
	mine::{EpochWeights, Search},
	ChallengeParams, Hash32,
};
use std::{
	ops::Range,
	sync::{Arc, Mutex},
};

/// The current epoch's weights, shared so that N threads do not generate
/// (and hold) N copies.
#[derive(Default, Clone)]
struct SharedWeights(Arc<Mutex<Option<Arc<EpochWeights>>>>);

impl SharedWeights {
	fn get(&self, params: &ChallengeParams, seed: &Hash32) -> anyhow::Result<Arc<EpochWeights>> {
		let mut slot = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		if let Some(w) = slot.as_ref() {
			if w.params() == params && w.seed() == seed {
				return Ok(w.clone());
			}
		}
		let weights =
			Arc::new(EpochWeights::generate(params, seed).map_err(|e| anyhow::anyhow!("challenge parameters: {e}"))?);
		log::info!(
			"generated epoch weights: {}x{} int8 ({} KiB) for seed {}",
			params.n,
			params.k,
			params.n as u64 * params.k as u64 / 1024,
			mlpow_work::short_hex(seed)
		);
		*slot = Some(weights.clone());
		Ok(weights)
	}
}

pub struct CpuLane {
	index: usize,
	shared: SharedWeights,
}

/// `threads` CPU lanes sharing one weights cache.
pub fn lanes(threads: usize) -> Vec<Box<dyn Lane>> {
	let shared = SharedWeights::default();
	log::info!("CPU backend: {threads} thread(s), kernel {:?}", Kernel::best());
	(0..threads).map(|index| Box::new(CpuLane { index, shared: shared.clone() }) as Box<dyn Lane>).collect()
}

impl Lane for CpuLane {
	fn name(&self) -> String {
		format!("cpu thread {}", self.index)
	}

	fn batch_size(&self, params: &ChallengeParams) -> u64 {
		// About 2^26 multiply-accumulates per batch (about 10 ms at the
		// 5-6 GMAC/s one thread reaches); cancellation is checked between
		// nonces anyway.
		(1u64 << 26).div_ceil(params.macs_per_nonce().max(1)).clamp(1, 1024)
	}

	fn search(&mut self, job: &Job, nonces: Range<u64>, cancelled: &dyn Fn() -> bool) -> anyhow::Result<SearchReport> {
		let weights = self.shared.get(&job.params, &job.weights_seed)?;
		let mut search =
			Search::new(&weights, &job.pre_hash, job.difficulty).map_err(|e| anyhow::anyhow!("bad job: {e}"))?;
		let mut report = SearchReport::default();
		for nonce in nonces {
			if cancelled() {
				break;
			}
			report.winners.extend(search.try_nonce(nonce).into_iter().map(|v| v.seal));
			report.nonces_done += 1;
		}
		Ok(report)
	}
}
