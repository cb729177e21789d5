//! The CPU backend: one lane per thread, each running the reference miner of
//! `mlpow-primitives` (the best exact int8 kernel this CPU has: AVX-512
//! VNNI, AVX2, or portable). All lanes share one copy of the epoch weights
//! (v1), or of the header's seeded matrices (v2).

use crate::backend::{AddInto, Job, Lane, Multiplied, SearchReport, Winner};
use mlpow_primitives::{
	kernel::Kernel,
	mine::{Buffers, EpochWeights, Search},
	v2::{self, mine::Operand},
	ChallengeParams, Hash32, PUZZLE_V2,
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

/// Puzzle v2's seeded matrices of the header being mined, shared by all
/// lanes: they depend on the header (`pre_hash`), so they are made again for
/// every new piece of work, once.
#[derive(Default, Clone)]
struct SharedSeededJob(Arc<Mutex<Option<SeededFor>>>);

/// A header's `pre_hash` and the seeded v2 matrices made for it.
type SeededFor = (Hash32, Arc<v2::Job>);

impl SharedSeededJob {
	fn get(&self, job: &Job) -> anyhow::Result<Arc<v2::Job>> {
		let mut slot = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		if let Some((pre_hash, j)) = slot.as_ref() {
			if *pre_hash == job.pre_hash && j.params() == &job.params && j.commitments().bt == job.weights_seed {
				return Ok(j.clone());
			}
		}
		let made = Arc::new(
			v2::Job::seeded(&job.params, &job.pre_hash, &job.weights_seed)
				.map_err(|e| anyhow::anyhow!("v2 job: {e}"))?,
		);
		*slot = Some((job.pre_hash, made.clone()));
		Ok(made)
	}
}

/// Refuses parameters whose buffers (what the lanes share plus every
/// thread's own) exceed the memory available now: allocating them anyway
/// would abort the process or wake the OOM killer instead of saying why.
/// The parameters are validated first, so the sizes cannot overflow.
fn check_memory(p: &ChallengeParams, threads: usize) -> anyhow::Result<()> {
	p.validate().map_err(|e| anyhow::anyhow!("challenge parameters: {e}"))?;
	let need = working_set(p, threads);
	match available_memory() {
		Some(free) if need > free => anyhow::bail!(
			"parameters {}x{}x{} need {} MiB for {threads} CPU thread(s), {} MiB are available",
			p.m,
			p.k,
			p.n,
			need >> 20,
			free >> 20
		),
		_ => Ok(()),
	}
}

/// What `threads` lanes hold at once at valid parameters `p`, in bytes.
///
/// v1: the shared `Bt`, each thread's `A` and `C`.
///
/// v2 (`mlpow_primitives::v2`): shared, the header's seeded job (`A`, `Bt`
/// and their transposes). Each thread, at its largest, runs a useful
/// piece: the piece's own job (its `A` and `Bt`, moved in, their
/// transposes, two small Merkle trees), a miner (noisy `A'` and `Bt'`,
/// `C`, a state per tile, the fused kernel's scratch: for the AVX2 kernel
/// `A'` and `Bt'` as 16-bit pairs (twice their bytes), a panel of `Bt'`,
/// a tile column's folds, which is more than the VNNI kernel's every
/// panel of `Bt'` (its bytes) and folds of a block of rows; the nonce's
/// noise factors and selections), and the denoising's temporaries (column
/// sums and their transposes, 32-bit, `4r` per row of either side; the two
/// 16-bit factor matrices of inner dimension up to `4r`; their product's
/// packed panels, `4nr`; the product, `4mn`, which a caller's block may
/// not need). Seeded mining needs less.
fn working_set(p: &ChallengeParams, threads: usize) -> u64 {
	let (m, k, n) = (p.m as u64, p.k as u64, p.n as u64);
	let threads = threads as u64;
	if p.version != PUZZLE_V2 {
		return n * k + threads * (m * k + m * n * 4);
	}
	let (r, t, sides) = (p.r as u64, p.t as u64, m + n);
	let job = 2 * sides * k;
	let merkle = 2 * 32 * sides.div_ceil(t);
	let scratch = 2 * sides * k + 4 * 16 * k + 4 * m * t;
	let miner = sides * k + m * n * 4 + p.tickets_per_nonce() * 64 + scratch + sides * r + 2 * k;
	let denoise = 2 * (4 * r * sides) + n * r + 2 * (2 * sides * 4 * r) + 4 * n * r + m * n * 4;
	job + threads * (job + merkle + miner + denoise)
}

/// `MemAvailable` from /proc/meminfo (Linux), in bytes.
fn available_memory() -> Option<u64> {
	let info = std::fs::read_to_string("/proc/meminfo").ok()?;
	let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
	let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
	Some(kib * 1024)
}

pub struct CpuLane {
	index: usize,
	/// How many CPU lanes share the machine's memory.
	threads: usize,
	shared: SharedWeights,
	seeded: SharedSeededJob,
	/// This thread's `A` and `C`, kept from one batch to the next.
	buffers: Option<Buffers>,
	/// The same for puzzle v2 (noisy operands, product, scratch), kept
	/// from one batch or useful piece to the next.
	v2_buffers: Option<v2::Buffers>,
	/// The parameters whose memory was last checked. Checked again only
	/// when they change: once the buffers are held, `MemAvailable` no
	/// longer counts them, and re-checking would refuse what already runs.
	memory_checked: Option<ChallengeParams>,
}

/// `threads` CPU lanes sharing one weights cache.
pub fn lanes(threads: usize) -> Vec<Box<dyn Lane>> {
	let (shared, seeded) = (SharedWeights::default(), SharedSeededJob::default());
	log::info!("CPU backend: {threads} thread(s), kernel {:?}", Kernel::best());
	(0..threads)
		.map(|index| {
			Box::new(CpuLane {
				index,
				threads,
				shared: shared.clone(),
				seeded: seeded.clone(),
				buffers: None,
				v2_buffers: None,
				memory_checked: None,
			}) as Box<dyn Lane>
		})
		.collect()
}

impl CpuLane {
	/// Puzzle v2 on the header's seeded matrices: noise, the fused product
	/// with every tile's transcript, and the tickets, per nonce.
	fn search_v2(
		&mut self,
		job: &Job,
		nonces: Range<u64>,
		cancelled: &dyn Fn() -> bool,
	) -> anyhow::Result<SearchReport> {
		let matrices = self.seeded.get(job)?;
		let buffers = self.v2_buffers.take().unwrap_or_default();
		let mut miner = v2::Miner::with_buffers(&matrices, &job.pre_hash, job.difficulty, buffers)
			.map_err(|e| anyhow::anyhow!("bad job: {e}"))?;
		let mut report = SearchReport::default();
		for nonce in nonces {
			if cancelled() {
				break;
			}
			let wins = miner.try_nonce(nonce);
			report.winners.extend(wins.into_iter().map(|w| Winner { id: w.verified.seal, seal: w.seal }));
			report.nonces_done += 1;
		}
		self.v2_buffers = Some(miner.into_buffers());
		Ok(report)
	}

	/// Mines `nonce` of a useful piece (`a` and `bt` committed for
	/// `work`), then hands the miner, which holds the piece's noisy product,
	/// to `exact` to take the exact product from. Returns what `exact`
	/// returned and the winners.
	fn mine_piece<R>(
		&mut self,
		work: &Job,
		(a, bt): (Arc<Operand>, Arc<Operand>),
		nonce: u64,
		exact: impl FnOnce(&v2::Miner) -> anyhow::Result<R>,
	) -> anyhow::Result<(R, Vec<Winner>)> {
		if self.memory_checked != Some(work.params) {
			self.buffers = None;
			self.v2_buffers = None;
			check_memory(&work.params, self.threads)?;
			self.memory_checked = Some(work.params);
		}
		let job = v2::Job::of(&work.params, a, bt).map_err(|e| anyhow::anyhow!("job piece: {e}"))?;
		let buffers = self.v2_buffers.take().unwrap_or_default();
		let mut miner = v2::Miner::with_buffers(&job, &work.pre_hash, work.difficulty, buffers)
			.map_err(|e| anyhow::anyhow!("bad work: {e}"))?;
		let winners =
			miner.try_nonce(nonce).into_iter().map(|w| Winner { id: w.verified.seal, seal: w.seal }).collect();
		let product = exact(&miner);
		self.v2_buffers = Some(miner.into_buffers());
		Ok((product?, winners))
	}
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
		if self.memory_checked != Some(job.params) {
			// Before allocating for new parameters, give back the old buffers
			// so that they count as available.
			self.buffers = None;
			self.v2_buffers = None;
			check_memory(&job.params, self.threads)?;
			self.memory_checked = Some(job.params);
		}
		if job.params.version == PUZZLE_V2 {
			return self.search_v2(job, nonces, cancelled);
		}
		let weights = self.shared.get(&job.params, &job.weights_seed)?;
		let buffers = self.buffers.take().unwrap_or_default();
		let mut search = Search::with_buffers(&weights, &job.pre_hash, job.difficulty, buffers)
			.map_err(|e| anyhow::anyhow!("bad job: {e}"))?;
		let mut report = SearchReport::default();
		for nonce in nonces {
			if cancelled() {
				break;
			}
			report.winners.extend(search.try_nonce(nonce).into_iter().map(|v| Winner::v1(v.seal)));
			report.nonces_done += 1;
		}
		self.buffers = Some(search.into_buffers());
		Ok(report)
	}

	fn can_multiply(&self) -> bool {
		true
	}

	fn multiply(&mut self, work: &Job, a: Arc<Operand>, bt: Arc<Operand>, nonce: u64) -> anyhow::Result<Multiplied> {
		let no_nonce = || anyhow::anyhow!("no nonce was mined");
		let (product, winners) =
			self.mine_piece(work, (a, bt), nonce, |miner| miner.denoised().ok_or_else(no_nonce))?;
		Ok(Multiplied { product, winners })
	}

	fn multiply_into(
		&mut self,
		work: &Job,
		a: Arc<Operand>,
		bt: Arc<Operand>,
		nonce: u64,
		into: AddInto,
	) -> anyhow::Result<Vec<Winner>> {
		let p = &work.params;
		let fits = into.fits(p.m as usize, p.n as usize);
		anyhow::ensure!(
			fits,
			"a {} x {} block does not fit a {} x {} piece or its output",
			into.rows,
			into.cols,
			p.m,
			p.n
		);
		// The exact product is the last step, and one that cannot fail
		// (a nonce was just mined): on any error before it, `into` is untouched.
		let no_nonce = || anyhow::anyhow!("no nonce was mined");
		let ((), winners) =
			self.mine_piece(work, (a, bt), nonce, |miner| miner.add_denoised(into).ok_or_else(no_nonce))?;
		Ok(winners)
	}

	fn plain_gemm_macs_per_sec(&mut self, params: &ChallengeParams, seconds: f64) -> anyhow::Result<f64> {
		let weights = self.shared.get(params, &[0; 32])?;
		let (m, k, n) = (params.m as usize, params.k as usize, params.n as usize);
		// Any activations will do; the kernel's speed does not depend on them.
		let a: Vec<i8> = (0..m * k).map(|i| (i as u32).wrapping_mul(2_654_435_761) as i8).collect();
		let mut c = vec![0i32; m * n];
		let kernel = Kernel::best();
		let start = std::time::Instant::now();
		let mut runs = 0u64;
		while runs == 0 || start.elapsed().as_secs_f64() < seconds {
			kernel.gemm(&a, weights.bt(), m, n, k, &mut c);
			runs += 1;
		}
		Ok((runs * params.macs_per_nonce()) as f64 / start.elapsed().as_secs_f64())
	}
}

#[cfg(test)]
mod tests {
	use super::{check_memory, working_set};
	use mlpow_primitives::ChallengeParams;

	/// v2 counts more than its matrices: the seeded job's transposes, a
	/// useful piece's own job and transposes, the kernel's 16-bit scratch,
	/// the denoised product. At the GPU set's shape that is more than
	/// twice what the check used to count (the matrices, `C`, the states).
	#[test]
	fn the_v2_memory_check_counts_scratch_transposes_and_a_pieces_copies() {
		let p = ChallengeParams::GPU_V2;
		assert!(p.validate().is_ok());
		let (m, k, n) = (p.m as u64, p.k as u64, p.n as u64);
		let old = (m + n) * k + ((m + n) * k + m * n * 4 + p.tickets_per_nonce() * 64);
		let one = working_set(&p, 1);
		assert!(one >= 2 * (m + n) * k + 2 * (m + n) * k + 3 * (m + n) * k + 2 * m * n * 4, "{one}");
		assert!(one > 2 * old, "{one} against {old}");
		// The shared job counts once, the rest per thread.
		assert_eq!(working_set(&p, 3) - working_set(&p, 2), working_set(&p, 2) - working_set(&p, 1));
		assert_eq!(working_set(&p, 1) - (working_set(&p, 2) - working_set(&p, 1)), 2 * (m + n) * k);
	}

	/// Parameters are validated before their sizes are multiplied out (which
	/// would overflow, and panic in a debug build, for these).
	#[test]
	fn the_memory_check_validates_the_parameters_first() {
		let absurd = ChallengeParams { m: u32::MAX, n: u32::MAX, ..ChallengeParams::DEV };
		let err = check_memory(&absurd, 4).unwrap_err().to_string();
		assert!(err.contains("challenge parameters"), "{err}");
	}

	/// What every thread needs counts, not one thread's share: 64 threads
	/// of 16 GiB products are refused on any machine.
	#[test]
	fn the_memory_check_counts_every_thread() {
		let big = ChallengeParams { m: 65_536, k: 256, n: 65_536, t: 16, ..ChallengeParams::DEV };
		assert!(big.validate().is_ok());
		if super::available_memory().is_some() {
			let err = check_memory(&big, 64).unwrap_err().to_string();
			assert!(err.contains("for 64 CPU thread(s)"), "{err}");
		}
	}
}
