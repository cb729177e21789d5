//! A weight registered from device memory (a model layer's CUDA weight,
//! multiplied at every forward pass): copied once into the lane's own
//! memory, range-checked in the same pass, and its puzzle pieces cut,
//! salted and committed on the device by the first call that mines them.
//! Every later call under the same puzzle shape reuses them, so a call
//! cuts and commits only its own activations (docs/in-process-cuda.md,
//! "Registered weights"), as the host path's `session::Weight` does.
//!
//! **Why a copy.** The pieces are made from it, and plain blocks and
//! Freivalds' check read it, so every part of a product sees the same
//! values, and no value is ever multiplied unchecked. The cost: the
//! weight's size once more, plus its pieces (about its size again, padded
//! to the puzzle's `n x k`, and `32` bytes of tree per `t` rows), freed
//! when the weight is dropped; pieces are rebuilt when `n`, `k` or `t`
//! change. A weight the model changes in place after registration is not
//! seen by later products: register it again.
//!
//! **What a weight publishes.** As on the host: the salt, drawn once per
//! piece, hides the unopened rows, but every winning seal of a piece opens
//! `t` rows of it, so a weight mined many times publishes a growing part.

use super::{call::enter, commit_piece, lent_memory};
use crate::{
	cuda::{launch::alloc, operand::DeviceMatrix, v2::device::DevicePiece, CudaLane},
	jobs::{
		plan::{Block, Salt},
		JobError,
	},
	kernels::Words8,
	session::MAX_DEPTH,
};
use anyhow::{anyhow, ensure};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr};
use mlpow_primitives::ChallengeParams;
use std::{
	collections::HashMap,
	sync::{
		atomic::{AtomicU64, Ordering},
		Arc, Mutex,
	},
};

/// `Bt` (`cols x depth`, row-major) in the memory of one GPU's lane, with
/// the pieces committed from it for the puzzle shape in force.
pub struct DeviceWeight {
	/// The copy, which `matrix` describes (taken only when dropped).
	copy: Option<CudaSlice<i8>>,
	matrix: DeviceMatrix,
	/// The lane's context, bound while the weight's memory is freed (a
	/// weight may be dropped on any thread, with any context current).
	ctx: Arc<CudaContext>,
	ordinal: usize,
	salt: Salt,
	prepared: Mutex<Prepared>,
	/// Pieces cut and committed over the weight's life (a shape change
	/// makes them anew): a count that only grows, for tests and stats.
	commits: AtomicU64,
}

#[derive(Default)]
struct Prepared {
	/// `(n, k, t)` the pieces were committed under.
	shape: Option<(u32, u32, u32)>,
	/// By the block's columns and depth (`start..end` of each).
	pieces: HashMap<[usize; 4], Arc<DevicePiece>>,
}

impl DeviceWeight {
	/// `(depth, cols)`: the shape of `B`.
	pub fn shape(&self) -> (usize, usize) {
		(self.matrix.cols as usize, self.matrix.rows as usize)
	}

	/// The GPU whose memory holds it.
	pub fn ordinal(&self) -> usize {
		self.ordinal
	}

	/// Pieces committed so far under the current puzzle shape.
	pub fn pieces_prepared(&self) -> usize {
		self.lock().pieces.len()
	}

	/// Pieces cut and committed over the weight's life: as many as
	/// [`Self::pieces_prepared`] while calls reuse them.
	pub fn pieces_committed(&self) -> u64 {
		self.commits.load(Ordering::Relaxed)
	}

	/// `Bt` as a matrix a call reads (the weight's own memory).
	pub(in crate::cuda) fn matrix(&self) -> DeviceMatrix {
		self.matrix
	}

	fn lock(&self) -> std::sync::MutexGuard<'_, Prepared> {
		self.prepared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
	}
}

impl Drop for DeviceWeight {
	/// Frees the pieces and the copy with the lane's context bound (cudarc
	/// frees on the current one), the thread's own put back after.
	fn drop(&mut self) {
		let Ok(_restore) = enter(&self.ctx) else {
			log::warn!("a registered weight's GPU memory cannot be freed: its context is gone");
			return;
		};
		self.prepared.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).pieces.clear();
		drop(self.copy.take());
	}
}

impl std::fmt::Debug for DeviceWeight {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		let (depth, cols) = self.shape();
		write!(f, "DeviceWeight({depth} x {cols} on GPU {}, {} pieces)", self.ordinal, self.pieces_prepared())
	}
}

impl CudaLane {
	/// `bt` (`cols x depth`: `B` transposed, a PyTorch `Linear.weight` as it
	/// is) registered as a weight: copied into this lane's memory and
	/// range-checked in one pass. Values outside -64..63, memory that is
	/// not this GPU's, or an empty or too deep matrix are refused with the
	/// reason. `caller_stream` as in [`super::call::DevicePlan`].
	///
	/// # Safety
	/// `bt` describes memory of this device's primary context, valid and
	/// unwritten until this returns; `caller_stream` is a live stream of it.
	pub unsafe fn register_weight(
		&mut self,
		bt: &DeviceMatrix,
		caller_stream: Option<u64>,
	) -> Result<DeviceWeight, JobError> {
		let span = bt.span("the weight").map_err(|e| JobError::Invalid(e.0))?;
		if bt.cols as usize > MAX_DEPTH {
			return Err(JobError::Invalid(format!(
				"the weight's inner dimension {} is over {MAX_DEPTH}: the int32 product could overflow; split it",
				bt.cols
			)));
		}
		let _restore = enter(&self.ctx)?;
		lent_memory(bt.ptr, span, self.info.ordinal, "the weight")?;
		self.wait_for_caller(caller_stream)?;
		let stream = self.ctx.default_stream();
		let device = |e: anyhow::Error| JobError::Device(format!("{e:#}"));
		let len = bt.rows as usize * bt.cols as usize;
		let mut copy = alloc::<i8>(&self.ctx, &stream, len, "a registered weight").map_err(|e| {
			// Out of device memory is the caller's to act on (a smaller
			// model, fewer registered weights), not a fault.
			JobError::TooLarge(format!("{e:#}"))
		})?;
		// SAFETY: `bt` was checked above and is the caller's to vouch for;
		// `copy` holds its `rows x cols` values. Waits for the stream.
		match unsafe { self.ops.first_out_of_range(&self.ctx, &stream, bt, Some(&mut copy)) }.map_err(device)? {
			Some((i, j, v)) => Err(JobError::Invalid(format!(
				"B holds {v} at ({j}, {i}): values must be in -64..63 (B is {} x {})",
				bt.cols, bt.rows
			))),
			None => {
				let ptr = copy.device_ptr(&stream).0;
				let matrix = DeviceMatrix::row_major(ptr, bt.rows, bt.cols);
				Ok(DeviceWeight {
					copy: Some(copy),
					matrix,
					ctx: self.ctx.clone(),
					ordinal: self.info.ordinal,
					salt: Salt::new(),
					prepared: Mutex::default(),
					commits: AtomicU64::new(0),
				})
			}
		}
	}

	/// The committed `Bt` piece of `block` (its columns over its depth)
	/// under `p`: the one made before, or cut from the weight's copy,
	/// salted (a seed drawn once for the piece) and committed now, on
	/// `stream`. A change of `n`, `k` or `t` drops the old pieces. (Two
	/// miners on one weight under different shapes would rebuild each
	/// other's pieces at every call: correct, and slow.)
	pub(in crate::cuda) fn weight_piece(
		&mut self,
		stream: &Arc<CudaStream>,
		weight: &DeviceWeight,
		p: &ChallengeParams,
		block: &Block,
	) -> anyhow::Result<Arc<DevicePiece>> {
		let key = [block.cols.start, block.cols.end, block.depth.start, block.depth.end];
		let shape = (p.n, p.k, p.t);
		let mut prepared = weight.lock();
		if prepared.shape != Some(shape) {
			*prepared = Prepared { shape: Some(shape), pieces: HashMap::new() };
		}
		if let Some(piece) = prepared.pieces.get(&key) {
			return Ok(piece.clone());
		}
		let m = &weight.matrix;
		ensure!(
			block.cols.start < block.cols.end
				&& block.cols.end <= m.rows as usize
				&& block.depth.start < block.depth.end
				&& block.depth.end <= m.cols as usize,
			"a block {block:?} outside the weight's {} x {} (a bug)",
			m.cols,
			m.rows
		);
		let r32 = |r: &std::ops::Range<usize>| r.start as u32..r.end as u32;
		let src = m.block(r32(&block.cols), r32(&block.depth));
		let mut flag: CudaSlice<u64> = alloc(&self.ctx, stream, 1, "a range flag")?;
		stream.memcpy_htod(&[u64::MAX], &mut flag).map_err(|e| anyhow!("setting a range flag: {e:?}"))?;
		let seed = Words8::le(&weight.salt.seed());
		// SAFETY: a block of the weight's own copy, which lives as long as
		// `weight` and which nothing writes; `commit_piece` waits for the
		// stream (it reads the tree back).
		let piece = unsafe {
			commit_piece(
				&self.ops,
				&self.commit,
				&self.ctx,
				stream,
				&src,
				(p.n, p.k, p.t),
				(p.k - 2, &seed),
				&mut flag,
			)?
		};
		// The copy was checked when it was made and nothing of ours writes
		// it; checked again as it is cut all the same, since a piece is
		// kept for the weight's life.
		let bad = stream.clone_dtoh(&flag).map_err(|e| anyhow!("reading a range flag: {e:?}"))?[0];
		ensure!(bad == u64::MAX, "a registered weight's copy changed on the device: a value outside -64..63");
		weight.commits.fetch_add(1, Ordering::Relaxed);
		let piece = Arc::new(piece);
		prepared.pieces.insert(key, piece.clone());
		Ok(piece)
	}
}
