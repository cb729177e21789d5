//! The miner as a library: a program that multiplies int8 matrices anyway
//! (a model's layers) mines with its own products, in its own process.
//!
//! A [`Session`] keeps a connection to the node in the background (the work
//! subscription, seal submission, reconnects: [`crate::node`]) and, if
//! asked, seeded-mining lanes ([`crate::miner`]). [`Session::matmul`] takes
//! the caller's matrices, cuts the product into the puzzle's pieces
//! ([`crate::jobs::plan`]), mines each piece as one chosen-mode nonce of
//! the current work on the session's multiplier (the caller's thread: no
//! queue, no copy to another process), checks its tickets, queues winners
//! for the node, and returns the exact product.
//!
//! A model never waits for the chain: without work (no node, a v1 chain,
//! between reconnects), or for a piece too small to be worth a nonce, or
//! when the multiplier fails, the product is computed plainly, at once, and
//! the statistics say what mined and what did not.
//!
//! **Small products.** A piece is mined only when the caller's data fills
//! at least [`Options::min_fill`] of the puzzle's `m x n x k` (default
//! one half): a nonce costs the whole puzzle-sized product, so mining a
//! decode step's single row would multiply the model's cost by `m`. The
//! rest of such a call, and every call smaller than that, is multiplied
//! plainly and counted in [`Stats::macs_plain`], unless small calls that
//! share a registered weight are packed into one piece
//! ([`Options::pack_window`], [`pack`]).

use crate::{
	backend::{AddInto, Job, Lane},
	chosen,
	jobs::{
		input::Matrices,
		plan::{add_plain_product, padded, salt_a, Block, Out, PuzzleShape, Salt},
		JobError, Jobs,
	},
	miner::{Found, Miner, FOUND_QUEUE},
	node::Outcomes,
};
use mlpow_primitives::PUZZLE_V2;
use serde::Serialize;
use std::{
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Mutex, TryLockError,
	},
	time::{Duration, Instant},
};
use tokio::sync::mpsc;

mod device;
mod pack;
mod weight;
pub use weight::Weight;

/// Where a session's work comes from, and where its winners go.
#[derive(Clone, Debug)]
pub enum Source {
	/// A node's mining RPC (`ws://`): winners are blocks.
	Node(String),
	/// Pools (the first that answers; the rest are fallbacks)
	/// over the mlpow Stratum protocol, as `user` (`ADDRESS.WORKER`):
	/// winners are shares.
	Pool { pools: crate::pool::Pools, user: String },
}

/// How a session mines.
pub struct Options {
	/// Multiplies the callers' pieces (and mines them): a CPU lane, or a GPU
	/// lane on the caller's device. Without one, `matmul` only multiplies
	/// plainly (the worker binary, which mines with its lanes alone).
	pub multiplier: Option<Box<dyn Lane>>,
	/// Lanes that mine seeded nonces in the background while the callers
	/// are not multiplying (none for a model that wants its cores).
	pub background: Vec<Box<dyn Lane>>,
	/// Bytes the background lanes' job queue may hold (the worker's job API
	/// serves it; 0 when nothing submits jobs).
	pub job_memory: u64,
	/// The least share of a puzzle piece a caller's data must fill for the
	/// piece to be mined (module docs, "Small products").
	pub min_fill: f64,
	/// How long a small call with a registered weight waits for others with
	/// the same weight to share a piece with ([`pack`]); zero: never.
	pub pack_window: Duration,
}

impl Options {
	/// One multiplier, nothing in the background, pieces at least half full.
	pub fn new(multiplier: Box<dyn Lane>) -> Self {
		Self {
			multiplier: Some(multiplier),
			background: Vec::new(),
			job_memory: 0,
			min_fill: 0.5,
			pack_window: Duration::ZERO,
		}
	}

	/// The worker's session: `lanes` mine in the background, seeded nonces
	/// and the pieces of jobs queued in `job_memory` bytes.
	pub fn worker(lanes: Vec<Box<dyn Lane>>, job_memory: u64) -> Self {
		Self { multiplier: None, background: lanes, job_memory, min_fill: 0.5, pack_window: Duration::ZERO }
	}
}

/// What the session's `matmul` calls did, and what became of their tickets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
	/// `matmul` calls answered.
	pub calls: u64,
	/// Of those, the ones answered from a product shared with other calls
	/// (packed: [`Options::pack_window`]).
	pub calls_packed: u64,
	/// Multiply-accumulates the callers asked for (`rows * depth * cols`).
	pub macs: u64,
	/// Of those, the ones computed in mined pieces.
	pub macs_mined: u64,
	/// Of those, the ones computed plainly (no work, too small, or the
	/// multiplier failed).
	pub macs_plain: u64,
	/// Nonces mined (one a piece).
	pub nonces: u64,
	/// Tickets checked.
	pub tickets: u64,
	/// Winning tickets, each queued for the node as a seal.
	pub winners: u64,
	/// Seals the node accepted as blocks: from the calls' pieces and from
	/// the background lanes alike (the node's answers are per session).
	/// Mining for a pool: the shares the pool accepted.
	pub blocks_accepted: u64,
	/// Seals that arrived after the node had moved to new work.
	pub stale: u64,
	/// Seals the node refused.
	pub rejected: u64,
	/// Winners (of the calls and the background lanes) not sent because
	/// 64 were already waiting: the connection was down or slow, or a
	/// share difficulty far too low.
	pub dropped: u64,
	/// Winners never sent or never answered (see [`Outcomes::unsent`]).
	pub unsent: u64,
}

#[derive(Default)]
struct Counters {
	calls: AtomicU64,
	calls_packed: AtomicU64,
	macs: AtomicU64,
	macs_mined: AtomicU64,
	macs_plain: AtomicU64,
	nonces: AtomicU64,
	tickets: AtomicU64,
	winners: AtomicU64,
}

/// A node connection and a multiplier that mines the callers' products.
pub struct Session {
	miner: Arc<Miner>,
	outcomes: Arc<Outcomes>,
	found: mpsc::Sender<Found>,
	multiplier: Mutex<Option<Box<dyn Lane>>>,
	/// Whether the multiplier mines chosen matrices (read without its lock).
	multiplier_mines: bool,
	salt: Salt,
	min_fill: f64,
	pack_window: Duration,
	packer: pack::Packer,
	counters: Counters,
	node: Mutex<Option<tokio::task::JoinHandle<()>>>,
	/// The session's own runtime, when the caller gave it none.
	runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl Session {
	/// Connects to the node at `url` (`ws://`) in the background, on a
	/// runtime of its own (one thread), and keeps reconnecting whenever the
	/// node goes away. Returns at once: `matmul` multiplies plainly until
	/// the first work arrives.
	pub fn connect(url: &str, options: Options) -> anyhow::Result<Self> {
		Self::start(Source::Node(url.to_string()), options)
	}

	/// [`Self::connect`] for any source: a node, or pools.
	pub fn start(source: Source, options: Options) -> anyhow::Result<Self> {
		let runtime = tokio::runtime::Builder::new_multi_thread()
			.worker_threads(1)
			.thread_name("mlpow-session")
			.enable_all()
			.build()?;
		let session = Self::start_on(runtime.handle(), source, options);
		*lock(&session.runtime) = Some(runtime);
		Ok(session)
	}

	/// [`Self::connect`] on the caller's runtime.
	pub fn connect_on(runtime: &tokio::runtime::Handle, url: &str, options: Options) -> Self {
		Self::start_on(runtime, Source::Node(url.to_string()), options)
	}

	/// A session that gets its work from `source`, on the caller's runtime.
	pub fn start_on(runtime: &tokio::runtime::Handle, source: Source, options: Options) -> Self {
		let (session, found) = Self::offline(options);
		let (miner, outcomes) = (session.miner.clone(), session.outcomes.clone());
		*lock(&session.node) = Some(match source {
			Source::Node(url) => runtime.spawn(crate::node::run(url, miner, found, outcomes)),
			Source::Pool { pools, user } => runtime.spawn(crate::pool::run(pools, user, miner, found, outcomes)),
		});
		session
	}

	/// A session without a node: the caller sets the work
	/// (`miner().set_job`) and receives the winners (benchmarks, tests).
	pub fn offline(options: Options) -> (Self, mpsc::Receiver<Found>) {
		let (tx, rx) = mpsc::channel(FOUND_QUEUE);
		let jobs = Arc::new(Jobs::new(options.job_memory));
		let miner = Arc::new(Miner::start(options.background, jobs, tx.clone()));
		let session = Self {
			miner,
			outcomes: Arc::new(Outcomes::default()),
			found: tx,
			multiplier_mines: options.multiplier.as_ref().is_some_and(|m| m.can_multiply()),
			multiplier: Mutex::new(options.multiplier),
			salt: Salt::new(),
			min_fill: options.min_fill,
			pack_window: options.pack_window,
			packer: pack::Packer::default(),
			counters: Counters::default(),
			node: Mutex::new(None),
			runtime: Mutex::new(None),
		};
		(session, rx)
	}

	/// The mining loop: the current work, the background lanes, the job queue.
	pub fn miner(&self) -> &Arc<Miner> {
		&self.miner
	}

	/// What the node answered to the seals sent so far.
	pub fn outcomes(&self) -> &Arc<Outcomes> {
		&self.outcomes
	}

	/// Ends the session: its winners are sent (see [`Self::close`]), the
	/// node connection closes, and the background lanes stop and are
	/// waited for.
	pub fn stop(self) {
		self.close(DROP_GRACE);
		self.miner.stop();
	}

	/// The exact product `A * B` of `matrices` (`A` is `rows x depth`, `Bt`
	/// is `B` transposed, `cols x depth`; values in `-64..=63`), `rows x
	/// cols` row-major, mined on the current work where that is worth it.
	/// (`B` is committed for this call alone: a `B` used again is a
	/// [`Weight`], for [`Self::matmul_by`].)
	pub fn matmul(&self, matrices: &Matrices) -> Result<Vec<i32>, JobError> {
		let Matrices { rows, depth, cols, a, bt } = matrices;
		check_depth(*depth)?;
		check_a(a, *rows, *depth)?;
		let weight = Weight::new(*depth, *cols, bt.clone())?;
		self.answered(self.product(a, *rows, &weight, Busy::Plain))
	}

	/// The exact product `A * B` of `a` (`rows x depth`, row-major) and
	/// `weight`'s `B`, `rows x cols` row-major, mined on the current work
	/// where that is worth it; the weight's pieces are committed on first
	/// use and reused by every later call.
	pub fn matmul_by(&self, a: &[i8], rows: usize, weight: &Weight) -> Result<Vec<i32>, JobError> {
		check_depth(weight.depth())?;
		check_a(a, rows, weight.depth())?;
		if let Some(target) = self.pack_target(rows, weight) {
			let (product, shared) = self.packer.product(self, a, (rows, weight), target, self.pack_window);
			if shared && product.is_ok() {
				self.counters.calls_packed.fetch_add(1, Ordering::Relaxed);
			}
			return self.answered(product);
		}
		self.answered(self.product(a, rows, weight, Busy::Plain))
	}

	/// Counts a call answered (a refused one counts for nothing).
	fn answered(&self, product: Result<Vec<i32>, JobError>) -> Result<Vec<i32>, JobError> {
		if product.is_ok() {
			self.counters.calls.fetch_add(1, Ordering::Relaxed);
		}
		product
	}

	/// The rows a packed batch for `weight` waits for, if a call of `rows`
	/// rows is to be packed: packing is on, there is work to mine, and the
	/// call alone is too small for a piece that more rows would fill.
	fn pack_target(&self, rows: usize, weight: &Weight) -> Option<usize> {
		if self.pack_window.is_zero() {
			return None;
		}
		let shape = PuzzleShape::from(&self.work()?.params);
		pack::rows_to_fill(shape, weight.depth(), weight.cols(), self.min_fill).filter(|&target| rows < target)
	}

	/// [`Self::matmul_by`] of checked operands.
	fn product(&self, a: &[i8], rows: usize, weight: &Weight, busy: Busy) -> Result<Vec<i32>, JobError> {
		let (depth, cols, bt) = (weight.depth(), weight.cols(), weight.bt());
		if rows.checked_mul(cols).is_none_or(|n| n > isize::MAX as usize / 4) {
			return Err(JobError::Invalid(format!("the product of {rows} x {cols} does not fit in memory")));
		}
		// A product too large for this machine's memory is refused, not an abort.
		let mut c = Vec::new();
		c.try_reserve_exact(rows * cols)
			.map_err(|e| JobError::TooLarge(format!("a {rows} x {cols} product of int32: {e}")))?;
		c.resize(rows * cols, 0i32);
		let whole = Block { rows: 0..rows, cols: 0..cols, depth: 0..depth };
		let count = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
		count(&self.counters.macs, whole.macs());
		let Some(first) = self.work() else {
			// No work: the whole product at once, straight into `c`.
			mlpow_primitives::kernel::gemm(a, bt, rows, cols, depth, &mut c);
			count(&self.counters.macs_plain, whole.macs());
			return Ok(c);
		};
		for block in whole.split(PuzzleShape::from(&first.params)) {
			// The work may change between pieces: each is mined on what is
			// current. The multiplier is held for one piece at a time, and a
			// piece that finds it busy (another thread's call) is multiplied
			// plainly rather than wait, unless it is a packed batch's, whose
			// callers wait anyway.
			let mined = match self.work() {
				Some(work) if self.worth_mining(&block, &work) => {
					let guard = match (self.multiplier.try_lock(), busy) {
						(Ok(guard), _) => Some(guard),
						(Err(TryLockError::Poisoned(poisoned)), _) => Some(poisoned.into_inner()),
						(Err(TryLockError::WouldBlock), Busy::Wait) => Some(lock(&self.multiplier)),
						(Err(TryLockError::WouldBlock), Busy::Plain) => None,
					};
					let into = Out { c: &mut c, cols, at: (block.rows.start, block.cols.start) };
					guard.is_some_and(|mut g| {
						g.as_mut().is_some_and(|m| self.mine(&mut **m, &work, a, weight, &block, into))
					})
				}
				_ => false,
			};
			if mined {
				count(&self.counters.macs_mined, block.macs());
			} else {
				plain(a, bt, depth, &block, &mut c, cols);
				count(&self.counters.macs_plain, block.macs());
			}
		}
		Ok(c)
	}

	/// Whether calls mine now: there is work, of puzzle v2, and a multiplier
	/// that mines it.
	pub fn mining(&self) -> bool {
		self.work().is_some()
	}

	/// What the session has done so far.
	pub fn stats(&self) -> Stats {
		let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
		let (c, o) = (&self.counters, &self.outcomes);
		Stats {
			calls: load(&c.calls),
			calls_packed: load(&c.calls_packed),
			macs: load(&c.macs),
			macs_mined: load(&c.macs_mined),
			macs_plain: load(&c.macs_plain),
			nonces: load(&c.nonces),
			tickets: load(&c.tickets),
			winners: load(&c.winners),
			blocks_accepted: load(&o.accepted),
			stale: load(&o.stale),
			rejected: load(&o.rejected),
			dropped: load(&self.miner.counters().dropped),
			unsent: load(&o.unsent),
		}
	}

	/// The current work, if the multiplier can mine it: puzzle v2, with
	/// parameters that pass the consensus checks (a node's work is not
	/// trusted to be well formed).
	fn work(&self) -> Option<Arc<Job>> {
		let mines = |w: &Arc<Job>| w.params.version == PUZZLE_V2 && w.params.validate().is_ok();
		self.miner.current_job().filter(|w| self.multiplier_mines && mines(w))
	}

	fn worth_mining(&self, block: &Block, work: &Job) -> bool {
		let shape = PuzzleShape::from(&work.params);
		block.fits(shape) && block.macs() as f64 >= self.min_fill * (shape.m * shape.n * shape.depth) as f64
	}

	/// Mines `block` as one nonce of `work`, its exact product added into
	/// `into` (the caller's output, at the block); `false`, with `into`
	/// untouched, when the multiplier failed (logged; the caller multiplies
	/// plainly).
	fn mine(&self, multiplier: &mut dyn Lane, work: &Job, a: &[i8], weight: &Weight, block: &Block, into: Out) -> bool {
		let shape = PuzzleShape::from(&work.params);
		let name = multiplier.name();
		let nonce = self.miner.take_nonce();
		let Out { c, cols, at: (row, col) } = into;
		let into =
			AddInto { out: &mut c[row * cols + col..], stride: cols, rows: block.rows.len(), cols: block.cols.len() };
		let mined = weight.piece(&work.params, block).and_then(|bt| {
			let mut pa = padded(a, weight.depth(), &block.rows, &block.depth, shape.m, shape.k);
			salt_a(&mut pa, shape.k, &mut self.salt.stream());
			multiplier.multiply_into(work, chosen::commit_a(&work.params, pa)?, bt, nonce, into)
		});
		match mined {
			Ok(winners) => {
				let c = &self.counters;
				c.nonces.fetch_add(1, Ordering::Relaxed);
				c.tickets.fetch_add(work.params.tickets_per_nonce(), Ordering::Relaxed);
				c.winners.fetch_add(winners.len() as u64, Ordering::Relaxed);
				for winner in winners {
					log::info!("{name}: a caller's piece won a ticket (nonce {nonce})");
					self.miner.found(
						&self.found,
						&name,
						Found { version: work.version, number: work.number, winner, job: None },
					);
				}
				true
			}
			Err(e) => {
				log::warn!("{name}: cannot mine a piece under work {}, multiplying it plainly: {e:#}", work.version);
				false
			}
		}
	}
}

impl Session {
	/// Stops mining, and waits up to `timeout` until every winner found so
	/// far has been sent to the node (or pool) and answered: a winner is a
	/// block (or a share), and dropping it would lose it. Then it
	/// disconnects; products asked for after this are multiplied plainly.
	/// Returns whether nothing was left unsent or unanswered (`false`: the
	/// node was unreachable for `timeout`, or answered too slowly).
	pub fn close(&self, timeout: Duration) -> bool {
		self.miner.halt();
		let deadline = Instant::now() + timeout;
		// A winner taken off the queue is counted in flight a few
		// instructions later, on the runtime's thread: between the two it is
		// in neither count. Nothing left is believed only when two looks
		// 10 ms apart agree (the sender would have to be stopped exactly
		// there for that long; without a node task there is no sender).
		let mut empty_before = false;
		let drained = loop {
			let queued = self.found.max_capacity() - self.found.capacity();
			let empty = queued == 0 && self.outcomes.in_flight.load(Ordering::Acquire) == 0;
			// A node task that ended (it panicked) sends nothing more, and
			// what was queued for it went with its end of the queue.
			let (task, connected) = {
				let node = lock(&self.node);
				(node.is_some(), node.as_ref().is_some_and(|task| !task.is_finished()))
			};
			if task && self.found.is_closed() {
				break false;
			}
			if empty && (empty_before || !connected) {
				break true;
			}
			// An empty look gets its second look even past the deadline (a
			// zero timeout on an idle session is still a clean close).
			if !connected || (Instant::now() >= deadline && (!empty || empty_before)) {
				break false;
			}
			empty_before = empty;
			std::thread::sleep(Duration::from_millis(10));
		};
		if !drained && lock(&self.node).is_some() {
			log::warn!("closing with winners not yet sent or answered: they may be lost");
		}
		// No work from here on: a product is multiplied plainly.
		self.miner.set_job(None);
		if let Some(node) = lock(&self.node).take() {
			node.abort();
		}
		let runtime = lock(&self.runtime).take();
		if let Some(runtime) = runtime {
			runtime.shutdown_background();
		}
		drained
	}
}

/// How long dropping a session waits for its winners (see
/// [`Session::close`]; a caller that wants longer closes it first).
pub const DROP_GRACE: Duration = Duration::from_secs(3);

impl Drop for Session {
	fn drop(&mut self) {
		self.close(DROP_GRACE);
	}
}

/// What a piece does when another call holds the multiplier.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Busy {
	/// Multiplied plainly at once: a caller alone never waits.
	Plain,
	/// Waits its turn: a packed batch, whose callers wait already.
	Wait,
}

/// A lock whose holder may have panicked: the data (a task handle) is
/// still good.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
	m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The deepest product whose int32 sums cannot overflow: `4096 * depth`
/// stays below `2^31`.
pub const MAX_DEPTH: usize = (1 << 19) - 1;

/// A depth whose int32 sums cannot overflow.
fn check_depth(depth: usize) -> Result<(), JobError> {
	if depth > MAX_DEPTH {
		return Err(JobError::Invalid(format!(
			"depth {depth} could overflow int32 (each term is at most 64 * 64 = 4096): split it into products of at \
			 most {MAX_DEPTH} and add them"
		)));
	}
	Ok(())
}

/// `a` is `rows x depth` (both at least 1), values in `-64..=63`.
fn check_a(a: &[i8], rows: usize, depth: usize) -> Result<(), JobError> {
	if rows == 0 {
		return Err(JobError::Invalid(format!("empty shape: A is 0 x {depth}")));
	}
	if rows.checked_mul(depth) != Some(a.len()) {
		return Err(JobError::Invalid(format!("A holds {} values, not {rows} x {depth}", a.len())));
	}
	check_values("A", a)
}

/// Every value of the matrix `name` in the puzzle's range `-64..=63`.
fn check_values(name: &str, values: &[i8]) -> Result<(), JobError> {
	match mlpow_primitives::v2::noise::first_out_of_range(values) {
		Some(i) => {
			Err(JobError::Invalid(format!("{name} holds {}, outside the puzzle's 7-bit range -64..=63", values[i])))
		}
		None => Ok(()),
	}
}

/// Adds `block`'s product, computed plainly, into `c` (`cols` wide).
fn plain(a: &[i8], bt: &[i8], depth: usize, block: &Block, c: &mut [i32], cols: usize) {
	add_plain_product(a, bt, depth, block, Out { c, cols, at: (block.rows.start, block.cols.start) });
}

#[cfg(test)]
mod tests;
