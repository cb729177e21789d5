//! A right-hand matrix multiplied again and again (a model layer's
//! weights), registered once: its puzzle pieces are padded, salted and
//! committed (checked, transposed, Merkle tree) the first time a call uses
//! them, and every later call under the same puzzle shape reuses them, so a
//! call commits only its own left-hand side.
//!
//! **Cost.** Committing a piece's `Bt` hashes `n x k` bytes and copies them
//! twice: against the `m x n x k` multiply-accumulates of the piece that is
//! about `1/m` of its work in hashing alone (a tenth at `m = 256` on one CPU
//! core), paid once per weight instead of once per call.
//!
//! **Memory.** The prepared pieces hold the weight twice more (padded, and
//! transposed for the CPU kernel's noise removal), plus `32` bytes of tree
//! per `t` rows. They are dropped with the weight, and rebuilt when the
//! chain's puzzle shape changes.
//!
//! **What a weight publishes.** Every winning seal of a piece opens `t` of
//! its `Bt` rows (columns of `B`) with their Merkle paths. The salt, drawn
//! once per piece, keeps the unopened rows hidden as for any piece
//! ([`crate::jobs::plan`]); but the same weight mined many times opens a
//! different block each time a ticket wins, so over many blocks a
//! published fraction of the weight grows with the blocks it seals.

use super::check_values;
use crate::{
	chosen,
	jobs::{
		plan::{padded, salt_bt, Block, PuzzleShape, Salt},
		JobError,
	},
};
use mlpow_primitives::{v2::mine::Operand, ChallengeParams};
use std::{
	collections::HashMap,
	sync::{Arc, Mutex},
};

/// `B` (`depth x cols`), held as `Bt` (`cols x depth`), with its pieces
/// committed for the puzzle shape in force.
pub struct Weight {
	depth: usize,
	cols: usize,
	bt: Vec<i8>,
	salt: Salt,
	prepared: Mutex<Prepared>,
}

#[derive(Default)]
struct Prepared {
	/// `(n, k, t)` of the parameters the pieces were committed under.
	shape: Option<(u32, u32, u32)>,
	/// By the piece's block's columns and depth (`start..end` of each).
	pieces: HashMap<[usize; 4], Arc<Operand>>,
}

impl Weight {
	/// `B` given transposed: `bt` is `cols x depth`, row `y` being column
	/// `y` of `B`; values in `-64..=63`.
	pub fn new(depth: usize, cols: usize, bt: Vec<i8>) -> Result<Self, JobError> {
		if depth == 0 || cols == 0 {
			return Err(JobError::Invalid(format!("empty shape: B is {depth} x {cols}")));
		}
		if cols.checked_mul(depth) != Some(bt.len()) {
			return Err(JobError::Invalid(format!("B holds {} values, not {depth} x {cols}", bt.len())));
		}
		check_values("B", &bt)?;
		Ok(Self { depth, cols, bt, salt: Salt::new(), prepared: Mutex::default() })
	}

	/// Rows of `B` (the product's inner dimension).
	pub fn depth(&self) -> usize {
		self.depth
	}

	/// Columns of `B` (the product's columns).
	pub fn cols(&self) -> usize {
		self.cols
	}

	/// `B` transposed, `cols x depth`.
	pub fn bt(&self) -> &[i8] {
		&self.bt
	}

	/// Pieces committed so far under the current puzzle shape.
	pub fn pieces_prepared(&self) -> usize {
		self.lock().pieces.len()
	}

	/// The committed `Bt` of `block`'s piece (its columns over its depth)
	/// under `params`: the one committed before, or padded, salted and
	/// committed now. A change of `n`, `k` or `t` drops the old pieces.
	pub(crate) fn piece(&self, params: &ChallengeParams, block: &Block) -> anyhow::Result<Arc<Operand>> {
		let key = [block.cols.start, block.cols.end, block.depth.start, block.depth.end];
		let shape_now = (params.n, params.k, params.t);
		{
			let mut prepared = self.lock();
			if prepared.shape != Some(shape_now) {
				*prepared = Prepared { shape: Some(shape_now), pieces: HashMap::new() };
			}
			if let Some(piece) = prepared.pieces.get(&key) {
				return Ok(piece.clone());
			}
		}
		// Committed outside the lock (other threads' pieces go on); two
		// threads that race on one piece both commit it and the first kept
		// wins: the same matrix, another salt, equally valid.
		let shape = PuzzleShape::from(params);
		let mut bt = padded(&self.bt, self.depth, &block.cols, &block.depth, shape.n, shape.k);
		salt_bt(&mut bt, shape.k, &mut self.salt.stream());
		let piece = chosen::commit_bt(params, bt)?;
		let mut prepared = self.lock();
		if prepared.shape != Some(shape_now) {
			// The shape changed meanwhile: use the piece, keep nothing.
			return Ok(piece);
		}
		Ok(prepared.pieces.entry(key).or_insert(piece).clone())
	}

	fn lock(&self) -> std::sync::MutexGuard<'_, Prepared> {
		self.prepared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
	}
}
