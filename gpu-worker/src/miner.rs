//! The mining loop: one OS thread per lane, a shared job slot, a shared
//! nonce counter, and counters for the hashrate report.
//!
//! Setting a new job bumps a generation number; every lane checks it
//! between nonces (through the `cancelled` callback) and moves to the new
//! job at once. Nonces for each job start at a random offset, so several
//! worker processes mining the same work rarely search the same nonces.
//!
//! Under puzzle v2, a lane that can multiply chosen matrices takes a piece
//! of a useful job ([`crate::jobs`]) whenever one waits, one nonce per
//! piece, and searches seeded nonces only when none does.

use crate::{
	backend::{Job, Lane, Winner},
	chosen,
	jobs::Jobs,
};
use mlpow_primitives::PUZZLE_V2;
use mlpow_stratum::NoncePrefix;
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
	/// The useful job whose piece won, if any.
	pub job: Option<u64>,
}

/// Totals since start; the reporter differences them over time.
#[derive(Default)]
pub struct Counters {
	pub nonces: AtomicU64,
	pub tickets: AtomicU64,
	pub macs: AtomicU64,
	pub found: AtomicU64,
	/// Winners not queued: [`FOUND_QUEUE`] were already waiting, or the
	/// connection's task had ended.
	pub dropped: AtomicU64,
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
	/// A pool's nonce prefix: every nonce searched carries it.
	prefix: Mutex<Option<NoncePrefix>>,
	stop: AtomicBool,
	counters: Counters,
	jobs: Arc<Jobs>,
}

pub struct Miner {
	shared: Arc<Shared>,
	threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Miner {
	/// Starts one thread per lane, taking useful work from `jobs` first.
	/// Winners go to `found`.
	pub fn start(lanes: Vec<Box<dyn Lane>>, jobs: Arc<Jobs>, found: mpsc::Sender<Found>) -> Self {
		let shared = Arc::new(Shared {
			slot: Mutex::new(Slot { job: None, generation: 0 }),
			wake: Condvar::new(),
			generation: AtomicU64::new(0),
			next_nonce: AtomicU64::new(0),
			prefix: Mutex::new(None),
			stop: AtomicBool::new(false),
			counters: Counters::default(),
			jobs,
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
		Self { shared, threads: Mutex::new(threads) }
	}

	/// Replaces the job (or, with `None`, pauses every lane).
	pub fn set_job(&self, job: Option<Job>) {
		let mut slot = self.shared.slot.lock().unwrap_or_else(|p| p.into_inner());
		// A halted miner (a session closing) takes no new work.
		let job = job.filter(|_| !self.shared.stop.load(Ordering::SeqCst));
		if slot.job.as_deref() == job.as_ref() {
			return;
		}
		self.shared.jobs.set_chain(job.as_ref().map(|j| j.params));
		slot.job = job.map(Arc::new);
		slot.generation += 1;
		let start = match *self.shared.prefix.lock().unwrap_or_else(|p| p.into_inner()) {
			// A random start in the first half of the prefix's nonces, so
			// that counting up never leaves it.
			Some(prefix) => prefix.first() | (random_u64() >> (prefix.bits + 1)),
			None => random_u64() >> 1,
		};
		self.shared.next_nonce.store(start, Ordering::SeqCst);
		self.shared.generation.store(slot.generation, Ordering::SeqCst);
		self.shared.wake.notify_all();
	}

	/// Mines only nonces that carry `prefix` (a pool's), from the next job
	/// on; `None` for any nonce.
	pub fn set_nonce_prefix(&self, prefix: Option<NoncePrefix>) {
		*self.shared.prefix.lock().unwrap_or_else(|p| p.into_inner()) = prefix;
	}

	/// The version of the job being mined, if any.
	pub fn current_version(&self) -> Option<u64> {
		self.shared.slot.lock().unwrap_or_else(|p| p.into_inner()).job.as_ref().map(|j| j.version)
	}

	/// The work being mined, if any.
	pub fn current_job(&self) -> Option<Arc<Job>> {
		self.shared.slot.lock().unwrap_or_else(|p| p.into_inner()).job.clone()
	}

	/// A nonce of the current work that no lane will search: for a piece
	/// mined outside the lanes ([`crate::session`]).
	pub fn take_nonce(&self) -> u64 {
		self.shared.next_nonce.fetch_add(1, Ordering::SeqCst)
	}

	/// Counts a winner found outside the lanes and queues it for the node.
	pub fn found(&self, found: &mpsc::Sender<Found>, who: &str, f: Found) {
		send(found, who, f, &self.shared.counters);
	}

	/// Tells every lane to stop, without waiting for them (see [`Self::stop`]).
	pub fn halt(&self) {
		self.shared.stop.store(true, Ordering::SeqCst);
		let _slot = self.shared.slot.lock().unwrap_or_else(|p| p.into_inner());
		self.shared.wake.notify_all();
	}

	/// The useful jobs the lanes take pieces from.
	pub fn jobs(&self) -> &Arc<Jobs> {
		&self.shared.jobs
	}

	pub fn counters(&self) -> &Counters {
		&self.shared.counters
	}

	/// Stops every lane and waits for them.
	pub fn stop(&self) {
		self.shared.stop.store(true, Ordering::SeqCst);
		self.set_job(None);
		self.shared.wake.notify_all();
		let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
		for t in threads {
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
		let useful = job.params.version == PUZZLE_V2 && lane.can_multiply();
		if useful {
			if let Some(piece) = shared.jobs.take(&job.params) {
				mine_piece(&mut *lane, &shared, &job, generation, piece, &found);
				continue;
			}
		}
		let batch = lane.batch_size(&job.params).max(1);
		let first = shared.next_nonce.fetch_add(batch, Ordering::SeqCst);
		// A seeded batch gives way to new work, and to a job's pieces.
		let cancelled = || {
			shared.generation.load(Ordering::Relaxed) != generation
				|| shared.stop.load(Ordering::Relaxed)
				|| (useful && shared.jobs.work_waiting())
		};
		match lane.search(&job, first..first.saturating_add(batch), &cancelled) {
			Ok(report) => {
				let c = &shared.counters;
				c.nonces.fetch_add(report.nonces_done, Ordering::Relaxed);
				c.tickets.fetch_add(report.nonces_done * job.params.tickets_per_nonce(), Ordering::Relaxed);
				c.macs.fetch_add(report.nonces_done * job.params.macs_per_nonce(), Ordering::Relaxed);
				for winner in report.winners {
					send(&found, &name, Found { version: job.version, number: job.number, winner, job: None }, c);
				}
			}
			Err(e) => {
				// A job this lane cannot mine (say, parameters too large for
				// its memory): say so and wait for the next job.
				log::error!("{name}: cannot mine work {}: {e:#}", job.version);
				wait_for_new_work(&shared, generation);
			}
		}
	}
}

/// Mines one piece of a useful job at the next nonce and hands its product
/// to the job. The product is exact whatever the header, so a piece
/// finishes even when new work arrives meanwhile (its tickets alone go stale).
fn mine_piece(
	lane: &mut dyn Lane,
	shared: &Shared,
	work: &Job,
	generation: u64,
	piece: crate::jobs::Piece,
	found: &mpsc::Sender<Found>,
) {
	let name = lane.name();
	let nonce = shared.next_nonce.fetch_add(1, Ordering::SeqCst);
	let crate::jobs::Piece { at, a, bt } = piece;
	let p = &work.params;
	let mined = chosen::commit_a(p, a).and_then(|a| Ok((a, chosen::commit_bt(p, bt)?)));
	match mined.and_then(|(a, bt)| lane.multiply(work, a, bt, nonce)) {
		Ok(out) => {
			let c = &shared.counters;
			c.nonces.fetch_add(1, Ordering::Relaxed);
			c.tickets.fetch_add(work.params.tickets_per_nonce(), Ordering::Relaxed);
			c.macs.fetch_add(work.params.macs_per_nonce(), Ordering::Relaxed);
			shared.jobs.complete(&at, &out.product, out.winners.len() as u64);
			for winner in out.winners {
				log::info!("{name}: job {}'s piece won a ticket (nonce {nonce})", at.job);
				let f = Found { version: work.version, number: work.number, winner, job: Some(at.job) };
				send(found, &name, f, c);
			}
		}
		Err(e) => {
			log::error!("{name}: cannot mine job {}'s piece under work {}: {e:#}", at.job, work.version);
			shared.jobs.give_back(at);
			wait_for_new_work(shared, generation);
		}
	}
}

/// Queues a winner for the node connection. Bounded: 64 seals waiting
/// means the connection is down or stuck (a block takes one seal), and
/// every seal waiting is for work that has moved on by the time it
/// recovers; refuse more rather than grow without limit.
fn send(found: &mpsc::Sender<Found>, name: &str, f: Found, counters: &Counters) {
	counters.found.fetch_add(1, Ordering::Relaxed);
	match found.try_send(f) {
		Ok(()) => {}
		Err(mpsc::error::TrySendError::Closed(_)) => {
			counters.dropped.fetch_add(1, Ordering::Relaxed);
		}
		Err(mpsc::error::TrySendError::Full(_)) => {
			// Said at the 1st, 2nd, 4th, 8th... drop: a long outage (or an
			// offline miner nobody drains) is not a warning per seal.
			let dropped = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
			if dropped.is_power_of_two() {
				log::warn!("{name}: {FOUND_QUEUE} found seals are waiting to be sent; dropped {dropped} so far")
			}
		}
	}
}

/// Blocks until the work changes (or the miner stops).
fn wait_for_new_work(shared: &Shared, generation: u64) {
	let mut slot = shared.slot.lock().unwrap_or_else(|p| p.into_inner());
	while slot.generation == generation && !shared.stop.load(Ordering::SeqCst) {
		slot = shared.wake.wait(slot).unwrap_or_else(|p| p.into_inner());
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
		let miner = Miner::start(cpu::lanes(2), Arc::new(Jobs::new(0)), tx);
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

	/// Under a pool's nonce prefix every seal the lanes find, and every
	/// nonce handed out for a piece, carries the prefix.
	#[test]
	fn a_nonce_prefix_keeps_every_nonce_inside_it() {
		let (tx, mut rx) = mpsc::channel(FOUND_QUEUE);
		let miner = Miner::start(cpu::lanes(2), Arc::new(Jobs::new(0)), tx);
		let prefix = NoncePrefix::new(0xbeef, 16).unwrap();
		miner.set_nonce_prefix(Some(prefix));
		let params = ChallengeParams::DEV;
		let job = Job {
			version: 1,
			pre_hash: [4; 32],
			number: 1,
			difficulty: U256::from(50),
			params,
			weights_seed: weights_seed(&[7; 32], 0),
		};
		miner.set_job(Some(job));
		for _ in 0..5 {
			let f = rx.blocking_recv().expect("miner stopped");
			assert!(prefix.contains(f.winner.id.nonce), "nonce {:#x}", f.winner.id.nonce);
		}
		assert!(prefix.contains(miner.take_nonce()));
		miner.stop();
	}

	/// Useful mode end to end inside the worker: a job's pieces are mined
	/// before seeded nonces, its product is exact, and its winners carry
	/// openings that verify as a chosen-matrix seal.
	#[test]
	fn a_useful_job_is_mined_exactly_and_its_winners_open_its_matrices() {
		use crate::jobs::{input::Matrices, State};
		let (tx, mut rx) = mpsc::channel(FOUND_QUEUE);
		let jobs = Arc::new(Jobs::new(1 << 24));
		let (rows, depth, cols) = (50, 100, 70);
		let a: Vec<i8> = (0..rows * depth).map(|i| ((i * 29 + 1) % 128) as i8 - 64).collect();
		let bt: Vec<i8> = (0..cols * depth).map(|i| ((i * 13 + 9) % 128) as i8 - 64).collect();
		let want: Vec<i32> = (0..rows * cols)
			.map(|e| (0..depth).map(|z| a[e / cols * depth + z] as i32 * bt[e % cols * depth + z] as i32).sum())
			.collect();
		let id = jobs.submit(Matrices { rows, depth, cols, a, bt }, None).unwrap().id;
		let miner = Miner::start(cpu::lanes(2), jobs.clone(), tx);
		let params = ChallengeParams::DEV_V2;
		let seed = weights_seed(&[7; 32], 0);
		// Difficulty 2: half of all tickets win, so every piece has winners.
		let work =
			Job { version: 5, pre_hash: [3; 32], number: 9, difficulty: U256::from(2), params, weights_seed: seed };
		miner.set_job(Some(work.clone()));
		let f = loop {
			let f = rx.blocking_recv().expect("miner stopped");
			if f.job == Some(id) {
				break f;
			}
		};
		let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
		while jobs.status(id).unwrap().state != State::Done {
			assert!(std::time::Instant::now() < deadline, "the job never finished: {:?}", jobs.status(id));
			std::thread::sleep(std::time::Duration::from_millis(5));
		}
		miner.stop();
		// 1 x 2 x 2 pieces of 64 x 64 x 64.
		let status = jobs.status(id).unwrap();
		assert_eq!(status.pieces_done, 4);
		assert!(status.tickets_won >= 4, "{status:?}");
		assert_eq!(jobs.product(id).unwrap(), (rows, cols, want));
		assert!(f.winner.seal.len() > 17, "a job's seal carries its openings");
		let verified = mlpow_primitives::verify(&params, &seed, &work.pre_hash, work.difficulty, &f.winner.seal)
			.expect("a job's winning seal verifies");
		assert_eq!(verified.seal, f.winner.id);
	}

	#[test]
	fn a_new_job_replaces_the_old_one_at_once() {
		let (tx, mut rx) = mpsc::channel(FOUND_QUEUE);
		let miner = Miner::start(cpu::lanes(1), Arc::new(Jobs::new(0)), tx);
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
