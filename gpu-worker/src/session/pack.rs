//! Small calls that share a weight, packed into one puzzle piece.
//!
//! A decode step multiplies a few rows by a layer's weight: alone, far
//! below the share of a piece worth a nonce ([`super::Options::min_fill`]),
//! so it is multiplied plainly and mines nothing. A server that runs many
//! requests at once calls the same layer from several threads at about the
//! same moment. With a packing window ([`super::Options::pack_window`]),
//! such calls meet: the first small call for a weight opens a batch and
//! waits up to the window for others to join it, or less, as soon as the
//! batch's rows fill the piece enough to mine; then it multiplies all their
//! rows as one product (mined like any other) and each caller gets exactly
//! its own rows of it.
//!
//! What it costs: a call that opens a batch waits up to the window when too
//! few others join; one that joins waits for the batch's product. With no
//! window (the default) nothing waits and nothing is packed. A model still
//! never waits for the chain: without work, calls are not packed, and a
//! batch waiting for rows stops waiting when the work goes.
//!
//! What cannot go wrong for a caller: the call whose rows fill the batch
//! closes it, so it holds less than twice its target (each call is below
//! it); rows past a piece are the next piece, mined if they fill it enough,
//! as for any product. A shared product that fails (too large for memory
//! together) is retried by each call alone;
//! and if the call that opened the batch unwinds before multiplying, the
//! others multiply their own rows rather than wait for ever.

use super::Weight;
use super::{lock, Busy, Session};
use crate::jobs::{plan::PuzzleShape, JobError};
use std::{
	collections::HashMap,
	sync::{Arc, Condvar, Mutex},
	time::{Duration, Instant},
};

/// The batches open for joining, one per weight at most.
#[derive(Default)]
pub(super) struct Packer {
	open: Mutex<HashMap<usize, Arc<Batch>>>,
}

#[derive(Default)]
struct Batch {
	state: Mutex<BatchState>,
	/// Rows joined: wakes the call that opened the batch.
	joined: Condvar,
	/// The product ready (or the batch abandoned): wakes those that joined.
	ready: Condvar,
}

#[derive(Default)]
struct BatchState {
	/// Every joined call's rows, in the order they joined.
	a: Vec<i8>,
	rows: usize,
	calls: u64,
	/// Full: taken off the map by the call whose rows filled it.
	full: bool,
	/// The product of all the rows, once multiplied.
	product: Option<Arc<Result<Vec<i32>, JobError>>>,
	/// The call that opened it failed before multiplying (it panicked):
	/// each call that joined multiplies its own rows.
	abandoned: bool,
}

impl Packer {
	/// Batches open for joining (tests wait on it instead of sleeping).
	#[cfg(test)]
	pub(super) fn open_batches(&self) -> usize {
		self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
	}
}

/// How often the call that opened a batch looks whether there is still
/// work to mine (without it, nobody else will join: new calls are not
/// packed).
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// The rows of a product of `a` by a weight `(depth, cols)` that fill a piece
/// of `shape` to `min_fill`; `None` when no number of rows up to a piece's
/// `m` does (the weight is smaller than a piece).
pub(super) fn rows_to_fill(shape: PuzzleShape, depth: usize, cols: usize, min_fill: f64) -> Option<usize> {
	let per_row = (cols.min(shape.n) * depth.min(shape.depth)) as f64;
	let needed = (min_fill * (shape.m * shape.n * shape.depth) as f64 / per_row).ceil().max(1.0) as usize;
	(needed <= shape.m).then_some(needed)
}

impl Packer {
	/// `a` (`rows` rows) times `weight`, packed with the other calls for
	/// `weight` that meet it within `window` (a batch goes at `target`
	/// rows): this call's rows of the product, and whether its batch held
	/// more than this call.
	pub(super) fn product(
		&self,
		session: &Session,
		a: &[i8],
		(rows, weight): (usize, &Weight),
		target: usize,
		window: Duration,
	) -> (Result<Vec<i32>, JobError>, bool) {
		// The weight's address names it while the caller holds it: two
		// calls with the same key are calls with the same `Weight` (a batch
		// is open only while the call that opened it runs, holding it).
		let key = weight as *const Weight as usize;
		let (batch, mine, opened) = {
			let mut open = lock(&self.open);
			let batch = open.get(&key).cloned();
			let opened = batch.is_none();
			let batch = batch.unwrap_or_default();
			let mut state = lock(&batch.state);
			let start = state.rows;
			state.a.extend_from_slice(a);
			state.rows += rows;
			state.calls += 1;
			if opened {
				open.insert(key, batch.clone());
			}
			// The rows that fill it close it to joiners at once, so that it
			// does not go on growing while its opener wakes.
			if state.rows >= target {
				state.full = true;
				open.remove(&key);
			}
			batch.joined.notify_one();
			drop(state);
			(batch, start..start + rows, opened)
		};
		let product =
			if opened { Some(self.lead(session, &batch, key, weight, target, window)) } else { follow(&batch) };
		let shared = lock(&batch.state).calls > 1;
		match product.as_deref() {
			Some(Ok(c)) => (Ok(c[mine.start * weight.cols()..mine.end * weight.cols()].to_vec()), shared),
			// A shared product that failed (too large for memory together,
			// say), or no product at all: this call's rows alone, as if it
			// had never met the others.
			Some(Err(_)) if shared => (session.product(a, rows, weight, Busy::Plain), false),
			Some(Err(e)) => (Err(e.clone()), false),
			None => (session.product(a, rows, weight, Busy::Plain), false),
		}
	}

	/// The call that opened `batch`: waits for rows, closes the batch to
	/// joiners, multiplies everything, and hands the product round.
	fn lead(
		&self,
		session: &Session,
		batch: &Arc<Batch>,
		key: usize,
		weight: &Weight,
		target: usize,
		window: Duration,
	) -> Arc<Result<Vec<i32>, JobError>> {
		// If this call unwinds before the product is handed round, the
		// batch must not keep its joiners (or later calls) waiting for ever.
		let guard = Abandon { packer: self, batch, key };
		// A window too long to add is no deadline: the batch waits for rows.
		let deadline = Instant::now().checked_add(window);
		{
			let mut state = lock(&batch.state);
			while state.rows < target && !state.full {
				let left = match deadline {
					Some(deadline) => deadline.saturating_duration_since(Instant::now()),
					None => LOOK_EVERY,
				};
				if left.is_zero() || session.work().is_none() {
					break;
				}
				state = batch.joined.wait_timeout(state, left.min(LOOK_EVERY)).unwrap_or_else(|p| p.into_inner()).0;
			}
		}
		// Closed: joiners take the map's lock to join, so after this none
		// can. (A full batch is off the map already, and another may have
		// opened under the same key since.)
		self.close(batch, key);
		let (a, rows) = {
			let mut state = lock(&batch.state);
			(std::mem::take(&mut state.a), state.rows)
		};
		// Its callers wait for it anyway, so a batch waits for a busy
		// multiplier; a call alone (no one joined) never does.
		let busy = if lock(&batch.state).calls > 1 { Busy::Wait } else { Busy::Plain };
		let product = Arc::new(session.product(&a, rows, weight, busy));
		lock(&batch.state).product = Some(product.clone());
		batch.ready.notify_all();
		std::mem::forget(guard);
		product
	}

	/// Takes `batch` off the map, if it is still there.
	fn close(&self, batch: &Arc<Batch>, key: usize) {
		let mut open = lock(&self.open);
		if open.get(&key).is_some_and(|b| Arc::ptr_eq(b, batch)) {
			open.remove(&key);
		}
	}
}

/// Marks a batch abandoned if the call that opened it unwinds first.
struct Abandon<'a> {
	packer: &'a Packer,
	batch: &'a Arc<Batch>,
	key: usize,
}

impl Drop for Abandon<'_> {
	fn drop(&mut self) {
		self.packer.close(self.batch, self.key);
		lock(&self.batch.state).abandoned = true;
		self.batch.ready.notify_all();
	}
}

/// A call that joined `batch`: waits for the product; `None` if the batch
/// was abandoned.
fn follow(batch: &Batch) -> Option<Arc<Result<Vec<i32>, JobError>>> {
	let mut state = lock(&batch.state);
	loop {
		if let Some(product) = &state.product {
			return Some(product.clone());
		}
		if state.abandoned {
			return None;
		}
		state = batch.ready.wait(state).unwrap_or_else(|p| p.into_inner());
	}
}
