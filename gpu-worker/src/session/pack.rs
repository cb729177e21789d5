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
//! What it costs: a call that opens a batch waits up to the window when no
//! other joins; one that joins waits for the batch's product. With no
//! window (the default) nothing waits and nothing is packed. A model still
//! never waits for the chain: without work, calls are not packed.

use super::Weight;
use super::{lock, Session};
use crate::jobs::{plan::PuzzleShape, JobError};
use std::{
	collections::HashMap,
	ops::Range,
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
	/// Rows joined (to the caller that opened it) and the product ready
	/// (to those that joined).
	changed: Condvar,
}

#[derive(Default)]
struct BatchState {
	/// Every joined call's rows, in the order they joined.
	a: Vec<i8>,
	rows: usize,
	calls: u64,
	/// The product of all the rows, once multiplied.
	product: Option<Arc<Result<Vec<i32>, JobError>>>,
}

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
	/// `weight` that meet it within `window` (up to `target` rows in all):
	/// this call's rows of the product, and whether its batch held more than
	/// this call.
	pub(super) fn product(
		&self,
		session: &Session,
		a: &[i8],
		rows: usize,
		weight: &Weight,
		target: usize,
		window: Duration,
	) -> (Result<Vec<i32>, JobError>, bool) {
		// The weight's address names it while the caller holds it: two
		// calls with the same key are calls with the same `Weight`.
		let key = weight as *const Weight as usize;
		let (batch, mine, opened) = {
			let mut open = lock(&self.open);
			match open.get(&key) {
				Some(batch) => {
					let mut state = lock(&batch.state);
					let start = state.rows;
					state.a.extend_from_slice(a);
					state.rows += rows;
					state.calls += 1;
					batch.changed.notify_all();
					drop(state);
					(batch.clone(), start..start + rows, false)
				}
				None => {
					let batch = Arc::new(Batch::default());
					{
						let mut state = lock(&batch.state);
						state.a.extend_from_slice(a);
						state.rows = rows;
						state.calls = 1;
					}
					open.insert(key, batch.clone());
					(batch, 0..rows, true)
				}
			}
		};
		let product = if opened { self.lead(session, &batch, key, weight, target, window) } else { follow(&batch) };
		let shared = lock(&batch.state).calls > 1;
		(cut(&product, &mine, weight.cols()), shared)
	}

	/// The call that opened `batch`: waits for rows, closes the batch to
	/// joiners, multiplies everything, and hands the product round.
	fn lead(
		&self,
		session: &Session,
		batch: &Batch,
		key: usize,
		weight: &Weight,
		target: usize,
		window: Duration,
	) -> Arc<Result<Vec<i32>, JobError>> {
		let deadline = Instant::now() + window;
		{
			let mut state = lock(&batch.state);
			while state.rows < target {
				let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
					break;
				};
				state = batch.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
			}
		}
		// Closed: joiners take the map's lock to join, so after this none can.
		lock(&self.open).remove(&key);
		let (a, rows) = {
			let mut state = lock(&batch.state);
			(std::mem::take(&mut state.a), state.rows)
		};
		let product = Arc::new(session.product(&a, rows, weight));
		lock(&batch.state).product = Some(product.clone());
		batch.changed.notify_all();
		product
	}
}

/// A call that joined `batch`: waits for the product.
fn follow(batch: &Batch) -> Arc<Result<Vec<i32>, JobError>> {
	let mut state = lock(&batch.state);
	loop {
		if let Some(product) = &state.product {
			return product.clone();
		}
		state = batch.changed.wait(state).unwrap_or_else(|p| p.into_inner());
	}
}

/// Rows `rows` of a product with `cols` columns.
fn cut(product: &Result<Vec<i32>, JobError>, rows: &Range<usize>, cols: usize) -> Result<Vec<i32>, JobError> {
	match product {
		Ok(c) => Ok(c[rows.start * cols..rows.end * cols].to_vec()),
		Err(e) => Err(e.clone()),
	}
}
