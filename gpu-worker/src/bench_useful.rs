//! `--benchmark --bench-job ROWS,DEPTH,COLS`: useful mode without a node,
//! through the job queue ([`run`]) and in the caller's process
//! ([`in_process`]).
//!
//! Jobs of one shape go through the job queue and the mining lanes (pieces,
//! noise, transcript, tickets, denoising, accumulation), in turns with the
//! plain int8 GEMM of the same job shape on as many threads. Both
//! are counted in the job's own multiply-accumulates (`rows * depth *
//! cols`), so the ratio is what mining on the job costs on top of just
//! multiplying it, padding to the puzzle's shape included.

use crate::{
	backend::{Job, Lane},
	jobs::{input::Matrices, JobError, Jobs, State},
	miner::{Miner, FOUND_QUEUE},
	session::{Options, Session, Weight},
};
use mlpow_primitives::{kernel::Kernel, ChallengeParams, PUZZLE_V2, U256};
use std::{
	sync::Arc,
	time::{Duration, Instant},
};

#[derive(Clone, Debug)]
pub struct UsefulConfig {
	/// The puzzle (v2) the pieces are mined at.
	pub params: ChallengeParams,
	/// `[rows, depth, cols]` of each job.
	pub shape: [usize; 3],
	pub seconds: f64,
}

#[derive(Clone, Debug)]
pub struct UsefulResult {
	pub lanes: usize,
	pub jobs: u64,
	pub seconds: f64,
	/// The jobs' multiply-accumulates per second.
	pub job_macs_per_sec: f64,
	/// Multiply-accumulates mined per second, padding included.
	pub mined_macs_per_sec: f64,
	/// The plain GEMM of the job's shape, on as many threads.
	pub gemm_macs_per_sec: f64,
}

impl UsefulResult {
	pub fn ratio(&self) -> f64 {
		self.job_macs_per_sec / self.gemm_macs_per_sec.max(f64::MIN_POSITIVE)
	}
}

impl std::fmt::Display for UsefulResult {
	fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
		writeln!(
			f,
			"useful mode: {} job MAC/s ({} jobs in {:.1} s on {} lanes; {} MAC/s mined, padding included)",
			crate::si(self.job_macs_per_sec),
			self.jobs,
			self.seconds,
			self.lanes,
			crate::si(self.mined_macs_per_sec)
		)?;
		writeln!(f, "plain GEMM: {} MAC/s (the job's shape, as many threads)", crate::si(self.gemm_macs_per_sec))?;
		write!(f, "ratio:      useful mode / plain GEMM = {:.3}", self.ratio())
	}
}

/// A deterministic job of `shape` with values across the whole input range.
fn matrices([rows, depth, cols]: [usize; 3]) -> Matrices {
	let value = |i: usize, salt: usize| ((i.wrapping_mul(2_654_435_761) ^ salt) % 128) as i8 - 64;
	Matrices {
		rows,
		depth,
		cols,
		a: (0..rows * depth).map(|i| value(i, 17)).collect(),
		bt: (0..cols * depth).map(|i| value(i, 91)).collect(),
	}
}

/// Rounds of each side: the two alternate, so that a change in the
/// machine's speed during the run (other tenants, clocks) falls on both.
const ROUNDS: u32 = 4;

/// Runs jobs through `lanes` and the plain GEMM, alternating, for about
/// `seconds` each in all.
pub fn run(lanes: Vec<Box<dyn Lane>>, config: &UsefulConfig) -> anyhow::Result<UsefulResult> {
	let p = config.params;
	p.validate().map_err(|e| anyhow::anyhow!("benchmark parameters: {e}"))?;
	anyhow::ensure!(p.version == PUZZLE_V2, "useful mode mines puzzle v2: give --bench-params M,K,N,T,R");
	anyhow::ensure!(lanes.iter().all(|l| l.can_multiply()), "{} does not run useful jobs", lanes[0].name());
	let threads = lanes.len();
	let [rows, depth, cols] = config.shape;
	let jobs = Arc::new(Jobs::new(3 * Matrices::bytes(rows, depth, cols)));
	// Winners are not the point here: a difficulty no ticket meets.
	let (found, mut found_rx) = tokio::sync::mpsc::channel(FOUND_QUEUE);
	let miner = Miner::start(lanes, jobs.clone(), found);
	let work = Job {
		version: 1,
		pre_hash: *blake3::hash(b"mlpow useful benchmark").as_bytes(),
		number: 1,
		difficulty: U256::MAX,
		params: p,
		weights_seed: [0; 32],
	};
	// A lane that cannot mine a piece (say, parameters too large for its
	// memory) logs why and gives it back: give up after a minute without
	// progress rather than wait forever.
	let wait = |id: u64| -> anyhow::Result<()> {
		let mut progress = (0, Instant::now());
		loop {
			let status = jobs.status(id)?;
			if status.state == State::Done {
				return Ok(());
			}
			if status.pieces_done != progress.0 {
				progress = (status.pieces_done, Instant::now());
			}
			anyhow::ensure!(progress.1.elapsed() < Duration::from_secs(60), "no piece of job {id} finished in 60 s");
			std::thread::sleep(Duration::from_micros(200));
		}
	};
	// One job untimed (buffers, first allocations).
	miner.set_job(Some(work.clone()));
	let first = jobs.submit(matrices(config.shape), None)?.id;
	wait(first)?;
	jobs.remove(first)?;
	miner.set_job(None);

	let round = config.seconds / ROUNDS as f64;
	let (mut done, mut mined, mut useful_secs) = (0u64, 0u64, 0.0);
	let (mut gemm_macs, mut gemm_secs) = (0u64, 0.0);
	for _ in 0..ROUNDS {
		miner.set_job(Some(work.clone()));
		let start = Instant::now();
		// Two jobs in the queue at all times, so that no lane waits between jobs.
		let mut queued = std::collections::VecDeque::new();
		for _ in 0..2 {
			queued.push_back(jobs.submit(matrices(config.shape), None)?.id);
		}
		while let Some(id) = queued.pop_front() {
			wait(id)?;
			mined += jobs.status(id)?.macs_mined;
			jobs.remove(id)?;
			done += 1;
			if start.elapsed().as_secs_f64() < round {
				queued.push_back(jobs.submit(matrices(config.shape), None)?.id);
			}
		}
		useful_secs += start.elapsed().as_secs_f64();
		miner.set_job(None);
		let (macs, secs) = plain_gemm(config.shape, threads, round);
		gemm_macs += macs;
		gemm_secs += secs;
	}
	miner.stop();
	while found_rx.try_recv().is_ok() {}

	let job_macs = (rows * depth * cols) as f64;
	Ok(UsefulResult {
		lanes: threads,
		jobs: done,
		seconds: useful_secs,
		job_macs_per_sec: done as f64 * job_macs / useful_secs,
		mined_macs_per_sec: mined as f64 / useful_secs,
		gemm_macs_per_sec: gemm_macs as f64 / gemm_secs,
	})
}

/// The same jobs multiplied in the caller's process, on the caller's
/// thread ([`Session::matmul`]: pieces, noise, transcript, tickets,
/// denoising, no queue and no copy to another process), in turns with the
/// plain GEMM of the job's shape on one thread: once with `B` given anew
/// each call, once with `B` registered as a [`Weight`] (a model's layer).
#[derive(Clone, Debug)]
pub struct InProcessResult {
	pub calls: u64,
	pub seconds: f64,
	/// The callers' multiply-accumulates per second, `B` given each call.
	pub macs_per_sec: f64,
	/// The same with `B` registered once.
	pub weight_macs_per_sec: f64,
	/// The share of the MACs computed in mined pieces.
	pub mined_share: f64,
	/// The plain GEMM of the job's shape, one thread.
	pub gemm_macs_per_sec: f64,
}

impl InProcessResult {
	/// `B` given each call, against the plain GEMM.
	pub fn ratio(&self) -> f64 {
		self.macs_per_sec / self.gemm_macs_per_sec.max(f64::MIN_POSITIVE)
	}

	/// `B` registered, against the plain GEMM.
	pub fn weight_ratio(&self) -> f64 {
		self.weight_macs_per_sec / self.gemm_macs_per_sec.max(f64::MIN_POSITIVE)
	}
}

impl std::fmt::Display for InProcessResult {
	fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
		writeln!(
			f,
			"in-process: {} MAC/s with B given each call, {} MAC/s with B registered ({} calls in {:.1} s on the \
			 caller's thread; {:.0}% of the MACs mined)",
			crate::si(self.macs_per_sec),
			crate::si(self.weight_macs_per_sec),
			self.calls,
			self.seconds,
			self.mined_share * 100.0
		)?;
		writeln!(f, "plain GEMM: {} MAC/s (the job's shape, one thread)", crate::si(self.gemm_macs_per_sec))?;
		write!(
			f,
			"ratio:      in-process / plain GEMM = {:.3} (B each call), {:.3} (B registered)",
			self.ratio(),
			self.weight_ratio()
		)
	}
}

/// Runs [`Session::matmul`] (`B` each call), [`Session::matmul_by`] (`B`
/// registered) on `multiplier` and the plain GEMM, in turns, for about
/// `seconds` each in all.
pub fn in_process(multiplier: Box<dyn Lane>, config: &UsefulConfig) -> anyhow::Result<InProcessResult> {
	let p = config.params;
	p.validate().map_err(|e| anyhow::anyhow!("benchmark parameters: {e}"))?;
	anyhow::ensure!(p.version == PUZZLE_V2, "useful mode mines puzzle v2: give --bench-params M,K,N,T,R");
	anyhow::ensure!(multiplier.can_multiply(), "{} does not run useful jobs", multiplier.name());
	let (session, mut found) = Session::offline(Options::new(multiplier));
	let work = Job {
		version: 1,
		pre_hash: *blake3::hash(b"mlpow in-process benchmark").as_bytes(),
		number: 1,
		difficulty: U256::MAX,
		params: p,
		weights_seed: [0; 32],
	};
	session.miner().set_job(Some(work));
	let m = matrices(config.shape);
	let weight = Weight::new(m.depth, m.cols, m.bt.clone())?;
	// Untimed: buffers, first allocations, the weight's pieces committed.
	session.matmul(&m)?;
	session.matmul_by(&m.a, m.rows, &weight)?;
	let before = session.stats();
	let round = config.seconds / ROUNDS as f64;
	let (mut each, mut registered) = ((0u64, 0.0), (0u64, 0.0));
	let (mut gemm_macs, mut gemm_secs) = (0u64, 0.0);
	let timed = |side: &mut (u64, f64), call: &dyn Fn() -> Result<Vec<i32>, JobError>| -> anyhow::Result<()> {
		let start = Instant::now();
		while start.elapsed().as_secs_f64() < round {
			call()?;
			side.0 += 1;
		}
		side.1 += start.elapsed().as_secs_f64();
		Ok(())
	};
	for _ in 0..ROUNDS {
		timed(&mut each, &|| session.matmul(&m))?;
		timed(&mut registered, &|| session.matmul_by(&m.a, m.rows, &weight))?;
		let (macs, s) = plain_gemm(config.shape, 1, round);
		gemm_macs += macs;
		gemm_secs += s;
	}
	while found.try_recv().is_ok() {}
	let after = session.stats();
	let macs = after.macs - before.macs;
	let per_call = (m.rows * m.depth * m.cols) as f64;
	Ok(InProcessResult {
		calls: after.calls - before.calls,
		seconds: each.1 + registered.1,
		macs_per_sec: each.0 as f64 * per_call / each.1,
		weight_macs_per_sec: registered.0 as f64 * per_call / registered.1,
		mined_share: (after.macs_mined - before.macs_mined) as f64 / (macs as f64).max(1.0),
		gemm_macs_per_sec: gemm_macs as f64 / gemm_secs,
	})
}

/// The plain product of the job's shape, rows split across `threads`, all
/// running for about `seconds`, with the best int8 kernel this CPU has.
/// Returns the multiply-accumulates done and the seconds taken.
fn plain_gemm(shape: [usize; 3], threads: usize, seconds: f64) -> (u64, f64) {
	let [rows, depth, cols] = shape;
	let m = matrices(shape);
	let kernel = Kernel::best();
	let band = rows.div_ceil(threads);
	let start = Instant::now();
	let macs: u64 = std::thread::scope(|scope| {
		let handles: Vec<_> =
			m.a.chunks(band * depth)
				.map(|a| {
					let bt = &m.bt;
					scope.spawn(move || {
						let band_rows = a.len() / depth;
						let mut c = vec![0i32; band_rows * cols];
						let mut runs = 0u64;
						while runs == 0 || start.elapsed().as_secs_f64() < seconds {
							kernel.gemm(a, bt, band_rows, cols, depth, &mut c);
							runs += 1;
						}
						runs * (band_rows * cols * depth) as u64
					})
				})
				.collect();
		handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
	});
	(macs, start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn the_useful_benchmark_runs_jobs_and_compares() {
		let config = UsefulConfig { params: ChallengeParams::DEV_V2, shape: [100, 130, 70], seconds: 0.3 };
		let r = run(crate::cpu::lanes(1), &config).unwrap();
		assert!(r.jobs > 0 && r.job_macs_per_sec > 0.0 && r.gemm_macs_per_sec > 0.0, "{r:?}");
		// Padding: 2 x 2 x 3 pieces of 64^3 for a 100 x 130 x 70 job.
		assert!(r.mined_macs_per_sec > r.job_macs_per_sec);
		let text = r.to_string();
		assert!(text.contains("job MAC/s") && text.contains("ratio"), "{text}");
		let v1 = UsefulConfig { params: ChallengeParams::DEV, ..config };
		assert!(run(crate::cpu::lanes(1), &v1).unwrap_err().to_string().contains("puzzle v2"));
	}

	#[test]
	fn the_in_process_benchmark_mines_and_compares() {
		let config = UsefulConfig { params: ChallengeParams::DEV_V2, shape: [128, 124, 128], seconds: 0.3 };
		let lane = || crate::cpu::lanes(1).pop().unwrap();
		let r = in_process(lane(), &config).unwrap();
		assert!(
			r.calls > 0 && r.macs_per_sec > 0.0 && r.weight_macs_per_sec > 0.0 && r.gemm_macs_per_sec > 0.0,
			"{r:?}"
		);
		assert_eq!(r.mined_share, 1.0, "2 x 2 x 2 full pieces: all mined");
		assert!(r.to_string().contains("in-process / plain GEMM"), "{r}");
		let v1 = UsefulConfig { params: ChallengeParams::DEV, ..config };
		assert!(in_process(lane(), &v1).unwrap_err().to_string().contains("puzzle v2"));
	}
}
