//! The mining loop: one OS thread per lane, a shared job slot, a shared
//! nonce counter, and counters for the hashrate report.
//!
//! Setting a new job bumps a generation number; every lane checks it
//! between nonces (through the `cancelled` callback) and moves to the new
//! job at once. Nonces for each job start at a random offset, so several
//! worker processes mining the same work rarely search the same nonces.

use crate::backend::{Job, Lane, Winner};
use std::{
	sync::{
		atomic::{AtomicBool, AtomicU64, Ordering},
		Arc, Condvar, Mutex,
	},
	thread::JoinHandle,
};
use tokio::sync::mpsc;

/// How many found seals may wait for the node connection to send them.
pub const FOUND_QUEUE: usize = 64;

/// A winning seal and the work version it was found for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
	pub version: u64,
	pub number: u64,
	pub winner: Winner,
}

/// Totals since start; the reporter differences them over time.
#[derive(Default)]
pub struct Counters {
	pub nonces: AtomicU64,
	pub tickets: AtomicU64,
	pub macs: AtomicU64,
	pub found: AtomicU64,
}

struct Slot {
	job: Option<Arc<Job>>,
	generation: u64,
}

struct Shared {
	slot: Mutex<Slot>,
	wake: Condvar,
	generation: AtomicU64,
	next_nonce: AtomicU64,
	stop: AtomicBool,
	counters: Counters,
}

pub struct Miner {
	shared: Arc<Shared>,
	threads: Vec<JoinHandle<()>>,
}

impl Miner {
	/// Starts one thread per lane. Winners go to `found`.
	pub fn start(lanes: Vec<Box<dyn Lane>>, found: mpsc::Sender<Found>) -> Self {
		let shared = Arc::new(Shared {
			slot: Mutex::new(Slot { job: None, generation: 0 }),
			wake: Condvar::new(),
			generation: AtomicU64::new(0),
			next_nonce: AtomicU64::new(0),
			stop: AtomicBool::new(false),
			counters: Counters::default(),
		});
		let threads = lanes
			.into_iter()
			.map(|lane| {
				let shared = shared.clone();
				let found = found.clone();
				std::thread::Builder::new()
					.name(lane.name())
					.spawn(move || lane_loop(lane, shared, found))
					.expect("spawning a mining thread")
			})
			.collect();
		Self { shared, threads }
	}

	/// Replaces the job (or, with `None`, pauses every lane).
	pub fn set_job(&self, job: Option<Job>) {
		let mut slot = self.shared.slot.lock().unwrap_or_else(|p| p.into_inner());
		if slot.job.as_deref() == job.as_ref() {
			return;
		}
		slot.job = job.map(Arc::new);
		slot.generation += 1;
		self.shared.next_nonce.store(random_u64() >> 1, Ordering::SeqCst);
		self.shared.generation.store(slot.generation, Ordering::SeqCst);
		self.shared.wake.notify_all();
	}

	/// The version of the job being mined, if any.
	pub fn current_version(&self) -> Option<u64> {
		self.shared.slot.lock().unwrap_or_else(|p| p.into_inner()).job.as_ref().map(|j| j.version)
	}

	pub fn counters(&self) -> &Counters {
		&self.shared.counters
	}

	/// Stops every lane and waits for them.
	pub fn stop(mut self) {
		self.shared.stop.store(true, Ordering::SeqCst);
		self.set_job(None);
		self.shared.wake.notify_all();
		for t in self.threads.drain(..) {
			let _ = t.join();
		}
	}
}

fn lane_loop(mut lane: Box<dyn Lane>, shared: Arc<Shared>, found: mpsc::Sender<Found>) {
	let name = lane.name();
	loop {
		// Wait for a job.
		let (job, generation) = {
			let mut slot = shared.slot.lock().unwrap_or_else(|p| p.into_inner());
			loop {
				if shared.stop.load(Ordering::SeqCst) {
					return;
				}
				if let Some(job) = &slot.job {
					break (job.clone(), slot.generation);
				}
				slot = shared.wake.wait(slot).unwrap_or_else(|p| p.into_inner());
			}
		};
		let batch = lane.batch_size(&job.params).max(1);
		let first = shared.next_nonce.fetch_add(batch, Ordering::SeqCst);
		let cancelled =
			|| shared.generation.load(Ordering::Relaxed) != generation || shared.stop.load(Ordering::Relaxed);
		match lane.search(&job, first..first.saturating_add(batch), &cancelled) {
			Ok(report) => {
				let c = &shared.counters;
				c.nonces.fetch_add(report.nonces_done, Ordering::Relaxed);
				c.tickets.fetch_add(report.nonces_done * job.params.tickets_per_nonce(), Ordering::Relaxed);
				c.macs.fetch_add(report.nonces_done * job.params.macs_per_nonce(), Ordering::Relaxed);
				for winner in report.winners {
					c.found.fetch_add(1, Ordering::Relaxed);
					// Bounded: 64 seals waiting means the node connection is
					// down or stuck (a block takes one seal), and every seal
					// waiting is for work that has moved on by the time it
					// recovers; refuse more rather than grow without limit.
					match found.try_send(Found { version: job.version, number: job.number, winner }) {
						Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
						Err(mpsc::error::TrySendError::Full(_)) => {
							log::warn!("{name}: {FOUND_QUEUE} found seals are waiting to be sent; dropping one")
						}
					}
				}
			}
			Err(e) => {
				// A job this lane cannot mine (say, parameters too large for
				// its memory): say so and wait for the next job.
				log::error!("{name}: cannot mine work {}: {e:#}", job.version);
				let mut slot = shared.slot.lock().unwrap_or_else(|p| p.into_inner());
				while slot.generation == generation && !shared.stop.load(Ordering::SeqCst) {
					slot = shared.wake.wait(slot).unwrap_or_else(|p| p.into_inner());
				}
			}
		}
	}
}

/// A random 64-bit value without a dependency: std's hasher keys are
/// randomly seeded per process.
fn random_u64() -> u64 {
	use std::hash::{BuildHasher, Hasher};
	let mut h = std::collections::hash_map::RandomState::new().build_hasher();
	h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
	h.finish()
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::cpu;
	use mlpow_primitives::{stream::weights_seed, ChallengeParams, U256};

	#[test]
	fn cpu_lanes_find_seals_that_verify() {
		for params in [ChallengeParams::DEV, ChallengeParams::DEV_V2] {
			lanes_find_seals_that_verify(params);
		}
	}

	fn lanes_find_seals_that_verify(params: ChallengeParams) {
		let (tx, mut rx) = mpsc::channel(FOUND_QUEUE);
		let miner = Miner::start(cpu::lanes(2), tx);
		let seed = weights_seed(&[7; 32], 0);
		let job =
			Job { version: 3, pre_hash: [9; 32], number: 1, difficulty: U256::from(200), params, weights_seed: seed };
		miner.set_job(Some(job.clone()));
		let mut seen = 0;
		while seen < 3 {
			let f = rx.blocking_recv().expect("miner stopped");
			assert_eq!(f.version, 3);
			assert_eq!(f.winner.seal.len(), if params.version == 1 { 16 } else { 17 });
			mlpow_primitives::verify(&params, &seed, &job.pre_hash, job.difficulty, &f.winner.seal)
				.expect("a seal the miner found must verify");
			seen += 1;
		}
		assert!(miner.counters().nonces.load(Ordering::Relaxed) > 0);
		miner.stop();
	}

	#[test]
	fn a_new_job_replaces_the_old_one_at_once() {
		let (tx, mut rx) = mpsc::channel(FOUND_QUEUE);
		let miner = Miner::start(cpu::lanes(1), tx);
		let base = Job {
			version: 1,
			pre_hash: [1; 32],
			number: 1,
			// Practically unwinnable: the lane is busy on job 1 when job 2 comes.
			difficulty: U256::MAX,
			params: ChallengeParams::DEV,
			weights_seed: [2; 32],
		};
		miner.set_job(Some(base.clone()));
		// Wait until the lane is demonstrably working on job 1.
		let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
		while miner.counters().nonces.load(Ordering::Relaxed) == 0 {
			assert!(std::time::Instant::now() < deadline, "the lane never started on job 1");
			std::thread::yield_now();
		}
		miner.set_job(Some(Job { version: 2, difficulty: U256::from(50), ..base }));
		let f = rx.blocking_recv().expect("miner stopped");
		assert_eq!(f.version, 2);
		assert_eq!(miner.current_version(), Some(2));
		miner.set_job(None);
		assert_eq!(miner.current_version(), None);
		miner.stop();
	}
}
