//! The job queue: jobs wait in submission order; mining lanes take pieces
//! from the oldest job that has any, and hand back their products.
//!
//! One mutex guards it all. Lanes hold it only to pop a piece's block or to
//! add a product into `C` (`m * n` additions against the piece's `m * n * k`
//! multiply-accumulates); the matrices themselves are shared `Arc`s, copied
//! into padded pieces outside the lock.

use super::{
	input::Matrices,
	plan::{accumulate, padded, plain_product, salt, Block, PuzzleShape, Salt},
	JobError, Reservation,
};
use mlpow_primitives::{ChallengeParams, Hash32};
use serde::Serialize;
use std::{
	collections::{BTreeMap, VecDeque},
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc, Mutex,
	},
	time::{SystemTime, UNIX_EPOCH},
};

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
	/// Waiting for a lane (or for a chain on puzzle v2).
	Queued,
	/// Some pieces are done or being mined.
	Running,
	/// Every piece is done: the product can be fetched.
	Done,
	/// Cancelled by its submitter; the partial product is discarded.
	Cancelled,
}

/// A job's progress, as `jobs_status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
	pub id: u64,
	pub label: Option<String>,
	pub state: State,
	/// `[rows, depth, cols]`: `A` is `rows x depth`, `B` is `depth x cols`.
	pub shape: [usize; 3],
	/// Multiply-accumulates of the product, `rows * depth * cols`.
	pub macs_total: u64,
	/// Of those, how many are in `C` already.
	pub macs_done: u64,
	/// Pieces (nonces) mined for this job so far.
	pub pieces_done: u64,
	/// Multiply-accumulates mined, padding included (`pieces * m * n * k`).
	pub macs_mined: u64,
	/// Of the job's multiply-accumulates, those multiplied plainly (thin
	/// depth remainders: [`thin_remainder`]).
	pub macs_plain: u64,
	/// Winning tickets found on this job's pieces.
	pub tickets_won: u64,
	/// Blocks the node accepted with a seal from this job (their hashes).
	pub blocks: Vec<String>,
	/// Milliseconds since the Unix epoch.
	pub submitted_ms: u64,
	pub finished_ms: Option<u64>,
}

struct Entry {
	status: Status,
	a: Arc<Vec<i8>>,
	bt: Arc<Vec<i8>>,
	c: Vec<i32>,
	pending: VecDeque<Block>,
	in_flight: usize,
	bytes: u64,
}

/// Which part of which job a piece is, at which puzzle shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceAt {
	pub job: u64,
	pub block: Block,
	pub shape: PuzzleShape,
}

/// A piece taken by a lane: where it belongs, and the padded matrices to
/// mine (`m x k` and `n x k`).
#[derive(Debug)]
pub struct Piece {
	pub at: PieceAt,
	pub a: Vec<i8>,
	pub bt: Vec<i8>,
}

pub(super) struct Inner {
	next_id: u64,
	jobs: BTreeMap<u64, Entry>,
	pub(super) held_bytes: u64,
	/// Reserved by requests in progress ([`Reservation`]): their bodies,
	/// decoded copies and responses. Held plus reserved stays within the
	/// budget.
	pub(super) reserved_bytes: u64,
	/// The parameters of the work being mined now (for `jobs_info`).
	chain: Option<ChallengeParams>,
}

/// The worker's jobs, shared by the API and the mining lanes.
pub struct Jobs {
	inner: Mutex<Inner>,
	/// Whether a piece may be waiting: lanes searching seeded nonces poll
	/// it between nonces (no lock) and turn to a job as soon as one comes.
	work_waiting: AtomicBool,
	/// Where the pieces' salt comes from.
	salt: Salt,
	/// Most bytes the jobs' matrices and products, and the requests in
	/// progress, may hold at once.
	pub(super) budget: u64,
}

/// What a job costs beyond its matrices (its status, its bookkeeping), for
/// the memory budget: a flood of tiny jobs fills it too.
const JOB_OVERHEAD: u64 = 1024;

/// The most jobs held at once, done or not.
pub const MAX_JOBS: usize = 10_000;

fn now_ms() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Jobs {
	/// An empty queue whose jobs may hold `budget` bytes in all.
	pub fn new(budget: u64) -> Self {
		Self {
			inner: Mutex::new(Inner {
				next_id: 1,
				jobs: BTreeMap::new(),
				held_bytes: 0,
				reserved_bytes: 0,
				chain: None,
			}),
			work_waiting: AtomicBool::new(false),
			salt: Salt::new(),
			budget,
		}
	}

	pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
		self.inner.lock().unwrap_or_else(|p| p.into_inner())
	}

	/// The memory budget and what the held jobs use of it, in bytes.
	pub fn memory(&self) -> (u64, u64) {
		(self.budget, self.lock().held_bytes)
	}

	/// What a job of these matrices and label holds: its matrices and
	/// product, its bookkeeping.
	pub fn job_bytes(rows: usize, depth: usize, cols: usize, label: Option<&str>) -> u64 {
		Matrices::bytes(rows, depth, cols)
			.saturating_add(JOB_OVERHEAD)
			.saturating_add(label.map_or(0, |l| l.len() as u64))
	}

	/// Queues a job; refused when it would take the memory in use past the
	/// budget, or the number of held jobs past [`MAX_JOBS`].
	pub fn submit(&self, matrices: Matrices, label: Option<String>) -> Result<Status, JobError> {
		self.queue(matrices, label, None)
	}

	/// Queues a job whose memory `reservation` set aside: that much of it
	/// becomes the job's, without a moment where neither counts it.
	pub fn submit_reserved(
		&self,
		matrices: Matrices,
		label: Option<String>,
		reservation: &mut Reservation,
	) -> Result<Status, JobError> {
		debug_assert!(std::ptr::eq(self, &*reservation.jobs), "a reservation of this queue");
		self.queue(matrices, label, Some(reservation))
	}

	fn queue(
		&self,
		matrices: Matrices,
		label: Option<String>,
		reservation: Option<&mut Reservation>,
	) -> Result<Status, JobError> {
		let Matrices { rows, depth, cols, a, bt } = matrices;
		let bytes = Self::job_bytes(rows, depth, cols, label.as_deref());
		// The product, allocated before the lock: the reservation (or the
		// size check when the job was read) already counts it.
		let c = vec![0; rows * cols];
		let mut inner = self.lock();
		if inner.jobs.len() >= MAX_JOBS {
			return Err(JobError::TooLarge(format!(
				"the worker holds {MAX_JOBS} jobs; fetch and remove finished ones (jobs_remove)"
			)));
		}
		// What the reservation covers moves to the job; the rest must be free.
		let covered = reservation.as_ref().map_or(0, |r| r.bytes.min(bytes));
		let used = inner.held_bytes.saturating_add(inner.reserved_bytes) - covered;
		if used.saturating_add(bytes) > self.budget {
			return Err(JobError::TooLarge(format!(
				"the job needs {} MiB and {} MiB of the worker's {} MiB job memory are in use; fetch and remove \
				 finished jobs (jobs_remove) or start the worker with a larger --jobs-memory-mib",
				bytes.div_ceil(1 << 20),
				used.div_ceil(1 << 20),
				self.budget >> 20
			)));
		}
		if let Some(r) = reservation {
			r.bytes -= covered;
			inner.reserved_bytes -= covered;
		}
		let id = inner.next_id;
		inner.next_id += 1;
		inner.held_bytes += bytes;
		let status = Status {
			id,
			label,
			state: State::Queued,
			shape: [rows, depth, cols],
			macs_total: rows as u64 * depth as u64 * cols as u64,
			macs_done: 0,
			pieces_done: 0,
			macs_mined: 0,
			macs_plain: 0,
			tickets_won: 0,
			blocks: Vec::new(),
			submitted_ms: now_ms(),
			finished_ms: None,
		};
		let whole = Block { rows: 0..rows, cols: 0..cols, depth: 0..depth };
		inner.jobs.insert(
			id,
			Entry {
				status: status.clone(),
				a: Arc::new(a),
				bt: Arc::new(bt),
				c,
				pending: VecDeque::from([whole]),
				in_flight: 0,
				bytes,
			},
		);
		self.work_waiting.store(true, Ordering::SeqCst);
		Ok(status)
	}

	/// The status of job `id`.
	pub fn status(&self, id: u64) -> Result<Status, JobError> {
		self.lock().jobs.get(&id).map(|e| e.status.clone()).ok_or(JobError::Unknown(id))
	}

	/// Every held job's status, oldest first.
	pub fn list(&self) -> Vec<Status> {
		self.lock().jobs.values().map(|e| e.status.clone()).collect()
	}

	/// Whether a piece may be waiting (cheap; exact only under [`Jobs::take`]).
	pub fn work_waiting(&self) -> bool {
		self.work_waiting.load(Ordering::Relaxed)
	}

	/// Jobs with pieces still to mine.
	pub fn waiting(&self) -> usize {
		self.lock().jobs.values().filter(|e| !e.pending.is_empty()).count()
	}

	/// A done job's product, `rows x cols` row-major.
	pub fn product(&self, id: u64) -> Result<(usize, usize, Vec<i32>), JobError> {
		let (rows, cols) = self.product_shape(id)?;
		self.product_rows(id, 0..rows, |c| Ok((rows, cols, c.to_vec())))
	}

	/// The shape of a done job's product.
	pub fn product_shape(&self, id: u64) -> Result<(usize, usize), JobError> {
		let inner = self.lock();
		let entry = inner.jobs.get(&id).ok_or(JobError::Unknown(id))?;
		match entry.status.state {
			State::Done => Ok((entry.status.shape[0], entry.status.shape[2])),
			state => Err(JobError::NotDone(id, state)),
		}
	}

	/// Runs `read` on rows `rows` of a done job's product, under the lock
	/// (so that the job cannot be removed, and its memory counted free,
	/// while they are read): keep it to a copy.
	pub fn product_rows<T>(
		&self,
		id: u64,
		rows: std::ops::Range<usize>,
		read: impl FnOnce(&[i32]) -> Result<T, JobError>,
	) -> Result<T, JobError> {
		let inner = self.lock();
		let entry = inner.jobs.get(&id).ok_or(JobError::Unknown(id))?;
		if entry.status.state != State::Done {
			return Err(JobError::NotDone(id, entry.status.state));
		}
		let [total, _, cols] = entry.status.shape;
		if rows.start >= rows.end || rows.end > total {
			return Err(JobError::Invalid(format!(
				"rows {}..{} are not within the product's {total} rows",
				rows.start, rows.end
			)));
		}
		read(&entry.c[rows.start * cols..rows.end * cols])
	}

	/// A size to reserve for `jobs_list`'s answer: the statuses copied,
	/// then written as JSON (a label's bytes may become `\u00XX`, six each).
	pub fn list_bytes(&self) -> u64 {
		let inner = self.lock();
		inner
			.jobs
			.values()
			.map(|e| {
				let s = &e.status;
				let label = s.label.as_ref().map_or(0, |l| l.len() as u64);
				2 * (512 + 7 * label + 80 * s.blocks.len() as u64)
			})
			.sum()
	}

	/// Stops a job: pieces not yet taken are dropped, its partial product
	/// discarded. A done job stays done.
	pub fn cancel(&self, id: u64) -> Result<Status, JobError> {
		let mut inner = self.lock();
		let entry = inner.jobs.get_mut(&id).ok_or(JobError::Unknown(id))?;
		if entry.status.state != State::Done {
			entry.status.state = State::Cancelled;
			entry.status.finished_ms = Some(now_ms());
			entry.pending.clear();
			entry.c = Vec::new();
		}
		Ok(entry.status.clone())
	}

	/// Forgets a job and frees its memory (a piece being mined for it is
	/// then dropped when it finishes).
	pub fn remove(&self, id: u64) -> Result<(), JobError> {
		let mut inner = self.lock();
		let entry = inner.jobs.remove(&id).ok_or(JobError::Unknown(id))?;
		inner.held_bytes -= entry.bytes;
		Ok(())
	}

	/// Records the parameters of the work being mined (`None`: no work).
	pub fn set_chain(&self, params: Option<ChallengeParams>) {
		self.lock().chain = params;
	}

	/// The parameters of the work being mined, if any.
	pub fn chain(&self) -> Option<ChallengeParams> {
		self.lock().chain
	}

	/// The next piece to mine at `params`' shape, from the oldest job that
	/// has one. A thin depth remainder met on the way (less than half a
	/// piece's depth, after the job's first pieces along the depth; see
	/// [`thin_remainder`]) is multiplied plainly here and added to its
	/// job, not mined.
	pub fn take(&self, params: &ChallengeParams) -> Option<Piece> {
		let shape = PuzzleShape::from(params);
		loop {
			let (id, block, a, bt, depth) = {
				let mut inner = self.lock();
				let Some(entry) = inner.jobs.values_mut().find(|e| !e.pending.is_empty()) else {
					self.work_waiting.store(false, Ordering::SeqCst);
					return None;
				};
				let mut block = entry.pending.pop_front()?;
				// Peel one piece off the front: at most three remainders go
				// back, so a job of millions of pieces never lists them all.
				while !block.fits(shape) {
					let (first, rest) = block.peel(shape);
					entry.pending.push_front(rest);
					block = first;
				}
				entry.in_flight += 1;
				entry.status.state = State::Running;
				(entry.status.id, block, entry.a.clone(), entry.bt.clone(), entry.status.shape[1])
			};
			let at = PieceAt { job: id, block, shape };
			if thin_remainder(&at.block, shape) {
				let product = plain_product(&a, &bt, depth, &at.block);
				self.add(&at, &product, at.block.cols.len(), None);
				continue;
			}
			let mut pa = padded(&a, depth, &at.block.rows, &at.block.depth, shape.m, shape.k);
			let mut pbt = padded(&bt, depth, &at.block.cols, &at.block.depth, shape.n, shape.k);
			let mut random = self.salt.stream();
			salt(&mut pa, &mut pbt, shape.k, &mut random);
			return Some(Piece { at, a: pa, bt: pbt });
		}
	}

	/// Adds a mined piece's product (`m x n`, padded) into its job; the job
	/// is done when this was its last piece.
	pub fn complete(&self, piece: &PieceAt, product: &[i32], tickets_won: u64) {
		self.add(piece, product, piece.shape.n, Some(tickets_won));
	}

	/// Adds `piece`'s product (`width` columns wide) into its job: mined,
	/// with the tickets it won, or (`None`) multiplied plainly.
	fn add(&self, piece: &PieceAt, product: &[i32], width: usize, mined: Option<u64>) {
		let mut inner = self.lock();
		let Some(entry) = inner.jobs.get_mut(&piece.job) else { return };
		entry.in_flight -= 1;
		let s = &mut entry.status;
		match mined {
			Some(tickets_won) => {
				s.pieces_done += 1;
				s.macs_mined += (piece.shape.m * piece.shape.n * piece.shape.k) as u64;
				s.tickets_won += tickets_won;
			}
			None => s.macs_plain += piece.block.macs(),
		}
		if s.state == State::Cancelled {
			return;
		}
		accumulate(&mut entry.c, s.shape[2], &piece.block, product, width);
		s.macs_done += piece.block.macs();
		if entry.pending.is_empty() && entry.in_flight == 0 {
			s.state = State::Done;
			s.finished_ms = Some(now_ms());
		}
	}

	/// Puts back a piece a lane could not mine, to be taken again.
	pub fn give_back(&self, piece: PieceAt) {
		let mut inner = self.lock();
		if let Some(entry) = inner.jobs.get_mut(&piece.job) {
			entry.in_flight -= 1;
			if entry.status.state != State::Cancelled {
				entry.pending.push_front(piece.block);
				self.work_waiting.store(true, Ordering::SeqCst);
			}
		}
	}

	/// Records a block the node accepted with a seal from job `id`.
	pub fn block_accepted(&self, id: u64, hash: &Hash32) {
		if let Some(entry) = self.lock().jobs.get_mut(&id) {
			entry.status.blocks.push(format!("0x{}", hex::encode(hash)));
		}
	}
}

/// Whether `block` is a thin remainder along the depth: not the job's
/// first stretch of it, and less than half a piece's depth. Each piece
/// gives two columns of `k` to salt, so a depth of exactly `k` (a power of
/// two, as models have) leaves a 2-deep remainder; mined, it would cost a
/// whole nonce for `2/k` of the work, doubling the job's cost. It is
/// multiplied plainly instead (as the in-process miner does with pieces
/// under its `min_fill`).
pub fn thin_remainder(block: &Block, shape: PuzzleShape) -> bool {
	block.depth.start > 0 && 2 * block.depth.len() < shape.depth
}

#[cfg(test)]
mod tests;
